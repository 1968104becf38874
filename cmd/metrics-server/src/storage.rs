//! What metrics-server keeps (upstream `metrics-server/pkg/storage`): the last two samples
//! of every node and container, from which CPU usage is the rate between them over their
//! window and memory is the last working set. A counter that went down (a restarted
//! container) has no rate until it has two samples again.

use std::collections::BTreeMap;

/// One sample of a cumulative CPU counter and a memory gauge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub cpu_seconds: f64,
    pub memory_bytes: u64,
}

/// Usage over a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    pub timestamp_ms: i64,
    pub window_ms: i64,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

#[derive(Default, Clone, Debug)]
struct Series {
    prev: Option<Sample>,
    last: Option<Sample>,
}

impl Series {
    fn push(&mut self, s: Sample) {
        match self.last {
            // The same scrape again: nothing new.
            Some(l) if l.timestamp_ms >= s.timestamp_ms => {}
            // A counter that went back (a restart): start over.
            Some(l) if s.cpu_seconds < l.cpu_seconds => {
                self.prev = None;
                self.last = Some(s);
            }
            last => {
                self.prev = last;
                self.last = Some(s);
            }
        }
    }

    fn usage(&self) -> Option<Usage> {
        let (p, l) = (self.prev?, self.last?);
        let window_ms = l.timestamp_ms - p.timestamp_ms;
        if window_ms <= 0 {
            return None;
        }
        let cores = (l.cpu_seconds - p.cpu_seconds) / (window_ms as f64 / 1000.0);
        Some(Usage {
            timestamp_ms: l.timestamp_ms,
            window_ms,
            cpu_nanocores: (cores * 1e9).round().max(0.0) as u64,
            memory_bytes: l.memory_bytes,
        })
    }
}

/// `(namespace, pod)`.
pub type PodKey = (String, String);

#[derive(Default)]
pub struct Storage {
    nodes: BTreeMap<String, Series>,
    containers: BTreeMap<PodKey, BTreeMap<String, Series>>,
}

/// One scrape of one node.
#[derive(Default, Debug, PartialEq)]
pub struct Batch {
    pub node: Option<Sample>,
    /// `(namespace, pod, container)` samples.
    pub containers: Vec<(String, String, String, Sample)>,
}

impl Storage {
    /// Records a node's scrape; pods of that node no longer reported are forgotten.
    pub fn store(&mut self, node: &str, batch: Batch, pods_on_node: &[PodKey]) {
        if let Some(s) = batch.node {
            self.nodes.entry(node.to_string()).or_default().push(s);
        }
        let mut seen: BTreeMap<PodKey, Vec<String>> = BTreeMap::new();
        for (ns, pod, c, s) in batch.containers {
            let key = (ns, pod);
            self.containers
                .entry(key.clone())
                .or_default()
                .entry(c.clone())
                .or_default()
                .push(s);
            seen.entry(key).or_default().push(c);
        }
        for key in pods_on_node {
            match seen.get(key) {
                None => {
                    self.containers.remove(key);
                }
                Some(cs) => {
                    if let Some(m) = self.containers.get_mut(key) {
                        m.retain(|c, _| cs.contains(c));
                    }
                }
            }
        }
    }

    /// Forgets nodes (and pods) that are gone from the cluster.
    pub fn retain(&mut self, nodes: &[String], pods: &[PodKey]) {
        self.nodes.retain(|n, _| nodes.contains(n));
        self.containers.retain(|p, _| pods.contains(p));
    }

    pub fn node(&self, name: &str) -> Option<Usage> {
        self.nodes.get(name)?.usage()
    }

    /// A pod's containers' usage, when every one of them has a rate.
    pub fn pod(&self, key: &PodKey) -> Option<Vec<(String, Usage)>> {
        let cs = self.containers.get(key)?;
        let out: Option<Vec<(String, Usage)>> = cs
            .iter()
            .map(|(c, s)| s.usage().map(|u| (c.clone(), u)))
            .collect();
        out.filter(|v| !v.is_empty())
    }

    #[cfg(test)]
    pub fn pods(&self) -> impl Iterator<Item = &PodKey> {
        self.containers.keys()
    }

    pub fn ready(&self) -> bool {
        self.nodes.values().any(|s| s.usage().is_some())
    }
}

/// A CPU quantity as upstream prints `NewScaledQuantity(nanocores, Nano)`.
pub fn cpu_quantity(nanocores: u64) -> String {
    match nanocores {
        0 => "0".into(),
        n if n.is_multiple_of(1_000_000_000) => format!("{}", n / 1_000_000_000),
        n if n.is_multiple_of(1_000_000) => format!("{}m", n / 1_000_000),
        n if n.is_multiple_of(1_000) => format!("{}u", n / 1_000),
        n => format!("{n}n"),
    }
}

/// A memory quantity as upstream prints `NewQuantity(bytes, BinarySI)`.
pub fn memory_quantity(bytes: u64) -> String {
    for (suffix, exp) in [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ] {
        let unit = 1u64 << exp;
        if bytes != 0 && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// A window as Go prints a `time.Duration` (`15.012s`).
pub fn window(ms: i64) -> String {
    let s = ms as f64 / 1000.0;
    let mut out = format!("{s:.3}");
    while out.ends_with('0') {
        out.pop();
    }
    if out.ends_with('.') {
        out.pop();
    }
    format!("{out}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts: i64, cpu: f64, mem: u64) -> Sample {
        Sample {
            timestamp_ms: ts,
            cpu_seconds: cpu,
            memory_bytes: mem,
        }
    }

    #[test]
    fn usage_is_the_rate_between_the_last_two_samples() {
        let mut st = Storage::default();
        let pods = vec![("default".to_string(), "web".to_string())];
        let batch = |ts, cpu| Batch {
            node: Some(s(ts, cpu * 2.0, 2048)),
            containers: vec![(
                "default".into(),
                "web".into(),
                "app".into(),
                s(ts, cpu, 1024),
            )],
        };
        st.store("n1", batch(1_000, 10.0), &pods);
        assert_eq!(st.node("n1"), None, "one sample has no rate");
        assert!(!st.ready());
        st.store("n1", batch(16_000, 13.0), &pods);
        let u = st.node("n1").unwrap();
        assert_eq!(
            (u.window_ms, u.cpu_nanocores, u.memory_bytes),
            (15_000, 400_000_000, 2048)
        );
        let p = st.pod(&pods[0]).unwrap();
        assert_eq!(p[0].1.cpu_nanocores, 200_000_000);
        assert!(st.ready());
        // A restarted container's counter goes back: no rate until the next sample.
        st.store("n1", batch(31_000, 1.0), &pods);
        assert_eq!(st.pod(&pods[0]), None);
        // A pod no longer on the node is forgotten.
        st.store("n1", Batch::default(), &pods);
        assert_eq!(st.pods().count(), 0);
    }

    #[test]
    fn quantities_print_as_upstream() {
        assert_eq!(cpu_quantity(250_000_000), "250m");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(123_456_789), "123456789n");
        assert_eq!(memory_quantity(12 * 1024 * 1024), "12Mi");
        assert_eq!(memory_quantity(12_345), "12345");
        assert_eq!(window(15_012), "15.012s");
        assert_eq!(window(15_000), "15s");
    }
}
