//! Fuzz targets for every parser of client input in apimachinery, run for a bounded
//! number of inputs on every `cargo test` (CI included): random bytes, random mixes of
//! the grammar's own characters, and mutations of seeds (the reproducers found so far
//! among them). A parser must be total: any input gives Ok or Err, never a panic.
//! `FUZZ_ITERATIONS` raises the count for a longer local run.

use apimachinery::fields::FieldSelector;
use apimachinery::fuzz::Rng;
use apimachinery::labels::Selector;
use apimachinery::resource::Quantity;
use std::panic::{AssertUnwindSafe, catch_unwind};

const ALPHABET: &[&str] = &[
    "a",
    "z",
    "0",
    "9",
    ".",
    "-",
    "_",
    "/",
    "=",
    "!",
    ",",
    "(",
    ")",
    " ",
    "\\",
    "in",
    "notin",
    "==",
    "!=",
    "<",
    ">",
    "é",
    "ü",
    "日",
    "\u{0}",
    "\u{7f}",
    "%",
    "+",
    "e",
    "E",
    "m",
    "Ki",
    "Mi",
    "n",
    "u",
    "h",
    "s",
    "ms",
    "µs",
    "1",
    "-1",
    "9999999999999999999999",
    "#",
    "*",
    "?",
];

fn iterations() -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Inputs: seeds, then random grammar mixes, random bytes and seed mutations.
fn inputs(seeds: &[&str], salt: u64) -> impl Iterator<Item = String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ salt);
    let seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    let n = iterations();
    let mut i = 0;
    std::iter::from_fn(move || {
        i += 1;
        if i > n + seeds.len() {
            return None;
        }
        if i <= seeds.len() {
            return Some(seeds[i - 1].clone());
        }
        Some(match rng.below(3) {
            0 => (0..rng.below(24))
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect(),
            1 => {
                let bytes: Vec<u8> = (0..rng.below(32)).map(|_| rng.next_u64() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => {
                let mut s: Vec<char> = seeds[rng.below(seeds.len())].chars().collect();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(s.len() + 1);
                    match rng.below(3) {
                        0 if at < s.len() => {
                            s.remove(at);
                        }
                        _ => {
                            for c in ALPHABET[rng.below(ALPHABET.len())].chars().rev() {
                                s.insert(at.min(s.len()), c);
                            }
                        }
                    }
                }
                s.into_iter().collect()
            }
        })
    })
}

fn total(name: &str, seeds: &[&str], salt: u64, parse: impl Fn(&str)) {
    for input in inputs(seeds, salt) {
        if catch_unwind(AssertUnwindSafe(|| parse(&input))).is_err() {
            panic!("{name} panicked on {input:?}");
        }
    }
}

#[test]
fn field_selectors() {
    total(
        "field selector",
        &[
            "é",
            "metadata.name=é",
            "a\\é=b",
            "a!=b,c==d",
            "spec.nodeName=",
            "\\",
        ],
        1,
        |s| {
            let _ = FieldSelector::parse(s);
        },
    );
}

#[test]
fn label_selectors() {
    total(
        "label selector",
        &[
            "é",
            "a in (b,c)",
            "!a",
            "a notin (é)",
            "a,b!=c",
            "a>1",
            "x in (",
            "k8s.io/a=b",
        ],
        2,
        |s| {
            let _ = Selector::parse(s);
        },
    );
}

#[test]
fn quantities() {
    total(
        "quantity",
        &[
            "1",
            "100m",
            "1Gi",
            "1e3",
            "-0.5Ki",
            "9999999999999999999999E99",
            "1.",
            ".5",
            "é",
        ],
        3,
        |s| {
            if let Some(q) = Quantity::parse(s) {
                let _ = q.to_string();
            }
        },
    );
}

#[test]
fn durations() {
    total(
        "duration",
        &[
            "1s",
            "1h2m3.5s",
            "-5ms",
            "9999999999999999h",
            "1µs",
            "1.5",
            "é",
        ],
        4,
        |s| {
            let _ = apimachinery::duration::parse(s);
            let _ = apimachinery::duration::parse_go_nanos(s);
        },
    );
}

#[test]
fn cron_schedules() {
    total(
        "cron schedule",
        &[
            "*/5 * * * *",
            "@hourly",
            "0 0 31 2 *",
            "TZ=UTC 0 0 * * *",
            "1-5/0 * * * *",
            "é",
        ],
        5,
        |s| {
            let _ = apimachinery::cron::Schedule::parse(s);
        },
    );
}

#[test]
fn protobuf_bodies() {
    let mut rng = Rng(6);
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "b"}}, "data": {"k": "v"}});
    let valid = apimachinery::protobuf::encode_object(&cm).unwrap();
    for _ in 0..iterations() {
        let mut b = valid.clone();
        for _ in 0..=rng.below(6) {
            let at = rng.below(b.len());
            match rng.below(3) {
                0 => b[at] = rng.next_u64() as u8,
                1 => b.truncate(at.max(4)),
                _ => b.insert(at, rng.next_u64() as u8),
            }
        }
        if catch_unwind(AssertUnwindSafe(|| {
            let _ = apimachinery::protobuf::decode_object(&b);
        }))
        .is_err()
        {
            panic!("protobuf decoding panicked on {b:?}");
        }
    }
}
