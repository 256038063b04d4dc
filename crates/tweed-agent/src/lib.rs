//! The tweed node agent as a library: its configuration file, resolved against the host and the lease into a
//! complete configuration, and an [`Agent`] of many workers run until a stop handle fires.
//!
//! Why a crate of its own: the agent is a layer above the Linux edges (`tweed-io`) and the control plane
//! (`tweed-control`), which must not depend on each other; here they meet. Embedders and tests run an agent in
//! their own process (`Agent::start`, then `Agent::run` on a thread, a `tweed_io::Stop` to end it) without the
//! command line; and the file format's serde and toml stay out of `tweed-io`.
//!
//! The path from text to a running agent:
//!
//! 1. [`AgentFile`]: the file as serde reads it, every field optional; [`AgentFile::check`] says what the file
//!    alone can (each error names its field), which is what `tweed agent --check` prints.
//! 2. [`AgentConfig::resolve`]: the file against the host ([`Host`]: the underlay interface's MAC, the cores) and
//!    the lease ([`Leased`]: the pod subnet a `[store]` gave), with every port numbered by a [`PortPlan`] (pods
//!    1 to n, the underlay, the host's TUN): nothing left to fill in.
//! 3. [`Agent::start`]: the lease acquired first (its subnet is the node's), then the shared
//!    `tweed_overlay::Control` and its workers, each a thread with a `tweed_io::Driver` over its own node, pool,
//!    TAP queue per pod and `SO_REUSEPORT` underlay socket (a program steers each inner flow to one
//!    worker), or its socket of an AF_PACKET fanout group. [`Agent::run`] keeps the lease, applies the store's
//!    changes to the control (the only thread that talks to the store; the workers never wait for it), logs the
//!    counters on request ([`StatsTrigger`], SIGUSR1 in the command) and periodically, and tears down.
//!
//! ```toml
//! [node]                       # a tweed_overlay::NodeConfig less what the agent sets (ports, port security)
//! pod_subnet = "10.244.1.0/24" # left out with a [store], which leases one
//! [node.underlay]
//! node_ip = "192.168.0.1"      # the address the underlay socket binds
//! mtu = 1500                   # node_mac may be left out when [underlay].interface is given
//! [node.backend]
//! type = "vxlan"
//! vtep_mac = "02:00:00:00:00:01"
//! [[node.peers]]
//! subnet = "10.244.2.0/24"
//! node_ip = "192.168.0.2"
//! vtep_mac = "02:00:00:00:00:02"
//!
//! [underlay]
//! interface = "eth0"           # host-gw: tweed sends and receives frames on it (AF_PACKET)
//! batching = true              # recvmmsg/sendmmsg; false: one datagram per system call
//! gso = true                   # equal-size datagrams to one peer as one UDP GSO train
//! gro = true                   # and trains from a peer received coalesced (UDP GRO)
//!
//! [agent]                      # optional; the defaults shown
//! batch = 64                   # packets read from one port per round (1 to 256)
//! buffers = 4096               # 2 KiB packet buffers per worker (1 to 262144)
//! workers = 2                  # default: the number of cores (1 to 64; AF_PACKET ports need Linux 6.2)
//! stats_interval_s = 0         # counters every this many seconds (0: on SIGUSR1 and at exit; at most 86400)
//! port_security = true         # a pod may send only from its own addresses (given, or learnt from its ARP)
//!
//! [[pods]]
//! tap = "eth0"                 # a TAP created by tweed (a queue per worker)...
//! netns = "pod1"               # ...inside this network namespace (the pod's eth0)
//! addresses = ["10.244.1.2"]   # the pod's own addresses (port security)
//! [[pods]]
//! interface = "veth-pod2"      # or an existing interface (a veth's host end), attached with AF_PACKET
//!
//! [store]                      # optional: subnet leases and peers from a lease store, as flannel does
//! kind = "file"                # "file" (path = …) or "etcd" (endpoints = […], with the `etcd` feature)
//! path = "/var/lib/tweed/leases.json"
//! ttl_s = 86400                # the lease's TTL, renewed before it runs out
//! subnet_file = "/run/tweed/subnet.env"  # optional: flannel's subnet.env, written and read back on restart
//!
//! [host]                       # optional: the host's own traffic into the overlay
//! tun = "tweed0"               # a TUN with the gateway address, routes to the pod subnets through it
//! ```

#[cfg(target_os = "linux")]
mod agent;
mod check;
mod config;
mod file;
mod lease;
#[cfg(target_os = "linux")]
mod worker;

#[cfg(target_os = "linux")]
pub use agent::{Agent, AgentStats};
pub use check::MAX_WORKERS;
#[cfg(target_os = "linux")]
pub use config::System;
pub use config::{AgentConfig, Host, HostTun, Leased, PortPlan};
pub use file::{
    AgentFile, AgentOwned, AgentSpec, HostSpec, NodeSection, NodeUnderlay, PodSpec, StoreKind, StoreSpec, UnderlaySpec,
};
#[cfg(target_os = "linux")]
pub use worker::StatsTrigger;

/// Why a configuration file was refused: what to fix, in which field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Why an agent did not start or stopped with a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentError {
    /// Its input is wrong: the file, the store's network config, a device that cannot be made as the file says.
    Input(String),
    /// Something failed at run time: the store unavailable, the lease lost, a worker failed.
    Runtime(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Input(m) | Self::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AgentError {}

#[cfg(test)]
mod tests;
