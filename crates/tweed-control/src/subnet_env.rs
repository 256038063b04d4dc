//! flannel's subnet file (`--subnet-file`, `/run/flannel/subnet.env` by default): what a node tells the pods'
//! plumbing about its lease, and what it reads back after a restart to ask for the same subnet again.
//!
//! flannel writes, and its CNI plugin reads:
//!
//! ```text
//! FLANNEL_NETWORK=10.244.0.0/16
//! FLANNEL_SUBNET=10.244.1.1/24
//! FLANNEL_MTU=1450
//! FLANNEL_IPMASQ=false
//! ```
//!
//! `FLANNEL_SUBNET` is the node's subnet written with its first address (the bridge's gateway); read back, it is
//! the subnet (flannel's `ReadCIDRFromSubnetFile` masks it the same way). Unknown keys (newer flannels add
//! `FLANNEL_IPV6_*`), blank lines and `#` comments are ignored.
//!
//! ```
//! use tweed_control::subnet_env::SubnetEnv;
//!
//! let env = SubnetEnv::parse("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\n")?;
//! assert_eq!(env.subnet, "10.244.1.0/24".parse()?);
//! assert_eq!(env.to_text().lines().nth(1), Some("FLANNEL_SUBNET=10.244.1.1/24"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use std::io;
use std::path::Path;

use ipnet::Ipv4Net;

/// The contents of a subnet file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubnetEnv {
    /// The whole overlay (`FLANNEL_NETWORK`).
    pub network: Ipv4Net,
    /// The node's pod subnet (`FLANNEL_SUBNET`, written as its first address with the prefix length).
    pub subnet: Ipv4Net,
    /// The largest IP packet a pod may send (`FLANNEL_MTU`): the underlay MTU minus the backend's overhead.
    pub mtu: u32,
    /// Whether the node masquerades traffic leaving the overlay (`FLANNEL_IPMASQ`; tweed does not, so `false`).
    pub ip_masq: bool,
}

/// Why a subnet file was not understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubnetEnvError {
    /// A required key is absent.
    Missing(&'static str),
    /// A key's value does not parse.
    Value {
        /// The key.
        key: &'static str,
        /// The value found.
        value: String,
    },
}

impl fmt::Display for SubnetEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(key) => write!(f, "subnet file: no {key}= line"),
            Self::Value { key, value } => write!(f, "subnet file: {key}={value:?} does not parse"),
        }
    }
}

impl core::error::Error for SubnetEnvError {}

impl SubnetEnv {
    /// Reads the text of a subnet file. `FLANNEL_NETWORK` and `FLANNEL_SUBNET` are required; a missing
    /// `FLANNEL_MTU` reads as 0 and a missing `FLANNEL_IPMASQ` as `false`.
    ///
    /// # Errors
    /// [`SubnetEnvError`] naming the key.
    pub fn parse(text: &str) -> Result<Self, SubnetEnvError> {
        let (mut network, mut subnet, mut mtu, mut ip_masq) = (None, None, None, None);
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let Some((key, value)) = line.split_once('=') else { continue };
            let value = value.trim().trim_matches('"');
            let bad = |key: &'static str| SubnetEnvError::Value { key, value: value.to_owned() };
            match key.trim() {
                "FLANNEL_NETWORK" => {
                    network = Some(value.parse::<Ipv4Net>().map_err(|_| bad("FLANNEL_NETWORK"))?.trunc());
                }
                "FLANNEL_SUBNET" => {
                    subnet = Some(value.parse::<Ipv4Net>().map_err(|_| bad("FLANNEL_SUBNET"))?.trunc());
                }
                "FLANNEL_MTU" => mtu = Some(value.parse::<u32>().map_err(|_| bad("FLANNEL_MTU"))?),
                "FLANNEL_IPMASQ" => ip_masq = Some(value.parse::<bool>().map_err(|_| bad("FLANNEL_IPMASQ"))?),
                _ => {}
            }
        }
        Ok(Self {
            network: network.ok_or(SubnetEnvError::Missing("FLANNEL_NETWORK"))?,
            subnet: subnet.ok_or(SubnetEnvError::Missing("FLANNEL_SUBNET"))?,
            mtu: mtu.unwrap_or(0),
            ip_masq: ip_masq.unwrap_or(false),
        })
    }

    /// The file's text, in flannel's order.
    #[must_use]
    pub fn to_text(&self) -> String {
        // The gateway is the subnet's first address; a /32 (no room for one) is written as it is.
        let first = self.subnet.network().to_bits().saturating_add(u32::from(self.subnet.prefix_len() < 32));
        let gateway = Ipv4Net::new(first.into(), self.subnet.prefix_len()).unwrap_or(self.subnet);
        format!(
            "FLANNEL_NETWORK={}\nFLANNEL_SUBNET={gateway}\nFLANNEL_MTU={}\nFLANNEL_IPMASQ={}\n",
            self.network, self.mtu, self.ip_masq
        )
    }

    /// Reads the file at `path`: `Ok(None)` when there is none.
    ///
    /// # Errors
    /// An I/O error, or one of kind `InvalidData` when the file does not parse.
    pub fn read(path: &Path) -> io::Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the file at `path` (creating its directory), atomically: a reader sees the old file or the new one.
    ///
    /// # Errors
    /// An I/O error.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, self.to_text())?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> SubnetEnv {
        SubnetEnv {
            network: "10.244.0.0/16".parse().unwrap(),
            subnet: "10.244.7.0/24".parse().unwrap(),
            mtu: 1450,
            ip_masq: false,
        }
    }

    #[test]
    fn writes_what_flannel_writes() {
        assert_eq!(
            env().to_text(),
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
        );
    }

    #[test]
    fn reads_flannel_files() {
        // A newer flannel's file, with IPv6 keys and quoting as a shell would accept it.
        let text = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_IPV6_NETWORK=fd00::/56\nFLANNEL_SUBNET=\"10.244.7.1/24\"\n\
                    FLANNEL_IPV6_SUBNET=fd00:0:0:7::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
        let e = SubnetEnv::parse(text).unwrap();
        assert_eq!(e, SubnetEnv { ip_masq: true, ..env() });
        assert_eq!(SubnetEnv::parse(&env().to_text()).unwrap(), env());
    }

    #[test]
    fn bad_files_name_the_key() {
        assert_eq!(SubnetEnv::parse("FLANNEL_NETWORK=10.244.0.0/16\n"), Err(SubnetEnvError::Missing("FLANNEL_SUBNET")));
        let err = SubnetEnv::parse("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.300.1/24\n").unwrap_err();
        assert_eq!(err.to_string(), "subnet file: FLANNEL_SUBNET=\"10.244.300.1/24\" does not parse");
        assert!(SubnetEnv::parse("FLANNEL_NETWORK=x\nFLANNEL_SUBNET=10.244.1.1/24").is_err());
        assert!(SubnetEnv::parse("").is_err());
        assert!(SubnetEnv::parse("\u{0}=\u{0}\n==\n=").is_err());
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/flannel/subnet.env");
        assert_eq!(SubnetEnv::read(&path).unwrap(), None);
        env().write(&path).unwrap();
        assert_eq!(SubnetEnv::read(&path).unwrap(), Some(env()));
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(SubnetEnv::read(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
