//! `kubeadm certs check-expiration` (upstream `cmd/kubeadm/app/cmd/certs.go` and
//! `phases/certs/renewal`): when each managed certificate and kubeconfig expires, in
//! upstream's two tables.

use crate::app::apis::kubeadm::InitConfig;
use crate::app::phases::{certs, kubeconfig};
use crate::app::util::pkiutil;
use std::path::Path;

/// Upstream's `duration.ShortHumanDuration`.
pub fn short_human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let hours = secs / 3600;
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else if hours < 24 {
        format!("{hours}h")
    } else if hours < 24 * 365 {
        format!("{}d", hours / 24)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// Go's `Jan 02, 2006 15:04 MST` in UTC.
fn expires(at: i64) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.strftime("%b %d, %Y %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Go's tabwriter with padding 3: every column but the last padded to its widest cell.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 < r.len() {
                out.push_str(&format!("{cell:<w$}", w = widths[i] + 3));
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

struct Row {
    name: String,
    not_after: Option<i64>,
    ca: String,
    external: bool,
}

pub fn check_expiration(cfg: &InitConfig, cert_dir: &Path, kubeconfig_dir: &Path) -> String {
    let now = jiff::Timestamp::now().as_second();
    let mut leaves = Vec::new();
    let mut cas = Vec::new();
    for c in certs::certificates(cfg) {
        let pem = std::fs::read_to_string(pkiutil::cert_path(cert_dir, c.base)).ok();
        let not_after = pem
            .as_deref()
            .and_then(|p| pkiutil::info(p).ok())
            .map(|i| i.not_after);
        let external = |base: &str| !pkiutil::key_path(cert_dir, base).exists();
        match c.ca {
            None => cas.push(Row {
                name: c.name.to_string(),
                not_after,
                ca: String::new(),
                external: pem.is_some() && external(c.base),
            }),
            Some(ca) => leaves.push(Row {
                name: c.name.to_string(),
                not_after,
                ca: ca.replace('/', "-"),
                external: pem.is_some() && external(ca),
            }),
        }
    }
    for s in kubeconfig::specs("") {
        // kubelet.conf is rotated by the kubelet itself; upstream does not list it.
        if s.file == "kubelet.conf" {
            continue;
        }
        let not_after = kubeconfig::embedded_certificate(&kubeconfig_dir.join(s.file))
            .ok()
            .and_then(|p| pkiutil::info(&p).ok())
            .map(|i| i.not_after);
        leaves.push(Row {
            name: s.file.to_string(),
            not_after,
            ca: "ca".into(),
            external: false,
        });
    }
    leaves.sort_by(|a, b| a.name.cmp(&b.name));
    cas.sort_by(|a, b| a.name.cmp(&b.name));
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut rows = vec![vec![
        "CERTIFICATE".to_string(),
        "EXPIRES".into(),
        "RESIDUAL TIME".into(),
        "CERTIFICATE AUTHORITY".into(),
        "EXTERNALLY MANAGED".into(),
    ]];
    for r in &leaves {
        match r.not_after {
            Some(t) => rows.push(vec![
                r.name.clone(),
                expires(t),
                short_human_duration(t - now),
                r.ca.clone(),
                format!("{:<8}", yes_no(r.external)),
            ]),
            None => rows.push(vec![format!("!MISSING! {}", r.name)]),
        }
    }
    let mut out = table(&rows);
    out.push('\n');
    let mut rows = vec![vec![
        "CERTIFICATE AUTHORITY".to_string(),
        "EXPIRES".into(),
        "RESIDUAL TIME".into(),
        "EXTERNALLY MANAGED".into(),
    ]];
    for r in &cas {
        match r.not_after {
            Some(t) => rows.push(vec![
                r.name.clone(),
                expires(t),
                short_human_duration(t - now),
                format!("{:<8}", yes_no(r.external)),
            ]),
            None => rows.push(vec![format!("!MISSING! {}", r.name)]),
        }
    }
    out.push_str(&table(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_upstreams() {
        assert_eq!(short_human_duration(30), "30s");
        assert_eq!(short_human_duration(90), "1m");
        assert_eq!(short_human_duration(23 * 3600), "23h");
        assert_eq!(short_human_duration(47 * 3600), "1d");
        assert_eq!(short_human_duration(364 * 86400 + 3000), "364d");
        assert_eq!(short_human_duration(3650 * 86400 - 600), "9y");
        assert_eq!(short_human_duration(-100), "<invalid>");
    }

    #[test]
    fn tables_pad_like_tabwriter() {
        let t = table(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["long-name".into(), "x".into(), "y".into()],
        ]);
        assert_eq!(t, "A           BB   C\nlong-name   x    y\n");
    }
}
