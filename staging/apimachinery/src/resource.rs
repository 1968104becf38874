//! Resource quantities (upstream `api/resource.Quantity`): `500m`, `2`, `1Gi`, `1e3`,
//! kept exactly in nano-units, added and compared, and printed in upstream's canonical
//! form (the largest suffix that keeps the value whole, in the format it was written in).

use std::cmp::Ordering;
use std::fmt;

const NANO: i128 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    /// The value times 10^9.
    nanos: i128,
    pub format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Quantity::zero(Format::DecimalSI)
    }
}

const DECIMAL: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];
const BINARY: [(&str, u32); 6] = [
    ("Ki", 10),
    ("Mi", 20),
    ("Gi", 30),
    ("Ti", 40),
    ("Pi", 50),
    ("Ei", 60),
];

impl Quantity {
    pub fn zero(format: Format) -> Self {
        Quantity { nanos: 0, format }
    }

    /// A whole number of units (`3` pods).
    pub fn from_units(n: i64) -> Self {
        Quantity {
            nanos: n as i128 * NANO,
            format: Format::DecimalSI,
        }
    }

    /// A whole number in the binary format (`resource.NewQuantity(n, BinarySI)`: bytes
    /// print as `1Gi`, `320Mi`).
    pub fn binary(n: i64) -> Self {
        Quantity {
            nanos: n as i128 * NANO,
            format: Format::BinarySI,
        }
    }

    /// Parses upstream's quantity syntax; None when it is not one.
    pub fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(split);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if (int_part.is_empty() && frac_part.is_empty())
            || !int_part
                .chars()
                .chain(frac_part.chars())
                .all(|c| c.is_ascii_digit())
        {
            return None;
        }
        // The number scaled by 10^9 (sub-nano digits are rounded up, as upstream).
        let mut nanos: i128 = 0;
        for c in int_part.chars() {
            nanos = nanos
                .checked_mul(10)?
                .checked_add((c as u8 - b'0') as i128)?;
        }
        nanos = nanos.checked_mul(NANO)?;
        let mut scale = NANO / 10;
        let mut rest = false;
        for c in frac_part.chars() {
            let d = (c as u8 - b'0') as i128;
            if scale == 0 {
                rest |= d != 0;
            } else {
                nanos += d * scale;
                scale /= 10;
            }
        }
        let (format, nanos) = if let Some((_, shift)) = BINARY.iter().find(|(b, _)| *b == suffix) {
            (Format::BinarySI, nanos.checked_mul(1i128 << shift)?)
        } else if let Some((_, exp)) = DECIMAL.iter().find(|(d, _)| *d == suffix) {
            (Format::DecimalSI, scale_pow10(nanos, *exp, &mut rest)?)
        } else if let Some(exp) = suffix.strip_prefix(['e', 'E']) {
            let exp: i32 = exp.parse().ok()?;
            (Format::DecimalExponent, scale_pow10(nanos, exp, &mut rest)?)
        } else {
            return None;
        };
        let nanos = if rest { nanos + 1 } else { nanos };
        Some(Quantity {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    /// Reads a JSON quantity (a string, or a number as some clients send).
    pub fn from_json(v: &serde_json::Value) -> Option<Quantity> {
        match v {
            serde_json::Value::String(s) => Quantity::parse(s),
            serde_json::Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => None,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The value in milli-units, rounded up (`MilliValue`).
    pub fn milli_value(&self) -> i64 {
        let m =
            self.nanos.div_euclid(1_000_000) + i128::from(self.nanos.rem_euclid(1_000_000) != 0);
        m.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// The value in whole units, rounded up (`Value`).
    pub fn value(&self) -> i64 {
        let v = self.nanos.div_euclid(NANO) + i128::from(self.nanos.rem_euclid(NANO) != 0);
        v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    pub fn add(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            format: self.format,
        }
    }

    pub fn sub(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: self.format,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::String(self.to_string())
    }
}

fn scale_pow10(nanos: i128, exp: i32, rest: &mut bool) -> Option<i128> {
    if exp >= 0 {
        nanos.checked_mul(10i128.checked_pow(exp as u32)?)
    } else {
        let div = 10i128.checked_pow((-exp) as u32)?;
        *rest |= nanos % div != 0;
        Some(nanos / div)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, n) = if self.nanos < 0 {
            ("-", -self.nanos)
        } else {
            ("", self.nanos)
        };
        if n == 0 {
            return write!(f, "0");
        }
        // Binary suffixes only for whole values; otherwise decimal, as upstream.
        if self.format == Format::BinarySI && n % NANO == 0 {
            let units = n / NANO;
            for (suffix, shift) in BINARY.iter().rev() {
                if units % (1i128 << shift) == 0 {
                    return write!(f, "{sign}{}{suffix}", units >> shift);
                }
            }
            if units < 1024 {
                return write!(f, "{sign}{units}");
            }
        }
        for (suffix, exp) in DECIMAL.iter().rev() {
            let unit = 10i128.pow((exp + 9) as u32);
            if n % unit == 0 {
                if self.format == Format::DecimalExponent && *exp != 0 {
                    return write!(f, "{sign}{}e{exp}", n / unit);
                }
                return write!(f, "{sign}{}{suffix}", n / unit);
            }
        }
        write!(f, "{sign}{n}n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn parse_and_canonical_form() {
        for (input, canonical) in [
            ("500m", "500m"),
            ("1000m", "1"),
            ("1.5", "1500m"),
            ("2", "2"),
            ("1000", "1k"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("0.1", "100m"),
            ("-2", "-2"),
        ] {
            assert_eq!(q(input).to_string(), canonical, "{input}");
        }
        for bad in ["", "1x", "abc", "1..2", "Gi"] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_and_values() {
        assert_eq!(q("500m").add(&q("1")).to_string(), "1500m");
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1500m").value(), 2);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("1Gi").sub(&q("512Mi")).to_string(), "512Mi");
    }
}
