//! The walk of [`decode`]: every header of a frame, outer to inner, checksums verified, lengths judged.

use core::net::Ipv4Addr;

use super::layer::{Arp, ArpAddresses, Check, Fault, Icmp, Ipv4, Ipv4Options, Layer, Problem, Tcp, Udp, Vlan, Vxlan};
use crate::checksum;
use crate::ethernet::MacAddr;
use crate::vxlan;

use super::ports::{Decoders, PortDecoder};

/// The most layers one frame is decoded into: VXLAN in VXLAN in VXLAN still fits; what lies deeper is not read.
pub const MAX_LAYERS: usize = 16;
/// The most problems kept for one frame; [`Decoded::more_problems`] tells when there were more.
pub const MAX_PROBLEMS: usize = 4;

const FILLER_LAYER: Layer = Layer::FlannelUdp;
const FILLER_PROBLEM: Problem = Problem { layer: "", field: "", fault: Fault::Invalid { value: 0 } };

/// Every layer of one frame and the problems found, without allocating. See the module documentation.
#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    frame: &'a [u8],
    layers: [Layer; MAX_LAYERS],
    layer_count: u8,
    problems: [Problem; MAX_PROBLEMS],
    problem_count: u8,
    more_problems: bool,
    /// The bytes after the last header decoded, when the walk ended on a payload it does not decode.
    payload_len: u32,
    /// How many bytes of the frame the capture did not keep (its length on the wire less the bytes captured).
    snapped: u32,
}

/// Decodes `frame` (an Ethernet frame) with `decoders`' port mappings.
#[must_use]
pub fn decode<'a>(frame: &'a [u8], decoders: &Decoders) -> Decoded<'a> {
    decode_captured(frame, frame.len(), decoders)
}

/// Decodes the captured bytes `frame` of a frame that was `wire_len` bytes long on the wire (a capture with a
/// snap length keeps only the start): a header or a length that reaches into the bytes not kept is
/// [`Fault::Snapped`], not malformed, and the checksums over them are not verified.
#[must_use]
pub fn decode_captured<'a>(frame: &'a [u8], wire_len: usize, decoders: &Decoders) -> Decoded<'a> {
    let mut d = Decoded::new(frame, wire_len);
    d.ethernet(frame, decoders);
    d
}

/// Decodes `packet` as a bare IPv4 packet (a TUN device's, pcap's `LINKTYPE_RAW`).
#[must_use]
pub fn decode_ipv4<'a>(packet: &'a [u8], wire_len: usize, decoders: &Decoders) -> Decoded<'a> {
    let mut d = Decoded::new(packet, wire_len);
    d.ipv4(packet, false, decoders);
    d
}

impl<'a> Decoded<'a> {
    fn new(frame: &'a [u8], wire_len: usize) -> Self {
        Self {
            frame,
            layers: [FILLER_LAYER; MAX_LAYERS],
            layer_count: 0,
            problems: [FILLER_PROBLEM; MAX_PROBLEMS],
            problem_count: 0,
            more_problems: false,
            payload_len: 0,
            snapped: len32(wire_len.saturating_sub(frame.len())),
        }
    }
}

/// How a transport header is read: inside an ICMP error, behind a cut IPv4 payload, in a first fragment.
#[derive(Clone, Copy)]
struct Ctx {
    quoted: bool,
    /// The bytes are not the whole payload (a first fragment, a quoted header): checksums over it cannot be
    /// verified and a length past it is expected.
    partial: bool,
    /// The IPv4 total length runs past the bytes there are: a transport whose length comes from it (TCP, ICMP)
    /// cannot be verified; UDP, which has its own length, still can.
    cut: bool,
    src: [u8; 4],
    dst: [u8; 4],
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

fn mac(b: &[u8], at: usize) -> MacAddr {
    b.get(at..at + 6).and_then(MacAddr::from_bytes).unwrap_or(MacAddr([0; 6]))
}

fn ip4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(be32(b, at))
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The checksum a region calls for when its field (at `at`) is taken as zero, given the folded sum of the rest.
fn expected(initial: u16, data: &[u8], field: u16) -> u16 {
    // Sum with the field, then take the field out: adding its complement subtracts it in one's complement.
    !checksum::add(checksum::sum_with(initial, data), !field)
}

fn verdict(initial: u16, data: &[u8], field: u16) -> Check {
    if checksum::sum_with(initial, data) == 0xffff {
        Check::Good
    } else {
        Check::Bad { expected: expected(initial, data, field) }
    }
}

impl<'a> Decoded<'a> {
    /// Records a layer; false when the table is full and the walk must stop.
    fn push(&mut self, layer: Layer) -> bool {
        let Some(slot) = self.layers.get_mut(usize::from(self.layer_count)) else { return false };
        *slot = layer;
        self.layer_count += 1;
        true
    }

    fn problem(&mut self, layer: &'static str, field: &'static str, fault: Fault) {
        match self.problems.get_mut(usize::from(self.problem_count)) {
            Some(slot) => {
                *slot = Problem { layer, field, fault };
                self.problem_count += 1;
            }
            None => self.more_problems = true,
        }
    }

    /// `need` bytes of a header, or a truncation problem.
    fn need(&mut self, b: &[u8], need: usize, layer: &'static str) -> bool {
        if b.len() >= need {
            return true;
        }
        let (need, have) = (len32(need), len32(b.len()));
        let fault =
            if self.on_wire(need, have) { Fault::Snapped { need, have } } else { Fault::Truncated { need, have } };
        self.problem(layer, "header", fault);
        false
    }

    /// Whether `need` bytes where `have` were captured were there on the wire (the capture's snap length cut
    /// them).
    fn on_wire(&self, need: u32, have: u32) -> bool {
        self.snapped > 0 && u64::from(need) <= u64::from(have) + u64::from(self.snapped)
    }

    /// A length field that reaches `declared` bytes where `available` are: snapped, or a lie.
    fn too_long(&mut self, layer: &'static str, field: &'static str, declared: usize, available: usize) {
        let (declared, available) = (len32(declared), len32(available));
        let fault = if self.on_wire(declared, available) {
            Fault::Snapped { need: declared, have: available }
        } else {
            Fault::TooLong { declared, available }
        };
        self.problem(layer, field, fault);
    }

    fn ethernet(&mut self, b: &'a [u8], decoders: &Decoders) {
        if !self.need(b, 14, "eth") {
            return;
        }
        let mut etype = be16(b, 12);
        if !self.push(Layer::Ethernet { dst: mac(b, 0), src: mac(b, 6), etype }) {
            return;
        }
        let mut at = 14;
        while matches!(etype, 0x8100 | 0x88a8) {
            let rest = b.get(at..).unwrap_or_default();
            if !self.need(rest, 4, "vlan") {
                return;
            }
            let tci = be16(rest, 0);
            let tag = Vlan {
                tpid: etype,
                // Three bits, one bit and twelve bits of the tag control information.
                priority: (tci >> 13) as u8,
                dei: tci & 0x1000 != 0,
                id: tci & 0x0fff,
                etype: be16(rest, 2),
            };
            if !self.push(Layer::Vlan(tag)) {
                return;
            }
            etype = tag.etype;
            at += 4;
        }
        let payload = b.get(at..).unwrap_or_default();
        match etype {
            0x0800 => self.ipv4(payload, false, decoders),
            0x0806 => self.arp(payload),
            _ => self.payload_len = len32(payload.len()),
        }
    }

    fn arp(&mut self, b: &[u8]) {
        if !self.need(b, 8, "arp") {
            return;
        }
        let (hw_type, proto_type, opcode) = (be16(b, 0), be16(b, 2), be16(b, 6));
        let ethernet_ipv4 = hw_type == 1 && proto_type == 0x0800 && b[4] == 6 && b[5] == 4;
        let mut arp = Arp { hw_type, proto_type, opcode, addresses: None };
        if ethernet_ipv4 && self.need(b, 28, "arp") {
            arp.addresses =
                Some(ArpAddresses { src_hw: mac(b, 8), src_ip: ip4(b, 14), dst_hw: mac(b, 18), dst_ip: ip4(b, 24) });
        }
        self.push(Layer::Arp(arp));
    }

    fn ipv4(&mut self, b: &'a [u8], quoted: bool, decoders: &Decoders) {
        if !self.need(b, 20, "ip") {
            return;
        }
        let version = b[0] >> 4;
        if version != 4 {
            self.problem("ip", "version", Fault::Invalid { value: u32::from(version) });
            return;
        }
        let hdr_len = usize::from(b[0] & 0x0f) * 4;
        if hdr_len < 20 {
            self.problem("ip", "header length", Fault::TooShort { declared: len32(hdr_len), min: 20 });
            return;
        }
        if !self.need(b, hdr_len, "ip") {
            return;
        }
        let header = &b[..hdr_len];
        let checksum = be16(b, 10);
        let check = verdict(0, header, checksum);
        let frag = be16(b, 6);
        let mut ip = Ipv4 {
            // At most 60: it fits.
            hdr_len: hdr_len as u8,
            dsfield: b[1],
            len: be16(b, 2),
            id: be16(b, 4),
            df: frag & 0x4000 != 0,
            mf: frag & 0x2000 != 0,
            frag_offset: (frag & 0x1fff).wrapping_mul(8),
            ttl: b[8],
            proto: b[9],
            checksum,
            check,
            src: ip4(b, 12),
            dst: ip4(b, 16),
            options: Ipv4Options::default(),
        };
        let options_ok = options(&header[20..], &mut ip.options);
        if !self.push(Layer::Ipv4 { ip, quoted }) {
            return;
        }
        if !options_ok {
            self.problem("ip", "options", Fault::Invalid { value: u32::from(ip.hdr_len) });
        }
        if let Check::Bad { expected } = check {
            self.problem("ip", "checksum", Fault::BadChecksum { found: checksum, expected });
        }
        let total = usize::from(ip.len);
        if total < hdr_len {
            self.problem("ip", "total length", Fault::TooShort { declared: u32::from(ip.len), min: len32(hdr_len) });
            return;
        }
        // A quoted packet is cut by design; an outer one whose total length is past the frame lies.
        let end = if total > b.len() {
            if !quoted {
                self.too_long("ip", "total length", total, b.len());
            }
            b.len()
        } else {
            total
        };
        let payload = b.get(hdr_len..end).unwrap_or_default();
        if ip.frag_offset != 0 {
            self.payload_len = len32(payload.len());
            return;
        }
        let ctx = Ctx {
            quoted,
            partial: quoted || ip.mf,
            cut: total > b.len(),
            src: b[12..16].try_into().unwrap_or([0; 4]),
            dst: b[16..20].try_into().unwrap_or([0; 4]),
        };
        match ip.proto {
            1 => self.icmp(payload, ctx, decoders),
            6 => self.tcp(payload, ctx),
            17 => self.udp(payload, ctx, decoders),
            _ => self.payload_len = len32(payload.len()),
        }
    }

    fn icmp(&mut self, b: &'a [u8], ctx: Ctx, decoders: &Decoders) {
        if ctx.quoted {
            // A quoted ICMP header is its first 8 bytes at most; nothing more is read inside an error.
            if b.len() >= 4 {
                let icmp =
                    Icmp { kind: b[0], code: b[1], checksum: be16(b, 2), check: Check::Unverified, rest: be32(b, 4) };
                self.push(Layer::Icmp(icmp));
            }
            return;
        }
        if !self.need(b, 8, "icmp") {
            return;
        }
        let checksum = be16(b, 2);
        let check = if ctx.partial || ctx.cut { Check::Unverified } else { verdict(0, b, checksum) };
        let icmp = Icmp { kind: b[0], code: b[1], checksum, check, rest: be32(b, 4) };
        if !self.push(Layer::Icmp(icmp)) {
            return;
        }
        if let Check::Bad { expected } = check {
            self.problem("icmp", "checksum", Fault::BadChecksum { found: checksum, expected });
        }
        let body = &b[8..];
        if icmp.is_error() && !body.is_empty() {
            self.ipv4(body, true, decoders);
        } else {
            self.payload_len = len32(body.len());
        }
    }

    fn udp(&mut self, b: &'a [u8], ctx: Ctx, decoders: &Decoders) {
        if ctx.quoted {
            if b.len() >= 8 {
                let udp = Udp {
                    src_port: be16(b, 0),
                    dst_port: be16(b, 2),
                    len: be16(b, 4),
                    checksum: be16(b, 6),
                    check: Check::Unverified,
                };
                self.push(Layer::Udp { udp, quoted: true });
            }
            return;
        }
        if !self.need(b, 8, "udp") {
            return;
        }
        let len = usize::from(be16(b, 4));
        let checksum = be16(b, 6);
        let check = if checksum == 0 {
            Check::Absent
        } else if ctx.partial || len < 8 || len > b.len() {
            Check::Unverified
        } else {
            let pseudo = checksum::pseudo_header_ipv4(ctx.src, ctx.dst, 17, len as u16);
            // A computed checksum of zero is sent as 0xffff (RFC 768): both sum to 0xffff, so `verdict` agrees.
            verdict(pseudo, &b[..len], checksum)
        };
        let udp = Udp { src_port: be16(b, 0), dst_port: be16(b, 2), len: len as u16, checksum, check };
        if !self.push(Layer::Udp { udp, quoted: false }) {
            return;
        }
        if len < 8 {
            self.problem("udp", "length", Fault::TooShort { declared: len32(len), min: 8 });
            return;
        }
        if let Check::Bad { expected } = check {
            self.problem("udp", "checksum", Fault::BadChecksum { found: checksum, expected });
        }
        let end = if len > b.len() {
            if !ctx.partial {
                self.too_long("udp", "length", len, b.len());
            }
            b.len()
        } else {
            len
        };
        let payload = b.get(8..end).unwrap_or_default();
        match decoders.of(&udp) {
            PortDecoder::Vxlan => self.vxlan(payload, decoders),
            PortDecoder::FlannelUdp => {
                if self.push(Layer::FlannelUdp) {
                    self.ipv4(payload, false, decoders);
                }
            }
            PortDecoder::Data => self.payload_len = len32(payload.len()),
        }
    }

    fn tcp(&mut self, b: &[u8], ctx: Ctx) {
        let mut tcp = Tcp {
            src_port: be16(b, 0),
            dst_port: be16(b, 2),
            seq: be32(b, 4),
            ack: be32(b, 8),
            hdr_len: 0,
            flags: 0,
            window: 0,
            checksum: 0,
            check: Check::Unverified,
            urgent: 0,
            payload_len: 0,
        };
        if ctx.quoted {
            // An ICMP error quotes at least the ports and the sequence number.
            if b.len() >= 8 {
                self.push(Layer::Tcp { tcp, quoted: true });
            }
            return;
        }
        if !self.need(b, 20, "tcp") {
            return;
        }
        let hdr_len = usize::from(b[12] >> 4) * 4;
        tcp.hdr_len = hdr_len as u8;
        tcp.flags = be16(b, 12) & 0x0fff;
        tcp.window = be16(b, 14);
        tcp.checksum = be16(b, 16);
        tcp.urgent = be16(b, 18);
        // What the IPv4 payload holds past the header the offset claims, as Wireshark counts it.
        tcp.payload_len = b.len().saturating_sub(hdr_len).try_into().unwrap_or(u16::MAX);
        if hdr_len < 20 {
            self.push(Layer::Tcp { tcp, quoted: false });
            self.problem("tcp", "header length", Fault::TooShort { declared: len32(hdr_len), min: 20 });
            return;
        }
        if hdr_len > b.len() {
            self.push(Layer::Tcp { tcp, quoted: false });
            self.too_long("tcp", "header length", hdr_len, b.len());
            return;
        }
        if !ctx.partial && !ctx.cut {
            let pseudo = checksum::pseudo_header_ipv4(ctx.src, ctx.dst, 6, b.len() as u16);
            tcp.check = verdict(pseudo, b, tcp.checksum);
        }
        if !self.push(Layer::Tcp { tcp, quoted: false }) {
            return;
        }
        if let Check::Bad { expected } = tcp.check {
            self.problem("tcp", "checksum", Fault::BadChecksum { found: tcp.checksum, expected });
        }
        self.payload_len = u32::from(tcp.payload_len);
    }

    fn vxlan(&mut self, b: &'a [u8], decoders: &Decoders) {
        if !self.need(b, vxlan::HEADER_LEN, "vxlan") {
            return;
        }
        let vx = Vxlan { flags: be16(b, 0), vni: be32(b, 4) >> 8 };
        if self.push(Layer::Vxlan(vx)) {
            self.ethernet(&b[vxlan::HEADER_LEN..], decoders);
        }
    }

    /// The frame decoded.
    #[must_use]
    pub const fn frame(&self) -> &'a [u8] {
        self.frame
    }

    /// The layers found, outer to inner (a quoted header follows the ICMP error that quotes it).
    #[must_use]
    pub fn layers(&self) -> &[Layer] {
        self.layers.get(..usize::from(self.layer_count)).unwrap_or_default()
    }

    /// The problems found, in the order met.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        self.problems.get(..usize::from(self.problem_count)).unwrap_or_default()
    }

    /// Whether there were more than [`MAX_PROBLEMS`] problems (the rest were not kept).
    #[must_use]
    pub const fn more_problems(&self) -> bool {
        self.more_problems
    }

    /// Whether a length lies, a header is cut short or a field holds an impossible value.
    #[must_use]
    pub fn is_malformed(&self) -> bool {
        self.problems().iter().any(Problem::is_malformed)
    }

    /// Whether any checksum verified is wrong.
    #[must_use]
    pub fn has_bad_checksum(&self) -> bool {
        self.problems().iter().any(|p| matches!(p.fault, Fault::BadChecksum { .. }))
    }

    /// The length of the payload behind the last layer, when the walk ended on bytes it does not decode.
    #[must_use]
    pub const fn payload_len(&self) -> u32 {
        self.payload_len
    }
}

/// Reads the option types of an IPv4 header's option bytes; false when an option's length runs past them.
fn options(mut b: &[u8], out: &mut Ipv4Options) -> bool {
    while let Some(&kind) = b.first() {
        out.push(kind);
        match kind {
            0 => return true,
            1 => b = &b[1..],
            _ => {
                let Some(&len) = b.get(1) else { return false };
                let len = usize::from(len);
                if len < 2 || len > b.len() {
                    return false;
                }
                b = &b[len..];
            }
        }
    }
    true
}
