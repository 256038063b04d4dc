//! IPv4 CIDR arithmetic, the way it is taught with a worked example such as `192.168.20.125/27`.
//!
//! [`Ipv4Cidr`] keeps the address *as typed* (host bits allowed) with its prefix length, and derives the rest:
//! network, broadcast, netmask, wildcard, first and last usable host, host count, containment and overlap.
//! [`report`] and [`report_json`] are what `tweed cidr` prints, so the command is a thin wrapper.
//!
//! Every method is total: no prefix length from 0 to 32 and no address makes one panic (a prefix length above 32
//! cannot be constructed).
//!
//! `/31` and `/32` follow RFC 3021: a `/31` is a point-to-point link whose two addresses are both usable hosts, and a
//! `/32` is one host. [`Ipv4Cidr::broadcast`] still returns the all-ones address of the block for them (that is the
//! arithmetic), but it is not a broadcast address in use.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

use ipnet::Ipv4Net;

/// An IPv4 address with a prefix length, host bits kept as written (`192.168.20.125/27`).
///
/// ```
/// use tweed_control::cidr::Ipv4Cidr;
/// use core::net::Ipv4Addr;
///
/// let c: Ipv4Cidr = "192.168.20.125/27".parse()?;
/// assert_eq!(c.network(), Ipv4Addr::new(192, 168, 20, 96));
/// assert_eq!(c.broadcast(), Ipv4Addr::new(192, 168, 20, 127));
/// assert_eq!(c.first_host(), Ipv4Addr::new(192, 168, 20, 97));
/// assert_eq!(c.last_host(), Ipv4Addr::new(192, 168, 20, 126));
/// assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 224));
/// assert_eq!(c.host_count(), 30);
/// # Ok::<(), tweed_control::cidr::ParseCidrError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix_len: u8,
}

/// Why a string is not `a.b.c.d/n`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ParseCidrError {
    /// There is no `/` and prefix length.
    MissingPrefix {
        /// The input.
        input: String,
    },
    /// The part before `/` is not a dotted-quad IPv4 address.
    InvalidAddress {
        /// The part before `/`.
        addr: String,
    },
    /// The part after `/` is not a number from 0 to 32.
    InvalidPrefixLen {
        /// The part after `/`.
        prefix_len: String,
    },
}

impl fmt::Display for ParseCidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingPrefix { input } => {
                write!(f, "invalid cidr {input:?}: expected an address and a prefix length, like 10.0.0.0/8")
            }
            Self::InvalidAddress { addr } => {
                write!(f, "invalid cidr address {addr:?}: expected a dotted-quad ipv4 address")
            }
            Self::InvalidPrefixLen { prefix_len } => {
                write!(f, "invalid cidr prefix length {prefix_len:?}: expected a number from 0 to 32")
            }
        }
    }
}

impl core::error::Error for ParseCidrError {}

/// The mask of `prefix_len` leading ones; `prefix_len` is at most 32.
const fn mask(prefix_len: u8) -> u32 {
    // `checked_shl` keeps /0 from shifting by 32, which would overflow.
    match u32::MAX.checked_shl(32 - prefix_len as u32) {
        Some(m) => m,
        None => 0,
    }
}

impl Ipv4Cidr {
    /// `addr/prefix_len`, or `None` when `prefix_len` is above 32.
    #[must_use]
    pub const fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        if prefix_len > 32 { None } else { Some(Self { addr, prefix_len }) }
    }

    /// The address as written, host bits included.
    #[must_use]
    pub const fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0 to 32.
    #[must_use]
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    const fn bits(&self) -> u32 {
        self.addr.to_bits()
    }

    const fn mask_bits(&self) -> u32 {
        mask(self.prefix_len)
    }

    /// The network address: the host bits cleared.
    #[must_use]
    pub const fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.bits() & self.mask_bits())
    }

    /// The last address of the block: the host bits set. For `/31` and `/32` this is not a broadcast address in
    /// use (RFC 3021), only the end of the block.
    #[must_use]
    pub const fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.bits() | !self.mask_bits())
    }

    /// The netmask in dotted-quad form (`/27` is `255.255.255.224`).
    #[must_use]
    pub const fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.mask_bits())
    }

    /// The wildcard (inverse) mask, as ACLs write it (`/27` is `0.0.0.31`).
    #[must_use]
    pub const fn wildcard(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(!self.mask_bits())
    }

    /// The first usable host: network + 1, except for `/31` (the network address itself, RFC 3021) and `/32` (the
    /// one address).
    #[must_use]
    pub const fn first_host(&self) -> Ipv4Addr {
        let net = self.bits() & self.mask_bits();
        if self.prefix_len >= 31 { Ipv4Addr::from_bits(net) } else { Ipv4Addr::from_bits(net + 1) }
    }

    /// The last usable host: broadcast - 1, except for `/31` and `/32`, where it is the last address of the block.
    #[must_use]
    pub const fn last_host(&self) -> Ipv4Addr {
        let bcast = self.bits() | !self.mask_bits();
        if self.prefix_len >= 31 { Ipv4Addr::from_bits(bcast) } else { Ipv4Addr::from_bits(bcast - 1) }
    }

    /// The number of addresses in the block, `2^(32 - prefix_len)`.
    #[must_use]
    pub const fn size(&self) -> u64 {
        1u64 << (32 - self.prefix_len as u32)
    }

    /// The number of usable hosts: `2^(32 - prefix_len) - 2`, except `/31` has 2 (RFC 3021) and `/32` has 1.
    #[must_use]
    pub const fn host_count(&self) -> u64 {
        match self.prefix_len {
            32 => 1,
            31 => 2,
            _ => self.size() - 2,
        }
    }

    /// The block as an [`Ipv4Net`] (host bits cleared).
    #[must_use]
    pub fn to_net(&self) -> Ipv4Net {
        // The prefix length is at most 32 by construction, which is all `Ipv4Net::new` checks.
        Ipv4Net::new(self.network(), self.prefix_len).unwrap_or_default()
    }

    /// `addr` lies inside this block.
    #[must_use]
    pub const fn contains(&self, addr: Ipv4Addr) -> bool {
        addr.to_bits() & self.mask_bits() == self.bits() & self.mask_bits()
    }

    /// `other`'s whole block lies inside this block.
    #[must_use]
    pub const fn contains_cidr(&self, other: &Self) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.addr)
    }

    /// The two blocks share at least one address (for CIDR blocks, one contains the other).
    #[must_use]
    pub const fn overlaps(&self, other: &Self) -> bool {
        let m = if self.prefix_len < other.prefix_len { self.mask_bits() } else { other.mask_bits() };
        self.bits() & m == other.bits() & m
    }
}

impl From<Ipv4Net> for Ipv4Cidr {
    fn from(n: Ipv4Net) -> Self {
        Self { addr: n.addr(), prefix_len: n.prefix_len() }
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = ParseCidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some((addr, len)) = s.split_once('/') else {
            return Err(ParseCidrError::MissingPrefix { input: s.to_owned() });
        };
        let ip: Ipv4Addr = addr.parse().map_err(|_| ParseCidrError::InvalidAddress { addr: addr.to_owned() })?;
        // Digits only: `u8::from_str` would accept a leading `+`.
        let bad_len = || ParseCidrError::InvalidPrefixLen { prefix_len: len.to_owned() };
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_len());
        }
        let n: u8 = len.parse().map_err(|_| bad_len())?;
        Self::new(ip, n).ok_or_else(bad_len)
    }
}

/// The text `tweed cidr` prints: one `label value` line per fact, values aligned in one column.
///
/// ```
/// use tweed_control::cidr::{report, Ipv4Cidr};
///
/// let text = report(&"192.168.20.125/27".parse()?);
/// assert!(text.contains("broadcast  192.168.20.127\n"));
/// # Ok::<(), tweed_control::cidr::ParseCidrError>(())
/// ```
#[must_use]
pub fn report(c: &Ipv4Cidr) -> String {
    format!(
        "address    {c}\n\
         network    {}\n\
         broadcast  {}\n\
         netmask    {}\n\
         wildcard   {}\n\
         first      {}\n\
         last       {}\n\
         hosts      {}\n",
        c.network(),
        c.broadcast(),
        c.netmask(),
        c.wildcard(),
        c.first_host(),
        c.last_host(),
        c.host_count(),
    )
}

/// What `tweed cidr --json` prints: the same facts as [`report`], addresses as strings.
#[must_use]
pub fn report_json(c: &Ipv4Cidr) -> serde_json::Value {
    serde_json::json!({
        "address": c.addr().to_string(),
        "prefix_len": c.prefix_len(),
        "network": c.network().to_string(),
        "broadcast": c.broadcast().to_string(),
        "netmask": c.netmask().to_string(),
        "wildcard": c.wildcard().to_string(),
        "first_host": c.first_host().to_string(),
        "last_host": c.last_host().to_string(),
        "host_count": c.host_count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(s: &str) -> Ipv4Cidr {
        s.parse().expect("test literal")
    }

    #[test]
    fn seed_example_report_exact() {
        let expected = "\
address    192.168.20.125/27
network    192.168.20.96
broadcast  192.168.20.127
netmask    255.255.255.224
wildcard   0.0.0.31
first      192.168.20.97
last       192.168.20.126
hosts      30
";
        assert_eq!(report(&c("192.168.20.125/27")), expected);
    }

    #[test]
    fn seed_example_json() {
        let v = report_json(&c("192.168.20.125/27"));
        let expected = serde_json::json!({
            "address": "192.168.20.125", "prefix_len": 27, "network": "192.168.20.96",
            "broadcast": "192.168.20.127", "netmask": "255.255.255.224", "wildcard": "0.0.0.31",
            "first_host": "192.168.20.97", "last_host": "192.168.20.126", "host_count": 30
        });
        assert_eq!(v, expected);
    }

    #[test]
    fn edges() {
        let all = c("10.1.2.3/0");
        assert_eq!(all.network(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(all.broadcast(), Ipv4Addr::BROADCAST);
        assert_eq!(all.netmask(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(all.host_count(), (1u64 << 32) - 2);
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));

        let p2p = c("10.0.0.5/31");
        assert_eq!((p2p.first_host(), p2p.last_host()), (Ipv4Addr::new(10, 0, 0, 4), Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(p2p.host_count(), 2);

        let one = c("10.0.0.5/32");
        assert_eq!((one.first_host(), one.last_host()), (one.addr(), one.addr()));
        assert_eq!(one.host_count(), 1);

        let thirty = c("10.0.0.5/30");
        assert_eq!((thirty.first_host(), thirty.last_host()), (Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6)));
        assert_eq!(thirty.host_count(), 2);
    }

    #[test]
    fn containment_and_overlap() {
        let n16 = c("10.244.0.0/16");
        let n24 = c("10.244.7.9/24");
        let other = c("10.245.0.0/24");
        assert!(n16.contains_cidr(&n24));
        assert!(!n24.contains_cidr(&n16));
        assert!(n16.overlaps(&n24) && n24.overlaps(&n16));
        assert!(!n16.overlaps(&other) && !n16.contains_cidr(&other));
        assert!(n16.contains(Ipv4Addr::new(10, 244, 255, 255)));
        assert!(!n16.contains(Ipv4Addr::new(10, 245, 0, 0)));
    }

    #[test]
    fn parse_errors() {
        assert_eq!("10.0.0.0".parse::<Ipv4Cidr>(), Err(ParseCidrError::MissingPrefix { input: "10.0.0.0".into() }));
        assert_eq!("10.0.0/8".parse::<Ipv4Cidr>(), Err(ParseCidrError::InvalidAddress { addr: "10.0.0".into() }));
        for bad in ["33", "", "+8", "-1", "008", "x"] {
            let s = format!("10.0.0.0/{bad}");
            assert_eq!(s.parse::<Ipv4Cidr>(), Err(ParseCidrError::InvalidPrefixLen { prefix_len: bad.into() }), "{s}");
        }
        assert_eq!(c(" 1.2.3.4/32 ").to_string(), "1.2.3.4/32");
    }

    proptest! {
        /// The derived facts agree with `ipnet`, an independent implementation.
        #[test]
        fn agrees_with_ipnet(bits: u32, len in 0u8..=32) {
            let addr = Ipv4Addr::from_bits(bits);
            let ours = Ipv4Cidr::new(addr, len).expect("len <= 32");
            let theirs = Ipv4Net::new(addr, len).expect("len <= 32");
            prop_assert_eq!(ours.network(), theirs.network());
            prop_assert_eq!(ours.broadcast(), theirs.broadcast());
            prop_assert_eq!(ours.netmask(), theirs.netmask());
            prop_assert_eq!(ours.wildcard(), theirs.hostmask());
            prop_assert_eq!(ours.to_net(), theirs.trunc());
            if len >= 20 {
                // Counting is slow for big blocks; ipnet's `hosts()` follows RFC 3021 for /31 and /32 too.
                prop_assert_eq!(ours.host_count(), theirs.hosts().count() as u64);
            }
            prop_assert!(ours.contains(ours.first_host()) && ours.contains(ours.last_host()));
            prop_assert!(ours.first_host() <= ours.last_host());
            prop_assert_eq!(Ipv4Cidr::from_str(&ours.to_string()), Ok(ours));
        }

        /// Overlap is symmetric and is exactly "one contains the other".
        #[test]
        fn overlap_is_containment(a: u32, la in 0u8..=32, b: u32, lb in 0u8..=32) {
            let x = Ipv4Cidr::new(Ipv4Addr::from_bits(a), la).expect("len <= 32");
            let y = Ipv4Cidr::new(Ipv4Addr::from_bits(b), lb).expect("len <= 32");
            prop_assert_eq!(x.overlaps(&y), y.overlaps(&x));
            prop_assert_eq!(x.overlaps(&y), x.contains_cidr(&y) || y.contains_cidr(&x));
            let nx = x.to_net();
            let ny = y.to_net();
            prop_assert_eq!(x.overlaps(&y), nx.contains(&ny) || ny.contains(&nx));
        }
    }
}
