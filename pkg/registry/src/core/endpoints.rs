//! Endpoints (upstream `pkg/registry/core/endpoint`).

use crate::typed::{Typed, info};
use k8s_openapi::api::core::v1::Endpoints;
use serde_json::{Value, json};

pub fn strategy() -> Typed<Endpoints> {
    let mut i = info(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        true,
        "services/endpoints",
    );
    i.short_names = vec!["ep".into()];
    i.singular = "endpoints".into();
    let mut t = Typed::new(i);
    t.allow_create_on_update = true;
    t.name_rule = apimachinery::validation::dns1035_label;
    t.default = |e: &mut Endpoints| {
        for s in e.subsets.iter_mut().flatten() {
            for p in s.ports.iter_mut().flatten() {
                p.protocol.get_or_insert_with(|| "TCP".into());
            }
        }
    };
    t.columns = Some(|| {
        vec![
            crate::typed::col(
                "Endpoints",
                "string",
                "Endpoints is the list of endpoints.",
                0,
            ),
            crate::typed::col("Age", "string", "", 0),
        ]
    });
    t.row = |o| vec![json!(format_endpoints(o)), crate::typed::age_cell(o)];
    t
}

/// `ip:port` pairs, at most three then ` + N more...`, as upstream prints.
fn format_endpoints(o: &Value) -> String {
    let mut all = Vec::new();
    for s in o["subsets"].as_array().into_iter().flatten() {
        let ports: Vec<i64> = s["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["port"].as_i64())
            .collect();
        for a in s["addresses"].as_array().into_iter().flatten() {
            let ip = a["ip"].as_str().unwrap_or_default();
            if ports.is_empty() {
                all.push(ip.to_string());
            }
            for p in &ports {
                all.push(format!("{ip}:{p}"));
            }
        }
    }
    if all.is_empty() {
        return "<none>".into();
    }
    let more = all.len().saturating_sub(3);
    let mut s = all.into_iter().take(3).collect::<Vec<_>>().join(",");
    if more > 0 {
        s.push_str(&format!(" + {more} more..."));
    }
    s
}
