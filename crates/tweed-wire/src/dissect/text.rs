//! The one-line text of a decoded frame (its `Display`) and its JSON object ([`Decoded::json`]), both written
//! straight into a formatter: no allocation.

use core::fmt::{self, Display, Formatter};

use super::decode::Decoded;
use super::layer::{Check, Fault, Layer, Problem};
use super::names;

/// One line through every layer, outer to inner, separated by ` | `, then each problem in brackets, as
/// tcpdump's one-liners are:
/// `02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP | arp who-has 10.0.0.2 tell 10.0.0.1`.
impl Display for Decoded<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut quoted = false;
        for layer in self.layers() {
            f.write_str(sep)?;
            sep = " | ";
            // What follows a quoted IPv4 header is quoted too; only ICMP does not say so itself.
            quoted |= matches!(layer, Layer::Ipv4 { quoted: true, .. });
            if quoted && matches!(layer, Layer::Icmp(_)) {
                f.write_str("quoted ")?;
            }
            layer_text(layer, f)?;
        }
        if self.layers().is_empty() && self.problems().is_empty() {
            f.write_str("(empty)")?;
        }
        if self.payload_len() > 0 {
            write!(f, "{sep}data {}B", self.payload_len())?;
        }
        for problem in self.problems() {
            let space = if self.layers().is_empty() && core::ptr::eq(problem, &self.problems()[0]) { "" } else { " " };
            write!(f, "{space}[{problem}]")?;
        }
        if self.more_problems() {
            f.write_str(" [more problems]")?;
        }
        Ok(())
    }
}

impl Display for Problem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Self { layer, field, fault } = *self;
        match fault {
            Fault::Truncated { need, have } => write!(f, "{layer} {field} truncated: need {need} bytes, have {have}"),
            Fault::Snapped { need, have } => write!(f, "{layer} {field} snapped: {need} bytes, {have} captured"),
            Fault::TooLong { declared, available } => {
                write!(f, "{layer} {field} {declared} lies: only {available} bytes follow")
            }
            Fault::TooShort { declared, min } => write!(f, "{layer} {field} {declared} is bogus: less than {min}"),
            Fault::BadChecksum { found, expected } => {
                write!(f, "{layer} bad cksum {found:#06x} (-> {expected:#06x})")
            }
            Fault::Invalid { value } => write!(f, "{layer} {field} {value} is invalid"),
        }
    }
}

fn check_text(check: Check, f: &mut Formatter<'_>) -> fmt::Result {
    match check {
        Check::Bad { .. } => f.write_str(", bad cksum"),
        Check::Absent => f.write_str(", no cksum"),
        Check::Good | Check::Unverified => Ok(()),
    }
}

fn layer_text(layer: &Layer, f: &mut Formatter<'_>) -> fmt::Result {
    match *layer {
        Layer::Ethernet { dst, src, etype } => {
            write!(f, "{src} > {dst} ")?;
            match names::ethertype(etype) {
                "unknown" => write!(f, "ethertype {etype:#06x}"),
                name => f.write_str(name),
            }
        }
        Layer::Vlan(v) => {
            write!(f, "vlan {} p {}", v.id, v.priority)?;
            if v.dei {
                f.write_str(" dei")?;
            }
            Ok(())
        }
        Layer::Arp(arp) => match (arp.opcode, arp.addresses) {
            (1, Some(a)) => write!(f, "arp who-has {} tell {}", a.dst_ip, a.src_ip),
            (2, Some(a)) => write!(f, "arp reply {} is-at {}", a.src_ip, a.src_hw),
            (op, Some(a)) => write!(f, "arp op {op} {} ({}) > {} ({})", a.src_ip, a.src_hw, a.dst_ip, a.dst_hw),
            (op, None) => write!(f, "arp op {op} hw {} proto {:#06x}", arp.hw_type, arp.proto_type),
        },
        Layer::Ipv4 { ip, quoted } => {
            if quoted {
                f.write_str("quoted ")?;
            }
            write!(f, "ip {} > {} ttl {} id {} len {}", ip.src, ip.dst, ip.ttl, ip.id, ip.len)?;
            if ip.df || ip.mf {
                let flags = match (ip.df, ip.mf) {
                    (true, true) => "DF+",
                    (true, false) => "DF",
                    _ => "+",
                };
                write!(f, " [{flags}]")?;
            }
            if ip.mf || ip.frag_offset != 0 {
                write!(f, " frag off {}", ip.frag_offset)?;
            }
            if ip.dsfield != 0 {
                write!(f, " tos {:#04x}", ip.dsfield)?;
            }
            if !ip.options.kinds().is_empty() {
                f.write_str(" opts [")?;
                for (i, &kind) in ip.options.kinds().iter().enumerate() {
                    let comma = if i == 0 { "" } else { "," };
                    match names::ipv4_option(kind) {
                        "unknown" => write!(f, "{comma}opt-{kind}")?,
                        name => write!(f, "{comma}{name}")?,
                    }
                }
                f.write_str("]")?;
            }
            match names::ip_proto(ip.proto) {
                "proto" => write!(f, " proto {}", ip.proto)?,
                name => write!(f, " {name}")?,
            }
            check_text(ip.check, f)
        }
        Layer::Icmp(icmp) => {
            write!(f, "icmp {}", names::icmp_type(icmp.kind))?;
            if let Some(code) = names::icmp_code(icmp.kind, icmp.code) {
                write!(f, " ({code})")?;
            } else if icmp.code != 0 {
                write!(f, " code {}", icmp.code)?;
            }
            let [a, b, c, d] = icmp.rest.to_be_bytes();
            match (icmp.kind, icmp.code) {
                (0 | 8 | 13 | 14, _) => write!(f, " id {} seq {}", icmp.rest >> 16, icmp.rest & 0xffff)?,
                (3, 4) => write!(f, " mtu {}", icmp.rest & 0xffff)?,
                (5, _) => write!(f, " gw {a}.{b}.{c}.{d}")?,
                (12, _) => write!(f, " ptr {a}")?,
                _ => {}
            }
            check_text(icmp.check, f)
        }
        Layer::Udp { udp, quoted } => {
            if quoted {
                f.write_str("quoted ")?;
            }
            write!(f, "udp {} > {} len {}", udp.src_port, udp.dst_port, udp.len)?;
            check_text(udp.check, f)
        }
        Layer::Tcp { tcp, quoted } => {
            if quoted {
                return write!(f, "quoted tcp {} > {} seq {}", tcp.src_port, tcp.dst_port, tcp.seq);
            }
            write!(f, "tcp {} > {} [", tcp.src_port, tcp.dst_port)?;
            names::tcp_flags(tcp.flags, f)?;
            write!(f, "] seq {}", tcp.seq)?;
            if tcp.flags & 0x10 != 0 {
                write!(f, " ack {}", tcp.ack)?;
            }
            write!(f, " win {} len {}", tcp.window, tcp.payload_len)?;
            check_text(tcp.check, f)
        }
        Layer::Vxlan(vx) => {
            write!(f, "vxlan vni {}", vx.vni)?;
            if vx.flags != 0x0800 {
                write!(f, " flags {:#06x}", vx.flags)?;
            }
            Ok(())
        }
        Layer::FlannelUdp => f.write_str("flannel-udp"),
    }
}

/// The JSON object of a decoded frame; see [`Decoded::json`].
#[derive(Clone, Copy, Debug)]
pub struct Json<'d, 'a>(&'d Decoded<'a>);

impl<'a> Decoded<'a> {
    /// The frame as one JSON object (no newline): `layers`, an array with one object per layer naming every
    /// field (`layer` is Wireshark's protocol name; checksums come with `checksum_status`, Wireshark's 0 bad,
    /// 1 good, 2 unverified, 3 not present), `problems` (each with `layer`, `field`, `fault` and its numbers),
    /// `malformed`, `bad_checksum` and `payload_len`. Addresses are strings, everything else numbers or booleans.
    #[must_use]
    pub const fn json(&self) -> Json<'_, 'a> {
        Json(self)
    }
}

/// Writes `"key":value` pairs separated by commas.
struct Obj<'f, 'g> {
    f: &'f mut Formatter<'g>,
    first: bool,
}

impl<'f, 'g> Obj<'f, 'g> {
    fn open(f: &'f mut Formatter<'g>) -> Result<Self, fmt::Error> {
        f.write_str("{")?;
        Ok(Self { f, first: true })
    }

    fn raw(&mut self, key: &str, value: impl Display) -> fmt::Result {
        let comma = if self.first { "" } else { "," };
        self.first = false;
        write!(self.f, "{comma}\"{key}\":{value}")
    }

    /// A string value: every string written here is an address or a name from this crate's own tables, none
    /// of which holds a quote or a backslash.
    fn str(&mut self, key: &str, value: impl Display) -> fmt::Result {
        let comma = if self.first { "" } else { "," };
        self.first = false;
        write!(self.f, "{comma}\"{key}\":\"{value}\"")
    }

    fn check(&mut self, checksum: u16, check: Check) -> fmt::Result {
        self.raw("checksum", checksum)?;
        self.raw("checksum_status", check.status())?;
        if let Check::Bad { expected } = check {
            self.raw("checksum_expected", expected)?;
        }
        Ok(())
    }

    fn close(self) -> fmt::Result {
        self.f.write_str("}")
    }
}

fn layer_json(layer: &Layer, quoted: bool, f: &mut Formatter<'_>) -> fmt::Result {
    let mut o = Obj::open(f)?;
    o.str("layer", layer.name())?;
    match *layer {
        Layer::Ethernet { dst, src, etype } => {
            o.str("dst", dst)?;
            o.str("src", src)?;
            o.raw("type", etype)?;
        }
        Layer::Vlan(v) => {
            o.raw("tpid", v.tpid)?;
            o.raw("priority", v.priority)?;
            o.raw("dei", v.dei)?;
            o.raw("id", v.id)?;
            o.raw("etype", v.etype)?;
        }
        Layer::Arp(arp) => {
            o.raw("hw_type", arp.hw_type)?;
            o.raw("proto_type", arp.proto_type)?;
            o.raw("opcode", arp.opcode)?;
            if let Some(a) = arp.addresses {
                o.str("src_hw_mac", a.src_hw)?;
                o.str("src_proto_ipv4", a.src_ip)?;
                o.str("dst_hw_mac", a.dst_hw)?;
                o.str("dst_proto_ipv4", a.dst_ip)?;
            }
        }
        Layer::Ipv4 { ip, quoted } => {
            o.raw("quoted", quoted)?;
            o.raw("version", 4)?;
            o.raw("hdr_len", ip.hdr_len)?;
            o.raw("dsfield", ip.dsfield)?;
            o.raw("len", ip.len)?;
            o.raw("id", ip.id)?;
            o.raw("flags_df", ip.df)?;
            o.raw("flags_mf", ip.mf)?;
            // The field, in units of 8 bytes, as Wireshark shows it; the line shows bytes, as tcpdump does.
            o.raw("frag_offset", ip.frag_offset / 8)?;
            o.raw("ttl", ip.ttl)?;
            o.raw("proto", ip.proto)?;
            o.check(ip.checksum, ip.check)?;
            o.str("src", ip.src)?;
            o.str("dst", ip.dst)?;
            o.raw("options", OptionNames(ip.options.kinds()))?;
        }
        Layer::Icmp(icmp) => {
            o.raw("quoted", quoted)?;
            o.raw("type", icmp.kind)?;
            o.str("type_name", names::icmp_type(icmp.kind))?;
            o.raw("code", icmp.code)?;
            if let Some(name) = names::icmp_code(icmp.kind, icmp.code) {
                o.str("code_name", name)?;
            }
            o.check(icmp.checksum, icmp.check)?;
            match (icmp.kind, icmp.code) {
                (0 | 8 | 13 | 14, _) => {
                    o.raw("ident", icmp.rest >> 16)?;
                    o.raw("seq", icmp.rest & 0xffff)?;
                }
                (3, 4) => o.raw("mtu", icmp.rest & 0xffff)?,
                (5, _) => o.str("redir_gw", core::net::Ipv4Addr::from(icmp.rest))?,
                (12, _) => o.raw("pointer", icmp.rest >> 24)?,
                _ => {}
            }
        }
        Layer::Udp { udp, quoted } => {
            o.raw("quoted", quoted)?;
            o.raw("srcport", udp.src_port)?;
            o.raw("dstport", udp.dst_port)?;
            o.raw("length", udp.len)?;
            o.check(udp.checksum, udp.check)?;
        }
        Layer::Tcp { tcp, quoted } => {
            o.raw("quoted", quoted)?;
            o.raw("srcport", tcp.src_port)?;
            o.raw("dstport", tcp.dst_port)?;
            o.raw("seq_raw", tcp.seq)?;
            if !quoted {
                o.raw("ack_raw", tcp.ack)?;
                o.raw("hdr_len", tcp.hdr_len)?;
                o.raw("flags", tcp.flags)?;
                o.raw("window_size_value", tcp.window)?;
                o.check(tcp.checksum, tcp.check)?;
                o.raw("urgent_pointer", tcp.urgent)?;
                o.raw("len", tcp.payload_len)?;
            }
        }
        Layer::Vxlan(vx) => {
            o.raw("flags", vx.flags)?;
            o.raw("vni", vx.vni)?;
        }
        Layer::FlannelUdp => {}
    }
    o.close()
}

/// IPv4 option names as a JSON array.
struct OptionNames<'a>(&'a [u8]);

impl Display for OptionNames<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, &kind) in self.0.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(f, "{comma}{kind}")?;
        }
        f.write_str("]")
    }
}

fn problem_json(p: &Problem, f: &mut Formatter<'_>) -> fmt::Result {
    let mut o = Obj::open(f)?;
    o.str("layer", p.layer)?;
    o.str("field", p.field)?;
    match p.fault {
        Fault::Truncated { need, have } => {
            o.str("fault", "truncated")?;
            o.raw("need", need)?;
            o.raw("have", have)?;
        }
        Fault::Snapped { need, have } => {
            o.str("fault", "snapped")?;
            o.raw("need", need)?;
            o.raw("have", have)?;
        }
        Fault::TooLong { declared, available } => {
            o.str("fault", "too long")?;
            o.raw("declared", declared)?;
            o.raw("available", available)?;
        }
        Fault::TooShort { declared, min } => {
            o.str("fault", "too short")?;
            o.raw("declared", declared)?;
            o.raw("min", min)?;
        }
        Fault::BadChecksum { found, expected } => {
            o.str("fault", "bad checksum")?;
            o.raw("found", found)?;
            o.raw("expected", expected)?;
        }
        Fault::Invalid { value } => {
            o.str("fault", "invalid")?;
            o.raw("value", value)?;
        }
    }
    o.str("text", p)?;
    o.close()
}

impl Display for Json<'_, '_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let d = self.0;
        f.write_str("{\"layers\":[")?;
        let mut quoted = false;
        for (i, layer) in d.layers().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            quoted |= matches!(layer, Layer::Ipv4 { quoted: true, .. });
            layer_json(layer, quoted, f)?;
        }
        f.write_str("],\"problems\":[")?;
        for (i, problem) in d.problems().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            problem_json(problem, f)?;
        }
        write!(
            f,
            "],\"more_problems\":{},\"malformed\":{},\"bad_checksum\":{},\"payload_len\":{}}}",
            d.more_problems(),
            d.is_malformed(),
            d.has_bad_checksum(),
            d.payload_len()
        )
    }
}
