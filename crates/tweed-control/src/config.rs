//! The network configuration, in flannel's JSON form (`/coreos.com/network/config`, `net-conf.json`).
//!
//! [`NetworkConfig::from_json`] reads a document the way flannel does (`ParseConfig` then `CheckNetworkConfig` in
//! flannel's `pkg/subnet/config.go`) and fills in the same defaults:
//!
//! - `SubnetLen` absent or 0: 24 when `Network` is a /22 or larger, `Network`'s length + 2 (four subnets) for a
//!   /23 to /28, and an error for anything smaller than a /28;
//! - `SubnetLen` given: at most 30, and at least `Network`'s length + 2;
//! - `SubnetMin` absent or `0.0.0.0`: the *second* subnet of `Network` (the first would put a node's bridge on the
//!   network address); `SubnetMax` absent or `0.0.0.0`: the last subnet; both, when given, must lie inside
//!   `Network` and on a `SubnetLen` boundary;
//! - `Backend` absent: type `udp`; `Backend` given without `Type`: an error (flannel fails later on the backend name
//!   `""`).
//!
//! Like Go's `encoding/json`, field names match exactly or else ignoring ASCII case, unknown fields are ignored and
//! `null` counts as absent. `Network` is masked to its prefix (`10.244.1.0/16` reads as `10.244.0.0/16`), as Go's
//! `net.ParseCIDR` does.
//!
//! tweed is stricter than flannel in two places, both of which flannel only discovers when allocation fails:
//! `SubnetMin` above `SubnetMax` is an error, and so is a backend other than `vxlan`, `udp` and `host-gw`. IPv6
//! (`EnableIPv6: true`) is not supported yet and says so.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

use ipnet::Ipv4Net;
use serde_json::{Map, Value};

/// The default `SubnetLen` for networks of /22 or larger.
pub const DEFAULT_SUBNET_LEN: u8 = 24;
/// The VNI flannel's vxlan backend uses when `Backend.VNI` is absent.
pub const DEFAULT_VXLAN_VNI: u32 = 1;
/// The UDP port the Linux kernel (and so flannel's vxlan backend, with `Port` 0) uses for VXLAN.
pub const DEFAULT_VXLAN_PORT: u16 = 8472;
/// The UDP port flannel's udp backend uses when `Backend.Port` is absent.
pub const DEFAULT_UDP_PORT: u16 = 8285;

/// How packets cross between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendType {
    /// VXLAN encapsulation (`"vxlan"`).
    Vxlan,
    /// flannel's own UDP encapsulation (`"udp"`), flannel's default.
    Udp,
    /// Plain routes via the other node's address, no encapsulation (`"host-gw"`).
    HostGw,
}

impl BackendType {
    /// The name flannel uses in `Backend.Type` and `BackendType`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Vxlan => "vxlan",
            Self::Udp => "udp",
            Self::HostGw => "host-gw",
        }
    }
}

impl fmt::Display for BackendType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendType {
    type Err = ConfigError;

    /// Case-sensitive, like flannel's backend registry.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vxlan" => Ok(Self::Vxlan),
            "udp" => Ok(Self::Udp),
            "host-gw" => Ok(Self::HostGw),
            _ => Err(ConfigError::UnknownBackend { backend_type: s.to_owned() }),
        }
    }
}

/// The `Backend` object: its type, the options tweed understands, and the whole object as written.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendConfig {
    /// `Backend.Type`.
    pub backend_type: BackendType,
    /// `Backend.VNI`, if given.
    pub vni: Option<u32>,
    /// `Backend.Port`, if given and not 0.
    pub port: Option<u16>,
    /// The `Backend` object as written (kept so options tweed ignores, like `DirectRouting`, survive a rewrite).
    pub raw: Map<String, Value>,
}

impl BackendConfig {
    /// A backend of `backend_type` with default options.
    #[must_use]
    pub fn new(backend_type: BackendType) -> Self {
        let mut raw = Map::new();
        raw.insert("Type".into(), Value::from(backend_type.as_str()));
        Self { backend_type, vni: None, port: None, raw }
    }

    /// The VXLAN network identifier: `VNI`, or 1.
    #[must_use]
    pub fn vni_or_default(&self) -> u32 {
        self.vni.unwrap_or(DEFAULT_VXLAN_VNI)
    }

    /// The UDP port: `Port`, or 8472 for vxlan, 8285 for udp, `None` for host-gw.
    #[must_use]
    pub fn port_or_default(&self) -> Option<u16> {
        match (self.port, self.backend_type) {
            (Some(p), _) => Some(p),
            (None, BackendType::Vxlan) => Some(DEFAULT_VXLAN_PORT),
            (None, BackendType::Udp) => Some(DEFAULT_UDP_PORT),
            (None, BackendType::HostGw) => None,
        }
    }
}

/// A validated network configuration with flannel's defaults filled in.
///
/// ```
/// use tweed_control::config::{BackendType, NetworkConfig};
///
/// let cfg = NetworkConfig::from_json(r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}"#)?;
/// assert_eq!(cfg.subnet_len, 24);
/// assert_eq!(cfg.subnet_min.to_string(), "10.244.1.0");
/// assert_eq!(cfg.subnet_max.to_string(), "10.244.255.0");
/// assert_eq!(cfg.backend.backend_type, BackendType::Vxlan);
/// # Ok::<(), tweed_control::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// `Network`: the whole overlay range, host bits cleared.
    pub network: Ipv4Net,
    /// `SubnetLen`: the prefix length of each node's subnet.
    pub subnet_len: u8,
    /// `SubnetMin`: the lowest subnet address a node may get.
    pub subnet_min: Ipv4Addr,
    /// `SubnetMax`: the highest subnet address a node may get.
    pub subnet_max: Ipv4Addr,
    /// `Backend`.
    pub backend: BackendConfig,
}

/// Why a network configuration was refused. Messages name the field and say what to change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConfigError {
    /// The document is not JSON, or not a JSON object.
    Json {
        /// serde_json's message, or what the top level was.
        message: String,
    },
    /// A field has the wrong JSON type or an unreadable value.
    InvalidField {
        /// The field, as flannel names it (`Backend.VNI` for nested ones).
        field: &'static str,
        /// The value as written.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// `Network` is absent or `0.0.0.0/0`.
    MissingNetwork,
    /// `SubnetLen` is above 30: no room for a bridge and a gateway.
    SubnetLenTooLong {
        /// `SubnetLen`.
        subnet_len: u8,
    },
    /// `SubnetLen` does not fit four times into `Network`.
    SubnetLenTooShort {
        /// `SubnetLen`.
        subnet_len: u8,
        /// `Network`.
        network: Ipv4Net,
    },
    /// `Network` is smaller than a /28, too small to split into four /30s.
    NetworkTooSmall {
        /// `Network`.
        network: Ipv4Net,
    },
    /// `SubnetMin` or `SubnetMax` lies outside `Network`.
    OutsideNetwork {
        /// `SubnetMin` or `SubnetMax`.
        field: &'static str,
        /// Its value.
        addr: Ipv4Addr,
        /// `Network`.
        network: Ipv4Net,
    },
    /// `SubnetMin` or `SubnetMax` is not the first address of a `SubnetLen` block.
    NotAligned {
        /// `SubnetMin` or `SubnetMax`.
        field: &'static str,
        /// Its value.
        addr: Ipv4Addr,
        /// `SubnetLen`.
        subnet_len: u8,
    },
    /// `SubnetMin` is above `SubnetMax`: no subnet can ever be handed out.
    EmptyRange {
        /// `SubnetMin`.
        min: Ipv4Addr,
        /// `SubnetMax`.
        max: Ipv4Addr,
    },
    /// `Backend.Type` is not `vxlan`, `udp` or `host-gw` (or is absent from a `Backend` object).
    UnknownBackend {
        /// `Backend.Type` as written (empty when absent).
        backend_type: String,
    },
    /// A setting tweed does not implement yet.
    Unsupported {
        /// The field.
        field: &'static str,
        /// What is missing.
        reason: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json { message } => write!(f, "network config is not a json object: {message}"),
            Self::InvalidField { field, value, expected } => {
                write!(f, "network config field {field} is {value}: expected {expected}")
            }
            Self::MissingNetwork => {
                f.write_str("network config has no Network: set it to the overlay range, like \"10.244.0.0/16\"")
            }
            Self::SubnetLenTooLong { subnet_len } => {
                write!(f, "SubnetLen {subnet_len} is too long: use 30 or less (each node needs at least a /30)")
            }
            Self::SubnetLenTooShort { subnet_len, network } => write!(
                f,
                "SubnetLen {subnet_len} does not fit Network {network} four times: use {} or more, or a larger Network",
                network.prefix_len() + 2
            ),
            Self::NetworkTooSmall { network } => {
                write!(f, "Network {network} is too small: use a /28 or larger")
            }
            Self::OutsideNetwork { field, addr, network } => {
                write!(f, "{field} {addr} is outside Network {network}: pick an address inside it, or remove {field}")
            }
            Self::NotAligned { field, addr, subnet_len } => write!(
                f,
                "{field} {addr} is not on a /{subnet_len} boundary: use the first address of a /{subnet_len} block"
            ),
            Self::EmptyRange { min, max } => {
                write!(f, "SubnetMin {min} is above SubnetMax {max}: no subnet can be handed out, swap or widen them")
            }
            Self::UnknownBackend { backend_type } if backend_type.is_empty() => {
                f.write_str("Backend has no Type: set it to \"vxlan\", \"udp\" or \"host-gw\"")
            }
            Self::UnknownBackend { backend_type } => {
                write!(f, "unknown Backend.Type {backend_type:?}: use \"vxlan\", \"udp\" or \"host-gw\"")
            }
            Self::Unsupported { field, reason } => write!(f, "{field} is not supported: {reason}"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Go's `encoding/json` field lookup: an exact match, else the first ASCII-case-insensitive one. `null` is absent.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
        .filter(|v| !v.is_null())
}

fn invalid(field: &'static str, v: &Value, expected: &'static str) -> ConfigError {
    ConfigError::InvalidField { field, value: v.to_string(), expected }
}

fn ip_field(obj: &Map<String, Value>, name: &'static str) -> Result<Option<Ipv4Addr>, ConfigError> {
    field(obj, name)
        .map(|v| v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| invalid(name, v, "an ipv4 address string")))
        .transpose()
}

/// An unsigned integer field named `name`, reported as `label`, at most `max`.
fn uint_field(
    obj: &Map<String, Value>,
    name: &str,
    label: &'static str,
    max: u64,
    expected: &'static str,
) -> Result<Option<u64>, ConfigError> {
    field(obj, name).map(|v| v.as_u64().filter(|n| *n <= max).ok_or_else(|| invalid(label, v, expected))).transpose()
}

fn bool_field(obj: &Map<String, Value>, name: &'static str) -> Result<Option<bool>, ConfigError> {
    field(obj, name).map(|v| v.as_bool().ok_or_else(|| invalid(name, v, "true or false"))).transpose()
}

impl NetworkConfig {
    /// Reads and validates flannel's JSON network config, filling in flannel's defaults.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Json { message: e.to_string() })?;
        Self::from_value(&value)
    }

    /// [`NetworkConfig::from_json`] for an already parsed document.
    pub fn from_value(value: &Value) -> Result<Self, ConfigError> {
        let Some(obj) = value.as_object() else {
            return Err(ConfigError::Json { message: format!("the top level is {value}") });
        };
        if bool_field(obj, "EnableIPv4")? == Some(false) {
            return Err(ConfigError::Unsupported { field: "EnableIPv4", reason: "tweed needs an ipv4 network" });
        }
        if bool_field(obj, "EnableIPv6")? == Some(true) {
            return Err(ConfigError::Unsupported { field: "EnableIPv6", reason: "tweed has no ipv6 overlay yet" });
        }

        let network = match field(obj, "Network") {
            None => return Err(ConfigError::MissingNetwork),
            Some(v) => v
                .as_str()
                .and_then(|s| s.parse::<Ipv4Net>().ok())
                .ok_or_else(|| invalid("Network", v, "an ipv4 cidr string like \"10.244.0.0/16\""))?
                .trunc(),
        };
        if network.prefix_len() == 0 && network.addr().is_unspecified() {
            return Err(ConfigError::MissingNetwork);
        }
        let net_len = network.prefix_len();

        // At most 32, so the conversion is lossless; 31 and 32 get the clearer error below.
        let subnet_len =
            match uint_field(obj, "SubnetLen", "SubnetLen", 32, "an integer from 0 to 30")?.unwrap_or(0) as u8 {
                0 if net_len > 28 => return Err(ConfigError::NetworkTooSmall { network }),
                0 if net_len <= 22 => DEFAULT_SUBNET_LEN,
                0 => net_len + 2,
                n if n > 30 => return Err(ConfigError::SubnetLenTooLong { subnet_len: n }),
                n if n < net_len + 2 => return Err(ConfigError::SubnetLenTooShort { subnet_len: n, network }),
                n => n,
            };
        let size = 1u32 << (32 - u32::from(subnet_len));

        let check = |name: &'static str, default: Ipv4Addr| -> Result<Ipv4Addr, ConfigError> {
            match ip_field(obj, name)? {
                None => Ok(default),
                Some(a) if a.is_unspecified() => Ok(default),
                Some(a) if !network.contains(&a) => Err(ConfigError::OutsideNetwork { field: name, addr: a, network }),
                Some(a) if a.to_bits() % size != 0 => Err(ConfigError::NotAligned { field: name, addr: a, subnet_len }),
                Some(a) => Ok(a),
            }
        };
        let subnet_min = check("SubnetMin", Ipv4Addr::from_bits(network.network().to_bits() + size))?;
        let subnet_max = check("SubnetMax", Ipv4Addr::from_bits(network.broadcast().to_bits() - (size - 1)))?;
        if subnet_min > subnet_max {
            return Err(ConfigError::EmptyRange { min: subnet_min, max: subnet_max });
        }

        let backend = match field(obj, "Backend") {
            None => BackendConfig::new(BackendType::Udp),
            Some(v) => Self::backend(v)?,
        };
        Ok(Self { network, subnet_len, subnet_min, subnet_max, backend })
    }

    fn backend(v: &Value) -> Result<BackendConfig, ConfigError> {
        let Some(obj) = v.as_object() else {
            return Err(invalid("Backend", v, "an object like {\"Type\": \"vxlan\"}"));
        };
        let backend_type = match field(obj, "Type") {
            None => return Err(ConfigError::UnknownBackend { backend_type: String::new() }),
            Some(t) => t.as_str().ok_or_else(|| invalid("Backend.Type", t, "a string"))?.parse()?,
        };
        // The bounds make both conversions lossless.
        let vni = uint_field(obj, "VNI", "Backend.VNI", 0x00ff_ffff, "an integer from 0 to 16777215 (24 bits)")?
            .map(|n| n as u32);
        let port = uint_field(obj, "Port", "Backend.Port", u64::from(u16::MAX), "a udp port from 0 to 65535")?
            .filter(|p| *p != 0)
            .map(|n| n as u16);
        Ok(BackendConfig { backend_type, vni, port, raw: obj.clone() })
    }

    /// The number of subnets between `SubnetMin` and `SubnetMax`, both included.
    #[must_use]
    pub fn subnet_count(&self) -> u64 {
        let size = 1u64 << (32 - u32::from(self.subnet_len));
        (u64::from(self.subnet_max.to_bits()) - u64::from(self.subnet_min.to_bits())) / size + 1
    }

    /// `subnet` is one this config may hand out: of length `SubnetLen`, between `SubnetMin` and `SubnetMax`
    /// (flannel's `isSubnetConfigCompat`).
    #[must_use]
    pub fn is_compatible(&self, subnet: &Ipv4Net) -> bool {
        subnet.prefix_len() == self.subnet_len
            && subnet.addr() == subnet.network()
            && (self.subnet_min..=self.subnet_max).contains(&subnet.addr())
    }

    /// The config as flannel's JSON, every default written out (so flannel and tweed read the same values).
    #[must_use]
    pub fn to_json_value(&self) -> Value {
        let mut backend = self.backend.raw.clone();
        backend.insert("Type".into(), Value::from(self.backend.backend_type.as_str()));
        serde_json::json!({
            "Network": self.network.to_string(),
            "SubnetLen": self.subnet_len,
            "SubnetMin": self.subnet_min.to_string(),
            "SubnetMax": self.subnet_max.to_string(),
            "Backend": backend,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test literal")
    }
    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("test literal")
    }
    fn parse(s: &str) -> Result<NetworkConfig, ConfigError> {
        NetworkConfig::from_json(s)
    }

    /// kube-flannel.yml's `net-conf.json`, as shipped.
    #[test]
    fn kube_flannel_net_conf() {
        let cfg = parse(
            r#"{
  "Network": "10.244.0.0/16",
  "EnableNFTables": false,
  "Backend": {
    "Type": "vxlan"
  }
}"#,
        )
        .expect("valid");
        assert_eq!(cfg.network, net("10.244.0.0/16"));
        assert_eq!(cfg.subnet_len, 24);
        assert_eq!(cfg.subnet_min, ip("10.244.1.0"));
        assert_eq!(cfg.subnet_max, ip("10.244.255.0"));
        assert_eq!(cfg.backend.backend_type, BackendType::Vxlan);
        assert_eq!(cfg.backend.vni_or_default(), 1);
        assert_eq!(cfg.backend.port_or_default(), Some(8472));
        assert_eq!(cfg.subnet_count(), 255);
    }

    /// flannel's own `TestConfigDefaults` and `TestConfigOverrides` (`pkg/subnet/config_test.go`), same inputs,
    /// same expected values.
    #[test]
    fn flannel_config_tests() {
        let d = parse(r#"{ "network": "10.3.0.0/16" }"#).expect("TestConfigDefaults");
        assert_eq!(d.network.to_string(), "10.3.0.0/16");
        assert_eq!((d.subnet_min, d.subnet_max, d.subnet_len), (ip("10.3.1.0"), ip("10.3.255.0"), 24));

        let o =
            parse(r#"{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.5.0", "SubnetMax": "10.3.8.0", "SubnetLen": 28 }"#)
                .expect("TestConfigOverrides");
        assert_eq!(o.network.to_string(), "10.3.0.0/16");
        assert_eq!((o.subnet_min, o.subnet_max, o.subnet_len), (ip("10.3.5.0"), ip("10.3.8.0"), 28));
        assert_eq!(o.subnet_count(), (0x0800 - 0x0500) / 16 + 1);
    }

    #[test]
    fn defaults_follow_flannel() {
        // No Backend: udp.
        let cfg = parse(r#"{"Network":"10.0.0.0/8"}"#).expect("valid");
        assert_eq!(cfg.backend.backend_type, BackendType::Udp);
        assert_eq!(cfg.backend.port_or_default(), Some(8285));
        assert_eq!((cfg.subnet_min, cfg.subnet_max), (ip("10.0.1.0"), ip("10.255.255.0")));
        // A /22 still gets /24s; a /23 gets four /25s; a /28 four /30s.
        assert_eq!(parse(r#"{"Network":"10.1.0.0/22"}"#).expect("valid").subnet_len, 24);
        let c23 = parse(r#"{"Network":"10.1.0.0/23"}"#).expect("valid");
        assert_eq!((c23.subnet_len, c23.subnet_min, c23.subnet_max), (25, ip("10.1.0.128"), ip("10.1.1.128")));
        assert_eq!(parse(r#"{"Network":"10.1.0.0/28"}"#).expect("valid").subnet_len, 30);
        assert_eq!(
            parse(r#"{"Network":"10.1.0.0/29"}"#),
            Err(ConfigError::NetworkTooSmall { network: net("10.1.0.0/29") })
        );
        // The top of the address space: SubnetMax must not wrap.
        let top = parse(r#"{"Network":"128.0.0.0/1","SubnetLen":24}"#).expect("valid");
        assert_eq!(top.subnet_max, ip("255.255.255.0"));
        // 0.0.0.0 means "default", as in flannel.
        let z = parse(r#"{"Network":"10.244.0.0/16","SubnetMin":"0.0.0.0"}"#).expect("valid");
        assert_eq!(z.subnet_min, ip("10.244.1.0"));
    }

    #[test]
    fn read_like_go() {
        // Case-insensitive names, unknown fields ignored, nulls absent, host bits of Network cleared.
        let cfg = parse(
            r#"{"network":"10.244.3.4/16","subnetlen":26,"SUBNETMIN":"10.244.0.64","SubnetMax":null,
                "Foo":1,"backend":{"type":"host-gw"}}"#,
        )
        .expect("valid");
        assert_eq!(cfg.network, net("10.244.0.0/16"));
        assert_eq!((cfg.subnet_len, cfg.subnet_min, cfg.subnet_max), (26, ip("10.244.0.64"), ip("10.244.255.192")));
        assert_eq!(cfg.backend.backend_type, BackendType::HostGw);
        assert_eq!(cfg.backend.port_or_default(), None);
    }

    #[test]
    fn explicit_range_and_backend_options() {
        let cfg = parse(
            r#"{"Network":"10.5.0.0/16","SubnetLen":24,"SubnetMin":"10.5.10.0","SubnetMax":"10.5.19.0",
                "Backend":{"Type":"vxlan","VNI":4096,"Port":4789,"DirectRouting":true}}"#,
        )
        .expect("valid");
        assert_eq!(cfg.subnet_count(), 10);
        assert_eq!((cfg.backend.vni, cfg.backend.port), (Some(4096), Some(4789)));
        assert_eq!(cfg.backend.raw.get("DirectRouting"), Some(&Value::Bool(true)));
        assert!(cfg.is_compatible(&net("10.5.10.0/24")));
        assert!(cfg.is_compatible(&net("10.5.19.0/24")));
        assert!(!cfg.is_compatible(&net("10.5.20.0/24")));
        assert!(!cfg.is_compatible(&net("10.5.10.0/25")));
        // Writing it out and reading it back gives the same config.
        let again = NetworkConfig::from_value(&cfg.to_json_value()).expect("valid");
        assert_eq!(again, cfg);
    }

    #[test]
    fn errors_are_clear() {
        use ConfigError as E;
        let cases: &[(&str, ConfigError, &str)] = &[
            ("[1]", E::Json { message: "the top level is [1]".into() }, "not a json object"),
            ("{}", E::MissingNetwork, "has no Network"),
            (r#"{"Network":"0.0.0.0/0"}"#, E::MissingNetwork, "has no Network"),
            (
                r#"{"Network":"10.0.0.0/33"}"#,
                E::InvalidField {
                    field: "Network",
                    value: "\"10.0.0.0/33\"".into(),
                    expected: "an ipv4 cidr string like \"10.244.0.0/16\"",
                },
                "field Network",
            ),
            (r#"{"Network":"10.0.0.0/16","SubnetLen":31}"#, E::SubnetLenTooLong { subnet_len: 31 }, "use 30 or less"),
            (
                r#"{"Network":"10.0.0.0/16","SubnetLen":17}"#,
                E::SubnetLenTooShort { subnet_len: 17, network: net("10.0.0.0/16") },
                "use 18 or more",
            ),
            (
                r#"{"Network":"10.0.0.0/16","SubnetMin":"10.1.0.0"}"#,
                E::OutsideNetwork { field: "SubnetMin", addr: ip("10.1.0.0"), network: net("10.0.0.0/16") },
                "SubnetMin 10.1.0.0 is outside Network 10.0.0.0/16",
            ),
            (
                r#"{"Network":"10.0.0.0/16","SubnetMax":"10.0.3.128"}"#,
                E::NotAligned { field: "SubnetMax", addr: ip("10.0.3.128"), subnet_len: 24 },
                "not on a /24 boundary",
            ),
            (
                r#"{"Network":"10.0.0.0/16","SubnetMin":"10.0.9.0","SubnetMax":"10.0.3.0"}"#,
                E::EmptyRange { min: ip("10.0.9.0"), max: ip("10.0.3.0") },
                "is above SubnetMax",
            ),
            (
                r#"{"Network":"10.0.0.0/16","Backend":{"Type":"ipip"}}"#,
                E::UnknownBackend { backend_type: "ipip".into() },
                "unknown Backend.Type \"ipip\"",
            ),
            (
                r#"{"Network":"10.0.0.0/16","Backend":{"Type":"VXLAN"}}"#,
                E::UnknownBackend { backend_type: "VXLAN".into() },
                "unknown Backend.Type",
            ),
            (
                r#"{"Network":"10.0.0.0/16","Backend":{}}"#,
                E::UnknownBackend { backend_type: String::new() },
                "Backend has no Type",
            ),
            (
                r#"{"Network":"10.0.0.0/16","Backend":{"Type":"vxlan","VNI":16777216}}"#,
                E::InvalidField {
                    field: "Backend.VNI",
                    value: "16777216".into(),
                    expected: "an integer from 0 to 16777215 (24 bits)",
                },
                "Backend.VNI",
            ),
            (
                r#"{"Network":"10.0.0.0/16","SubnetLen":"24"}"#,
                E::InvalidField { field: "SubnetLen", value: "\"24\"".into(), expected: "an integer from 0 to 30" },
                "SubnetLen",
            ),
            (
                r#"{"Network":"10.0.0.0/16","EnableIPv6":true}"#,
                E::Unsupported { field: "EnableIPv6", reason: "tweed has no ipv6 overlay yet" },
                "EnableIPv6 is not supported",
            ),
        ];
        for (text, err, msg) in cases {
            let got = parse(text).expect_err(text);
            assert_eq!(&got, err, "{text}");
            assert!(got.to_string().contains(msg), "{text}: {got}");
        }
        assert!(matches!(parse("{"), Err(E::Json { .. })));
    }
}
