//! The agent file's parsing and checks.
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
interface = "veth-p2"
"#;

#[test]
fn good_file() {
    let c = AgentConfig::from_toml_str(GOOD).unwrap();
    assert_eq!(c.node.pod_ports, [1, 2]);
    assert_eq!(c.node.underlay.socket_port, Some(SOCKET_PORT));
    assert_eq!(c.pods[0].netns.as_deref(), Some(std::path::Path::new("pod1")));
    assert!(c.underlay.batching);
    assert!(!c.node_mac_from_interface);
    assert_eq!(c.agent, AgentSpec::default());
    assert_eq!((c.host, c.node.host_port), (None, None));
    let c =
        AgentConfig::from_toml_str(&format!("{GOOD}[host]\ntun = \"tweed0\"\nroutes = [\"10.244.0.0/16\"]\n")).unwrap();
    assert_eq!(c.node.host_port, Some(HOST_PORT));
    let host = c.host.unwrap();
    assert_eq!((host.tun.as_str(), host.routes), ("tweed0", vec!["10.244.0.0/16".parse().unwrap()]));
}

/// The README's agent snippets (`[store]`, `[host]`) are what the agent reads.
#[test]
fn readme_snippets_parse() {
    let readme = include_str!("../../../../README.md");
    let blocks: Vec<&str> =
        readme.split("```toml\n").skip(1).map(|b| b.split("```").next().unwrap_or_default()).collect();
    assert!(blocks.len() >= 2, "the README lost its agent snippets");
    for block in blocks {
        let c = AgentConfig::from_toml_str(&format!("{GOOD}{block}")).unwrap_or_else(|e| panic!("{block}: {e}"));
        assert!(c.store.is_some() || c.host.is_some(), "{block}");
    }
}

/// Findings 10 and 12: sizes the agent and the driver depend on are checked, each error naming its field and
/// range; a pod MTU above what the backend carries is refused.
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
                .replace("interface = \"veth-p2\"", "interface = \"veth-p2\"\naddresses = [\"10.244.1.5\"]"),
            "pods[1].addresses",
        ),
    ];
    for (text, field) in cases {
        let e = AgentConfig::from_toml_str(&text).map(|_| ()).unwrap_err();
        assert!(e.0.contains(field), "{field}: {e}");
    }
    let c = AgentConfig::from_toml_str(
        &GOOD.replace("netns = \"pod1\"", "netns = \"pod1\"\naddresses = [\"10.244.1.5\", \"10.244.1.6\"]"),
    )
    .unwrap();
    assert!(c.agent.port_security, "on by default");
    let got: Vec<(u16, std::net::Ipv4Addr)> = c.pod_addresses().collect();
    assert_eq!(got, [(1, "10.244.1.5".parse().unwrap()), (1, "10.244.1.6".parse().unwrap())]);
    let c = AgentConfig::from_toml_str(&agent("port_security = false")).unwrap();
    assert!(!c.agent.port_security);
    // An old file's `poll_ms` (the driver's tick, gone) is accepted and ignored, with a warning that says so.
    let c = AgentConfig::from_toml_str(&agent("poll_ms = 20")).unwrap();
    assert_eq!(c.agent.poll_ms, Some(20));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].starts_with("agent.poll_ms = 20 is ignored (remove it)"), "{:?}", c.warnings);
    // A pod MTU above the inner MTU works, with a warning.
    let no_security = agent("port_security = false");
    let c = AgentConfig::from_toml_str(&no_security.replace("tap = \"eth0\"", "tap = \"eth0\"\nmtu = 1500")).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("pods[0].mtu: 1500 is above the node's inner MTU 1450"), "{:?}", c.warnings);
    // The largest pod MTU vxlan carries over a 1500-byte underlay is accepted.
    let c = AgentConfig::from_toml_str(&no_security.replace("tap = \"eth0\"", "tap = \"eth0\"\nmtu = 1450")).unwrap();
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
    ];
    for (text, field) in cases {
        let e = AgentConfig::from_toml_str(&text).unwrap_err();
        assert!(e.0.contains(field), "{field}: {e}");
    }
}
