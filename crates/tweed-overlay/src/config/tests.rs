use super::*;

const TOML: &str = r#"
pod_subnet = "10.244.1.0/24"
pod_ports = [1, 2]

[underlay]
node_ip = "192.168.0.1"
node_mac = "02:00:00:00:01:01"
mtu = 1450

[backend]
type = "vxlan"
vtep_mac = "02:00:00:00:00:01"

[[peers]]
subnet = "10.244.2.0/24"
node_ip = "192.168.0.2"
vtep_mac = "02:00:00:00:00:02"
"#;

#[test]
fn test_toml_defaults() {
    let c = NodeConfig::from_toml_str(TOML).unwrap();
    assert_eq!(c.gateway_ip(), Ipv4Addr::new(10, 244, 1, 1));
    assert_eq!(c.gateway_mac(), MacAddr::new(0x0a, 0x58, 10, 244, 1, 1));
    assert_eq!(c.underlay.mtu, 1450);
    assert_eq!(c.underlay.port, 0);
    let BackendConfig::Vxlan(v) = &c.backend else { panic!("not vxlan: {:?}", c.backend) };
    assert_eq!((v.vni, v.port, v.udp_checksum, v.source_ports), (1, 8472, false, (32768, 60999)));
    assert_eq!(c.peers[0].vtep_mac, Some(MacAddr::new(2, 0, 0, 0, 0, 2)));
    assert_eq!(c.peers[0].node_mac, None);
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn test_json_round_trip_equals_builder() {
    let built = NodeBuilder::new(
        "10.244.1.0/24".parse().unwrap(),
        Ipv4Addr::new(192, 168, 0, 1),
        MacAddr::new(2, 0, 0, 0, 1, 1),
    )
    .vxlan(VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)))
    .pod_ports([1, 2])
    .mtu(1450)
    .peer(
        PeerConfig::new("10.244.2.0/24".parse().unwrap(), Ipv4Addr::new(192, 168, 0, 2))
            .with_vtep_mac(MacAddr::new(2, 0, 0, 0, 0, 2)),
    )
    .into_config();
    assert_eq!(built, NodeConfig::from_toml_str(TOML).unwrap());
    let json = serde_json::to_string(&built).unwrap();
    assert_eq!(NodeConfig::from_json_str(&json).unwrap(), built);
}

#[test]
fn test_udp_and_host_gw_backends() {
    let s = TOML.replace("type = \"vxlan\"\nvtep_mac = \"02:00:00:00:00:01\"", "type = \"udp\"");
    let c = NodeConfig::from_toml_str(&s).unwrap();
    assert_eq!(c.backend, BackendConfig::Udp(UdpConfig { port: 8285 }));
    let s = TOML.replace("type = \"vxlan\"\nvtep_mac = \"02:00:00:00:00:01\"", "type = \"host-gw\"");
    assert_eq!(NodeConfig::from_toml_str(&s).unwrap().backend, BackendConfig::HostGw);
}

#[test]
fn test_port_security_and_limits_from_toml() {
    let s = TOML.replacen(
        "pod_ports = [1, 2]\n",
        "pod_ports = [1, 2]\nport_security = true\n[[port_addresses]]\nport = 1\nips = [\"10.244.1.2\"]\n\
         [[port_addresses]]\nport = 2\nips = [\"10.244.1.3\", \"10.244.1.4\"]\n[limits]\narp_probes = 5\n",
        1,
    );
    let c = NodeConfig::from_toml_str(&s).unwrap();
    assert!(c.port_security);
    assert_eq!(c.port_addresses[1].ips, [Ipv4Addr::new(10, 244, 1, 3), Ipv4Addr::new(10, 244, 1, 4)]);
    assert_eq!((c.limits.arp_probes, c.limits.arp_entries), (5, 256));
    assert_eq!(c.validate(), Ok(()));
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(NodeConfig::from_json_str(&json).unwrap(), c);
    // Off and empty: left out of what is written.
    let plain = NodeConfig::from_toml_str(TOML).unwrap();
    assert!(!serde_json::to_string(&plain).unwrap().contains("port_"));
    let mut bad = c;
    bad.limits.arp_probes = 0;
    let err = bad.validate().unwrap_err();
    assert_eq!(err, ConfigError::LimitOutOfRange { field: "arp_probes", value: 0, min: 1, max: 16 });
    assert_eq!(err.to_string(), "limits.arp_probes = 0 is out of range 1..=16");
    // Every default is within its range.
    for (field, value, min, max) in Limits::default().ranges() {
        assert!((min..=max).contains(&value), "{field}");
    }
}

#[test]
fn test_invalid() {
    assert!(matches!(NodeConfig::from_toml_str("pod_subnet = 3"), Err(ConfigError::Parse(_))));
    let bad_mac = TOML.replace("02:00:00:00:00:02", "02:00:00:00:00");
    assert!(matches!(NodeConfig::from_toml_str(&bad_mac), Err(ConfigError::Parse(_))));
    let mut c = NodeConfig::from_toml_str(TOML).unwrap();
    c.gateway_ip = Some(Ipv4Addr::new(10, 244, 2, 1));
    assert_eq!(c.validate(), Err(ConfigError::GatewayOutsideSubnet(Ipv4Addr::new(10, 244, 2, 1))));
    let mut c = NodeConfig::from_toml_str(TOML).unwrap();
    c.pod_ports.push(0);
    assert_eq!(c.validate(), Err(ConfigError::InvalidPort(0)));
    let mut c = NodeConfig::from_toml_str(TOML).unwrap();
    c.underlay.mtu = 500;
    assert_eq!(c.validate(), Err(ConfigError::MtuTooSmall(500)));
    let mut c = NodeConfig::from_toml_str(TOML).unwrap();
    c.underlay.node_mac = MacAddr::BROADCAST;
    assert!(matches!(c.validate(), Err(ConfigError::InvalidMac { field: "underlay.node_mac", .. })));
    let mut c = NodeConfig::from_toml_str(TOML).unwrap();
    c.backend = BackendConfig::Vxlan(VxlanConfig { vni: 1 << 24, ..VxlanConfig::new(MacAddr::new(2, 0, 0, 0, 0, 1)) });
    assert_eq!(c.validate(), Err(ConfigError::InvalidVni(1 << 24)));
}
