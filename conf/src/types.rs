//! Small value types with their own text forms: [`ByteSize`] (frp `types.BandwidthQuantity`),
//! [`PortsRange`] (frp `types.PortsRange`) with the `"1000-2000,3000"` parser, [`Secret`]
//! (a string that never shows in `Debug`), and the number-range parser shared by the
//! template functions and legacy `[range:...]` sections (frp `util.ParseRangeNumbers`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Upper bound on how many numbers one range expression may expand to. frp has no bound; we
/// refuse `"1-999999999999"` rather than allocate without limit.
pub const MAX_RANGE_NUMBERS: usize = 100_000;

/// A text form that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// A bandwidth quantity such as `"1MB"` or `"100KB"`, in bytes per second.
///
/// Mirrors frp `pkg/config/types/types.go` `BandwidthQuantity`: the suffix is `MB` (2^20) or
/// `KB` (2^10), case-sensitive, the number may be fractional, and the original text is kept
/// because frpc sends it verbatim in `NewProxy.bandwidthLimit`. The empty string means "no limit".
#[derive(Clone, Default)]
pub struct ByteSize {
    text: String,
    bytes: u64,
}

impl ByteSize {
    /// Parses frp's form; surrounding whitespace is ignored, `""` is the zero quantity.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self::default());
        }
        let (num, base) = if let Some(n) = s.strip_suffix("MB") {
            (n, 1024.0 * 1024.0)
        } else if let Some(n) = s.strip_suffix("KB") {
            (n, 1024.0)
        } else {
            return Err(ParseError(format!(
                "bandwidth {s:?}: unit not support (use KB or MB)"
            )));
        };
        let f: f64 = num
            .trim()
            .parse()
            .map_err(|_| ParseError(format!("bandwidth {s:?}: invalid number {num:?}")))?;
        let bytes = f * base;
        if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
            return Err(ParseError(format!("bandwidth {s:?}: out of range")));
        }
        Ok(Self {
            text: s.to_string(),
            // Truncation mirrors Go's `int64(f * float64(base))`.
            bytes: bytes as u64,
        })
    }

    /// Bytes per second; 0 means unlimited.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The text as written (trimmed), which is what frp puts on the wire.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when no limit is set.
    pub fn is_zero(&self) -> bool {
        self.bytes == 0
    }
}

impl PartialEq for ByteSize {
    /// Equal when the byte counts match, as frp's `Equal` does ("1024KB" == "1MB").
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for ByteSize {}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ByteSize({:?} = {} B/s)", self.text, self.bytes)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for ByteSize {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One `allowPorts` entry: `{ start = 2000, end = 3000 }` or `{ single = 3001 }`.
///
/// frp keeps all three fields in one struct and treats `single > 0` as a single port
/// (`server/ports` `NewManager`); we keep that reading but as an enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawPortsRange", into = "RawPortsRange")]
pub enum PortsRange {
    /// `start..=end`.
    Range {
        /// First port.
        start: u16,
        /// Last port (inclusive).
        end: u16,
    },
    /// One port.
    Single(u16),
}

impl PortsRange {
    /// True if `port` falls in this entry.
    pub fn contains(&self, port: u16) -> bool {
        match *self {
            PortsRange::Range { start, end } => (start..=end).contains(&port),
            PortsRange::Single(p) => p == port,
        }
    }
}

impl fmt::Display for PortsRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortsRange::Range { start, end } => write!(f, "{start}-{end}"),
            PortsRange::Single(p) => write!(f, "{p}"),
        }
    }
}

/// frp's JSON shape of a [`PortsRange`].
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct RawPortsRange {
    #[serde(rename = "start", default, skip_serializing_if = "is_zero_u16")]
    start: u16,
    #[serde(rename = "end", default, skip_serializing_if = "is_zero_u16")]
    end: u16,
    #[serde(rename = "single", default, skip_serializing_if = "is_zero_u16")]
    single: u16,
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

impl From<RawPortsRange> for PortsRange {
    fn from(r: RawPortsRange) -> Self {
        if r.single > 0 {
            PortsRange::Single(r.single)
        } else {
            PortsRange::Range {
                start: r.start,
                end: r.end,
            }
        }
    }
}

impl From<PortsRange> for RawPortsRange {
    fn from(p: PortsRange) -> Self {
        match p {
            PortsRange::Range { start, end } => RawPortsRange {
                start,
                end,
                single: 0,
            },
            PortsRange::Single(single) => RawPortsRange {
                single,
                ..Default::default()
            },
        }
    }
}

/// Parses frp's string form `"1000-2000,3000,4000-5000"` (frp
/// `types.NewPortsRangeSliceFromString`, used by legacy `allow_ports` and `--allow_ports`).
pub fn parse_ports_ranges(s: &str) -> Result<Vec<PortsRange>, ParseError> {
    let s = s.trim();
    let mut out = Vec::new();
    for part in s.split(',') {
        let nums: Vec<&str> = part.split('-').collect();
        let port = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|e| ParseError(format!("range number {:?} is invalid, {e}", t.trim())))
        };
        match nums.as_slice() {
            [single] => out.push(PortsRange::Single(port(single)?)),
            [a, b] => {
                let (start, end) = (port(a)?, port(b)?);
                if end < start {
                    return Err(ParseError(format!("range number {part:?} is invalid")));
                }
                out.push(PortsRange::Range { start, end });
            }
            _ => return Err(ParseError(format!("range number {part:?} is invalid"))),
        }
    }
    Ok(out)
}

/// Expands `"1000-1005,2000"` to `[1000, 1001, ..., 1005, 2000]` (frp `util.ParseRangeNumbers`),
/// refusing more than [`MAX_RANGE_NUMBERS`] numbers.
pub fn parse_number_range(s: &str) -> Result<Vec<i64>, ParseError> {
    let mut out = Vec::new();
    for part in s.trim().split(',') {
        let nums: Vec<&str> = part.split('-').collect();
        let num = |t: &str| {
            t.trim()
                .parse::<i64>()
                .map_err(|e| ParseError(format!("range number {:?} is invalid, {e}", t.trim())))
        };
        let (lo, hi) = match nums.as_slice() {
            [single] => {
                let n = num(single)?;
                (n, n)
            }
            [a, b] => (num(a)?, num(b)?),
            _ => return Err(ParseError(format!("range number {part:?} is invalid"))),
        };
        if hi < lo {
            return Err(ParseError(format!("range number {part:?} is invalid")));
        }
        let count = (hi as i128 - lo as i128 + 1) as u128;
        if out.len() as u128 + count > MAX_RANGE_NUMBERS as u128 {
            return Err(ParseError(format!(
                "range {s:?} expands to more than {MAX_RANGE_NUMBERS} numbers"
            )));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// A string that must not appear in logs: tokens, passwords, secret keys.
///
/// `Debug` prints `***` (or `""` when empty, so "unset" stays visible); use [`Secret::expose`]
/// where the value is really needed (building auth keys, comparing).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("***")
        }
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl Serialize for Secret {
    /// Serialized in clear: frp's JSON forms (dashboard, admin API) carry these values.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_size_forms() {
        assert_eq!(ByteSize::parse("1MB").unwrap().bytes(), 1 << 20);
        assert_eq!(ByteSize::parse(" 100KB ").unwrap().bytes(), 102_400);
        assert_eq!(ByteSize::parse("1.5KB").unwrap().bytes(), 1536);
        assert_eq!(ByteSize::parse(" 100KB ").unwrap().as_str(), "100KB");
        assert!(ByteSize::parse("").unwrap().is_zero());
        assert!(ByteSize::parse("10").is_err());
        assert!(ByteSize::parse("10mb").is_err());
        assert!(ByteSize::parse("xMB").is_err());
        assert!(ByteSize::parse("-1MB").is_err());
        assert_eq!(
            ByteSize::parse("1024KB").unwrap(),
            ByteSize::parse("1MB").unwrap()
        );
    }

    #[test]
    fn ports_ranges() {
        let r = parse_ports_ranges("2000-3000,3001, 4000 - 5000").unwrap();
        assert_eq!(
            r,
            vec![
                PortsRange::Range {
                    start: 2000,
                    end: 3000
                },
                PortsRange::Single(3001),
                PortsRange::Range {
                    start: 4000,
                    end: 5000
                },
            ]
        );
        assert!(r[0].contains(2500) && !r[0].contains(3001) && r[1].contains(3001));
        assert!(parse_ports_ranges("3-1").is_err());
        assert!(parse_ports_ranges("1-2-3").is_err());
        assert!(parse_ports_ranges("70000").is_err());
        assert!(parse_ports_ranges("").is_err());
    }

    #[test]
    fn number_range() {
        assert_eq!(parse_number_range("1-3,7").unwrap(), vec![1, 2, 3, 7]);
        assert!(parse_number_range("1-999999999").is_err());
        assert!(parse_number_range("a").is_err());
        assert!(parse_number_range(&format!("{}-{}", i64::MIN, i64::MAX)).is_err());
    }

    #[test]
    fn secret_is_masked() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = ByteSize::parse(&s);
            let _ = parse_ports_ranges(&s);
            let _ = parse_number_range(&s);
        }
    }
}
