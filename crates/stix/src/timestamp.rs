//! STIX timestamps: RFC 3339 in UTC (`Z`), with any number of fractional digits.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::TimestampError;

/// A point in time as STIX writes it: `2016-05-12T08:17:27.000Z`.
///
/// Held as seconds and nanoseconds since the Unix epoch, so that comparison is exact and cheap,
/// together with the number of fractional digits it was written with, so that it prints back the
/// way it came (`.000Z` stays `.000Z`). Digits beyond nanoseconds are accepted and truncated.
/// Ordering and equality consider only the instant.
#[derive(Clone, Copy)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
    digits: u8,
}

impl Timestamp {
    /// The earliest instant STIX can express: `0001-01-01T00:00:00Z`.
    pub const MIN: Timestamp = Timestamp {
        secs: -62_135_596_800,
        nanos: 0,
        digits: 0,
    };

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let b = text.as_bytes();
        let err = |why| TimestampError::new(text, why);
        if b.len() < 20 {
            return Err(err("expected YYYY-MM-DDTHH:MM:SS[.s]Z"));
        }
        let num = |range: std::ops::Range<usize>| -> Result<u32, TimestampError> {
            let part = &b[range];
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(err("expected YYYY-MM-DDTHH:MM:SS[.s]Z"));
            }
            Ok(part.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
        };
        if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return Err(err("expected YYYY-MM-DDTHH:MM:SS[.s]Z"));
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) {
            return Err(err("month out of range"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(err("day out of range for the month"));
        }
        if hour > 23 || minute > 59 {
            return Err(err("hour or minute out of range"));
        }
        // 60 is a leap second; RFC 3339 allows it and it is folded into the next second's start.
        if second > 60 {
            return Err(err("second out of range"));
        }
        let mut rest = &b[19..];
        let mut nanos = 0u32;
        let mut digits = 0u8;
        if rest.first() == Some(&b'.') {
            rest = &rest[1..];
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return Err(err("a '.' must be followed by fractional digits"));
            }
            for (i, d) in rest[..n].iter().enumerate() {
                if i < 9 {
                    nanos = nanos * 10 + u32::from(d - b'0');
                }
            }
            let kept = n.min(9);
            nanos *= 10u32.pow(9 - kept as u32);
            digits = u8::try_from(kept).unwrap_or(9);
            rest = &rest[n..];
        }
        match rest {
            b"Z" => {}
            b"z" => return Err(err("the time zone must be an upper-case 'Z'")),
            _ => return Err(err("STIX timestamps must be in UTC and end with 'Z'")),
        }
        let days = days_from_civil(i64::from(year), month, day);
        let secs =
            days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second);
        Ok(Self {
            secs,
            nanos,
            digits,
        })
    }

    /// The current time, with microsecond precision (the precision TAXII `date_added` uses).
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self::from_unix_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }

    /// From microseconds since the Unix epoch; prints with 6 fractional digits.
    pub fn from_unix_micros(micros: i64) -> Self {
        Self {
            secs: micros.div_euclid(1_000_000),
            nanos: u32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
            digits: 6,
        }
    }

    /// Microseconds since the Unix epoch (sub-microsecond digits are truncated).
    pub fn unix_micros(&self) -> i64 {
        self.secs
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(self.nanos / 1_000))
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Nanoseconds since the Unix epoch, as a wide integer so that no STIX year overflows.
    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// The same instant, printed with exactly `digits` fractional digits (at most 9).
    pub fn with_digits(self, digits: u8) -> Self {
        Self {
            digits: digits.min(9),
            ..self
        }
    }

    /// The same instant, truncated to whole microseconds and printed with 6 fractional digits.
    pub fn to_micros(self) -> Self {
        Self::from_unix_micros(self.unix_micros())
    }
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Timestamp {
    /// Written into a buffer on the stack and handed to the formatter in one piece: servers print
    /// a timestamp for every object version they serve (the audit of reads, headers), and the
    /// formatting machinery per field cost more than the rest of the conversion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339_buf() {
            Some((buf, len)) => {
                f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
            }
            None => {
                let days = self.secs.div_euclid(86_400);
                let sod = self.secs.rem_euclid(86_400);
                let (y, m, d) = civil_from_days(days);
                self.fmt_fields(f, y, m, d, sod)
            }
        }
    }
}

impl Timestamp {
    /// Appends what [`fmt::Display`] writes to `out`, without the formatting machinery (the
    /// audit of reads writes one per object version served).
    pub fn push_to(&self, out: &mut String) {
        match self.rfc3339_buf() {
            Some((buf, len)) => out.push_str(std::str::from_utf8(&buf[..len]).unwrap_or("")),
            None => {
                use fmt::Write as _;
                // Writing into a String cannot fail.
                let _ = write!(out, "{self}");
            }
        }
    }

    /// The text of a timestamp in years 0..=9999 (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`) and its
    /// length; `None` for other years.
    fn rfc3339_buf(&self) -> Option<([u8; 30], usize)> {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let year = u32::try_from(y).ok().filter(|&y| y <= 9999)?;
        // `YYYY-MM-DDTHH:MM:SS` + `.` + up to 9 digits + `Z`.
        let mut buf = *b"0000-00-00T00:00:00.000000000Z";
        let sod = u32::try_from(sod).unwrap_or(0);
        put_digits(&mut buf[0..4], year);
        put_digits(&mut buf[5..7], m);
        put_digits(&mut buf[8..10], d);
        put_digits(&mut buf[11..13], sod / 3_600);
        put_digits(&mut buf[14..16], (sod / 60) % 60);
        put_digits(&mut buf[17..19], sod % 60);
        let mut len = 19;
        if self.digits > 0 {
            let digits = usize::from(self.digits.min(9));
            put_digits(&mut buf[20..29], self.nanos);
            len = 20 + digits;
        }
        buf[len] = b'Z';
        Some((buf, len + 1))
    }
}

impl Timestamp {
    /// [`fmt::Display`] for years outside 0..=9999, field by field.
    fn fmt_fields(
        &self,
        f: &mut fmt::Formatter<'_>,
        y: i64,
        m: u32,
        d: u32,
        sod: i64,
    ) -> fmt::Result {
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3_600,
            (sod / 60) % 60,
            sod % 60
        )?;
        if self.digits > 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", &frac[..usize::from(self.digits.min(9))])?;
        }
        f.write_str("Z")
    }
}

/// Writes `value` in decimal into `out`, right-aligned and padded with zeros (higher digits that
/// do not fit are dropped; callers pass values that fit).
fn put_digits(out: &mut [u8], mut value: u32) {
    for byte in out.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        (self.secs, self.nanos) == (other.secs, other.nanos)
    }
}
impl Eq for Timestamp {}
impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.secs, self.nanos).cmp(&(other.secs, other.nanos))
    }
}
impl std::hash::Hash for Timestamp {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.secs, self.nanos).hash(state);
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-buffer `Display` writes what formatting field by field writes, for every number of
    /// digits, and years outside four digits still print.
    #[test]
    fn display_matches_field_by_field_formatting() {
        struct Fields(Timestamp);
        impl fmt::Display for Fields {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let t = self.0;
                let (y, m, d) = civil_from_days(t.secs.div_euclid(86_400));
                t.fmt_fields(f, y, m, d, t.secs.rem_euclid(86_400))
            }
        }
        for secs in [
            Timestamp::MIN.secs,
            -1,
            0,
            951_782_400,
            1_463_041_047,
            253_402_300_799,
            253_402_300_800,
        ] {
            for nanos in [0, 5, 123_456_789, 999_999_999] {
                for digits in 0..=9 {
                    let t = Timestamp {
                        secs,
                        nanos,
                        digits,
                    };
                    assert_eq!(t.to_string(), Fields(t).to_string());
                }
            }
        }
        let far = Timestamp {
            secs: 253_402_300_800,
            nanos: 0,
            digits: 0,
        };
        assert_eq!(far.to_string(), "10000-01-01T00:00:00Z");
    }

    #[test]
    fn round_trips_with_original_precision() {
        for s in [
            "2016-05-12T08:17:27Z",
            "2016-05-12T08:17:27.000Z",
            "2016-05-12T08:17:27.123456Z",
            "2016-05-12T08:17:27.123456789Z",
            "1970-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "2024-02-29T12:00:00.5Z",
        ] {
            assert_eq!(Timestamp::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn compares_instants_not_text() {
        let a = Timestamp::parse("2016-05-12T08:17:27Z").unwrap();
        let b = Timestamp::parse("2016-05-12T08:17:27.000Z").unwrap();
        let c = Timestamp::parse("2016-05-12T08:17:27.000001Z").unwrap();
        assert_eq!(a, b);
        assert!(b < c);
        assert_eq!(c.unix_micros() - a.unix_micros(), 1);
    }

    #[test]
    fn truncates_beyond_nanoseconds() {
        let t = Timestamp::parse("2016-05-12T08:17:27.1234567891Z").unwrap();
        assert_eq!(t.subsec_nanos(), 123_456_789);
    }

    #[test]
    fn micros_round_trip() {
        let t = Timestamp::parse("2021-03-04T05:06:07.891011Z").unwrap();
        assert_eq!(Timestamp::from_unix_micros(t.unix_micros()), t);
        assert_eq!(
            Timestamp::from_unix_micros(t.unix_micros()).to_string(),
            "2021-03-04T05:06:07.891011Z"
        );
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "2016-05-12",
            "2016-05-12T08:17:27",
            "2016-05-12T08:17:27+00:00",
            "2016-05-12T08:17:27.Z",
            "2016-13-12T08:17:27Z",
            "2023-02-29T08:17:27Z",
            "2016-05-12T24:17:27Z",
            "2016-05-12 08:17:27Z",
            "2016-05-12T08:17:27z",
            "２016-05-12T08:17:27Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
