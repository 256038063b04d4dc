//! The ARP responder's table (IPv4 → MAC per bridge domain) and the reply it sends.
//!
//! With ARP suppression (proxy ARP), an ARP request for an address the table knows is answered on the port it
//! came from instead of being flooded to every pod and tunnel: flannel's `flannel.1` does the same with its
//! neighbour entries, and VXLAN's `proxy` flag with its own table.
//!
//! Entries come from the control plane ([`ArpTable::insert`]) or, only on ports whose
//! [`crate::PortConfig::arp_snoop`] allows it, from ARP packets that pass every check (see
//! [`crate::Bridge`]). A snooped entry never replaces a configured one. The table is allocated once
//! ([`ArpTable::new`]) and refuses entries beyond its limit.

use core::fmt;
use core::net::Ipv4Addr;

use tweed_wire::arp;
use tweed_wire::ethernet::{self, EtherType, Frame, MacAddr};
use tweed_wire::{Error, Layer};

use crate::BridgeDomain;
use crate::table::RawTable;

/// The value bit that marks an entry configured by the control plane (the MAC is in the low 48 bits).
const CONFIGURED: u64 = 1 << 63;
const MAC_MASK: u64 = 0xffff_ffff_ffff;

#[inline]
fn key(domain: BridgeDomain, ip: Ipv4Addr) -> u64 {
    (u64::from(domain.0) << 32) | u64::from(ip.to_bits())
}

/// Why an ARP entry was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ArpError {
    /// The table holds its maximum number of entries.
    Full {
        /// The limit.
        max: u32,
    },
    /// The address is unspecified, broadcast or multicast: no host owns it.
    InvalidIp(Ipv4Addr),
    /// The MAC is broadcast, multicast or all zeros.
    InvalidMac(MacAddr),
}

impl fmt::Display for ArpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { max } => write!(f, "arp: table full ({max} entries)"),
            Self::InvalidIp(ip) => write!(f, "arp: {ip} is not a host address"),
            Self::InvalidMac(mac) => write!(f, "arp: {mac} is not a unicast address"),
        }
    }
}

impl core::error::Error for ArpError {}

/// Whether `ip` can be a host's address: not unspecified, broadcast or multicast.
#[inline]
fn is_host_ip(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
}

/// IPv4 → MAC, per bridge domain, for the ARP responder.
///
/// ```
/// use core::net::Ipv4Addr;
/// use tweed_switch::{ArpTable, BridgeDomain};
/// use tweed_wire::ethernet::MacAddr;
///
/// let mut arp = ArpTable::new(1024, None);
/// let gw = MacAddr::new(0x0a, 0x58, 10, 244, 1, 1);
/// arp.insert(BridgeDomain(0), Ipv4Addr::new(10, 244, 1, 1), gw)?;
/// assert_eq!(arp.lookup(BridgeDomain(0), Ipv4Addr::new(10, 244, 1, 1)), Some(gw));
/// assert_eq!(arp.lookup(BridgeDomain(1), Ipv4Addr::new(10, 244, 1, 1)), None);
/// # Ok::<(), tweed_switch::ArpError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ArpTable {
    table: RawTable,
    max: u32,
}

impl ArpTable {
    /// An empty table for at most `max_entries` entries; `seed` as [`crate::FdbConfig::hash_seed`].
    #[must_use]
    pub fn new(max_entries: u32, seed: Option<u64>) -> Self {
        Self { table: RawTable::new((max_entries as usize).saturating_mul(2), seed), max: max_entries }
    }

    /// The number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// The MAC bound to `ip` in `domain`.
    #[inline]
    #[must_use]
    pub fn lookup(&self, domain: BridgeDomain, ip: Ipv4Addr) -> Option<MacAddr> {
        self.table.get(key(domain, ip)).map(|v| MacAddr::from_u64(v & MAC_MASK))
    }

    /// Whether the entry of `ip` was configured (rather than snooped).
    #[must_use]
    pub fn is_configured(&self, domain: BridgeDomain, ip: Ipv4Addr) -> bool {
        self.table.get(key(domain, ip)).is_some_and(|v| v & CONFIGURED != 0)
    }

    /// Binds `ip` to `mac` in `domain`, replacing any entry (configured or snooped); returns the MAC it had.
    pub fn insert(&mut self, domain: BridgeDomain, ip: Ipv4Addr, mac: MacAddr) -> Result<Option<MacAddr>, ArpError> {
        self.put(domain, ip, mac, true)
    }

    /// Binds `ip` to `mac` unless a configured entry holds `ip` (with another MAC) or the table is full.
    pub(crate) fn snoop(&mut self, domain: BridgeDomain, ip: Ipv4Addr, mac: MacAddr) -> Result<(), ()> {
        match self.table.get(key(domain, ip)) {
            Some(v) if v & CONFIGURED != 0 => {
                if v & MAC_MASK == mac.to_u64() {
                    Ok(())
                } else {
                    Err(())
                }
            }
            _ => self.put(domain, ip, mac, false).map(|_| ()).map_err(|_| ()),
        }
    }

    fn put(
        &mut self,
        domain: BridgeDomain,
        ip: Ipv4Addr,
        mac: MacAddr,
        configured: bool,
    ) -> Result<Option<MacAddr>, ArpError> {
        if !is_host_ip(ip) {
            return Err(ArpError::InvalidIp(ip));
        }
        if mac.is_multicast() || mac.is_zero() {
            return Err(ArpError::InvalidMac(mac));
        }
        let v = mac.to_u64() | if configured { CONFIGURED } else { 0 };
        match self.table.find(key(domain, ip)) {
            Ok(i) => {
                let old = self.table.slot(i).val;
                self.table.set_val(i, v);
                Ok(Some(MacAddr::from_u64(old & MAC_MASK)))
            }
            Err(i) => {
                if self.table.len() >= self.max as usize {
                    return Err(ArpError::Full { max: self.max });
                }
                self.table.insert_at(i, key(domain, ip), v);
                Ok(None)
            }
        }
    }

    /// Removes the entry of `ip` in `domain`; returns its MAC.
    pub fn remove(&mut self, domain: BridgeDomain, ip: Ipv4Addr) -> Option<MacAddr> {
        let i = self.table.find(key(domain, ip)).ok()?;
        let v = self.table.slot(i).val;
        self.table.remove_at(i);
        Some(MacAddr::from_u64(v & MAC_MASK))
    }

    /// The entries: domain, address, MAC, and whether it was configured.
    pub fn iter(&self) -> impl Iterator<Item = (BridgeDomain, Ipv4Addr, MacAddr, bool)> + '_ {
        self.table.iter().map(|s| {
            #[allow(clippy::cast_possible_truncation)] // 16 bits of domain above 32 bits of address
            let (domain, ip) = (BridgeDomain((s.key >> 32) as u16), Ipv4Addr::from_bits(s.key as u32));
            (domain, ip, MacAddr::from_u64(s.val & MAC_MASK), s.val & CONFIGURED != 0)
        })
    }
}

/// Writes into `out` the reply to the ARP request `request` (a whole Ethernet frame, as the bridge saw it)
/// saying that the requested address is at `mac`, and returns the reply's length: 42 bytes, or 46 when the
/// request was 802.1Q-tagged (the reply carries the same tag). No padding is added (TAP devices and sockets
/// do not need it).
///
/// This is what the caller does with a [`crate::Decision::ArpReply`]: the reply goes out of the request's
/// ingress port.
///
/// # Errors
/// The request does not parse as an Ethernet/IPv4 ARP request, or `out` is shorter than the reply
/// ([`Error::Truncated`]).
pub fn write_arp_reply(request: &[u8], mac: MacAddr, out: &mut [u8]) -> Result<usize, Error> {
    let frame = Frame::new_checked(request)?;
    let eth = ethernet::Repr::parse(&frame)?;
    let req = arp::Repr::parse(&arp::Packet::new_checked(frame.payload())?)?;
    if req.operation != arp::Operation::REQUEST {
        return Err(Error::Invalid { layer: Layer::Arp, field: "operation", value: u32::from(req.operation.0) });
    }
    let reply = arp::Repr::reply_to(&req, mac);
    let eth_reply = ethernet::Repr { src_addr: mac, dst_addr: eth.src_addr, vlan: eth.vlan, ethertype: EtherType::ARP };
    let len = eth_reply.buffer_len() + arp::HEADER_LEN;
    let actual = out.len();
    let Some(out) = out.get_mut(..len) else {
        return Err(Error::Truncated { layer: Layer::Arp, required: len, actual });
    };
    let mut frame = Frame::new_unchecked(&mut *out);
    eth_reply.emit(&mut frame);
    reply.emit(&mut arp::Packet::new_unchecked(frame.payload_mut()));
    Ok(len)
}
