//! Subnet leases in flannel's wire form: the key names and the JSON value flannel writes to etcd.
//!
//! A lease is stored under `<prefix>/subnets/10.244.1.0-24` with the value
//! `{"PublicIP":"192.168.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}`: flannel's
//! `LeaseAttrs` (`pkg/lease/lease.go`). The expiration is not part of the value; etcd keeps it as the key's TTL.
//!
//! Reading accepts everything flannel writes, including the `PublicIPv6`, `BackendV6Data` fields of dual-stack
//! versions (kept, not used). Writing produces the IPv4-only form above, which every flannel version reads.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use std::time::SystemTime;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tweed_wire::ethernet::MacAddr;

use crate::config::BackendType;

/// The default key prefix, flannel's `--etcd-prefix`.
pub const DEFAULT_PREFIX: &str = "/coreos.com/network";

/// How long a lease lives without renewal: flannel's `subnetTTL`, 24 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What a node publishes with its lease: how to reach it, and how it encapsulates.
///
/// Serializes exactly as flannel's `LeaseAttrs`; empty `BackendType` and absent data are omitted, as Go's
/// `omitempty` does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseAttrs {
    /// The node's address on the underlay network (the outer IP of tunnelled packets).
    #[serde(rename = "PublicIP")]
    pub public_ip: Ipv4Addr,
    /// The node's IPv6 underlay address (dual-stack flannel); read and kept, not used.
    #[serde(rename = "PublicIPv6", default, skip_serializing_if = "Option::is_none")]
    pub public_ipv6: Option<Ipv6Addr>,
    /// `vxlan`, `udp`, `host-gw`, … as a string, so leases of backends tweed lacks still read.
    #[serde(rename = "BackendType", default, skip_serializing_if = "String::is_empty")]
    pub backend_type: String,
    /// Backend-specific data: [`VxlanData`] for vxlan.
    #[serde(rename = "BackendData", default, skip_serializing_if = "Option::is_none")]
    pub backend_data: Option<Value>,
    /// Backend data for IPv6 (dual-stack flannel); read and kept, not used.
    #[serde(rename = "BackendV6Data", default, skip_serializing_if = "Option::is_none")]
    pub backend_v6_data: Option<Value>,
}

impl LeaseAttrs {
    /// Attributes for a node reachable at `public_ip` using `backend_type`, without backend data.
    #[must_use]
    pub fn new(public_ip: Ipv4Addr, backend_type: BackendType) -> Self {
        Self {
            public_ip,
            public_ipv6: None,
            backend_type: backend_type.as_str().to_owned(),
            backend_data: None,
            backend_v6_data: None,
        }
    }

    /// Attributes for a vxlan node: its public IP and its VTEP.
    ///
    /// ```
    /// use tweed_control::lease::{LeaseAttrs, VxlanData};
    ///
    /// let attrs = LeaseAttrs::vxlan("192.168.0.1".parse()?, VxlanData { vni: 1, vtep_mac: "0e:2a:5b:7c:11:01".parse()? });
    /// assert_eq!(
    ///     attrs.to_json(),
    ///     r#"{"PublicIP":"192.168.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:2a:5b:7c:11:01"}}"#
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn vxlan(public_ip: Ipv4Addr, data: VxlanData) -> Self {
        Self { backend_data: Some(data.to_value()), ..Self::new(public_ip, BackendType::Vxlan) }
    }

    /// The vxlan data, when this is a vxlan lease whose data reads.
    #[must_use]
    pub fn vxlan_data(&self) -> Option<VxlanData> {
        if self.backend_type != BackendType::Vxlan.as_str() {
            return None;
        }
        self.backend_data.as_ref().and_then(VxlanData::from_value)
    }

    /// The value flannel stores under the subnet key.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing plain strings, addresses and JSON values cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a value flannel stored under a subnet key.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The `BackendData` of a vxlan lease: flannel's `vxlanLeaseAttrs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VxlanData {
    /// The VXLAN network identifier.
    pub vni: u32,
    /// The MAC address of the node's VTEP (`flannel.1`), the inner destination MAC towards that node.
    pub vtep_mac: MacAddr,
}

impl VxlanData {
    /// `{"VNI":1,"VtepMAC":"0e:2a:5b:7c:11:01"}`.
    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::json!({ "VNI": self.vni, "VtepMAC": self.vtep_mac.to_string() })
    }

    /// The data from a `BackendData` value, or `None` when a field is missing or unreadable.
    #[must_use]
    pub fn from_value(v: &Value) -> Option<Self> {
        let vni = v.get("VNI")?.as_u64().and_then(|n| u32::try_from(n).ok())?;
        let vtep_mac = v.get("VtepMAC")?.as_str()?.parse().ok()?;
        Some(Self { vni, vtep_mac })
    }
}

/// A node's claim on a subnet until `expiration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The subnet.
    pub subnet: Ipv4Net,
    /// What the holder published.
    pub attrs: LeaseAttrs,
    /// When the lease lapses unless renewed, by the clock of the node that wrote it. Informational for other nodes'
    /// leases: whether a lease is live is the store's to say (etcd's lease TTL; see each store's documentation).
    pub expiration: SystemTime,
    /// When the lease was created, as a store-wide sequence: etcd's create revision of the key, the in-process
    /// stores' revision of the acquisition. Renewals keep it; a lease that lapsed or was released and is taken again
    /// gets a new one. Of two leases naming one `PublicIP`, the older (lower) keeps its place. 0 when unknown.
    pub created: u64,
}

impl Lease {
    /// The lease has lapsed at `now`.
    #[must_use]
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expiration <= now
    }

    /// When to renew: `margin` before expiration (flannel's `--subnet-lease-renew-margin`, 60 minutes by
    /// default), or at once when that is already past.
    #[must_use]
    pub fn renew_at(&self, margin: Duration) -> SystemTime {
        self.expiration.checked_sub(margin).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// `10.244.1.0-24`: the key name flannel gives a subnet (`MakeSubnetKey`).
#[must_use]
pub fn subnet_key(subnet: &Ipv4Net) -> String {
    format!("{}-{}", subnet.addr(), subnet.prefix_len())
}

/// The subnet named by a key (`10.244.1.0-24`, with or without its directory), or `None`. A dual-stack key's IPv6
/// part (`…&fd00::-64`) is ignored; host bits are not allowed.
#[must_use]
pub fn parse_subnet_key(key: &str) -> Option<Ipv4Net> {
    let name = key.rsplit('/').next()?;
    let v4 = name.split('&').next()?;
    let (addr, len) = v4.rsplit_once('-')?;
    if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let net = Ipv4Net::new(addr.parse().ok()?, len.parse().ok()?).ok()?;
    (net.addr() == net.network()).then_some(net)
}

/// Where things live in a key-value store: flannel's layout under a configurable prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyLayout {
    prefix: String,
}

impl Default for KeyLayout {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl KeyLayout {
    /// The layout under `prefix` (a trailing `/` is dropped).
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.trim_end_matches('/').to_owned() }
    }

    /// The prefix, without a trailing `/`.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/config`.
    #[must_use]
    pub fn config_key(&self) -> String {
        format!("{}/config", self.prefix)
    }

    /// `<prefix>/subnets/`, the directory of leases.
    #[must_use]
    pub fn subnets_dir(&self) -> String {
        format!("{}/subnets/", self.prefix)
    }

    /// `<prefix>/subnets/10.244.1.0-24`.
    #[must_use]
    pub fn subnet_key(&self, subnet: &Ipv4Net) -> String {
        format!("{}{}", self.subnets_dir(), subnet_key(subnet))
    }

    /// The subnet of a full key in this layout's subnet directory, or `None`.
    #[must_use]
    pub fn parse_subnet_key(&self, key: &str) -> Option<Ipv4Net> {
        key.strip_prefix(&self.subnets_dir()).filter(|rest| !rest.contains('/')).and_then(parse_subnet_key)
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.subnet, self.attrs.public_ip)?;
        if !self.attrs.backend_type.is_empty() {
            write!(f, " ({})", self.attrs.backend_type)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLANNEL_VXLAN: &str =
        r#"{"PublicIP":"192.168.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:2a:5b:7c:11:01"}}"#;

    fn mac() -> MacAddr {
        MacAddr::new(0x0e, 0x2a, 0x5b, 0x7c, 0x11, 0x01)
    }

    #[test]
    fn vxlan_attrs_byte_exact() {
        let attrs = LeaseAttrs::vxlan(Ipv4Addr::new(192, 168, 0, 1), VxlanData { vni: 1, vtep_mac: mac() });
        assert_eq!(attrs.to_json(), FLANNEL_VXLAN);
        let back = LeaseAttrs::from_json(FLANNEL_VXLAN).expect("flannel's own form");
        assert_eq!(back, attrs);
        assert_eq!(back.vxlan_data(), Some(VxlanData { vni: 1, vtep_mac: mac() }));
    }

    #[test]
    fn reads_dual_stack_flannel() {
        // What flannel 0.2x writes for an IPv4-only vxlan node: PublicIPv6 is a nil pointer, not omitted.
        let text = r#"{"PublicIP":"10.0.0.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:2a:5b:7c:11:01"}}"#;
        let attrs = LeaseAttrs::from_json(text).expect("flannel's form");
        assert_eq!(attrs.public_ip, Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(attrs.public_ipv6, None);
        assert_eq!(attrs.vxlan_data().map(|d| d.vni), Some(1));
        // And re-emitting drops only the null.
        assert_eq!(attrs.to_json(), text.replace(r#""PublicIPv6":null,"#, ""));

        let dual = r#"{"PublicIP":"10.0.0.7","PublicIPv6":"fd00::7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:2a:5b:7c:11:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:2a:5b:7c:11:02"}}"#;
        let attrs = LeaseAttrs::from_json(dual).expect("dual-stack form");
        assert_eq!(attrs.public_ipv6, Some("fd00::7".parse().expect("literal")));
        assert_eq!(attrs.to_json(), dual);
    }

    #[test]
    fn omitempty_rules() {
        let hostgw = LeaseAttrs::new(Ipv4Addr::new(10, 0, 0, 2), BackendType::HostGw);
        assert_eq!(hostgw.to_json(), r#"{"PublicIP":"10.0.0.2","BackendType":"host-gw"}"#);
        let bare = LeaseAttrs { backend_type: String::new(), ..hostgw };
        assert_eq!(bare.to_json(), r#"{"PublicIP":"10.0.0.2"}"#);
        assert_eq!(LeaseAttrs::from_json(r#"{"PublicIP":"10.0.0.2"}"#).expect("minimal"), bare);
        assert!(LeaseAttrs::from_json(r#"{"PublicIP":"10.0.0"}"#).is_err());
        assert_eq!(bare.vxlan_data(), None);
    }

    #[test]
    fn keys() {
        let sn: Ipv4Net = "10.244.1.0/24".parse().expect("literal");
        assert_eq!(subnet_key(&sn), "10.244.1.0-24");
        let layout = KeyLayout::default();
        assert_eq!(layout.config_key(), "/coreos.com/network/config");
        assert_eq!(layout.subnet_key(&sn), "/coreos.com/network/subnets/10.244.1.0-24");
        assert_eq!(layout.parse_subnet_key("/coreos.com/network/subnets/10.244.1.0-24"), Some(sn));
        assert_eq!(layout.parse_subnet_key("/other/subnets/10.244.1.0-24"), None);
        assert_eq!(KeyLayout::new("/tweed/net/").subnet_key(&sn), "/tweed/net/subnets/10.244.1.0-24");
        assert_eq!(parse_subnet_key("10.244.1.0-24&fd00:0:0:1::-64"), Some(sn));
        for bad in ["10.244.1.0-33", "10.244.1.1-24", "10.244.1.0", "10.244.1.0-", "10.244.1.0-+4", "x-24"] {
            assert_eq!(parse_subnet_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn renew_at_margin() {
        let l = Lease {
            subnet: "10.244.1.0/24".parse().expect("literal"),
            attrs: LeaseAttrs::new(Ipv4Addr::new(10, 0, 0, 1), BackendType::Udp),
            expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(7200),
            created: 1,
        };
        assert_eq!(l.renew_at(Duration::from_secs(3600)), SystemTime::UNIX_EPOCH + Duration::from_secs(3600));
        assert!(l.renew_at(Duration::from_secs(9000)) < SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        assert!(!l.is_expired(SystemTime::UNIX_EPOCH + Duration::from_secs(7199)));
        assert!(l.is_expired(SystemTime::UNIX_EPOCH + Duration::from_secs(7200)));
        assert_eq!(l.to_string(), "10.244.1.0/24 -> 10.0.0.1 (udp)");
    }
}
