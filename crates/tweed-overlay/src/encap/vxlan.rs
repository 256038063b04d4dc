//! flannel's `vxlan` backend, as the kernel's `flannel.1` device: the inner Ethernet frame goes from our VTEP MAC
//! to the peer's, behind an 8-byte VXLAN header (RFC 7348) with the VNI, in UDP to port 8472 from a source port
//! hashed from the inner flow.

use core::net::SocketAddr;

use tweed_packet::PacketBuf;
use tweed_wire::ethernet::MacAddr;
use tweed_wire::vxlan;

use super::{Decap, ETH_LEN, Encapsulation, Peer, PeerTable, Transport, flow_hash, port_in_range};
use crate::config::{ConfigError, KERNEL_PORT_RANGE, PeerConfig, VxlanConfig};
use crate::verdict::DropReason;

/// The `vxlan` encapsulation. Its per-peer state is the peer's VTEP MAC.
///
/// ```
/// use tweed_overlay::encap::{Encapsulation, Transport, Vxlan};
/// use tweed_wire::ethernet::MacAddr;
///
/// let vxlan = Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 1, 8472);
/// assert_eq!(vxlan.transport(), Transport::Udp { port: 8472, checksum: false });
/// assert_eq!((vxlan.header_len(), vxlan.overhead()), (22, 50));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vxlan {
    vtep_mac: MacAddr,
    vni: u32,
    port: u16,
    checksum: bool,
    source_ports: (u16, u16),
    /// The VXLAN header: the I flag and the VNI.
    header: [u8; vxlan::HEADER_LEN],
}

impl Vxlan {
    /// VXLAN from our VTEP MAC with this VNI (24 bits: higher bits are ignored) to this UDP port, without the outer
    /// UDP checksum, source ports in the kernel's range.
    ///
    /// ```
    /// use tweed_overlay::encap::{Encapsulation, Transport, Vxlan};
    /// use tweed_wire::ethernet::MacAddr;
    ///
    /// let vxlan = Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 0x100_0042, 4789);
    /// assert_eq!(vxlan.vni(), 0x42); // 24 bits
    /// assert_eq!(vxlan.transport(), Transport::Udp { port: 4789, checksum: false });
    /// ```
    #[must_use]
    pub fn new(vtep_mac: MacAddr, vni: u32, port: u16) -> Self {
        let vni = vni & 0xff_ffff;
        let mut header = [0u8; vxlan::HEADER_LEN];
        header[0] = vxlan::FLAG_VNI;
        header[4..7].copy_from_slice(&vni.to_be_bytes()[1..]);
        Self { vtep_mac, vni, port, checksum: false, source_ports: KERNEL_PORT_RANGE, header }
    }

    /// With the outer UDP checksum filled or not.
    ///
    /// ```
    /// use tweed_overlay::encap::{Encapsulation, Transport, Vxlan};
    /// use tweed_wire::ethernet::MacAddr;
    ///
    /// let vxlan = Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 1, 8472).with_udp_checksum(true);
    /// assert_eq!(vxlan.transport(), Transport::Udp { port: 8472, checksum: true });
    /// ```
    #[must_use]
    pub const fn with_udp_checksum(mut self, on: bool) -> Self {
        self.checksum = on;
        self
    }

    /// With outer UDP source ports drawn from this inclusive range.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/encap/doc_site.rs"));
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tweed_wire::ethernet::MacAddr;
    ///
    /// let vxlan = Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 1, 8472).with_source_ports((5000, 5001));
    /// # let peer = PeerConfig::new("10.2.0.0/24".parse()?, [192, 168, 0, 2]);
    /// # let peer = peer.with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, 2));
    /// # let mut node = site(vxlan, peer)?; // a site behind its TUN, port 1
    /// // Every flow's outer UDP source port is 5000 or 5001.
    /// let (frame, _) = run(&mut node, 1, [0; 4], &ipv4([10, 1, 0, 5], [10, 2, 0, 7]));
    /// let sport = u16::from_be_bytes([frame[34], frame[35]]);
    /// assert!(sport == 5000 || sport == 5001, "{sport}");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub const fn with_source_ports(mut self, range: (u16, u16)) -> Self {
        self.source_ports = range;
        self
    }

    /// Our VTEP MAC.
    ///
    /// ```
    /// use tweed_overlay::encap::Vxlan;
    /// use tweed_wire::ethernet::MacAddr;
    ///
    /// assert_eq!(Vxlan::new(MacAddr::new(2, 0, 0, 0, 0, 1), 1, 8472).vtep_mac(), MacAddr::new(2, 0, 0, 0, 0, 1));
    /// ```
    #[must_use]
    pub const fn vtep_mac(&self) -> MacAddr {
        self.vtep_mac
    }

    /// The VNI.
    ///
    /// ```
    /// use tweed_overlay::encap::Vxlan;
    /// use tweed_overlay::{BackendConfig, VxlanConfig};
    /// use tweed_wire::ethernet::MacAddr;
    ///
    /// let config = VxlanConfig { vni: 7, ..VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)) };
    /// assert_eq!(Vxlan::from(&config).vni(), 7);
    /// ```
    #[must_use]
    pub const fn vni(&self) -> u32 {
        self.vni
    }

    pub(super) fn peer_mac(config: &PeerConfig) -> Result<MacAddr, ConfigError> {
        config.vtep_mac.ok_or(ConfigError::MissingMac { subnet: config.subnet, field: "vtep_mac" })
    }

    #[inline]
    pub(super) fn wrap(&self, peer_vtep: MacAddr, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
        if l3 != ETH_LEN {
            // An IP packet (from an IP port): give it the inner Ethernet header.
            buf.pull_front(l3).map_err(|_| DropReason::Ipv4Malformed)?;
            let eth = buf.push_front(ETH_LEN).map_err(|_| DropReason::NoHeadroom)?;
            eth[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        let data = buf.data_mut();
        data[0..6].copy_from_slice(peer_vtep.as_bytes());
        data[6..12].copy_from_slice(self.vtep_mac.as_bytes());
        let sport = port_in_range(flow_hash(&data[ETH_LEN..]), self.source_ports);
        buf.push_front(vxlan::HEADER_LEN).map_err(|_| DropReason::NoHeadroom)?.copy_from_slice(&self.header);
        Ok(Some(sport))
    }

    #[inline]
    pub(super) fn unwrap<P>(
        &self,
        buf: &mut PacketBuf,
        from: SocketAddr,
        peers: &PeerTable<P>,
        peer_vtep: impl Fn(&P) -> MacAddr,
    ) -> Result<Decap, DropReason> {
        let (id, peer) = peers.by_addr(from.ip()).ok_or(DropReason::UnknownPeer)?;
        let data = buf.data();
        let header = data.first_chunk::<{ vxlan::HEADER_LEN }>().ok_or(DropReason::VxlanMalformed)?;
        // The flags and the VNI against our own header's, a word each (the reserved bytes are ignored on receipt,
        // RFC 7348 §5).
        let word = u64::from_be_bytes(self.header);
        let got = u64::from_be_bytes(*header);
        if (got ^ word) & 0xff00_0000_0000_0000 != 0 {
            return Err(DropReason::VxlanMalformed);
        }
        if (got ^ word) & 0xffff_ff00 != 0 {
            return Err(DropReason::WrongVni);
        }
        let inner = &data[vxlan::HEADER_LEN..];
        if inner.len() < ETH_LEN
            || inner[0..6] != *self.vtep_mac.as_bytes()
            || inner[6..12] != *peer_vtep(&peer.state).as_bytes()
        {
            return Err(DropReason::InnerMismatch);
        }
        buf.pull_front(vxlan::HEADER_LEN).map_err(|_| DropReason::VxlanMalformed)?;
        Ok(Decap::new(id, ETH_LEN))
    }
}

impl From<&VxlanConfig> for Vxlan {
    fn from(c: &VxlanConfig) -> Self {
        Self::new(c.vtep_mac, c.vni, c.port).with_udp_checksum(c.udp_checksum).with_source_ports(c.source_ports)
    }
}

impl Encapsulation for Vxlan {
    type Peer = MacAddr;

    fn transport(&self) -> Transport {
        Transport::Udp { port: self.port, checksum: self.checksum }
    }

    fn header_len(&self) -> usize {
        vxlan::HEADER_LEN + ETH_LEN
    }

    fn peer(&self, config: &PeerConfig) -> Result<MacAddr, ConfigError> {
        Self::peer_mac(config)
    }

    #[inline]
    fn encap(&self, peer: &Peer<MacAddr>, buf: &mut PacketBuf, l3: usize) -> Result<Option<u16>, DropReason> {
        self.wrap(peer.state, buf, l3)
    }

    #[inline]
    fn decap(&self, buf: &mut PacketBuf, from: SocketAddr, peers: &PeerTable<MacAddr>) -> Result<Decap, DropReason> {
        self.unwrap(buf, from, peers, |m| *m)
    }
}
