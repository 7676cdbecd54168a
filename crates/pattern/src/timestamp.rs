//! RFC 3339 timestamps with nanosecond precision.
//!
//! Pattern literals (`t'...'`) follow the grammar: upper-case `T`, `Z` offset. Timestamps read
//! from observations (`first_observed`, properties compared with `t'...'`) also accept numeric
//! offsets and lower-case separators, as RFC 3339 allows; they are normalised to UTC.

use std::fmt;

/// A point in time: nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i128);

const NANOS_PER_SEC: i128 = 1_000_000_000;

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

impl Timestamp {
    /// Parses the strict form used by pattern literals: `YYYY-MM-DDTHH:MM:SS[.frac]Z`.
    pub fn parse_literal(s: &str) -> Result<Self, String> {
        Self::parse_impl(s, true)
    }

    /// Parses any RFC 3339 date-time (offsets, lower-case `t`/`z`), as found in observations.
    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        Self::parse_impl(s, false)
    }

    fn parse_impl(s: &str, strict: bool) -> Result<Self, String> {
        let b = s.as_bytes();
        let bad = || format!("{s:?} is not an RFC 3339 timestamp");
        let year = digits(b, 0, 4).ok_or_else(bad)?;
        let month = digits(b, 5, 2).ok_or_else(bad)?;
        let day = digits(b, 8, 2).ok_or_else(bad)?;
        let hour = digits(b, 11, 2).ok_or_else(bad)?;
        let minute = digits(b, 14, 2).ok_or_else(bad)?;
        let second = digits(b, 17, 2).ok_or_else(bad)?;
        let sep_ok = b.get(4) == Some(&b'-')
            && b.get(7) == Some(&b'-')
            && b.get(13) == Some(&b':')
            && b.get(16) == Some(&b':')
            && match b.get(10) {
                Some(b'T') => true,
                Some(b't') => !strict,
                _ => false,
            };
        if !sep_ok {
            return Err(bad());
        }
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(i64::from(year), month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(format!("{s:?} is not a valid date and time"));
        }
        let mut i = 19;
        let mut nanos: i128 = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 9 {
                    nanos = nanos * 10 + i128::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return Err(bad());
            }
            for _ in (i - start)..9 {
                nanos *= 10;
            }
        }
        let offset_secs: i64 = match b.get(i) {
            Some(b'Z') if i + 1 == b.len() => 0,
            Some(b'z') if !strict && i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if !strict && i + 6 == b.len() => {
                let oh = digits(b, i + 1, 2).ok_or_else(bad)?;
                let om = digits(b, i + 4, 2).ok_or_else(bad)?;
                if b[i + 3] != b':' || oh > 23 || om > 59 {
                    return Err(bad());
                }
                let off = i64::from(oh * 3600 + om * 60);
                if *sign == b'+' { off } else { -off }
            }
            _ => return Err(bad()),
        };
        let days = days_from_civil(i64::from(year), month, day);
        let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
        Ok(Timestamp(i128::from(secs) * NANOS_PER_SEC + nanos))
    }

    /// Nanoseconds since the Unix epoch.
    pub fn as_nanos(self) -> i128 {
        self.0
    }

    /// This instant shifted by `nanos` nanoseconds.
    pub fn add_nanos(self, nanos: i128) -> Self {
        Timestamp(self.0.saturating_add(nanos))
    }
}

impl fmt::Display for Timestamp {
    /// Canonical form: UTC, `Z`, the shortest fraction that keeps every nanosecond.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        let nanos = self.0.rem_euclid(NANOS_PER_SEC);
        let days = secs.div_euclid(86_400) as i64;
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )?;
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_normalises_offsets() {
        let a = Timestamp::parse_literal("2020-02-29T23:59:59.123456789Z").unwrap();
        assert_eq!(a.to_string(), "2020-02-29T23:59:59.123456789Z");
        let b = Timestamp::parse_rfc3339("2020-03-01T01:59:59.123456789+02:00").unwrap();
        assert_eq!(a, b);
        assert!(Timestamp::parse_literal("2020-03-01T01:59:59+02:00").is_err());
        assert!(Timestamp::parse_literal("2021-02-29T00:00:00Z").is_err());
        assert!(Timestamp::parse_literal("2021-02-28t00:00:00Z").is_err());
        assert_eq!(
            Timestamp::parse_literal("1970-01-01T00:00:00.5Z")
                .unwrap()
                .as_nanos(),
            500_000_000
        );
        assert_eq!(
            Timestamp::parse_literal("1969-12-31T23:59:59Z")
                .unwrap()
                .to_string(),
            "1969-12-31T23:59:59Z"
        );
    }
}
