//! IPv4 and IPv6 networks, read exactly as the pattern evaluator reads `ISSUBSET` operands and
//! observed addresses (a bare address is a single-address network, `/0` is allowed).

use std::net::IpAddr;

/// A network: address bits (IPv4 left aligned in 128 bits) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Net {
    pub(crate) v6: bool,
    pub(crate) bits: u128,
    pub(crate) prefix: u8,
}

impl Net {
    /// Parses `addr` or `addr/prefix`.
    pub(crate) fn parse(s: &str) -> Option<Net> {
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

    /// The mask of the first `prefix` bits.
    pub(crate) fn mask(prefix: u8) -> u128 {
        if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(prefix.min(128)))
        }
    }

    /// The network's first address: the key of its table.
    pub(crate) fn base(&self) -> u128 {
        self.bits & Self::mask(self.prefix)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse() {
        let n = Net::parse("10.1.2.3/8").unwrap();
        assert_eq!(n.base(), 10u128 << 120);
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert_eq!(Net::parse("::/0").unwrap().base(), 0);
        assert!(Net::parse("2001:db8::1").unwrap().v6);
    }
}
