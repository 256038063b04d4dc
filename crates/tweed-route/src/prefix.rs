//! IPv4 prefixes: an address and a length, host bits clear.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

use crate::{Error, Result};

/// An IPv4 prefix: the first `len` bits of `addr`, with every bit past them zero.
///
/// Construction is strict: a length over 32 or an address with host bits set (`10.0.0.1/8`) is an error, as a
/// route for `10.0.0.1/8` is almost always a typo. [`Ipv4Prefix::new_masked`] clears the host bits instead.
/// Prefixes order by address, then by length: the order in which a route table lists its routes
/// (`10.0.0.0/8` < `10.0.0.0/16` < `10.1.0.0/16`).
///
/// ```
/// use tweed_route::Ipv4Prefix;
///
/// let p: Ipv4Prefix = "10.244.1.0/24".parse()?;
/// assert_eq!(p.len(), 24);
/// assert!(p.contains(0x0af4_0107)); // 10.244.1.7
/// assert_eq!(p.to_string(), "10.244.1.0/24");
/// assert!("10.244.1.1/24".parse::<Ipv4Prefix>().is_err());
/// # Ok::<(), tweed_route::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ipv4Prefix {
    addr: u32,
    len: u8,
}

impl Ipv4Prefix {
    /// `0.0.0.0/0`, the default route.
    pub const DEFAULT: Self = Self { addr: 0, len: 0 };

    /// The prefix `addr/len`, refusing a length over 32 or host bits set.
    pub fn new(addr: impl Into<u32>, len: u8) -> Result<Self> {
        let addr = addr.into();
        if len > 32 {
            return Err(Error::PrefixLen { len });
        }
        if addr & !mask(len) != 0 {
            return Err(Error::HostBits { addr: Ipv4Addr::from(addr), len });
        }
        Ok(Self { addr, len })
    }

    /// The prefix `addr/len` with the host bits of `addr` cleared; refuses only a length over 32.
    pub fn new_masked(addr: impl Into<u32>, len: u8) -> Result<Self> {
        let addr = addr.into();
        if len > 32 {
            return Err(Error::PrefixLen { len });
        }
        Ok(Self { addr: addr & mask(len), len })
    }

    /// The network address as a host-order `u32`.
    #[must_use]
    pub const fn addr(&self) -> u32 {
        self.addr
    }

    /// The network address.
    #[must_use]
    pub const fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.addr)
    }

    /// The prefix length, 0 to 32.
    #[must_use]
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> u8 {
        self.len
    }

    /// The netmask as a `u32` (`/24` → `0xffff_ff00`).
    #[must_use]
    pub const fn mask(&self) -> u32 {
        mask(self.len)
    }

    /// The last address of the prefix.
    #[must_use]
    pub const fn last(&self) -> u32 {
        self.addr | !mask(self.len)
    }

    /// Whether `addr` lies inside the prefix.
    #[must_use]
    pub const fn contains(&self, addr: u32) -> bool {
        addr & mask(self.len) == self.addr
    }

    /// Whether `other` lies inside this prefix (a prefix covers itself).
    #[must_use]
    pub const fn covers(&self, other: &Self) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }
}

/// The netmask of a length 0..=32 (longer lengths give the full mask).
#[must_use]
pub(crate) const fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - if len > 32 { 32 } else { len }) }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.len)
    }
}

impl FromStr for Ipv4Prefix {
    type Err = Error;

    /// Parses `a.b.c.d/len`; a bare address is refused (say `/32`).
    fn from_str(s: &str) -> Result<Self> {
        let (addr, len) = s.split_once('/').ok_or(Error::Syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| Error::Syntax)?;
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Syntax);
        }
        let len: u8 = len.parse().map_err(|_| Error::Syntax)?;
        Self::new(addr, len)
    }
}

impl From<Ipv4Addr> for Ipv4Prefix {
    /// The host prefix `addr/32`.
    fn from(addr: Ipv4Addr) -> Self {
        Self { addr: addr.to_bits(), len: 32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let p: Ipv4Prefix = "10.244.1.0/24".parse().unwrap();
        assert_eq!(p.addr(), 0x0af4_0100);
        assert_eq!(p.len(), 24);
        assert_eq!(p.mask(), 0xffff_ff00);
        assert_eq!(p.last(), 0x0af4_01ff);
        assert_eq!(p.to_string(), "10.244.1.0/24");
        assert_eq!("0.0.0.0/0".parse::<Ipv4Prefix>().unwrap(), Ipv4Prefix::DEFAULT);
        let host: Ipv4Prefix = "255.255.255.255/32".parse().unwrap();
        assert_eq!((host.addr(), host.len(), host.mask()), (u32::MAX, 32, u32::MAX));
    }

    #[test]
    fn parse_errors() {
        for bad in ["", "10.0.0.0", "10.0.0.0/", "10.0.0/8", "10.0.0.0/+8", "10.0.0.0/008", "x/8", "10.0.0.0/8/9"] {
            assert_eq!(bad.parse::<Ipv4Prefix>(), Err(Error::Syntax), "{bad:?}");
        }
        assert_eq!("10.0.0.0/33".parse::<Ipv4Prefix>(), Err(Error::PrefixLen { len: 33 }));
        assert_eq!(
            "10.0.0.1/8".parse::<Ipv4Prefix>(),
            Err(Error::HostBits { addr: Ipv4Addr::new(10, 0, 0, 1), len: 8 })
        );
        assert_eq!(Ipv4Prefix::new(0u32, 200), Err(Error::PrefixLen { len: 200 }));
    }

    #[test]
    fn masked_and_containment() {
        let p = Ipv4Prefix::new_masked(Ipv4Addr::new(10, 1, 2, 3), 8).unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains(0x0aff_ffff) && !p.contains(0x0b00_0000));
        let q: Ipv4Prefix = "10.3.0.0/16".parse().unwrap();
        assert!(p.covers(&q) && !q.covers(&p) && p.covers(&p));
        assert!(Ipv4Prefix::DEFAULT.covers(&q) && Ipv4Prefix::DEFAULT.contains(u32::MAX));
        assert!(p < q && q < "11.0.0.0/8".parse().unwrap());
        assert!(p < "10.0.0.0/9".parse().unwrap());
    }
}
