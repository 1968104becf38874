//! Cron schedules as CronJobs spell them (the standard parser upstream vendors from
//! robfig/cron v3): five fields (minute hour day-of-month month day-of-week) with `*`,
//! `?`, lists, ranges, steps and month/day names, the `@yearly` ... `@hourly`
//! descriptors and `@every <duration>`. Shared by the apiserver's validation and the
//! CronJob controller so both read a schedule the same way.

use jiff::civil::DateTime;
use jiff::{Timestamp, ToSpan, Zoned, tz::TimeZone};

/// Set on a field written `*` or `?` (no `/step` above 1): with day-of-month and
/// day-of-week, a starred field makes the match an AND instead of an OR.
const STAR: u64 = 1 << 63;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every <duration>`: a fixed period, whole seconds.
    Every(std::time::Duration),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

fn number(s: &str, b: &Bounds) -> Result<u32, String> {
    if let Some(i) = b.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(b.min + i as u32);
    }
    s.parse::<u32>().map_err(|_| {
        format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")
    })
}

/// One comma-separated part: `*`, `?`, `n`, `a-b`, each optionally `/step`.
fn range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let (body, step) = match expr.split('/').collect::<Vec<_>>()[..] {
        [body] => (body, None),
        [body, step] => (body, Some(step)),
        _ => return Err(format!("too many slashes: {expr}")),
    };
    let mut extra = 0;
    let (start, mut end) = if body == "*" || body == "?" {
        extra = STAR;
        (b.min, b.max)
    } else {
        match body.split('-').collect::<Vec<_>>()[..] {
            [one] => {
                let n = number(one, b)?;
                (n, n)
            }
            [a, z] => (number(a, b)?, number(z, b)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match step {
        None => 1,
        Some(s) => {
            let n = s.parse::<u32>().map_err(|_| {
                format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")
            })?;
            // `n/step` runs to the field's maximum.
            if !body.contains('-') && body != "*" && body != "?" {
                end = b.max;
            }
            if n > 1 {
                extra = 0;
            }
            n
        }
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = extra;
    let mut i = start;
    while i <= end {
        bits |= 1 << i;
        i += step;
    }
    Ok(bits)
}

fn field(expr: &str, b: &Bounds) -> Result<u64, String> {
    expr.split(',')
        .try_fold(0u64, |acc, part| Ok(acc | range(part, b)?))
}

fn has(bits: u64, n: i8) -> bool {
    bits & (1 << n) != 0
}

impl Schedule {
    /// Parses like robfig/cron's `ParseStandard`.
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
        }
        if let Some(d) = spec.strip_prefix('@') {
            let fields = |s: &str| Schedule::parse(s);
            return match d {
                "yearly" | "annually" => fields("0 0 1 1 *"),
                "monthly" => fields("0 0 1 * *"),
                "weekly" => fields("0 0 * * 0"),
                "daily" | "midnight" => fields("0 0 * * *"),
                "hourly" => fields("0 * * * *"),
                d if d.starts_with("every ") => {
                    let text = &d["every ".len()..];
                    let dur = crate::duration::parse(text)
                        .map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
                    // Periods below a second are rounded up to one, as robfig does.
                    Ok(Schedule::Every(dur.max(std::time::Duration::from_secs(1))))
                }
                _ => Err(format!("unrecognized descriptor: {spec}")),
            };
        }
        let f: Vec<&str> = spec.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                f.len()
            ));
        }
        Ok(Schedule::Fields {
            minute: field(f[0], &MINUTES)?,
            hour: field(f[1], &HOURS)?,
            dom: field(f[2], &DOM)?,
            month: field(f[3], &MONTHS)?,
            dow: field(f[4], &DOW)?,
        })
    }

    fn day_matches(dom: u64, dow: u64, t: &DateTime) -> bool {
        let d = has(dom, t.day());
        let w = has(dow, t.weekday().to_sunday_zero_offset());
        if dom & STAR != 0 || dow & STAR != 0 {
            d && w
        } else {
            d || w
        }
    }

    /// The first activation strictly after `after`, in `tz`; None if there is none
    /// within five years (e.g. 30 February).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (minute, hour, dom, month, dow) = match self {
            Schedule::Every(d) => {
                let secs = after.as_second() + d.as_secs() as i64;
                return Timestamp::from_second(secs).ok();
            }
            Schedule::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
            } => (*minute, *hour, *dom, *month, *dow),
        };
        let local = after.to_zoned(tz.clone()).datetime();
        // Start at the next whole minute.
        let mut t = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = t.year() + 5;
        while t.year() <= limit {
            if !has(month, t.month()) {
                t = t
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .start_of_day();
                continue;
            }
            if !Self::day_matches(dom, dow, &t) {
                t = t
                    .date()
                    .tomorrow()
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if !has(hour, t.hour()) {
                t = t
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if !has(minute, t.minute()) {
                t = t.checked_add(1.minute()).ok()?;
                continue;
            }
            // A local time skipped by a DST jump runs at the first instant after it.
            let z: Zoned = t.to_zoned(tz.clone()).ok()?;
            let ts = z.timestamp();
            if ts > after {
                return Some(ts);
            }
            t = t.checked_add(1.minute()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_like_robfig() {
        assert!(Schedule::parse("*/5 * * * *").is_ok());
        assert!(Schedule::parse("0 9-17 * JAN-jun mon,WED,fri").is_ok());
        assert!(Schedule::parse("@hourly").is_ok());
        assert!(Schedule::parse("@every 90s").is_ok());
        assert_eq!(
            Schedule::parse("* * *").unwrap_err(),
            "expected exactly 5 fields, found 3: * * *"
        );
        assert_eq!(
            Schedule::parse("60 * * * *").unwrap_err(),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            Schedule::parse("* * 0 * *").unwrap_err(),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            Schedule::parse("@fortnightly").unwrap_err(),
            "unrecognized descriptor: @fortnightly"
        );
        assert!(
            Schedule::parse("x * * * *")
                .unwrap_err()
                .starts_with("failed to parse int from x")
        );
        assert!(Schedule::parse("TZ=UTC * * * * *").is_err());
    }

    #[test]
    fn next_activation() {
        let utc = TimeZone::UTC;
        let every_5 = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(
            every_5.next(ts("2026-01-01T10:02:30Z"), &utc),
            Some(ts("2026-01-01T10:05:00Z"))
        );
        assert_eq!(
            every_5.next(ts("2026-01-01T10:05:00Z"), &utc),
            Some(ts("2026-01-01T10:10:00Z"))
        );
        // Day-of-month and day-of-week both restricted: either matches.
        let s = Schedule::parse("0 0 13 * 5").unwrap();
        // 2026-02-06 is a Friday.
        assert_eq!(
            s.next(ts("2026-02-01T00:00:00Z"), &utc),
            Some(ts("2026-02-06T00:00:00Z"))
        );
        // Starred day-of-month: only Fridays.
        let fridays = Schedule::parse("30 8 * * FRI").unwrap();
        assert_eq!(
            fridays.next(ts("2026-02-07T00:00:00Z"), &utc),
            Some(ts("2026-02-13T08:30:00Z"))
        );
        let yearly = Schedule::parse("@yearly").unwrap();
        assert_eq!(
            yearly.next(ts("2026-06-01T00:00:00Z"), &utc),
            Some(ts("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            Schedule::parse("0 0 30 2 *")
                .unwrap()
                .next(ts("2026-01-01T00:00:00Z"), &utc),
            None
        );
        // In a zone: 09:00 in Tokyo is 00:00 UTC.
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            Schedule::parse("0 9 * * *")
                .unwrap()
                .next(ts("2026-03-01T01:00:00Z"), &tokyo),
            Some(ts("2026-03-02T00:00:00Z"))
        );
        let every = Schedule::parse("@every 1m30s").unwrap();
        assert_eq!(
            every.next(ts("2026-01-01T00:00:00Z"), &utc),
            Some(ts("2026-01-01T00:01:30Z"))
        );
    }
}
