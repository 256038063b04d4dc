//! Links and what is built of them: veth pairs ([`veth`], [`End`]), the two-node underlay, pods ([`Pod`]) and
//! kernel flannel nodes ([`KernelFlannel`]).

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use tweed_wire::ethernet::MacAddr;

use super::{NetNs, Result, gateway, node_ip, node_mac, pod_ip, pod_mac, run, subnet, vtep_mac, words};

/// One end of a veth pair: where it goes and how it is set up. Ends are brought up.
#[derive(Clone, Debug)]
pub struct End<'a> {
    ns: Option<&'a NetNs>,
    name: String,
    mac: Option<MacAddr>,
    addr: Option<Ipv4Net>,
    mtu: Option<u32>,
    master: Option<String>,
}

impl<'a> End<'a> {
    /// An end called `name` inside `ns`.
    pub fn new(ns: &'a NetNs, name: &str) -> Self {
        Self { ns: Some(ns), name: name.to_owned(), mac: None, addr: None, mtu: None, master: None }
    }
    /// An end in the root namespace (name it with [`unique_ifname`]); the [`Veth`] guard deletes it.
    pub fn root(name: &str) -> Self {
        Self { ns: None, name: name.to_owned(), mac: None, addr: None, mtu: None, master: None }
    }
    /// Its MAC address.
    pub fn mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }
    /// An address and prefix, e.g. `192.168.0.1/24`.
    pub fn addr(mut self, addr: Ipv4Net) -> Self {
        self.addr = Some(addr);
        self
    }
    /// Its MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }
    /// Enslaves it to a bridge in its namespace.
    pub fn master(mut self, bridge: &str) -> Self {
        self.master = Some(bridge.to_owned());
        self
    }

    fn ip(&self, args: &[&str]) -> Result<String> {
        match self.ns {
            Some(ns) => ns.ip(args),
            None => run(&[&["ip"], args].concat()),
        }
    }

    fn configure(&self) -> Result<()> {
        let name = self.name.as_str();
        if let Some(mac) = self.mac {
            self.ip(&["link", "set", "dev", name, "address", &mac.to_string()])?;
        }
        if let Some(mtu) = self.mtu {
            self.ip(&["link", "set", "dev", name, "mtu", &mtu.to_string()])?;
        }
        if let Some(bridge) = &self.master {
            self.ip(&["link", "set", "dev", name, "master", bridge])?;
        }
        if let Some(addr) = self.addr {
            self.ip(&["addr", "add", &addr.to_string(), "dev", name])?;
        }
        self.ip(&["link", "set", "dev", name, "up"]).map(drop)
    }
}

/// A link in the root namespace, deleted on drop (it may already be gone with its peer's namespace).
#[must_use = "the link is deleted when this guard is dropped"]
#[derive(Debug)]
pub struct RootLink(String);

impl RootLink {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for RootLink {
    fn drop(&mut self) {
        if run(&["ip", "link", "show", "dev", &self.0]).is_ok() {
            let _ = run(&["ip", "link", "del", "dev", &self.0]);
        }
    }
}

/// A veth pair; ends inside namespaces go with their namespace, ends in the root namespace with this guard.
#[must_use = "root-namespace ends are deleted when this guard is dropped"]
#[derive(Debug)]
pub struct Veth {
    root_ends: Vec<RootLink>,
}

/// Creates a veth pair `a`–`b`, each end directly in its namespace, configured and up.
pub fn veth(a: End<'_>, b: End<'_>) -> Result<Veth> {
    let mut argv = vec!["ip", "link", "add", a.name.as_str()];
    if let Some(ns) = a.ns {
        argv.extend(["netns", ns.name()]);
    }
    argv.extend(["type", "veth", "peer", "name", b.name.as_str()]);
    if let Some(ns) = b.ns {
        argv.extend(["netns", ns.name()]);
    }
    run(&argv)?;
    // The guard exists before configuration, so a failure below still deletes the root ends.
    let root_ends = [&a, &b].iter().filter(|e| e.ns.is_none()).map(|e| RootLink(e.name.clone())).collect();
    let pair = Veth { root_ends };
    a.configure()?;
    b.configure()?;
    Ok(pair)
}

impl Veth {
    /// Names of its ends in the root namespace.
    pub fn root_ends(&self) -> Vec<&str> {
        self.root_ends.iter().map(RootLink::name).collect()
    }
}

/// Two node namespaces (`node1`, `node2`) whose `eth0`s are the two ends of one veth: `192.168.0.1/24` and
/// `192.168.0.2/24`, MACs [`node_mac`], the given MTU.
pub fn underlay_pair(mtu: u32) -> Result<[NetNs; 2]> {
    let nodes = [NetNs::new("node1")?, NetNs::new("node2")?];
    let end = |i: u8| {
        // A /24 is always a valid prefix length.
        let addr = Ipv4Net::new(node_ip(i), 24).unwrap();
        End::new(&nodes[usize::from(i - 1)], "eth0").mac(node_mac(i)).addr(addr).mtu(mtu)
    };
    let _in_namespaces = veth(end(1), end(2))?;
    Ok(nodes)
}

/// Switches off checksum and segmentation offloads of `ifname` in `ns`, so that a packet socket on the other end of
/// a veth sees complete checksums and no frame bigger than the MTU.
pub fn disable_offloads(ns: &NetNs, ifname: &str) -> Result<()> {
    ns.run(&["ethtool", "-K", ifname, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off"]).map(drop)
}

// ---------------------------------------------------------------------------------------------------------------
// Pods

/// A pod: a namespace whose `eth0` is `10.244.node.host/24` with MAC [`pod_mac`] and a default route via
/// `10.244.node.1`. `eth0` is either made by someone else ([`wait_eth0`](Self::wait_eth0): a TAP the agent moves in)
/// or a veth to the node ([`veth_to`](Self::veth_to)).
#[must_use = "the pod's namespace is deleted when this guard is dropped"]
#[derive(Debug)]
pub struct Pod {
    /// Its namespace.
    pub ns: NetNs,
    node: u8,
    host: u8,
    mtu: Option<u32>,
}

impl Pod {
    /// An empty pod namespace (`pod<node>-<host>`); `host` ≥ 2 (`.1` is the gateway).
    pub fn new(node: u8, host: u8) -> Result<Self> {
        assert!(host >= 2 && host != 255, "pod host number {host} is the gateway or broadcast");
        Ok(Self { ns: NetNs::new(&format!("pod{node}-{host}"))?, node, host, mtu: None })
    }

    /// Sets `eth0`'s MTU when it is configured (flannel gives pods the overlay MTU, underlay − 50).
    pub fn with_mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Its address.
    pub fn ip(&self) -> Ipv4Addr {
        pod_ip(self.node, self.host)
    }

    /// Its `eth0` MAC.
    pub fn mac(&self) -> MacAddr {
        pod_mac(self.node, self.host)
    }

    /// Its gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        gateway(self.node)
    }

    /// Waits until `eth0` appears (a TAP another process moves into the namespace), then configures it.
    pub fn wait_eth0(&self, timeout: Duration) -> Result<()> {
        self.ns.wait_for_link("eth0", timeout)?;
        self.configure_eth0()
    }

    /// Makes `eth0` a veth whose other end, `host_if`, is up (no address) in `node`, then configures `eth0`.
    pub fn veth_to(&self, node: &NetNs, host_if: &str) -> Result<()> {
        let mut host_end = End::new(node, host_if);
        if let Some(mtu) = self.mtu {
            host_end = host_end.mtu(mtu);
        }
        let _in_namespaces = veth(End::new(&self.ns, "eth0"), host_end)?;
        self.configure_eth0()
    }

    fn configure_eth0(&self) -> Result<()> {
        let ns = &self.ns;
        ns.ip(&["link", "set", "dev", "eth0", "down"])?;
        ns.ip(&["link", "set", "dev", "eth0", "address", &self.mac().to_string()])?;
        if let Some(mtu) = self.mtu {
            ns.ip(&["link", "set", "dev", "eth0", "mtu", &mtu.to_string()])?;
        }
        ns.ip(&["addr", "add", &format!("{}/24", self.ip()), "dev", "eth0"])?;
        ns.ip(&["link", "set", "dev", "eth0", "up"])?;
        ns.ip(&["route", "add", "default", "via", &self.gateway().to_string(), "dev", "eth0"]).map(drop)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A kernel flannel node

/// A node set up exactly as flannel's vxlan backend sets it up: `flannel.1` (VNI 1, port 8472, `nolearning`, MAC
/// [`vtep_mac`], MTU underlay − 50, `10.244.i.0/32`), a `cni0` bridge with `10.244.i.1/24`, forwarding on; per
/// peer a route, a permanent neighbour and an FDB entry; pods are veths on `cni0`.
#[derive(Debug)]
pub struct KernelFlannel {
    /// The node's namespace (owned: deleted with this node).
    pub ns: NetNs,
    index: u8,
    mtu: u32,
}

impl KernelFlannel {
    /// Sets up node `index` in `ns`, on the underlay link `underlay_if` (address [`node_ip`]`(index)`, MTU
    /// `underlay_mtu`).
    pub fn new(ns: NetNs, index: u8, underlay_if: &str, underlay_mtu: u32) -> Result<Self> {
        let mtu = underlay_mtu - 50;
        let (local, vtep, gw) = (node_ip(index), vtep_mac(index), gateway(index));
        // What flannel's vxlan backend runs (flannel.1: vxlan id 1 dstport 8472 nolearning, VtepMAC, neighbour
        // and FDB entries per peer, the onlink route), in flannel's order.
        let ip = |line: String| ns.ip(&words(&line)).map(drop);
        ip(format!("link add flannel.1 type vxlan id 1 dstport 8472 local {local} dev {underlay_if} nolearning"))?;
        ip(format!("link set dev flannel.1 address {vtep} mtu {mtu}"))?;
        ip(format!("addr add 10.244.{index}.0/32 dev flannel.1"))?;
        ip("link set dev flannel.1 up".to_owned())?;
        ip("link add cni0 type bridge".to_owned())?;
        ip(format!("addr add {gw}/24 dev cni0"))?;
        ip("link set dev cni0 up".to_owned())?;
        ns.sysctl("net.ipv4.ip_forward", "1")?;
        Ok(Self { ns, index, mtu })
    }

    /// Its index `i` (subnet `10.244.i.0/24`).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// `flannel.1`'s MTU (the pods' MTU).
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// What flannel adds when it learns the lease of node `peer` (subnet `10.244.peer.0/24`, `VtepMAC`
    /// `peer_vtep`, public IP `peer_ip`): route via `10.244.peer.0` onlink, permanent neighbour, FDB entry.
    pub fn add_peer(&self, peer: u8, peer_vtep: MacAddr, peer_ip: Ipv4Addr) -> Result<()> {
        let (net, vtep_ip, ns) = (subnet(peer), format!("10.244.{peer}.0"), self.ns.name());
        self.ns.ip(&words(&format!("route add {net} via {vtep_ip} dev flannel.1 onlink")))?;
        self.ns.ip(&words(&format!("neigh add {vtep_ip} lladdr {peer_vtep} dev flannel.1 nud permanent")))?;
        run(&words(&format!("bridge -n {ns} fdb append {peer_vtep} dev flannel.1 dst {peer_ip}"))).map(drop)
    }

    /// A pod `10.244.i.host` on `cni0` (host end `veth<host>`), MTU [`mtu`](Self::mtu).
    pub fn add_pod(&self, host: u8) -> Result<Pod> {
        let pod = Pod::new(self.index, host)?.with_mtu(self.mtu);
        let host_if = format!("veth{host}");
        pod.veth_to(&self.ns, &host_if)?;
        self.ns.ip(&["link", "set", "dev", &host_if, "master", "cni0"])?;
        Ok(pod)
    }
}

/// Two kernel flannel nodes on [`underlay_pair`]`(underlay_mtu)`, each the other's peer.
pub fn kernel_flannel_pair(underlay_mtu: u32) -> Result<[KernelFlannel; 2]> {
    let [n1, n2] = underlay_pair(underlay_mtu)?;
    let k1 = KernelFlannel::new(n1, 1, "eth0", underlay_mtu)?;
    let k2 = KernelFlannel::new(n2, 2, "eth0", underlay_mtu)?;
    k1.add_peer(2, vtep_mac(2), node_ip(2))?;
    k2.add_peer(1, vtep_mac(1), node_ip(1))?;
    Ok([k1, k2])
}
