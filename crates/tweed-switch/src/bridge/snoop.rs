//! What the bridge does with an ARP frame: refuse claims of configured addresses and of addresses other ports
//! own, snoop within the domain's subnet and the port's limit, answer from the table, or let it be bridged.
//! And the lookups that need the time: [`Bridge::resolve`].

use core::net::Ipv4Addr;

use tweed_wire::arp;
use tweed_wire::ethernet::MacAddr;

use super::{Bridge, BridgeError, Decision, DropReason, Port};
use crate::fdb::{EntryKind, Fdb};
use crate::responder::{ArpConfig, ArpKind, Refused};
use crate::{BridgeDomain, Instant, PortId};

/// Confirmation by traffic: the FDB's last sighting (in milliseconds) of `mac` on `port`, `now` for a static
/// entry there, 0 for none.
pub(super) fn fdb_seen(fdb: &Fdb, now: Instant) -> impl Fn(BridgeDomain, MacAddr, PortId) -> u64 + '_ {
    move |domain, mac, port| match fdb.get(domain, mac, now) {
        Some(e) if e.port == port => match e.kind {
            EntryKind::Learned { last_seen } => last_seen.as_millis(),
            EntryKind::Static => now.as_millis(),
        },
        _ => 0,
    }
}

impl Bridge {
    /// Lets snooping learn, in `domain`, only addresses of `net`/`prefix_len` (the node's pod subnet), its
    /// network and broadcast addresses excepted (below /31). Without a subnet (the default) any host address may
    /// be snooped. Entries already snooped outside the subnet are left to age.
    ///
    /// # Errors
    /// [`BridgeError::InvalidPrefix`] for a prefix length above 32.
    pub fn set_arp_subnet(&mut self, domain: BridgeDomain, net: Ipv4Addr, prefix_len: u8) -> Result<(), BridgeError> {
        if prefix_len > 32 {
            return Err(BridgeError::InvalidPrefix(prefix_len));
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0);
        let d = self.domain_index(domain);
        self.domains[usize::from(d)].arp_subnet = Some((net.to_bits() & mask, mask));
        Ok(())
    }

    /// Lets snooping learn any host address in `domain` again.
    pub fn clear_arp_subnet(&mut self, domain: BridgeDomain) {
        if let Some(d) = self.domains.iter_mut().find(|d| d.id == domain) {
            d.arp_subnet = None;
        }
    }

    /// Sets the times and the GC threshold of snooped ARP entries (default [`ArpConfig::default`]).
    pub fn set_arp_config(&mut self, config: &ArpConfig) {
        self.arp.set_config(config);
    }

    /// Where to send a packet for `ip` in `domain` at `now`: the MAC bound to it and the port the FDB has for
    /// that MAC. A configured entry always resolves (to [`PortId::LOCAL`] for the bridge's own MACs); a snooped
    /// one while it is not dead (traffic from its MAC on its port counts as confirmation) and only to the port
    /// that owns it. `None`: ask (ARP) or drop.
    #[must_use]
    #[inline]
    pub fn resolve(&self, domain: BridgeDomain, ip: Ipv4Addr, now: Instant) -> Option<(MacAddr, PortId)> {
        // One ARP and one FDB lookup, as `arp().lookup` followed by `fdb().lookup` costs: this is per packet, so
        // it works on the tables' raw values (milliseconds, port numbers) rather than their public entries.
        let (mac, owner, confirmed_ms) = self.arp.resolve_raw(domain, ip)?;
        let Some(owner) = owner else {
            return Some((mac, self.fdb.lookup(domain, mac, now)?));
        };
        let now_ms = now.as_millis();
        let (port, seen_ms) = self.fdb.lookup_seen(domain, mac, now_ms).filter(|&(p, _)| p == owner)?;
        (!self.arp.dead_at(confirmed_ms.max(seen_ms), now_ms)).then_some((mac, PortId(port)))
    }

    /// Whether snooping may learn `ip` in domain number `d`.
    fn snoopable(&self, d: usize, ip: Ipv4Addr) -> bool {
        let Some((net, mask)) = self.domains[d].arp_subnet else { return true };
        let a = ip.to_bits();
        a & mask == net && (mask >= 0xffff_fffe || (a != net && a != net | !mask))
    }

    /// An ARP frame received on `port`: `Some` decision when the bridge answers it or drops it, `None` to bridge
    /// it like any frame.
    #[cold]
    pub(super) fn arp_frame(
        &mut self,
        now: Instant,
        port: PortId,
        p: Port,
        src: MacAddr,
        payload: &[u8],
    ) -> Option<Decision> {
        let d = usize::from(p.domain);
        let bd = self.domains[d].id;
        let Ok(repr) = arp::Packet::new_checked(payload).and_then(|pkt| arp::Repr::parse(&pkt)) else {
            self.counters[port.index()].drop_arp_malformed += 1;
            return Some(Decision::Drop(DropReason::ArpMalformed));
        };
        let sip = repr.source_protocol_addr;
        // A probe (RFC 5227) claims nothing: it is bridged (or answered), never snooped.
        let probe = sip.is_unspecified();
        if !probe
            && let Some(e) = self.arp.get(bd, sip)
            && e.kind == ArpKind::Configured
        {
            // Only the configured MAC, from the port the FDB has it on, may speak for a configured address:
            // never a pod for the gateway, whose MAC is the bridge's own.
            let genuine = repr.source_hardware_addr == e.mac
                && src == e.mac
                && self.fdb.lookup(bd, e.mac, now).is_none_or(|at| at == port);
            if !genuine {
                self.counters[port.index()].drop_arp_spoofed += 1;
                return Some(Decision::Drop(DropReason::ArpSpoofed));
            }
        }
        let now_ms = now.as_millis();
        let sender_ok = repr.source_hardware_addr == src && !repr.is_gratuitous();
        let snoopable = self.snoopable(d, sip);
        let seen = fdb_seen(&self.fdb, now);
        let c = &mut self.counters[port.index()];
        let mut claimed = false;
        if p.arp_snoop && !probe {
            if self.arp.claimed_by_other(bd, sip, port, now_ms, &seen) {
                claimed = true;
                c.arp_claim_refused += 1;
                c.arp_snoop_refused += 1;
            } else if !sender_ok {
                c.arp_snoop_refused += 1;
            } else if !snoopable {
                c.arp_outside_subnet += 1;
                c.arp_snoop_refused += 1;
            } else {
                match self.arp.snoop(bd, sip, src, port, now_ms, &seen) {
                    Ok(_) => c.arp_snooped += 1,
                    Err(r) => {
                        c.arp_snoop_refused += 1;
                        c.arp_port_limit_hit += u64::from(r == Refused::PortLimit);
                    }
                }
            }
        }
        if sender_ok
            && repr.operation == arp::Operation::REQUEST
            && let Some((mac, _)) = self.arp.live(bd, repr.target_protocol_addr, now_ms, &seen)
            && mac != src
        {
            c.arp_answered += 1;
            return Some(Decision::ArpReply { mac });
        }
        if claimed {
            c.drop_arp_claimed += 1;
            return Some(Decision::Drop(DropReason::ArpClaimed));
        }
        None
    }
}
