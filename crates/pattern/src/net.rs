//! IPv4 and IPv6 addresses and CIDR networks for `ISSUBSET` / `ISSUPERSET`.

use std::net::IpAddr;

/// An IPv4 or IPv6 network read exactly as `ISSUBSET`/`ISSUPERSET` read their operands and
/// observed addresses: address bits (IPv4 left aligned in 128 bits) and prefix length; a bare
/// address is a single-address network and `/0` is allowed. IPv4 and IPv6 never contain one
/// another. Public so that indexes in front of the evaluator read networks the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Net {
    v6: bool,
    bits: u128,
    prefix: u8,
}

impl Net {
    /// Parses `addr` (a single address: /32 or /128) or `addr/prefix`, prefix 0 allowed.
    pub fn parse(s: &str) -> Option<Net> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return None;
                }
                (a, Some(p.parse::<u8>().ok()?))
            }
            None => (s, None),
        };
        let (v6, bits, max) = match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)) << 96, 32u8),
            IpAddr::V6(a) => (true, u128::from(a), 128u8),
        };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        Some(Net { v6, bits, prefix })
    }

    /// The mask of the first `prefix` bits (of 128).
    pub fn mask(prefix: u8) -> u128 {
        if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(prefix.min(128)))
        }
    }

    /// Whether this is an IPv6 network.
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// The prefix length (32 or 128 for a single address).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The address bits as written, IPv4 left aligned in 128 bits.
    pub fn bits(&self) -> u128 {
        self.bits
    }

    /// The network's first address (the bits under the prefix mask).
    pub fn base(&self) -> u128 {
        self.bits & Self::mask(self.prefix)
    }

    /// Whether every address of `self` lies in `outer`.
    pub(crate) fn within(&self, outer: &Net) -> bool {
        self.v6 == outer.v6
            && self.prefix >= outer.prefix
            && (self.bits ^ outer.bits) & Self::mask(outer.prefix) == 0
    }

    /// The first and last address of the network as (v6, low, high), for index keys.
    pub(crate) fn range(&self) -> (bool, u128, u128) {
        let m = Self::mask(self.prefix);
        let low = self.bits & m;
        let width = if self.v6 { 128 } else { 32 };
        let host = if u32::from(self.prefix) >= width {
            0
        } else {
            (u128::MAX >> (128 - width + u32::from(self.prefix))) << (128 - width)
        };
        (self.v6, low, low | host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Net {
        Net::parse(s).unwrap()
    }

    #[test]
    fn base_and_prefix() {
        assert_eq!(n("10.1.2.3/8").base(), 10u128 << 120);
        assert_eq!(n("10.1.2.3/8").prefix(), 8);
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert_eq!(n("::/0").base(), 0);
        assert!(n("2001:db8::1").is_v6());
        assert_eq!(n("2001:db8::1").prefix(), 128);
    }

    #[test]
    fn containment() {
        assert!(n("10.1.2.3").within(&n("10.0.0.0/8")));
        assert!(n("10.1.2.3/32").within(&n("10.1.2.3/32")));
        assert!(n("1.2.3.4").within(&n("0.0.0.0/0")));
        assert!(!n("11.0.0.0").within(&n("10.0.0.0/8")));
        assert!(!n("10.0.0.0/7").within(&n("10.0.0.0/8")));
        assert!(n("2001:db8::1").within(&n("2001:db8::/32")));
        assert!(n("::1").within(&n("::/0")));
        assert!(!n("::ffff:10.0.0.1").within(&n("10.0.0.0/8")));
        assert!(!n("10.0.0.1").within(&n("::/0")));
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert!(Net::parse("10.0.0/8").is_none());
        assert!(Net::parse("2001:db8::/129").is_none());
        assert_eq!(
            n("10.0.0.0/8").range(),
            (
                false,
                10u128 << 120,
                (10u128 << 120) | (0xff_ffffu128 << 96)
            )
        );
    }
}
