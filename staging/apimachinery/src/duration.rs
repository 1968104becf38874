//! Go `time.Duration` strings (`5m`, `300s`, `1h30m`, `500ms`), as flags and
//! `metav1.Duration` fields spell them.

use std::time::Duration;

pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("invalid duration {s:?}"))
}

/// A Go duration string as nanoseconds, sign included (`-1m30s`).
pub fn parse_go_nanos(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n =
        i64::try_from(parse(rest)?.as_nanos()).map_err(|_| format!("invalid duration {s:?}"))?;
    Ok(if neg { -n } else { n })
}

/// Nanoseconds as Go's `Duration.String` writes them: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `0s`.
pub fn format_go(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    // Under a second: the largest unit that keeps an integer part.
    if n < 1_000_000_000 {
        let (div, unit) = match n {
            0..1_000 => (1, "ns"),
            1_000..1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{sign}{}{unit}", fraction(n, div));
    }
    let (h, rem) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rem) = (rem / 60_000_000_000, rem % 60_000_000_000);
    let secs = fraction(rem, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{secs}s"),
        (0, m) => format!("{sign}{m}m{secs}s"),
        (h, m) => format!("{sign}{h}h{m}m{secs}s"),
    }
}

/// `n / div` with its decimal fraction, trailing zeros dropped.
fn fraction(n: u64, div: u64) -> String {
    let (whole, frac) = (n / div, n % div);
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("5m0s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert!(parse("5").is_err());
        assert!(parse("5x").is_err());
    }

    #[test]
    fn go_strings() {
        assert!(
            parse("99999999999999999999999h").is_err(),
            "overflow is an error"
        );
        assert_eq!(format_go(0), "0s");
        assert_eq!(format_go(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_go(90_000_000_000), "1m30s");
        assert_eq!(format_go(1_500_000_000), "1.5s");
        assert_eq!(format_go(500_000_000), "500ms");
        assert_eq!(format_go(1_500), "1.5µs");
        assert_eq!(format_go(-2_000_000_000), "-2s");
        assert_eq!(parse_go_nanos("-1m30s").unwrap(), -90_000_000_000);
        assert_eq!(parse_go_nanos("1h0m0s").unwrap(), 3_600_000_000_000);
    }
}
