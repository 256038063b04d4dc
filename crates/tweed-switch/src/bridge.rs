//! The bridge: ports, their domains, the FDB and the ARP table, and a decision for each frame of a batch.
//!
//! # What happens to a frame
//! For a frame received on port `p` (domain `d`), in this order:
//! 1. `p` is not a port: [`DropReason::UnknownPort`]. Shorter than its Ethernet header (14 bytes, 18 with an
//!    802.1Q tag): [`DropReason::Truncated`].
//! 2. A broadcast, multicast or all-zero source address: [`DropReason::InvalidSource`] (the Linux bridge drops
//!    these too); such an address is never learnt.
//! 3. When `p` learns ([`PortConfig::learning`]), the source is learnt on `p` (see [`crate::fdb`] for ageing,
//!    moves, static entries and limits; every outcome is counted).
//! 4. ARP (behind an optional tag): a frame that is not well-formed Ethernet/IPv4 ARP is dropped
//!    ([`DropReason::ArpMalformed`]). One whose sender address is configured in the ARP table (the gateway's)
//!    but that does not come from the configured MAC on the port the FDB has it on is dropped
//!    ([`DropReason::ArpSpoofed`]). When `p` snoops ([`PortConfig::arp_snoop`]), the sender may be learnt into
//!    the ARP table (see *Snooping*). A request that is not gratuitous, whose sender hardware address is the
//!    frame's source, for an address the ARP table binds (in `d`, to a live entry) to another MAC than the
//!    requester's, is answered: [`Decision::ArpReply`], not flooded. A frame whose sender address another port
//!    owns and that is not answered is dropped ([`DropReason::ArpClaimed`]). Other ARP frames are bridged like
//!    any frame.
//! 5. A broadcast or multicast destination: [`Decision::Flood`] (with a copy for the host when `d` has local
//!    MACs).
//! 6. A destination with a live FDB entry in `d`: one of the bridge's own MACs → [`Decision::Local`]; the
//!    ingress port → [`DropReason::Filtered`]; another port → [`Decision::Forward`].
//! 7. An unknown unicast destination: [`Decision::Flood`].
//!
//! Flooding goes to every port of `d` whose [`PortConfig::flood`] is set, except `p`: [`Bridge::flood_ports`]
//! iterates them without allocating. A VXLAN port whose remote MACs are all static entries (flannel's
//! `flannel.1`) usually has flooding off.
//!
//! # Snooping
//! ARP snooping is off by default: the ARP table is the control plane's. On a port that allows it, a request
//! or a reply updates the table only when it is not gratuitous (sender and target protocol addresses differ),
//! its sender hardware address is the frame's source, its sender protocol address is a host address (not
//! `0.0.0.0`: probes are bridged, never snooped; not broadcast or multicast) inside the domain's subnet when
//! one is set ([`Bridge::set_arp_subnet`]), no configured entry binds that address to another MAC, no other
//! port owns it (a reachable entry: counted in `arp_claim_refused`), and the port ([`PortConfig::max_arp`])
//! and the table have room. Snooped entries age like the kernel's neighbours (see [`crate::responder`]):
//! [`Bridge::resolve`] is the lookup that knows it, [`Bridge::age`] collects them.

use core::fmt;

use alloc::vec;
use alloc::vec::Vec;
use tweed_wire::ethernet::{EtherType, Frame, MacAddr};

use crate::counters::Counters;
use crate::fdb::{Fdb, FdbConfig, FdbError, Learned};
use crate::responder::{ArpError, ArpTable};
use crate::{BridgeDomain, Instant, PortId};

mod ports;
mod snoop;

pub use ports::{PortIter, PortSet};

/// How a port behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortConfig {
    /// The bridge the port belongs to.
    pub domain: BridgeDomain,
    /// Whether floods (broadcast, multicast, unknown unicast) go out of this port. Default on.
    pub flood: bool,
    /// Whether source addresses of frames received here are learnt. Default on.
    pub learning: bool,
    /// The most learned entries this port may hold (the Linux bridge port's `fdb_max_learned`); `None`: only the
    /// bridge's limit. Default [`PortConfig::DEFAULT_MAX_LEARNED`], so that one pod sending random source MACs
    /// cannot fill the FDB: a port that carries many hosts (a learning tunnel or uplink) lifts it.
    pub max_learned: Option<u32>,
    /// Whether ARP packets received here may add to the ARP table. Default off.
    pub arp_snoop: bool,
    /// The most snooped ARP entries this port may own; `None`: only the table's limit. Default
    /// [`PortConfig::DEFAULT_MAX_ARP`].
    pub max_arp: Option<u32>,
    /// Whether frames received here may only use source MACs that no other port holds: a frame whose source is
    /// live on another port, or a static entry's elsewhere (the bridge's own), is dropped
    /// ([`DropReason::MacHeld`]) instead of moving the MAC here. Default off (a Linux bridge moves it); on for
    /// ports of untrusted hosts (pods).
    pub mac_lock: bool,
}

impl PortConfig {
    /// The default limit of learned MACs per port: a pod has one MAC, a pod running VMs or containers behind its
    /// own bridge a few; more than this from one port is a flood.
    pub const DEFAULT_MAX_LEARNED: u32 = 64;

    /// The default limit of snooped ARP entries per port: a pod has an address or two; more from one port is
    /// an ARP flood.
    pub const DEFAULT_MAX_ARP: u32 = 32;

    /// A port of `domain` that floods and learns up to [`PortConfig::DEFAULT_MAX_LEARNED`] MACs, without ARP
    /// snooping (and [`PortConfig::DEFAULT_MAX_ARP`] entries when snooping is turned on).
    #[must_use]
    pub const fn new(domain: BridgeDomain) -> Self {
        Self {
            domain,
            flood: true,
            learning: true,
            max_learned: Some(Self::DEFAULT_MAX_LEARNED),
            arp_snoop: false,
            max_arp: Some(Self::DEFAULT_MAX_ARP),
            mac_lock: false,
        }
    }

    /// With the MAC lock on or off ([`PortConfig::mac_lock`]).
    #[must_use]
    pub const fn with_mac_lock(mut self, lock: bool) -> Self {
        self.mac_lock = lock;
        self
    }

    /// With flooding on or off.
    #[must_use]
    pub const fn with_flood(mut self, flood: bool) -> Self {
        self.flood = flood;
        self
    }

    /// With learning on or off.
    #[must_use]
    pub const fn with_learning(mut self, learning: bool) -> Self {
        self.learning = learning;
        self
    }

    /// With a limit of learned entries.
    #[must_use]
    pub const fn with_max_learned(mut self, max: Option<u32>) -> Self {
        self.max_learned = max;
        self
    }

    /// With ARP snooping on or off.
    #[must_use]
    pub const fn with_arp_snoop(mut self, snoop: bool) -> Self {
        self.arp_snoop = snoop;
        self
    }

    /// With a limit of snooped ARP entries.
    #[must_use]
    pub const fn with_max_arp(mut self, max: Option<u32>) -> Self {
        self.max_arp = max;
        self
    }
}

/// Sizes of a [`Bridge`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BridgeConfig {
    /// The forwarding database.
    pub fdb: FdbConfig,
    /// The most ARP entries; `None`: 8,192.
    pub max_arp: Option<u32>,
}

/// Why a control-plane change of a [`Bridge`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BridgeError {
    /// The port is out of range, or not a port of the bridge.
    InvalidPort(PortId),
    /// The port belongs to another domain than the entry.
    WrongDomain {
        /// The port.
        port: PortId,
        /// The port's domain.
        domain: BridgeDomain,
    },
    /// The FDB refused the entry.
    Fdb(FdbError),
    /// The ARP table refused the entry.
    Arp(ArpError),
    /// A prefix length above 32.
    InvalidPrefix(u8),
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPort(port) => write!(f, "bridge: no port {port}"),
            Self::WrongDomain { port, domain } => write!(f, "bridge: port {port} belongs to {domain}"),
            Self::Fdb(e) => fmt::Display::fmt(e, f),
            Self::Arp(e) => fmt::Display::fmt(e, f),
            Self::InvalidPrefix(len) => write!(f, "bridge: invalid IPv4 prefix length {len}"),
        }
    }
}

impl core::error::Error for BridgeError {}

impl From<FdbError> for BridgeError {
    fn from(e: FdbError) -> Self {
        Self::Fdb(e)
    }
}

impl From<ArpError> for BridgeError {
    fn from(e: ArpError) -> Self {
        Self::Arp(e)
    }
}

/// Why a frame was dropped. Each reason is a counter of [`Counters`] (`drop_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Received on a port the bridge does not have.
    UnknownPort,
    /// Shorter than an Ethernet header (with its tag).
    Truncated,
    /// A broadcast, multicast or all-zero source address.
    InvalidSource,
    /// The destination is on the ingress port.
    Filtered,
    /// ARP that is not well-formed Ethernet/IPv4 ARP.
    ArpMalformed,
    /// ARP whose sender address is a configured entry's (the gateway's) while the frame does not come from that
    /// entry's MAC on its port: ARP spoofing. Never flooded, answered or snooped.
    ArpSpoofed,
    /// ARP whose sender address another port owns (a reachable snooped entry), not answered by the bridge: an
    /// attempt to take over the address. Not flooded, so that it cannot rewrite the other hosts' caches.
    ArpClaimed,
    /// From a port with [`PortConfig::mac_lock`]: a source MAC that another port holds (a live learned entry) or
    /// a static entry binds elsewhere (the bridge's own MACs): a host taking over another's MAC.
    MacHeld,
}

impl DropReason {
    /// The reason's name, as its counter has it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnknownPort => "drop_unknown_port",
            Self::Truncated => "drop_truncated",
            Self::InvalidSource => "drop_invalid_source",
            Self::Filtered => "drop_filtered",
            Self::ArpMalformed => "drop_arp_malformed",
            Self::ArpSpoofed => "drop_arp_spoofed",
            Self::ArpClaimed => "drop_arp_claimed",
            Self::MacHeld => "drop_mac_held",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum Decision {
    /// Send it out of this port (never the ingress port).
    Forward(PortId),
    /// Send a copy out of every port of [`Bridge::flood_ports`] for its ingress port, and one to the host when
    /// `local`.
    Flood {
        /// A broadcast or multicast frame in a domain that has local MACs: the host gets a copy too.
        local: bool,
    },
    /// It is for one of the bridge's own MACs: hand it to the host (the router).
    Local,
    /// An ARP request the bridge answers: send the reply built by [`crate::write_arp_reply`] with this MAC out
    /// of the ingress port, and nothing else.
    ArpReply {
        /// The MAC bound to the requested address.
        mac: MacAddr,
    },
    /// Drop it.
    Drop(DropReason),
}

#[derive(Clone, Copy, Debug)]
struct Port {
    domain: u16,
    learning: bool,
    arp_snoop: bool,
    mac_lock: bool,
}

#[derive(Clone, Debug)]
struct Domain {
    id: BridgeDomain,
    flood: PortSet,
    /// Local MACs registered in this domain.
    locals: u32,
    /// The only addresses snooping may learn: network and mask (`None`: any).
    arp_subnet: Option<(u32, u32)>,
}

/// A learning bridge. See the [module documentation](self) for what it does with a frame, and the
/// [crate documentation](crate) for why each worker owns one.
#[derive(Clone, Debug)]
pub struct Bridge {
    fdb: Fdb,
    arp: ArpTable,
    ports: Vec<Option<Port>>,
    domains: Vec<Domain>,
    counters: Vec<Counters>,
    /// Frames received on ports the bridge does not have.
    stray: Counters,
}

impl Bridge {
    /// A bridge with no port, its tables allocated for `config`'s limits.
    #[must_use]
    pub fn new(config: &BridgeConfig) -> Self {
        let arp_seed = config.fdb.hash_seed.map(|s| s ^ 0x9e37_79b9_7f4a_7c15);
        Self {
            fdb: Fdb::new(&config.fdb),
            arp: ArpTable::new(config.max_arp.unwrap_or(8192), arp_seed),
            ports: vec![None; PortId::MAX],
            domains: Vec::new(),
            counters: vec![Counters::default(); PortId::MAX],
            stray: Counters::default(),
        }
    }

    /// The forwarding database.
    #[must_use]
    pub const fn fdb(&self) -> &Fdb {
        &self.fdb
    }

    /// The ARP table.
    #[must_use]
    pub const fn arp(&self) -> &ArpTable {
        &self.arp
    }

    fn domain_index(&mut self, id: BridgeDomain) -> u16 {
        let i = match self.domains.iter().position(|d| d.id == id) {
            Some(i) => i,
            None => {
                self.domains.push(Domain { id, flood: PortSet::EMPTY, locals: 0, arp_subnet: None });
                self.domains.len() - 1
            }
        };
        // At most one domain per port or local MAC, and ports are below PortId::MAX; locals are checked below.
        u16::try_from(i).unwrap_or(u16::MAX)
    }

    /// Adds `port`, or changes its configuration. A port that changes domain loses its FDB entries.
    pub fn add_port(&mut self, port: PortId, config: PortConfig) -> Result<(), BridgeError> {
        if port.index() >= PortId::MAX {
            return Err(BridgeError::InvalidPort(port));
        }
        if let Some(old) = self.ports[port.index()] {
            if self.domains[usize::from(old.domain)].id != config.domain {
                self.remove_port(port);
            } else {
                self.domains[usize::from(old.domain)].flood.remove(port);
            }
        }
        let domain = self.domain_index(config.domain);
        if config.flood {
            self.domains[usize::from(domain)].flood.insert(port);
        }
        self.ports[port.index()] =
            Some(Port { domain, learning: config.learning, arp_snoop: config.arp_snoop, mac_lock: config.mac_lock });
        self.fdb.set_port_limit(port, config.max_learned);
        self.fdb.set_port_lock(port, config.mac_lock);
        self.arp.set_port_limit(port, config.max_arp);
        Ok(())
    }

    /// Removes `port` with its FDB entries (learned and static), the ARP entries it owns and its counters;
    /// returns whether it existed.
    pub fn remove_port(&mut self, port: PortId) -> bool {
        let Some(old) = self.ports.get_mut(port.index()).and_then(Option::take) else { return false };
        self.domains[usize::from(old.domain)].flood.remove(port);
        let _ = self.fdb.flush_port(port, true);
        self.fdb.set_port_limit(port, None);
        self.fdb.set_port_lock(port, false);
        let _ = self.arp.flush_port(port);
        self.arp.set_port_limit(port, None);
        self.counters[port.index()] = Counters::default();
        true
    }

    /// The configured ports.
    pub fn ports(&self) -> impl Iterator<Item = PortId> + '_ {
        #[allow(clippy::cast_possible_truncation)] // below PortId::MAX
        self.ports.iter().enumerate().filter(|(_, p)| p.is_some()).map(|(i, _)| PortId(i as u16))
    }

    /// Frames to `mac` in `domain` go to `port` (a port of that domain, or [`PortId::LOCAL`]), whatever
    /// learning sees. Replaces a learned entry for the same address.
    pub fn add_static(&mut self, domain: BridgeDomain, mac: MacAddr, port: PortId) -> Result<(), BridgeError> {
        if port == PortId::LOCAL {
            return self.add_local(domain, mac);
        }
        let p = self.ports.get(port.index()).copied().flatten().ok_or(BridgeError::InvalidPort(port))?;
        let port_domain = self.domains[usize::from(p.domain)].id;
        if port_domain != domain {
            return Err(BridgeError::WrongDomain { port, domain: port_domain });
        }
        Ok(self.fdb.add_static(domain, mac, port)?)
    }

    /// Registers one of the bridge's own MACs (the gateway's, the host's): frames to it become
    /// [`Decision::Local`], and broadcasts in `domain` give the host a copy.
    pub fn add_local(&mut self, domain: BridgeDomain, mac: MacAddr) -> Result<(), BridgeError> {
        let was_local = self.fdb.get(domain, mac, Instant::ZERO).is_some_and(|e| e.port == PortId::LOCAL);
        self.fdb.add_static(domain, mac, PortId::LOCAL)?;
        if !was_local {
            let d = self.domain_index(domain);
            self.domains[usize::from(d)].locals += 1;
        }
        Ok(())
    }

    /// Removes the entry of `mac` in `domain`, static, local or learned; returns whether there was one.
    pub fn remove_static(&mut self, domain: BridgeDomain, mac: MacAddr) -> bool {
        let was_local = self.fdb.get(domain, mac, Instant::ZERO).is_some_and(|e| e.port == PortId::LOCAL);
        if was_local && let Some(d) = self.domains.iter_mut().find(|d| d.id == domain) {
            d.locals -= 1;
        }
        self.fdb.remove(domain, mac)
    }

    /// Binds `ip` to `mac` in the ARP responder's table of `domain`.
    pub fn set_arp(&mut self, domain: BridgeDomain, ip: core::net::Ipv4Addr, mac: MacAddr) -> Result<(), BridgeError> {
        self.arp.insert(domain, ip, mac)?;
        Ok(())
    }

    /// Forgets `ip` in the ARP responder's table of `domain`; returns the MAC it had.
    pub fn remove_arp(&mut self, domain: BridgeDomain, ip: core::net::Ipv4Addr) -> Option<MacAddr> {
        self.arp.remove(domain, ip)
    }

    /// Removes expired learned entries among the next `budget` FDB slots (see [`Fdb::age`]), and dead snooped
    /// entries (stale ones too above [`crate::ArpConfig::gc_thresh`]) among the next `budget` ARP slots; returns how
    /// many entries went. Call it between batches with a small budget (a few dozen): both tables are kept clean
    /// without a pause, and limits reclaim room on their own anyway.
    pub fn age(&mut self, now: Instant, budget: usize) -> usize {
        let fdb = self.fdb.age(now, budget);
        let now_ms = now.as_millis();
        let seen = snoop::fdb_seen(&self.fdb, now);
        fdb + self.arp.age(now_ms, budget, &seen)
    }

    /// The ports a frame received on `ingress` is flooded to: the flooding ports of its domain but `ingress`.
    /// Empty when `ingress` is not a port.
    #[must_use]
    pub fn flood_ports(&self, ingress: PortId) -> PortIter<'_> {
        static NONE: PortSet = PortSet::EMPTY;
        let set = match self.ports.get(ingress.index()).copied().flatten() {
            Some(p) => &self.domains[usize::from(p.domain)].flood,
            None => &NONE,
        };
        PortIter { except: Some(ingress), ..set.iter() }
    }

    /// The counters of frames received on `port`.
    #[must_use]
    pub fn port_counters(&self, port: PortId) -> Option<&Counters> {
        self.ports.get(port.index())?.as_ref()?;
        self.counters.get(port.index())
    }

    /// The sum of every port's counters, and of frames received on ports the bridge does not have.
    #[must_use]
    pub fn counters(&self) -> Counters {
        let mut sum = self.stray;
        for port in self.ports() {
            sum += &self.counters[port.index()];
        }
        sum
    }

    /// Decides the fate of each frame of `frames` (with its ingress port) at time `now`, in order, writing the
    /// decisions into `out`; returns how many frames were processed: the shorter of the two lengths.
    #[inline]
    pub fn process<B: AsRef<[u8]>>(&mut self, now: Instant, frames: &[(PortId, B)], out: &mut [Decision]) -> usize {
        let n = frames.len().min(out.len());
        for ((port, frame), decision) in frames[..n].iter().zip(&mut out[..n]) {
            *decision = self.process_one(now, *port, frame.as_ref());
        }
        n
    }

    /// Decides the fate of one frame received on `port` at time `now`.
    #[inline]
    pub fn process_one(&mut self, now: Instant, port: PortId, frame: &[u8]) -> Decision {
        let Some(&Some(p)) = self.ports.get(port.index()) else {
            self.stray.rx += 1;
            self.stray.drop_unknown_port += 1;
            return Decision::Drop(DropReason::UnknownPort);
        };
        let c = &mut self.counters[port.index()];
        c.rx += 1;
        let Ok(eth) = Frame::new_checked(frame) else {
            c.drop_truncated += 1;
            return Decision::Drop(DropReason::Truncated);
        };
        let src = eth.src_addr();
        if src.is_multicast() || src.is_zero() {
            c.drop_invalid_source += 1;
            return Decision::Drop(DropReason::InvalidSource);
        }
        let domain = &self.domains[usize::from(p.domain)];
        let bd = domain.id;
        if p.learning {
            match self.fdb.learn(bd, src, port, now) {
                Learned::Refreshed | Learned::Invalid => {}
                Learned::New => c.learned += 1,
                Learned::Moved { .. } => c.moved += 1,
                Learned::Static { port: at } if at != port => {
                    c.static_conflict += 1;
                    if p.mac_lock {
                        c.drop_mac_held += 1;
                        return Decision::Drop(DropReason::MacHeld);
                    }
                }
                Learned::Static { .. } => {}
                Learned::LimitHit => c.limit_hit += 1,
                Learned::PortLimitHit => c.port_limit_hit += 1,
                Learned::Held { .. } => {
                    c.drop_mac_held += 1;
                    return Decision::Drop(DropReason::MacHeld);
                }
            }
        }
        if eth.ethertype() == EtherType::ARP {
            let payload = frame.get(eth.header_len()..).unwrap_or_default();
            if let Some(decision) = self.arp_frame(now, port, p, src, payload) {
                return decision;
            }
        }
        let c = &mut self.counters[port.index()];
        let dst = eth.dst_addr();
        if dst.is_multicast() {
            if dst.is_broadcast() {
                c.flooded_broadcast += 1;
            } else {
                c.flooded_multicast += 1;
            }
            return Decision::Flood { local: self.domains[usize::from(p.domain)].locals > 0 };
        }
        match self.fdb.lookup(bd, dst, now) {
            Some(PortId::LOCAL) => {
                c.to_local += 1;
                Decision::Local
            }
            Some(to) if to == port => {
                c.drop_filtered += 1;
                Decision::Drop(DropReason::Filtered)
            }
            Some(to) => {
                c.forwarded += 1;
                Decision::Forward(to)
            }
            None => {
                c.flooded_unknown += 1;
                Decision::Flood { local: false }
            }
        }
    }
}

#[cfg(test)]
mod tests;
