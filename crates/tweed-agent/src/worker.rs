//! The workers: each a thread running a `tweed_io::Driver` over its own node (`Control::worker`), pool, TAP queue
//! per pod, underlay socket (`SO_REUSEPORT`) and TUN queue; and the bell the control thread sleeps on.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tweed_io::{
    Device, DeviceKind, DeviceOptions, Driver, DriverConfig, DriverStats, PacketSocket, PodPort, Steering, Stop,
    UdpOptions, UdpPort, Underlay, Waker, netns_path,
};
use tweed_overlay::{BackendConfig, Control};

use crate::{AgentConfig, AgentError};

/// How often a worker looks for pods whose network namespace is gone (a `stat` per pod).
const ORPHAN_CHECK: Duration = Duration::from_secs(1);

/// What wakes the control thread: a request for the counters, a worker's answer to one, a worker's end.
#[derive(Debug, Default)]
pub(crate) struct Bell {
    state: Mutex<Rung>,
    cv: Condvar,
}

/// What the bell was rung for since the control thread last looked.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Rung {
    pub(crate) stats_asked: bool,
    pub(crate) answers: u64,
    pub(crate) exited: usize,
}

impl Bell {
    fn ring(&self, f: impl FnOnce(&mut Rung)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.cv.notify_all();
    }

    /// Waits until `until` or a ring; what was rung, the stats request taken.
    pub(crate) fn wait(&self, until: Option<Instant>) -> Rung {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = state.answers;
        // A worker's end is not taken: once one ended, every wait returns at once (the agent is stopping).
        while !state.stats_asked && state.exited == 0 && state.answers == seen {
            let Some(until) = until else {
                state = self.cv.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self.cv.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        let rung = *state;
        state.stats_asked = false;
        rung
    }
}

/// Asks a running agent to log its counters (what SIGUSR1 does): cheap, callable from any thread.
///
/// ```
/// let trigger = tweed_agent::StatsTrigger::new();
/// trigger.request(); // an agent started with a clone of it logs its counters soon
/// ```
#[derive(Clone, Debug, Default)]
pub struct StatsTrigger(pub(crate) Arc<Bell>);

impl StatsTrigger {
    /// A trigger for an agent not started yet (give it to [`crate::Agent::start`]).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for the counters.
    pub fn request(&self) {
        self.0.ring(|r| r.stats_asked = true);
    }
}

/// What a worker last published.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Report {
    /// The request it answers.
    pub(crate) generation: u64,
    pub(crate) stats: DriverStats,
    pub(crate) fdb_learned: usize,
    pub(crate) arp_entries: usize,
}

/// The control thread's end of a worker.
pub(crate) struct WorkerHandle {
    pub(crate) thread: Option<JoinHandle<Result<(), tweed_io::Error>>>,
    pub(crate) waker: Waker,
    pub(crate) asked: Arc<AtomicU64>,
    pub(crate) report: Arc<Mutex<Report>>,
}

impl WorkerHandle {
    /// Asks for a report of generation `generation`.
    pub(crate) fn ask(&self, generation: u64) {
        self.asked.store(generation, Ordering::Release);
        self.waker.wake();
    }

    /// Its last report.
    pub(crate) fn report(&self) -> Report {
        *self.report.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The devices of every worker: a queue of each pod's TAP, a socket bound to the underlay address, a TUN queue.
pub(crate) fn build_drivers(config: &AgentConfig, control: &Control) -> Result<Vec<Driver>, AgentError> {
    let n = config.workers;
    let failed = |e: tweed_io::Error| AgentError::Input(e.to_string());
    let mut pods: Vec<Vec<(tweed_packet::PortId, PodPort)>> = (0..n).map(|_| Vec::new()).collect();
    for (id, pod) in config.ports.pods().zip(&config.pods) {
        if let Some(tap) = &pod.tap {
            // A virtio-net header on each frame, so that TCP segments (and UDP datagrams, Linux 6.2) for the pod
            // are written coalesced.
            let mut o = DeviceOptions::new(tap.clone(), DeviceKind::Tap)
                .vnet_hdr(pod.coalesce)
                .tso(pod.coalesce)
                .multi_queue(n > 1)
                .mtu(pod.mtu.unwrap_or_else(|| u32::from(config.node.inner_mtu())));
            if let Some(ns) = &pod.netns {
                o = o.netns(ns);
            }
            let first = Device::create(&o).map_err(failed)?;
            for queues in pods.iter_mut().skip(1) {
                queues.push((id, PodPort::Tap(first.add_queue().map_err(failed)?)));
            }
            pods[0].push((id, PodPort::Tap(first)));
        } else {
            let name = pod.interface.as_deref().unwrap_or_default();
            let ns = pod.netns.as_deref().map(netns_path);
            // The veth's offloads stay as the pod's runtime left them (on, by default): their large frames and
            // partial checksums are said so in a header, and cut and finished by the driver. Several workers share
            // the interface in a fanout group, each flow on one of them (`AgentConfig::resolve` runs one worker
            // where the host has no fanout groups).
            let ports = if n > 1 {
                PacketSocket::attach_group(name, ns.as_deref(), n, pod.coalesce).map_err(failed)?
            } else if pod.coalesce {
                vec![PacketSocket::attach_offloaded(name, ns.as_deref()).map_err(failed)?]
            } else {
                vec![PacketSocket::attach(name, ns.as_deref()).map_err(failed)?]
            };
            for (queues, port) in pods.iter_mut().zip(ports) {
                queues.push((id, PodPort::Packet(port)));
            }
        }
    }
    let underlays: Vec<Underlay> = match &config.node.backend {
        BackendConfig::HostGw => {
            let name = config.underlay.interface.as_deref().unwrap_or_default();
            let ports = if n > 1 {
                PacketSocket::attach_group(name, None, n, false).map_err(failed)?
            } else {
                vec![PacketSocket::attach(name, None).map_err(failed)?]
            };
            ports.into_iter().map(Underlay::Packet).collect()
        }
        backend => {
            let port = match backend {
                BackendConfig::Vxlan(v) => v.port,
                BackendConfig::Udp(u) => u.port,
                BackendConfig::HostGw => 0,
            };
            let u = &config.underlay;
            let options = UdpOptions { batching: u.batching, gso: u.gso, gro: u.gro, ..UdpOptions::default() };
            let addr = SocketAddrV4::new(config.node.underlay.node_ip, port);
            // One socket per worker on the same address, a program picking each datagram's by its inner flow:
            // a flow's packets stay on one worker, in order.
            let ports = if n > 1 {
                UdpPort::bind_group(addr, n, options, Steering::for_backend(backend)).map_err(failed)?
            } else {
                vec![UdpPort::bind(addr, options).map_err(failed)?]
            };
            ports.into_iter().map(Underlay::Udp).collect()
        }
    };
    let mut tuns: Vec<Option<Device>> = (0..n).map(|_| None).collect();
    if let Some(host) = &config.host {
        let o = DeviceOptions::new(host.tun.clone(), DeviceKind::Tun)
            .mtu(u32::from(config.node.inner_mtu()))
            .multi_queue(n > 1);
        let tun = Device::create(&o).map_err(failed)?;
        tun.set_ipv4(ipnet::Ipv4Net::from(config.node.gateway_ip())).map_err(failed)?;
        for net in &host.routes {
            tun.add_route(*net).map_err(failed)?;
        }
        // A queue per worker: the host's packets (and the answers to them) reach the TUN from whichever worker
        // read them.
        for slot in tuns.iter_mut().skip(1) {
            *slot = Some(tun.add_queue().map_err(failed)?);
        }
        tuns[0] = Some(tun);
    }
    let driver_config = DriverConfig::default().batch(config.batch).buffers(config.buffers);
    pods.into_iter()
        .zip(underlays)
        .zip(tuns)
        .map(|((pods, underlay), tun)| {
            Driver::new(control.worker(), pods, underlay, tun, driver_config).map_err(failed)
        })
        .collect()
}

/// Starts worker `index` on its own thread: its driver runs until `stop`, answering requests for its counters,
/// closing the pods whose namespace is gone, logging the ports it closed.
pub(crate) fn spawn(
    index: usize,
    mut driver: Driver,
    stop: &Stop,
    bell: &Arc<Bell>,
) -> Result<WorkerHandle, AgentError> {
    let runtime = |e: tweed_io::Error| AgentError::Runtime(e.to_string());
    driver.set_stop(stop.clone()).map_err(runtime)?;
    let waker = Waker::new().map_err(runtime)?;
    driver.set_waker(waker.clone()).map_err(runtime)?;
    let asked = Arc::new(AtomicU64::new(0));
    let report = Arc::new(Mutex::new(Report::default()));
    let (a, r, b) = (asked.clone(), report.clone(), bell.clone());
    let thread = std::thread::Builder::new()
        .name(format!("tweed-worker-{index}"))
        .spawn(move || work(driver, &a, &r, &b))
        .map_err(|e| AgentError::Runtime(format!("cannot start worker {index}: {e}")))?;
    Ok(WorkerHandle { thread: Some(thread), waker, asked, report })
}

fn publish(d: &Driver, report: &Mutex<Report>, generation: u64) {
    d.node().publish_counters();
    let mut r = report.lock().unwrap_or_else(PoisonError::into_inner);
    *r = Report {
        generation,
        stats: d.stats(),
        fdb_learned: d.node().bridge().fdb().learned_len(),
        arp_entries: d.node().bridge().arp().len(),
    };
}

fn work(mut driver: Driver, asked: &AtomicU64, report: &Mutex<Report>, bell: &Bell) -> Result<(), tweed_io::Error> {
    // Only pods in a network namespace can lose it under the driver.
    let orphans = driver.pods().iter().any(|(_, p)| p.netns().is_some());
    let mut next_orphan_check = orphans.then(|| Instant::now() + ORPHAN_CHECK);
    let mut answered = 0;
    let result = driver.run(|d| {
        if let Some(t) = next_orphan_check.as_mut()
            && Instant::now() >= *t
        {
            d.close_orphaned();
            *t = Instant::now() + ORPHAN_CHECK;
        }
        for c in d.take_closed() {
            tracing::warn!(port = c.port.0, name = %c.name, error = %c.error, "port closed: its device is gone");
        }
        let generation = asked.load(Ordering::Acquire);
        if generation != answered {
            answered = generation;
            publish(d, report, generation);
            bell.ring(|r| r.answers += 1);
        }
        next_orphan_check.map(|t| t.saturating_duration_since(Instant::now()))
    });
    publish(&driver, report, answered);
    // Its queues closed: the devices go with the last worker's.
    drop(driver);
    bell.ring(|r| r.exited += 1);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The control thread's sleep ends at its deadline, at a request for the counters (taken once), at a
    /// worker's answer, and at once for good after a worker ended.
    #[test]
    fn the_bell_wakes_the_control_thread() {
        let trigger = StatsTrigger::new();
        let bell = &trigger.0;
        let start = Instant::now();
        let rung = bell.wait(Some(start + Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(!rung.stats_asked && rung.exited == 0);
        trigger.request();
        assert!(bell.wait(None).stats_asked, "a request ends a wait without deadline");
        let start = Instant::now();
        assert!(!bell.wait(Some(start + Duration::from_millis(30))).stats_asked, "taken once");
        let ringer = {
            let trigger = trigger.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                trigger.0.ring(|r| r.answers += 1);
            })
        };
        assert_eq!(bell.wait(Some(Instant::now() + Duration::from_secs(10))).answers, 1);
        ringer.join().unwrap();
        bell.ring(|r| r.exited += 1);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(bell.wait(None).exited, 1);
        }
        assert!(start.elapsed() < Duration::from_secs(1), "no wait once a worker ended");
    }
}
