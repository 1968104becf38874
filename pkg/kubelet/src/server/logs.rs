//! Container logs (upstream `pkg/kubelet/kuberuntime/logs`): CRI log files hold lines
//! `<RFC3339Nano> <stream> <P|F> <content>`; partial (`P`) lines are joined. Served with
//! upstream's options: tailLines, sinceSeconds/sinceTime, timestamps, limitBytes, and
//! follow (the file is followed until the container stops).

use std::collections::HashMap;
use std::io::{BufRead, Seek};
use std::path::Path;

pub struct LogOptions {
    pub tail: Option<usize>,
    pub since: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
    pub follow: bool,
}

impl LogOptions {
    pub fn from_query(q: &HashMap<String, String>) -> Result<Self, String> {
        let num = |k: &str| -> Result<Option<i64>, String> {
            q.get(k)
                .map(|v| v.parse::<i64>().map_err(|_| format!("invalid {k} {v:?}")))
                .transpose()
        };
        let since = match (num("sinceSeconds")?, q.get("sinceTime")) {
            (Some(s), _) if s > 0 => {
                Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s))
            }
            (Some(_), _) => return Err("sinceSeconds must be greater than 0".into()),
            (None, Some(t)) => Some(t.parse().map_err(|_| format!("invalid sinceTime {t:?}"))?),
            _ => None,
        };
        let on = |k: &str| q.get(k).is_some_and(|v| v == "true" || v == "1");
        Ok(LogOptions {
            tail: num("tailLines")?.filter(|n| *n >= 0).map(|n| n as usize),
            since,
            timestamps: on("timestamps"),
            limit_bytes: num("limitBytes")?.filter(|n| *n > 0).map(|n| n as usize),
            follow: on("follow"),
        })
    }
}

/// One parsed line: (timestamp text, content with newline).
pub fn parse_line(line: &str) -> Option<(String, String, bool)> {
    let mut it = line.splitn(4, ' ');
    let ts = it.next()?.to_string();
    let _stream = it.next()?;
    let tag = it.next()?;
    let content = it
        .next()
        .unwrap_or_default()
        .trim_end_matches('\n')
        .to_string();
    Some((ts, content, tag.starts_with('P')))
}

/// Renders complete log lines from `reader` with the options (no follow).
pub fn render(lines: impl Iterator<Item = String>, o: &LogOptions) -> Vec<u8> {
    let mut out_lines: Vec<String> = Vec::new();
    let mut partial = String::new();
    for line in lines {
        let Some((ts, content, is_partial)) = parse_line(&line) else {
            continue;
        };
        partial.push_str(&content);
        if is_partial {
            continue;
        }
        let content = std::mem::take(&mut partial);
        if let Some(since) = o.since
            && ts.parse::<jiff::Timestamp>().is_ok_and(|t| t < since)
        {
            continue;
        }
        out_lines.push(if o.timestamps {
            format!("{ts} {content}\n")
        } else {
            format!("{content}\n")
        });
    }
    if let Some(n) = o.tail {
        let skip = out_lines.len().saturating_sub(n);
        out_lines.drain(..skip);
    }
    let mut out: Vec<u8> = out_lines.concat().into_bytes();
    if let Some(l) = o.limit_bytes {
        out.truncate(l);
    }
    out
}

/// Reads the whole file as lines and where it ended (for following).
pub fn read_all(path: &Path) -> std::io::Result<(Vec<String>, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut lines = Vec::new();
    let mut r = std::io::BufReader::new(&mut f);
    let mut buf = String::new();
    let mut pos = 0u64;
    loop {
        buf.clear();
        let n = r.read_line(&mut buf)?;
        if n == 0 || !buf.ends_with('\n') {
            break;
        }
        pos += n as u64;
        lines.push(buf.clone());
    }
    Ok((lines, pos))
}

/// New complete lines after `pos`.
pub fn read_from(path: &Path, pos: &mut u64) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    if f.seek(std::io::SeekFrom::Start(*pos)).is_err() {
        return Vec::new();
    }
    let mut r = std::io::BufReader::new(f);
    let mut lines = Vec::new();
    let mut buf = String::new();
    while let Ok(n) = r.read_line(&mut buf) {
        if n == 0 || !buf.ends_with('\n') {
            break;
        }
        *pos += n as u64;
        lines.push(std::mem::take(&mut buf));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_lines_tail_and_timestamps() {
        let lines = [
            "2024-01-01T00:00:00.1Z stdout F one\n",
            "2024-01-01T00:00:01.1Z stdout P tw\n",
            "2024-01-01T00:00:01.2Z stdout F o\n",
            "2024-01-01T00:00:02.1Z stderr F three\n",
        ];
        let o = LogOptions {
            tail: Some(2),
            since: None,
            timestamps: false,
            limit_bytes: None,
            follow: false,
        };
        assert_eq!(
            render(lines.iter().map(|s| s.to_string()), &o),
            b"two\nthree\n"
        );
        let o = LogOptions {
            tail: Some(1),
            since: None,
            timestamps: true,
            limit_bytes: Some(12),
            follow: false,
        };
        assert_eq!(
            render(lines.iter().map(|s| s.to_string()), &o),
            b"2024-01-01T0"
        );
    }
}
