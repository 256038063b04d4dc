//! The ARP responder's table (IPv4 → MAC per bridge domain) and the reply it sends.
//!
//! With ARP suppression (proxy ARP), an ARP request for an address the table knows is answered on the port it
//! came from instead of being flooded to every pod and tunnel: flannel's `flannel.1` does the same with its
//! neighbour entries, and VXLAN's `proxy` flag with its own table.
//!
//! Entries come from the control plane ([`ArpTable::insert`]: *configured*, they never age and snooping never
//! changes them) or, only on ports whose [`crate::PortConfig::arp_snoop`] allows it, from ARP packets that pass
//! every check (see [`crate::bridge`]): *snooped*. The table is allocated once ([`ArpTable::new`]) and refuses
//! entries beyond its limit.
//!
//! # Snooped entries: a neighbour table
//! A snooped entry belongs to the port it was snooped on and lives like an entry of the kernel's neighbour table
//! ([`ArpConfig`] has the times, the kernel's defaults):
//! - **Reachable** for [`ArpConfig::reachable`] after its last confirmation. A confirmation is an ARP packet
//!   from the owner port that snooping accepts, or traffic: a frame from the entry's MAC on its port (the FDB's
//!   last sighting, read when it matters, so that the data path pays nothing for it).
//! - **Stale** for [`ArpConfig::gc_stale`] after that: still used and answered for, but another port may now
//!   claim the address (a pod gone, its address given to a new pod). While reachable, a claim from another
//!   port is refused.
//! - **Dead** after that: treated as absent by [`crate::Bridge::resolve`] and by the responder, and collected
//!   by [`crate::Bridge::age`] (a sweep bounded per call) or when a snoop needs its room. Above
//!   [`ArpConfig::gc_thresh`] entries, sweeps collect stale entries too, as the kernel's forced GC does.
//!
//! Each port holds at most its limit of snooped entries ([`crate::PortConfig::max_arp`]), so that one pod
//! announcing random addresses cannot fill the table for the others.

use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;

use alloc::vec;
use alloc::vec::Vec;
use tweed_wire::ethernet::MacAddr;

use crate::table::{EMPTY, RawTable};
use crate::{BridgeDomain, Instant, PortId};

mod reply;
pub use reply::write_arp_reply;

const MAC_MASK: u64 = 0xffff_ffff_ffff;
/// The owner of a configured entry (no port: the control plane).
const CONFIGURED: u16 = u16::MAX;
/// Slots a snoop looks at for dead entries when a limit is reached: bounded work per ARP packet.
const RECLAIM_BUDGET: usize = 64;

#[inline]
fn key(domain: BridgeDomain, ip: Ipv4Addr) -> u64 {
    (u64::from(domain.0) << 32) | u64::from(ip.to_bits())
}

/// An entry's value: the MAC in the low 48 bits, the owner port above, and the last confirmation by ARP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Val {
    word: u64,
    confirmed_ms: u64,
}

impl Val {
    const fn new(mac: MacAddr, port: u16, confirmed_ms: u64) -> Self {
        Self { word: ((port as u64) << 48) | mac.to_u64(), confirmed_ms }
    }

    const fn mac(self) -> MacAddr {
        MacAddr::from_u64(self.word & MAC_MASK)
    }

    #[allow(clippy::cast_possible_truncation)] // the top 16 bits
    const fn port(self) -> u16 {
        (self.word >> 48) as u16
    }

    const fn configured(self) -> bool {
        self.port() == CONFIGURED
    }
}

/// The times of the ARP table's snooped entries (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpConfig {
    /// How long an entry stays reachable (its address owned by its port) after a confirmation. Default 30 s,
    /// the kernel's `base_reachable_time`.
    pub reachable: Duration,
    /// How long an entry stays usable, but claimable, after it stops being reachable. Default 60 s, the
    /// kernel's `gc_stale_time`.
    pub gc_stale: Duration,
    /// Above this many entries (configured ones included), sweeps collect stale entries as well as dead ones.
    /// Default 512, the kernel's `gc_thresh2`; the table's size is the hard limit (`gc_thresh3`).
    pub gc_thresh: u32,
}

impl Default for ArpConfig {
    fn default() -> Self {
        Self { reachable: Duration::from_secs(30), gc_stale: Duration::from_secs(60), gc_thresh: 512 }
    }
}

/// Where a snooped entry is in its life at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpState {
    /// Confirmed within [`ArpConfig::reachable`]: its address belongs to its port.
    Reachable,
    /// Not confirmed lately: still used, but another port may claim the address.
    Stale,
    /// Not confirmed for [`ArpConfig::reachable`] + [`ArpConfig::gc_stale`]: as good as absent.
    Dead,
}

/// Whether an entry was configured or snooped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpKind {
    /// Set by the control plane ([`ArpTable::insert`], [`crate::Bridge::set_arp`]): never ages.
    Configured,
    /// Learnt from an ARP packet received on `port`.
    Snooped {
        /// The port that owns the address.
        port: PortId,
        /// The last confirmation by ARP (traffic confirms too: see [`crate::Bridge::resolve`]).
        confirmed: Instant,
    },
}

/// An entry of the [`ArpTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpEntry {
    /// The MAC bound to the address.
    pub mac: MacAddr,
    /// Configured or snooped.
    pub kind: ArpKind,
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

/// What snooping did with an ARP sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Snooped {
    /// A new entry.
    New,
    /// The port's own entry, confirmed (its MAC may have changed).
    Refreshed,
    /// A stale or dead entry of another port, taken over.
    Moved,
}

/// Why snooping refused an ARP sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not a host address or not a unicast MAC.
    Invalid,
    /// A configured entry holds the address (with another MAC).
    Configured,
    /// Another port's reachable entry holds the address.
    Claimed,
    /// The port holds its limit of snooped entries.
    PortLimit,
    /// The table is full.
    Full,
}

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
    table: RawTable<Val>,
    max: u32,
    reachable_ms: u64,
    /// Reachable plus stale: the age at which an entry is dead.
    dead_ms: u64,
    gc_thresh: u32,
    /// Snooped entries per owner port, and each port's limit (`u32::MAX`: none).
    port_len: Vec<u32>,
    port_limit: Vec<u32>,
    /// The next slot the sweep looks at.
    cursor: usize,
    collected: u64,
}

impl ArpTable {
    /// An empty table for at most `max_entries` entries, with [`ArpConfig::default`] times and no port limits;
    /// `seed` as [`crate::FdbConfig::hash_seed`].
    #[must_use]
    pub fn new(max_entries: u32, seed: Option<u64>) -> Self {
        let mut t = Self {
            table: RawTable::new((max_entries as usize).saturating_mul(2), seed),
            max: max_entries,
            reachable_ms: 0,
            dead_ms: 0,
            gc_thresh: 0,
            port_len: vec![0; PortId::MAX],
            port_limit: vec![u32::MAX; PortId::MAX],
            cursor: 0,
            collected: 0,
        };
        t.set_config(&ArpConfig::default());
        t
    }

    /// Sets the times and the GC threshold of snooped entries.
    pub fn set_config(&mut self, config: &ArpConfig) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.reachable_ms = ms(config.reachable);
        self.dead_ms = self.reachable_ms.saturating_add(ms(config.gc_stale));
        self.gc_thresh = config.gc_thresh;
    }

    /// Sets (`Some`) or lifts (`None`) the limit of snooped entries owned by `port`. Entries above a lowered
    /// limit stay until they are collected. Ports out of range are ignored.
    pub fn set_port_limit(&mut self, port: PortId, limit: Option<u32>) {
        if let Some(l) = self.port_limit.get_mut(port.index()) {
            *l = limit.unwrap_or(u32::MAX);
        }
    }

    /// The number of entries (configured and snooped, dead ones not yet collected included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Snooped entries owned by `port` (dead ones not yet collected included).
    #[must_use]
    pub fn port_len(&self, port: PortId) -> usize {
        self.port_len.get(port.index()).map_or(0, |&n| n as usize)
    }

    /// Snooped entries collected (dead, or stale above the GC threshold) since the table was made.
    #[must_use]
    pub const fn collected(&self) -> u64 {
        self.collected
    }

    /// The MAC bound to `ip` in `domain`, whatever the entry's state: a snooped entry may be dead and not yet
    /// collected. The data path wants [`crate::Bridge::resolve`], which knows the time and the traffic.
    #[inline]
    #[must_use]
    pub fn lookup(&self, domain: BridgeDomain, ip: Ipv4Addr) -> Option<MacAddr> {
        self.table.get(key(domain, ip)).map(Val::mac)
    }

    /// For [`crate::Bridge::resolve`], per packet: the MAC, the owner port ([`None`] for a configured entry) and
    /// whether the entry is alive at `now_ms` given the owner's last sighting `seen_ms` (taken by the caller).
    #[inline]
    pub(crate) fn resolve_raw(&self, domain: BridgeDomain, ip: Ipv4Addr) -> Option<(MacAddr, Option<u16>, u64)> {
        let v = self.table.get(key(domain, ip))?;
        Some((v.mac(), (!v.configured()).then_some(v.port()), v.confirmed_ms))
    }

    /// Whether a snooped entry confirmed at `confirmed_ms` is dead at `now_ms`.
    #[inline]
    pub(crate) const fn dead_at(&self, confirmed_ms: u64, now_ms: u64) -> bool {
        now_ms.saturating_sub(confirmed_ms) >= self.dead_ms
    }

    /// The entry of `ip` in `domain`, whatever its state.
    #[must_use]
    pub fn get(&self, domain: BridgeDomain, ip: Ipv4Addr) -> Option<ArpEntry> {
        self.table.get(key(domain, ip)).map(Self::entry)
    }

    fn entry(v: Val) -> ArpEntry {
        let kind = if v.configured() {
            ArpKind::Configured
        } else {
            ArpKind::Snooped { port: PortId(v.port()), confirmed: Instant::from_millis(v.confirmed_ms) }
        };
        ArpEntry { mac: v.mac(), kind }
    }

    /// Whether the entry of `ip` was configured (rather than snooped).
    #[must_use]
    pub fn is_configured(&self, domain: BridgeDomain, ip: Ipv4Addr) -> bool {
        self.table.get(key(domain, ip)).is_some_and(Val::configured)
    }

    /// The state at `now` of a snooped entry last confirmed at `confirmed`.
    #[must_use]
    pub const fn state(&self, confirmed: Instant, now: Instant) -> ArpState {
        let age = now.as_millis().saturating_sub(confirmed.as_millis());
        if age < self.reachable_ms {
            ArpState::Reachable
        } else if age < self.dead_ms {
            ArpState::Stale
        } else {
            ArpState::Dead
        }
    }

    const fn state_ms(&self, confirmed_ms: u64, now_ms: u64) -> ArpState {
        self.state(Instant::from_millis(confirmed_ms), Instant::from_millis(now_ms))
    }

    /// Binds `ip` to `mac` in `domain`, replacing any entry (configured or snooped); returns the MAC it had.
    pub fn insert(&mut self, domain: BridgeDomain, ip: Ipv4Addr, mac: MacAddr) -> Result<Option<MacAddr>, ArpError> {
        Self::check(ip, mac)?;
        let v = Val::new(mac, CONFIGURED, 0);
        match self.table.find(key(domain, ip)) {
            Ok(i) => {
                let old = self.table.slot(i).val;
                self.disown(old);
                self.table.set_val(i, v);
                Ok(Some(old.mac()))
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

    fn check(ip: Ipv4Addr, mac: MacAddr) -> Result<(), ArpError> {
        if !is_host_ip(ip) {
            return Err(ArpError::InvalidIp(ip));
        }
        if mac.is_multicast() || mac.is_zero() {
            return Err(ArpError::InvalidMac(mac));
        }
        Ok(())
    }

    /// Forgets the port count of a snooped value about to be replaced or removed.
    fn disown(&mut self, v: Val) {
        if !v.configured()
            && let Some(n) = self.port_len.get_mut(usize::from(v.port()))
        {
            *n = n.saturating_sub(1);
        }
    }

    /// The owner of `ip`'s snooped entry when it is another port than `port` and still reachable at `now_ms`
    /// (`seen` gives the FDB's last sighting of a MAC on a port, in milliseconds, 0 for none).
    pub(crate) fn claimed_by_other<F>(
        &self,
        domain: BridgeDomain,
        ip: Ipv4Addr,
        port: PortId,
        now_ms: u64,
        seen: &F,
    ) -> bool
    where
        F: Fn(BridgeDomain, MacAddr, PortId) -> u64,
    {
        let Some(v) = self.table.get(key(domain, ip)) else { return false };
        if v.configured() || v.port() == port.0 {
            return false;
        }
        let confirmed = v.confirmed_ms.max(seen(domain, v.mac(), PortId(v.port())));
        self.state_ms(confirmed, now_ms) == ArpState::Reachable
    }

    /// The MAC of `ip` when it is usable at `now_ms`: configured, or snooped and not dead (counting traffic as
    /// confirmation); with the owner port of a snooped entry.
    pub(crate) fn live<F>(
        &self,
        domain: BridgeDomain,
        ip: Ipv4Addr,
        now_ms: u64,
        seen: &F,
    ) -> Option<(MacAddr, Option<PortId>)>
    where
        F: Fn(BridgeDomain, MacAddr, PortId) -> u64,
    {
        let v = self.table.get(key(domain, ip))?;
        if v.configured() {
            return Some((v.mac(), None));
        }
        let owner = PortId(v.port());
        let confirmed = v.confirmed_ms.max(seen(domain, v.mac(), owner));
        (self.state_ms(confirmed, now_ms) != ArpState::Dead).then_some((v.mac(), Some(owner)))
    }

    /// Learns from an ARP packet received on `port` at `now_ms` that `ip` is at `mac`: confirms the port's own
    /// entry, takes over another port's stale or dead one, or adds one, within the limits.
    pub(crate) fn snoop<F>(
        &mut self,
        domain: BridgeDomain,
        ip: Ipv4Addr,
        mac: MacAddr,
        port: PortId,
        now_ms: u64,
        seen: &F,
    ) -> Result<Snooped, Refused>
    where
        F: Fn(BridgeDomain, MacAddr, PortId) -> u64,
    {
        if Self::check(ip, mac).is_err() || port.index() >= PortId::MAX {
            return Err(Refused::Invalid);
        }
        let p = port.index();
        let k = key(domain, ip);
        if let Ok(i) = self.table.find(k) {
            let v = self.table.slot(i).val;
            if v.configured() {
                return if v.mac() == mac { Ok(Snooped::Refreshed) } else { Err(Refused::Configured) };
            }
            if v.port() == port.0 {
                self.table.set_val(i, Val::new(mac, port.0, now_ms.max(v.confirmed_ms)));
                return Ok(Snooped::Refreshed);
            }
            if self.claimed_by_other(domain, ip, port, now_ms, seen) {
                return Err(Refused::Claimed);
            }
            if self.port_len[p] >= self.port_limit[p]
                && !self.reclaim(now_ms, seen, |t| t.port_len[p] < t.port_limit[p])
            {
                return Err(Refused::PortLimit);
            }
            // The reclaim may have collected the entry (dead) or shifted it.
            if let Ok(i) = self.table.find(k) {
                let old = self.table.slot(i).val;
                self.disown(old);
                self.table.set_val(i, Val::new(mac, port.0, now_ms));
                self.port_len[p] += 1;
                return Ok(Snooped::Moved);
            }
        }
        let full = |t: &Self| t.port_len[p] >= t.port_limit[p] || t.table.len() >= t.max as usize;
        if full(self) && !self.reclaim(now_ms, seen, |t| !full(t)) {
            return Err(if self.port_len[p] >= self.port_limit[p] { Refused::PortLimit } else { Refused::Full });
        }
        match self.table.find(k) {
            Err(i) => {
                self.table.insert_at(i, k, Val::new(mac, port.0, now_ms));
                self.port_len[p] += 1;
                Ok(Snooped::New)
            }
            // Collecting only removes entries; answer sanely anyway.
            Ok(_) => Ok(Snooped::Refreshed),
        }
    }

    /// Looks at the slot under the cursor: collects a dead entry there (or a stale one above the GC threshold)
    /// and returns `true` with the cursor in place (the slot now holds the next entry of its cluster), or
    /// records traffic confirmation and moves on.
    fn sweep_step<F>(&mut self, now_ms: u64, seen: &F) -> bool
    where
        F: Fn(BridgeDomain, MacAddr, PortId) -> u64,
    {
        let s = self.table.slot(self.cursor);
        if s.key != EMPTY && !s.val.configured() {
            #[allow(clippy::cast_possible_truncation)] // the domain's 16 bits above the address
            let domain = BridgeDomain((s.key >> 32) as u16);
            let confirmed = s.val.confirmed_ms.max(seen(domain, s.val.mac(), PortId(s.val.port())));
            let collect = match self.state_ms(confirmed, now_ms) {
                ArpState::Reachable => false,
                ArpState::Stale => self.table.len() > self.gc_thresh as usize,
                ArpState::Dead => true,
            };
            if collect {
                self.disown(s.val);
                self.table.remove_at(self.cursor);
                self.collected += 1;
                return true;
            }
            if confirmed > s.val.confirmed_ms {
                self.table.set_val(self.cursor, Val { confirmed_ms: confirmed, ..s.val });
            }
        }
        self.cursor = (self.cursor + 1) & (self.table.capacity() - 1);
        false
    }

    /// Sweeps at most [`RECLAIM_BUDGET`] slots until `room` holds; returns whether it does.
    fn reclaim<F, R>(&mut self, now_ms: u64, seen: &F, room: R) -> bool
    where
        F: Fn(BridgeDomain, MacAddr, PortId) -> u64,
        R: Fn(&Self) -> bool,
    {
        let mut steps = 0;
        while !room(self) && steps < RECLAIM_BUDGET.min(self.table.capacity()) {
            if !self.sweep_step(now_ms, seen) {
                steps += 1;
            }
        }
        room(self)
    }

    /// Collects dead entries (and stale ones above the GC threshold) among the next `budget` slots, continuing
    /// where the last sweep stopped; returns how many went.
    pub(crate) fn age<F>(&mut self, now_ms: u64, budget: usize, seen: &F) -> usize
    where
        F: Fn(BridgeDomain, MacAddr, PortId) -> u64,
    {
        let (mut removed, mut steps) = (0, 0);
        while steps < budget.min(self.table.capacity()) {
            if self.sweep_step(now_ms, seen) {
                removed += 1;
            } else {
                steps += 1;
            }
        }
        removed
    }

    /// Removes the entries snooped on `port`; returns how many. A scan of the whole table: a control-plane
    /// operation (the port went away).
    pub(crate) fn flush_port(&mut self, port: PortId) -> usize {
        let (mut removed, mut i) = (0, 0);
        while i < self.table.capacity() {
            let s = self.table.slot(i);
            if s.key != EMPTY && !s.val.configured() && s.val.port() == port.0 {
                self.disown(s.val);
                self.table.remove_at(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
        removed
    }

    /// Removes the entry of `ip` in `domain`; returns its MAC.
    pub fn remove(&mut self, domain: BridgeDomain, ip: Ipv4Addr) -> Option<MacAddr> {
        let i = self.table.find(key(domain, ip)).ok()?;
        let v = self.table.slot(i).val;
        self.disown(v);
        self.table.remove_at(i);
        Some(v.mac())
    }

    /// The entries: domain, address, MAC, and whether it was configured.
    pub fn iter(&self) -> impl Iterator<Item = (BridgeDomain, Ipv4Addr, MacAddr, bool)> + '_ {
        self.table.iter().map(|s| {
            #[allow(clippy::cast_possible_truncation)] // 16 bits of domain above 32 bits of address
            let (domain, ip) = (BridgeDomain((s.key >> 32) as u16), Ipv4Addr::from_bits(s.key as u32));
            (domain, ip, s.val.mac(), s.val.configured())
        })
    }
}

#[cfg(test)]
mod tests;
