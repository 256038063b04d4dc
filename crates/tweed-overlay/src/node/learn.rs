//! What a worker learns on pod ports, told to the other workers of its control, and what they told it (the
//! mailboxes are in `control/share.rs`).
//!
//! **Telling.** Learning happens inside the bridge, which says nothing; the node notices it off the data path:
//! an ARP frame from a pod (rare, already set apart per packet) is followed by a look at the ARP table (the
//! sender's binding, now owned by the port), and a batch after which the FDB holds a different number of learnt
//! MACs (two loads per batch) by a look at its pod frames' sources. A new or changed binding goes into an outbox,
//! posted to the others at the end of the call (one lock of the hub, one of each other worker's inbox).
//!
//! **Refreshing.** A binding stays alive on the worker that sees the pod's traffic; the others must not let it
//! die while the pod is active there, yet telling them per packet would write a shared line per packet. So each
//! worker keeps the bindings it told (at most [`TRACKED`]) and, every 100 ms, looks at [`TICK_BUDGET`] of them:
//! one confirmed by the pod (ARP or traffic, as the bridge records it) since it was last told, at least
//! [`REFRESH_MS`] ago, is told again; one the bridge no longer holds is forgotten. So a binding confirmed on one
//! worker is confirmed on the others at most `REFRESH_MS` plus a round of the ticks later: well within the 30 s
//! an ARP entry stays reachable (claim-proof) and the 300 s a MAC lives.
//!
//! **Applying.** At the start of a batch a worker whose inbox flag is set takes the queue and runs each binding
//! through its own bridge as the frame the pod would have sent: an ARP reply from the pod to the gateway (a
//! binding), or a frame from its MAC to the gateway (a MAC alone). The bridge applies its own rules to it, the
//! limits and the refusal of another pod's fresh binding included, so what another worker tells can do no more
//! than the pod's own frame would have done here. Packets waiting for the address are released.
//!
//! **Left.** Two pods claiming one address through two workers within one batch may each win on one worker until
//! the loser's binding goes stale; a MAC relearnt in the slot of its own expired entry, without ARP, is not told
//! (the FDB's count does not move).

use std::collections::HashMap;

use foldhash::fast::RandomState;
use tweed_switch::{ArpKind, EntryKind};

use super::*;
use crate::control::share::{Hub, INBOX, Inbox, Learnt};

/// The most bindings a worker keeps refreshing for the others (a node's pods have an address and a MAC or two
/// each). Beyond, a binding is told once and not refreshed: another worker that does not see the pod's traffic
/// lets it age, then floods to it or asks for it, as it did before any was told.
const TRACKED: usize = 1024;
/// Bindings told per batch before the outbox is posted early.
const OUTBOX: usize = 256;
/// How often a binding the pod keeps confirming is told again (ms).
const REFRESH_MS: u64 = 5_000;
/// Tracked bindings looked at per 100 ms.
const TICK_BUDGET: usize = 128;
/// The EtherType of the frame that teaches another worker a MAC alone (IEEE 802 local experimental).
const REPLAY_ETHERTYPE: EtherType = EtherType(0x88b5);

#[derive(Clone, Copy, Debug)]
struct Tracked {
    learnt: Learnt,
    /// When it was last told (ms).
    sent_ms: u64,
}

/// A binding's key among the tracked: its address, or (0, its MAC and port) for a MAC alone.
fn key(l: &Learnt) -> (u32, u64) {
    if l.ip == 0 {
        (0, (MacAddr::from_bytes(&l.mac).map_or(0, MacAddr::to_u64) << 16) | u64::from(l.port))
    } else {
        (l.ip, 0)
    }
}

/// One worker's side of the sharing.
pub(super) struct Sharing {
    hub: Arc<Hub>,
    inbox: Arc<Inbox>,
    outbox: Vec<Learnt>,
    /// The inbox's queue, swapped out while it is applied.
    taken: Vec<Learnt>,
    tracked: Vec<Tracked>,
    /// Where each tracked binding is in `tracked`.
    index: HashMap<(u32, u64), u32, RandomState>,
    cursor: usize,
}

impl Sharing {
    pub(super) fn new(hub: &Arc<Hub>) -> Self {
        Self {
            hub: Arc::clone(hub),
            inbox: hub.join(),
            outbox: Vec::with_capacity(OUTBOX),
            taken: Vec::with_capacity(INBOX),
            tracked: Vec::with_capacity(TRACKED),
            // Twice the entries ever held: removals leave tombstones, and rehashing them away then happens in
            // place, never by growing.
            index: HashMap::with_capacity_and_hasher(2 * TRACKED, RandomState::default()),
            cursor: 0,
        }
    }

    /// Whether other workers told this one something: the one load per batch.
    #[inline(always)]
    pub(super) fn pending(&self) -> bool {
        self.inbox.pending()
    }

    /// Whether this worker has something to post.
    #[inline(always)]
    pub(super) fn outgoing(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Whether there are tracked bindings to refresh.
    #[inline(always)]
    pub(super) fn tracking(&self) -> bool {
        !self.tracked.is_empty()
    }

    fn forget(&mut self, i: usize) {
        let gone = self.tracked.swap_remove(i);
        self.index.remove(&key(&gone.learnt));
        if let Some(moved) = self.tracked.get(i) {
            #[allow(clippy::cast_possible_truncation)] // below TRACKED
            self.index.insert(key(&moved.learnt), i as u32);
        }
    }
}

impl Drop for Sharing {
    fn drop(&mut self) {
        self.hub.leave(&self.inbox);
    }
}

fn mac_of(l: &Learnt) -> MacAddr {
    MacAddr::from_bytes(&l.mac).unwrap_or(MacAddr::ZERO)
}

impl<E: Encapsulation> Node<E> {
    /// At the start of a batch: the bindings other workers learnt, run through this worker's bridge.
    #[cold]
    #[inline(never)]
    pub(super) fn take_shared(&mut self, now: u64, pool: &mut Pool, out: &mut Outputs) {
        let mut taken = core::mem::take(&mut self.share.taken);
        self.share.inbox.take(&mut taken);
        let at = Instant::from_nanos(now);
        for l in &taken {
            let mut frame = [0u8; 60];
            let len = self.replay_frame(l, &mut frame);
            let mut decision = [Decision::Local];
            stages::bridge_frames(
                &mut self.bridge,
                at,
                &[(tweed_switch::PortId(l.port), &frame[..len])],
                &mut decision,
            );
            if l.ip != 0 && !(self.neigh.pending.is_empty() && self.neigh.entries.is_empty()) {
                self.release_pending(now, &frame[..len], pool, out);
            }
        }
        self.counters.learn_received += taken.len() as u64;
        taken.clear();
        self.share.taken = taken;
    }

    /// The frame the pod would have sent to teach the bridge `l`: an ARP reply to the gateway, or a frame from
    /// its MAC to the gateway's (padded to the Ethernet minimum).
    fn replay_frame(&self, l: &Learnt, frame: &mut [u8; 60]) -> usize {
        let mac = mac_of(l);
        set_macs(frame, self.gw_mac, mac);
        let mut eth = ethernet::Frame::new_unchecked(&mut frame[..]);
        if l.ip == 0 {
            eth.set_outer_ethertype(REPLAY_ETHERTYPE);
            return frame.len();
        }
        eth.set_outer_ethertype(EtherType::ARP);
        let reply = arp::Repr {
            operation: arp::Operation::REPLY,
            source_hardware_addr: mac,
            source_protocol_addr: Ipv4Addr::from(l.ip),
            target_hardware_addr: self.gw_mac,
            target_protocol_addr: self.gw_ip,
        };
        reply.emit(&mut arp::Packet::new_unchecked(&mut frame[ETH..ETH + arp::HEADER_LEN]));
        ETH + arp::HEADER_LEN
    }

    /// After an ARP frame from pod port `port` went through the bridge: its sender's binding, if the port now
    /// holds it (else its MAC, if the port holds that), for the other workers.
    #[cold]
    #[inline(never)]
    pub(super) fn arp_learnt(&mut self, now: u64, frame: &[u8], port: PortId) {
        if !self.share.hub.shared() {
            return;
        }
        let Some(Ok(packet)) = frame.get(ETH..).map(arp::Packet::new_checked) else { return };
        let (mac, ip) = (packet.source_hardware_addr(), packet.source_protocol_addr());
        let bound = matches!(self.bridge.arp().get(BD, ip),
            Some(tweed_switch::ArpEntry { mac: m, kind: ArpKind::Snooped { port: p, .. } }) if m == mac && p == sw(port));
        if bound {
            self.tell(now, Learnt { ip: ip.to_bits(), mac: *mac.as_bytes(), port: port.0 });
        } else if let Some(src) = frame.get(6..12).and_then(MacAddr::from_bytes) {
            self.mac_learnt(now, src, sw(port));
        }
    }

    /// After the bridge changed the number of learnt MACs over the batch `bufs`: the sources of its pod frames
    /// that the FDB now holds on their ports, unless told lately. ARP frames (those the bridge answered too: the
    /// answer is written over them) are told by `arp_learnt`; the others are as they came in.
    #[cold]
    #[inline(never)]
    pub(super) fn fdb_learnt(&mut self, now: u64, bufs: &[PacketBuf]) {
        if !self.share.hub.shared() {
            return;
        }
        for buf in bufs {
            let port = buf.meta().ingress;
            let frame = buf.data();
            if self.kinds[usize::from(port.0)] != PortKind::Pod || ethertype(frame) == Some(EtherType::ARP) {
                continue;
            }
            if let Some(src) = frame.get(6..12).and_then(MacAddr::from_bytes) {
                self.mac_learnt(now, src, sw(port));
            }
        }
    }

    /// `mac` as the FDB now has it behind pod `port`, for the other workers, if it does.
    fn mac_learnt(&mut self, now: u64, mac: MacAddr, port: tweed_switch::PortId) {
        let held = self.bridge.fdb().get(BD, mac, Instant::from_nanos(now));
        if held.is_some_and(|e| e.port == port && matches!(e.kind, EntryKind::Learned { .. })) {
            self.tell(now, Learnt { ip: 0, mac: *mac.as_bytes(), port: port.0 });
        }
    }

    /// Tells the others `l`, unless it was told as it is less than [`REFRESH_MS`] ago; tracks it for refreshing.
    fn tell(&mut self, now: u64, l: Learnt) {
        let now_ms = now / 1_000_000;
        let s = &mut self.share;
        let k = key(&l);
        match s.index.get(&k).map(|&i| i as usize) {
            Some(i) if s.tracked[i].learnt == l && now_ms.saturating_sub(s.tracked[i].sent_ms) < REFRESH_MS => return,
            Some(i) => s.tracked[i] = Tracked { learnt: l, sent_ms: now_ms },
            None if s.tracked.len() < TRACKED => {
                #[allow(clippy::cast_possible_truncation)] // below TRACKED
                s.index.insert(k, s.tracked.len() as u32);
                s.tracked.push(Tracked { learnt: l, sent_ms: now_ms });
            }
            // Told once, not refreshed: the others keep it as long as their own traffic does.
            None => {}
        }
        if self.share.outbox.len() == OUTBOX {
            self.post_learnt();
        }
        self.share.outbox.push(l);
    }

    /// Posts the outbox to the other workers.
    #[cold]
    #[inline(never)]
    pub(super) fn post_learnt(&mut self) {
        let dropped = self.share.hub.post(&self.share.inbox, &self.share.outbox);
        self.counters.learn_sent += self.share.outbox.len() as u64;
        self.counters.learn_dropped += dropped;
        self.share.outbox.clear();
    }

    /// Every 100 ms: the next [`TICK_BUDGET`] tracked bindings, told again if the pod confirmed them since they
    /// were last told and that was [`REFRESH_MS`] ago, forgotten if the bridge no longer holds them.
    #[cold]
    #[inline(never)]
    pub(super) fn refresh_learnt(&mut self, now: u64) {
        let at = Instant::from_nanos(now);
        let now_ms = at.as_millis();
        for _ in 0..TICK_BUDGET.min(self.share.tracked.len()) {
            if self.share.tracked.is_empty() {
                break;
            }
            if self.share.cursor >= self.share.tracked.len() {
                self.share.cursor = 0;
            }
            let i = self.share.cursor;
            let t = self.share.tracked[i];
            let mac = mac_of(&t.learnt);
            let port = tweed_switch::PortId(t.learnt.port);
            let seen = match self.bridge.fdb().get(BD, mac, at) {
                Some(e) if e.port == port => match e.kind {
                    EntryKind::Learned { last_seen } => Some(last_seen.as_millis()),
                    EntryKind::Static => None,
                },
                _ => None,
            };
            let confirmed = if t.learnt.ip == 0 {
                seen
            } else {
                match self.bridge.arp().get(BD, Ipv4Addr::from(t.learnt.ip)) {
                    Some(tweed_switch::ArpEntry { mac: m, kind: ArpKind::Snooped { port: p, confirmed } })
                        if m == mac && p == port =>
                    {
                        let last = confirmed.as_millis().max(seen.unwrap_or(0));
                        let alive =
                            self.bridge.arp().state(Instant::from_millis(last), at) != tweed_switch::ArpState::Dead;
                        alive.then_some(last)
                    }
                    _ => None,
                }
            };
            let Some(confirmed) = confirmed else {
                self.share.forget(i);
                continue;
            };
            if confirmed > t.sent_ms && now_ms.saturating_sub(t.sent_ms) >= REFRESH_MS {
                self.share.tracked[i].sent_ms = now_ms;
                if self.share.outbox.len() == OUTBOX {
                    self.post_learnt();
                }
                self.share.outbox.push(t.learnt);
            }
            self.share.cursor = i + 1;
        }
    }
}
