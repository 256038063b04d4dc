//! The agent file's parsing, checks and resolution.
use super::*;

const GOOD: &str = r#"
[node]
pod_subnet = "10.244.1.0/24"
[node.underlay]
node_ip = "192.168.0.1"
node_mac = "02:00:c0:a8:00:01"
[node.backend]
type = "vxlan"
vtep_mac = "02:00:00:00:00:01"
[[node.peers]]
subnet = "10.244.2.0/24"
node_ip = "192.168.0.2"
vtep_mac = "02:00:00:00:00:02"

[[pods]]
tap = "eth0"
netns = "pod1"
[[pods]]
tap = "eth1"
"#;

/// A machine of `cores` cores whose `eth0` has MAC 02:00:00:00:ee:01 and that shares AF_PACKET ports when
/// `fanout`.
struct FakeHost {
    cores: usize,
    fanout: bool,
}

const HOST: FakeHost = FakeHost { cores: 4, fanout: false };

impl Host for FakeHost {
    fn interface_mac(&self, name: &str) -> Result<tweed_wire::ethernet::MacAddr, String> {
        if name == "eth0" { Ok(tweed_wire::ethernet::MacAddr::new(2, 0, 0, 0, 0xee, 1)) } else { Err("no such".into()) }
    }
    fn cores(&self) -> usize {
        self.cores
    }
    fn packet_fanout(&self) -> bool {
        self.fanout
    }
}

fn resolve(text: &str) -> Result<AgentConfig, ConfigError> {
    AgentConfig::resolve(&AgentFile::from_toml_str(text)?, &HOST, None)
}

fn leased() -> Leased {
    Leased { subnet: "10.244.7.0/24".parse().unwrap(), network: "10.244.0.0/16".parse().unwrap() }
}

#[test]
fn good_file() {
    let c = resolve(GOOD).unwrap();
    assert_eq!(c.node.pod_ports, [1, 2]);
    assert_eq!(c.ports.underlay(), tweed_packet::PortId(3));
    assert_eq!(c.node.underlay.socket_port, Some(3));
    assert_eq!(c.pods[0].netns.as_deref(), Some(std::path::Path::new("pod1")));
    assert_eq!(c.node.underlay.node_mac.to_string(), "02:00:c0:a8:00:01");
    assert!(c.node.port_security, "on by default");
    assert_eq!((c.batch, c.buffers, c.workers, c.stats_interval), (64, 4096, 4, None));
    assert_eq!((c.host, c.node.host_port), (None, None));
    let c = resolve(&format!("{GOOD}[host]\ntun = \"tweed0\"\nroutes = [\"10.244.0.0/16\"]\n")).unwrap();
    assert_eq!(c.node.host_port, Some(4));
    let host = c.host.unwrap();
    assert_eq!((host.tun.as_str(), host.routes), ("tweed0", vec!["10.244.0.0/16".parse().unwrap()]));
    // Left out: the pod subnet and the peers'.
    let c = resolve(&format!("{GOOD}[host]\ntun = \"tweed0\"\n")).unwrap();
    let want: Vec<ipnet::Ipv4Net> = vec!["10.244.1.0/24".parse().unwrap(), "10.244.2.0/24".parse().unwrap()];
    assert_eq!(c.host.unwrap().routes, want);
}

/// The node MAC comes from the underlay interface when the file gives none; host-gw numbers its underlay port.
#[test]
fn node_mac_from_the_interface() {
    let text = GOOD.replace("node_mac = \"02:00:c0:a8:00:01\"\n", "") + "[underlay]\ninterface = \"eth0\"\n";
    let c = resolve(&text).unwrap();
    assert_eq!(c.node.underlay.node_mac.to_string(), "02:00:00:00:ee:01");
    let e = resolve(&text.replace("interface = \"eth0\"", "interface = \"eth9\"")).unwrap_err();
    assert_eq!(e.0, "underlay.interface: cannot read eth9's MAC: no such");
    let gw = text.replace("type = \"vxlan\"\nvtep_mac = \"02:00:00:00:00:01\"", "type = \"host-gw\"");
    let gw = gw.replace("vtep_mac = \"02:00:00:00:00:02\"", "node_mac = \"02:00:00:00:ee:02\"");
    let c = resolve(&gw).unwrap();
    assert_eq!((c.node.underlay.port, c.node.underlay.socket_port), (3, None));
}

/// A leased subnet: the file leaves it out; the host's routes default to the network; the pods' addresses are
/// checked against the lease.
#[test]
fn leased_subnet() {
    let text = GOOD.replace("pod_subnet = \"10.244.1.0/24\"\n", "").replace(
        "[[node.peers]]\nsubnet = \"10.244.2.0/24\"\nnode_ip = \"192.168.0.2\"\nvtep_mac = \"02:00:00:00:00:02\"\n",
        "",
    ) + "[store]\nkind = \"file\"\npath = \"/x\"\n[host]\ntun = \"tweed0\"\n";
    let file = AgentFile::from_toml_str(&text).unwrap();
    file.check().unwrap();
    let c = AgentConfig::resolve(&file, &HOST, Some(&leased())).unwrap();
    assert_eq!(c.node.pod_subnet, Some("10.244.7.0/24".parse().unwrap()));
    assert_eq!(c.host.unwrap().routes, vec!["10.244.0.0/16".parse::<ipnet::Ipv4Net>().unwrap()]);
    let e = AgentConfig::resolve(&file, &HOST, None).unwrap_err();
    assert!(e.0.starts_with("node.pod_subnet: missing"), "{e}");
    let with =
        AgentFile::from_toml_str(&text.replace("netns = \"pod1\"", "netns = \"pod1\"\naddresses = [\"10.244.1.5\"]"))
            .unwrap();
    with.check().unwrap();
    let e = AgentConfig::resolve(&with, &HOST, Some(&leased())).unwrap_err();
    assert_eq!(e.0, "pods[0].addresses: 10.244.1.5 is not a host of the pod subnet 10.244.7.0/24");
    let given = AgentFile::from_toml_str(&format!("{GOOD}[store]\nkind = \"file\"\npath = \"/x\"\n")).unwrap();
    let e = AgentConfig::resolve(&given, &HOST, Some(&leased())).unwrap_err();
    assert!(e.0.starts_with("node.pod_subnet: leave it out"), "{e}");
}

/// `[agent] workers`: given (1 to 64), or the host's cores (at most 64); one with AF_PACKET ports unless the host
/// shares them, with a warning when more were asked for.
#[test]
fn workers_parse_default_and_bound() {
    let agent = |body: &str| format!("{GOOD}[agent]\n{body}\n");
    assert_eq!(resolve(&agent("workers = 2")).unwrap().workers, 2);
    assert_eq!(resolve(&agent("workers = 64")).unwrap().workers, 64);
    for bad in ["workers = 0", "workers = 65"] {
        let e = resolve(&agent(bad)).unwrap_err();
        assert!(e.0.starts_with(&format!("agent.workers: {} is out of range 1 to 64", &bad[10..])), "{e}");
    }
    let e = AgentFile::from_toml_str(&agent("workers = -1")).unwrap_err();
    assert!(e.0.contains("workers"), "{e}");
    let file = AgentFile::from_toml_str(GOOD).unwrap();
    for (cores, want) in [(1, 1), (2, 2), (200, 64)] {
        let c = AgentConfig::resolve(&file, &FakeHost { cores, fanout: false }, None).unwrap();
        assert_eq!(c.workers, want, "{cores} cores");
    }
    let veth = GOOD.replace("tap = \"eth1\"", "interface = \"veth1\"");
    let c = resolve(&veth).unwrap();
    assert_eq!((c.workers, c.warnings.len()), (1, 0), "the default, quietly");
    let c = resolve(&format!("{veth}[agent]\nworkers = 2\n")).unwrap();
    assert_eq!(c.workers, 1);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].starts_with("agent.workers = 2: one worker runs"), "{:?}", c.warnings);
    let file = AgentFile::from_toml_str(&format!("{veth}[agent]\nworkers = 2\n")).unwrap();
    let c = AgentConfig::resolve(&file, &FakeHost { cores: 4, fanout: true }, None).unwrap();
    assert_eq!((c.workers, c.warnings.len()), (2, 0));
}

/// The README's agent snippets (`[store]`, `[host]`) and the examples are what the agent reads.
#[test]
fn readme_snippets_and_examples_parse() {
    let readme = include_str!("../../../README.md");
    let blocks: Vec<&str> =
        readme.split("```toml\n").skip(1).map(|b| b.split("```").next().unwrap_or_default()).collect();
    assert!(blocks.len() >= 2, "the README lost its agent snippets");
    for block in blocks {
        let file = AgentFile::from_toml_str(&format!("{GOOD}{block}")).unwrap_or_else(|e| panic!("{block}: {e}"));
        file.check().unwrap_or_else(|e| panic!("{block}: {e}"));
        assert!(file.store.is_some() || file.host.is_some(), "{block}");
    }
    for example in
        [include_str!("../../../examples/agent/node1.toml"), include_str!("../../../examples/agent/node2.toml")]
    {
        let file = AgentFile::from_toml_str(example).unwrap();
        assert_eq!(file.check().unwrap(), Vec::<String>::new());
        assert_eq!(file.pods.len(), 2);
    }
}

/// Findings 10 and 12: sizes the agent and the driver depend on are checked, each error naming its field and
/// range; a pod MTU above what the backend carries is accepted with a warning.
#[test]
fn sizes_and_mtus_are_checked() {
    let agent = |body: &str| format!("{GOOD}[agent]\n{body}\n");
    let limits = |body: &str| GOOD.replace("[node.underlay]", &format!("[node.limits]\n{body}\n[node.underlay]"));
    let cases = [
        (agent("batch = 0"), "agent.batch"),
        (agent("batch = 100000"), "agent.batch"),
        (agent("buffers = 0"), "agent.buffers"),
        (agent("buffers = 1000000000000"), "agent.buffers"),
        (agent("stats_interval_s = 100000000000"), "agent.stats_interval_s"),
        (limits("max_outputs = 0"), "max_outputs"),
        (limits("max_outputs = 100000000000"), "max_outputs"),
        (GOOD.replace("tap = \"eth0\"", "tap = \"eth0\"\nmtu = 60"), "pods[0].mtu"),
        (format!("{GOOD}[store]\nkind = \"file\"\npath = \"/x\"\nttl_s = 0\n"), "store.ttl_s"),
        (format!("{GOOD}[store]\nkind = \"file\"\npath = \"/x\"\npoll_ms = 0\n"), "store.poll_ms"),
        (format!("{GOOD}[store]\nkind = \"file\"\npath = \"/x\"\nprefix = \"\"\n"), "store.prefix"),
        (
            GOOD.replace(
                "netns = \"pod1\"",
                "netns = \"pod1\"\naddresses = [\"10.244.1.5\", \"10.244.1.6\", \"10.244.1.7\", \"10.244.1.8\", \"10.244.1.9\"]",
            ),
            "at most 4",
        ),
        (GOOD.replace("[node.underlay]", "port_security = true\n[node.underlay]"), "node.port_security"),
        (GOOD.replace("netns = \"pod1\"", "netns = \"pod1\"\naddresses = [\"10.244.2.5\"]"), "pods[0].addresses"),
        (GOOD.replace("netns = \"pod1\"", "netns = \"pod1\"\naddresses = [\"10.244.1.1\"]"), "gateway"),
        (
            GOOD.replace("netns = \"pod1\"", "netns = \"pod1\"\naddresses = [\"10.244.1.5\"]")
                .replace("tap = \"eth1\"", "tap = \"eth1\"\naddresses = [\"10.244.1.5\"]"),
            "pods[1].addresses",
        ),
    ];
    for (text, field) in cases {
        let e = resolve(&text).map(|_| ()).unwrap_err();
        assert!(e.0.contains(field), "{field}: {e}");
    }
    let c =
        resolve(&GOOD.replace("netns = \"pod1\"", "netns = \"pod1\"\naddresses = [\"10.244.1.5\", \"10.244.1.6\"]"))
            .unwrap();
    let got: Vec<(u16, std::net::Ipv4Addr)> = c.pod_addresses().map(|(p, a)| (p.0, a)).collect();
    assert_eq!(got, [(1, "10.244.1.5".parse().unwrap()), (1, "10.244.1.6".parse().unwrap())]);
    assert_eq!(c.node.port_addresses.len(), 1);
    let c = resolve(&agent("port_security = false")).unwrap();
    assert!(!c.node.port_security);
    // An old file's `poll_ms` (the driver's tick, gone) is accepted and ignored, with a warning that says so.
    let c = resolve(&agent("poll_ms = 20")).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].starts_with("agent.poll_ms = 20 is ignored (remove it)"), "{:?}", c.warnings);
    // A pod MTU above the inner MTU works, with a warning.
    let no_security = agent("port_security = false");
    let c = resolve(&no_security.replace("tap = \"eth0\"", "tap = \"eth0\"\nmtu = 1500")).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("pods[0].mtu: 1500 is above the node's inner MTU 1450"), "{:?}", c.warnings);
    // The largest pod MTU vxlan carries over a 1500-byte underlay is accepted.
    let c = resolve(&no_security.replace("tap = \"eth0\"", "tap = \"eth0\"\nmtu = 1450")).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

/// Every mistake names its field.
#[test]
fn errors_name_the_field() {
    let cases = [
        (GOOD.replace("pod_subnet = \"10.244.1.0/24\"", "pod_subnet = \"10.244.1.0/33\""), "pod_subnet"),
        (GOOD.replace("type = \"vxlan\"", "type = \"geneve\""), "geneve"),
        (GOOD.replace("tap = \"eth0\"", "tap = \"eth0\"\ninterface = \"x\""), "pods[0]"),
        (GOOD.replace("[[pods]]\ntap", "[[pods]]\ncolour = \"red\"\ntap"), "colour"),
        (GOOD.replace("node_mac = \"02:00:c0:a8:00:01\"\n", ""), "node.underlay.node_mac"),
        (GOOD.replace("node_mac = \"02:00:c0:a8:00:01\"", "node_mac = \"02:00\""), "node_mac"),
        (GOOD.replace("[node.underlay]", "pod_ports = [1]\n[node.underlay]"), "node.pod_ports"),
        (GOOD.replace("vtep_mac = \"02:00:00:00:00:01\"", "vtep_mac = \"ff:ff:ff:ff:ff:ff\""), "vtep_mac"),
        (
            GOOD.replace("type = \"vxlan\"\nvtep_mac = \"02:00:00:00:00:01\"", "type = \"host-gw\""),
            "underlay.interface",
        ),
        (GOOD.replace("pod_subnet = \"10.244.1.0/24\"\n", ""), "node.pod_subnet"),
        (format!("{GOOD}[store]\nkind = \"file\"\n"), "store.path"),
        (format!("{GOOD}[store]\nkind = \"etcd\"\n"), "store.endpoints"),
        (format!("{GOOD}[store]\nkind = \"zookeeper\"\n"), "zookeeper"),
        (format!("{GOOD}[host]\ntun = \"a-name-far-too-long\"\n"), "host.tun"),
        (GOOD.replace("tap = \"eth0\"", "tap = \"eth/0\""), "pods[0].tap"),
        (format!("{GOOD}[host]\ntun = \"tweed0\"\nroutes = [\"10.244.0.0/33\"]\n"), "routes"),
        (format!("{GOOD}[host]\n"), "tun"),
        (GOOD.replace("[node.underlay]", "host_port = 7\n[node.underlay]"), "node.host_port"),
        (
            GOOD.replace("mtu", "x").replace("node_ip = \"192.168.0.1\"", "socket_port = 9\nnode_ip = \"192.168.0.1\""),
            "node.underlay.socket_port",
        ),
        (GOOD.replace("node_ip = \"192.168.0.1\"", "port = 9\nnode_ip = \"192.168.0.1\""), "node.underlay.port"),
        (GOOD.replace("node_ip = \"192.168.0.1\"\n", ""), "node.underlay.node_ip"),
        (GOOD.replace("[node.backend]\ntype = \"vxlan\"\nvtep_mac = \"02:00:00:00:00:01\"\n", ""), "node.backend"),
        (
            GOOD.replace(
                "[node]\npod_subnet = \"10.244.1.0/24\"\n",
                "[node]\npod_subnet = \"10.244.1.0/24\"\nroutes = []\n",
            ),
            "node.routes",
        ),
        ("[[pods]]\ntap = \"eth0\"\n".to_owned(), "node: missing"),
    ];
    for (text, field) in cases {
        let e = resolve(&text).unwrap_err();
        assert!(e.0.contains(field), "{field}: {e}");
    }
}

/// The port plan: pods 1 to n, the underlay, the host; too many pods refused by name.
#[test]
fn port_plan() {
    let plan = PortPlan::new(0).unwrap();
    assert_eq!((plan.pods().count(), plan.underlay().0, plan.host().0, plan.pod(0)), (0, 1, 2, None));
    let plan = PortPlan::new(65_533).unwrap();
    assert_eq!((plan.pod(65_532).map(|p| p.0), plan.host().0), (Some(65_533), 65_535));
    assert_eq!(
        PortPlan::new(65_534).unwrap_err().0,
        "pods: 65534 [[pods]] are more than the node has port numbers for"
    );
}
