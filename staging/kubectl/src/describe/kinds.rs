//! Describers of particular kinds. Upstream twin: `kubectl/pkg/describe/describe.go`.

use super::{PrefixWriter, annotations_multiline, describe_events, labels_multiline};
use serde_json::Value;

fn head(w: &mut PrefixWriter, obj: &Value, with_namespace: bool) {
    let meta = &obj["metadata"];
    w.write(
        0,
        &format!("Name:\t{}\n", meta["name"].as_str().unwrap_or_default()),
    );
    if with_namespace {
        w.write(
            0,
            &format!(
                "Namespace:\t{}\n",
                meta["namespace"].as_str().unwrap_or_default()
            ),
        );
    }
    labels_multiline(w, "Labels", &meta["labels"]);
    annotations_multiline(w, "Annotations", &meta["annotations"]);
}

pub fn config_map(w: &mut PrefixWriter, obj: &Value, events: Option<&[Value]>) {
    head(w, obj, true);
    w.write(0, "\nData\n====\n");
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        w.write(0, &format!("{k}:\n----\n"));
        w.write(0, &format!("{}\n", v.as_str().unwrap_or_default()));
        w.write(0, "\n");
    }
    w.write(0, "\nBinaryData\n====\n");
    for (k, v) in obj["binaryData"].as_object().into_iter().flatten() {
        w.write(0, &format!("{k}: {} bytes\n", decoded_len(v)));
    }
    w.write(0, "\n");
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

fn decoded_len(v: &Value) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .map(|b| b.len())
        .unwrap_or(0)
}

pub fn secret(w: &mut PrefixWriter, obj: &Value) {
    head(w, obj, true);
    let ty = obj["type"].as_str().unwrap_or_default();
    w.write(0, &format!("\nType:\t{ty}\n"));
    w.write(0, "\nData\n====\n");
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        if k == "token" && ty == "kubernetes.io/service-account-token" {
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            w.write(0, &format!("{k}:\t{}\n", String::from_utf8_lossy(&text)));
        } else {
            w.write(0, &format!("{k}:\t{} bytes\n", decoded_len(v)));
        }
    }
}

pub fn namespace(w: &mut PrefixWriter, obj: &Value, related: &super::Related) {
    head(w, obj, false);
    w.write(
        0,
        &format!(
            "Status:\t{}\n",
            obj["status"]["phase"].as_str().unwrap_or_default()
        ),
    );
    let conditions = obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !conditions.is_empty() {
        w.write(0, "Conditions:\n");
        w.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n");
        w.write(1, "----\t------\t------------------\t------\t-------\n");
        for c in conditions {
            w.write(
                1,
                &format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    c["type"].as_str().unwrap_or_default(),
                    c["status"].as_str().unwrap_or_default(),
                    rfc1123z(c["lastTransitionTime"].as_str()),
                    c["reason"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default()
                ),
            );
        }
    }
    if let Some(quotas) = &related.quotas {
        w.write(0, "\n");
        resource_quotas(w, quotas);
    }
    if let Some(ranges) = &related.limit_ranges {
        w.write(0, "\n");
        limit_ranges(w, ranges);
    }
}

const QUOTA_SCOPE_HELP: [(&str, &str); 4] = [
    (
        "Terminating",
        "Matches all pods that have an active deadline. These pods have a limited lifespan on a node before being actively terminated by the system.",
    ),
    (
        "NotTerminating",
        "Matches all pods that do not have an active deadline. These pods usually include long running pods whose container command is not expected to terminate.",
    ),
    (
        "BestEffort",
        "Matches all pods that do not have resource requirements set. These pods have a best effort quality of service.",
    ),
    (
        "NotBestEffort",
        "Matches all pods that have at least one resource requirement set. These pods have a burstable or guaranteed quality of service.",
    ),
];

/// upstream `DescribeResourceQuotas`: every quota's used and hard amounts.
fn resource_quotas(w: &mut PrefixWriter, quotas: &[Value]) {
    if quotas.is_empty() {
        w.write(0, "No resource quota.\n");
        return;
    }
    let mut quotas: Vec<&Value> = quotas.iter().collect();
    quotas.sort_by_key(|q| q["metadata"]["name"].as_str().unwrap_or_default());
    w.write(0, "Resource Quotas\n");
    for q in quotas {
        w.write(
            1,
            &format!(
                "Name:\t{}\n",
                q["metadata"]["name"].as_str().unwrap_or_default()
            ),
        );
        quota_body(w, q, 1, "* ", "---");
    }
}

/// upstream `DescribeLimitRanges`: one row per limit type and resource (sorted, where
/// upstream's order is Go's map order).
fn limit_ranges(w: &mut PrefixWriter, ranges: &[Value]) {
    if ranges.is_empty() {
        w.write(0, "No LimitRange resource.\n");
        return;
    }
    w.write(0, "Resource Limits\n Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio\n");
    w.write(
        0,
        " ----\t--------\t---\t---\t---------------\t-------------\t-----------------------\n",
    );
    for r in ranges {
        limit_range_spec(w, &r["spec"], " ");
    }
}

pub(super) fn limit_range_spec(w: &mut PrefixWriter, spec: &Value, prefix: &str) {
    const FIELDS: [&str; 5] = [
        "min",
        "max",
        "defaultRequest",
        "default",
        "maxLimitRequestRatio",
    ];
    for item in spec["limits"].as_array().into_iter().flatten() {
        let mut names: Vec<&String> = FIELDS
            .iter()
            .flat_map(|f| item[*f].as_object().into_iter().flat_map(|m| m.keys()))
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let cell = |f: &str| item[f][name.as_str()].as_str().unwrap_or("-").to_string();
            w.write(
                0,
                &format!(
                    "{prefix}{}\t{name}\t{}\t{}\t{}\t{}\t{}\n",
                    item["type"].as_str().unwrap_or_default(),
                    cell("min"),
                    cell("max"),
                    cell("defaultRequest"),
                    cell("default"),
                    cell("maxLimitRequestRatio")
                ),
            );
        }
    }
}

// Go's time.RFC1123Z ("Mon, 02 Jan 2006 15:04:05 -0700"), in UTC.
pub(super) fn rfc1123z(ts: Option<&str>) -> String {
    ts.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_else(|| "Mon, 01 Jan 0001 00:00:00 +0000".into())
}

pub fn service_account(w: &mut PrefixWriter, obj: &Value, events: Option<&[Value]>) {
    head(w, obj, true);
    let names: Vec<&str> = obj["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    let mountable: Vec<&str> = obj["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for (header, list) in [
        ("Image pull secrets:", &names),
        ("Mountable secrets: ", &mountable),
        ("Tokens:            ", &Vec::new()),
    ] {
        if list.is_empty() {
            w.write(0, &format!("{header}\t<none>\n"));
        } else {
            let mut prefix = header.to_string();
            for n in list {
                w.write(0, &format!("{prefix}\t{n}\n"));
                prefix = " ".repeat(header.len());
            }
        }
    }
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

pub fn service(w: &mut PrefixWriter, obj: &Value, slices: &[Value], events: Option<&[Value]>) {
    head(w, obj, true);
    let spec = &obj["spec"];
    w.write(
        0,
        &format!(
            "Selector:\t{}\n",
            crate::cmd::util::format_labels_plain(&spec["selector"])
        ),
    );
    w.write(
        0,
        &format!("Type:\t{}\n", spec["type"].as_str().unwrap_or_default()),
    );
    if let Some(p) = spec["ipFamilyPolicy"].as_str() {
        w.write(0, &format!("IP Family Policy:\t{p}\n"));
    }
    let join = |v: &Value| -> Option<String> {
        let items: Vec<&str> = v.as_array()?.iter().filter_map(|x| x.as_str()).collect();
        (!items.is_empty()).then(|| items.join(","))
    };
    w.write(
        0,
        &format!(
            "IP Families:\t{}\n",
            join(&spec["ipFamilies"]).unwrap_or("<none>".into())
        ),
    );
    w.write(
        0,
        &format!("IP:\t{}\n", spec["clusterIP"].as_str().unwrap_or_default()),
    );
    w.write(
        0,
        &format!(
            "IPs:\t{}\n",
            join(&spec["clusterIPs"]).unwrap_or("<none>".into())
        ),
    );
    if let Some(ips) = join(&spec["externalIPs"]) {
        w.write(0, &format!("External IPs:\t{ips}\n"));
    }
    if let Some(ip) = spec["loadBalancerIP"].as_str().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Desired LoadBalancer IP:\t{ip}\n"));
    }
    if let Some(n) = spec["externalName"].as_str().filter(|s| !s.is_empty()) {
        w.write(0, &format!("External Name:\t{n}\n"));
    }
    let ingress: Vec<String> = obj["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i["ip"]
                .as_str()
                .or(i["hostname"].as_str())
                .map(str::to_string)
        })
        .collect();
    if !ingress.is_empty() {
        w.write(
            0,
            &format!("LoadBalancer Ingress:\t{}\n", ingress.join(", ")),
        );
    }
    for p in spec["ports"].as_array().into_iter().flatten() {
        let name = p["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or("<unset>");
        let proto = p["protocol"].as_str().unwrap_or("TCP");
        w.write(
            0,
            &format!(
                "Port:\t{name}\t{}/{proto}\n",
                p["port"].as_i64().unwrap_or(0)
            ),
        );
        let target = match &p["targetPort"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => "0".into(),
        };
        w.write(0, &format!("TargetPort:\t{target}/{proto}\n"));
        if let Some(ap) = p["appProtocol"].as_str() {
            w.write(0, &format!("AppProtocol:\t{ap}\n"));
        }
        if let Some(np) = p["nodePort"].as_i64().filter(|n| *n != 0) {
            w.write(0, &format!("NodePort:\t{name}\t{np}/{proto}\n"));
        }
        w.write(
            0,
            &format!(
                "Endpoints:\t{}\n",
                format_endpoint_slices(slices, p["name"].as_str().unwrap_or_default())
            ),
        );
    }
    w.write(
        0,
        &format!(
            "Session Affinity:\t{}\n",
            spec["sessionAffinity"].as_str().unwrap_or_default()
        ),
    );
    if let Some(p) = spec["externalTrafficPolicy"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        w.write(0, &format!("External Traffic Policy:\t{p}\n"));
    }
    if let Some(p) = spec["internalTrafficPolicy"].as_str() {
        w.write(0, &format!("Internal Traffic Policy:\t{p}\n"));
    }
    if let Some(p) = spec["healthCheckNodePort"].as_i64().filter(|n| *n != 0) {
        w.write(0, &format!("HealthCheck NodePort:\t{p}\n"));
    }
    if let Some(r) = join(&spec["loadBalancerSourceRanges"]) {
        w.write(0, &format!("LoadBalancer Source Ranges:\t{r}\n"));
    }
    if let Some(t) = spec["trafficDistribution"].as_str() {
        w.write(0, &format!("Traffic Distribution:\t{t}\n"));
    }
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

// Up to three ready endpoints (`ip:port`), then "+ N more...".
pub(super) fn format_endpoint_slices(slices: &[Value], port_name: &str) -> String {
    if slices.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let (mut more, mut count) = (false, 0);
    let ready = |e: &Value| e["conditions"]["ready"].as_bool().unwrap_or(true);
    for s in slices {
        let endpoints = s["endpoints"].as_array().cloned().unwrap_or_default();
        let ports = s["ports"].as_array().cloned().unwrap_or_default();
        if ports.is_empty() {
            for e in &endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    list.push(e["addresses"][0].as_str().unwrap_or_default().to_string());
                }
                count += 1;
            }
            continue;
        }
        for p in &ports {
            if p["name"].as_str().unwrap_or_default() != port_name {
                continue;
            }
            for e in &endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    let addr = e["addresses"][0].as_str().unwrap_or_default();
                    let port = p["port"].as_i64().unwrap_or(0);
                    list.push(if addr.contains(':') {
                        format!("[{addr}]:{port}")
                    } else {
                        format!("{addr}:{port}")
                    });
                }
                count += 1;
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

/// A quota's scopes (with their help) and its used and hard amounts, at `level`, as
/// both the quota's describer and the namespace's (which words them slightly apart).
fn quota_body(w: &mut PrefixWriter, q: &Value, level: usize, bullet: &str, dashes: &str) {
    let mut scopes: Vec<&str> = q["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .collect();
    if !scopes.is_empty() {
        scopes.sort();
        w.write(level, &format!("Scopes:\t{}\n", scopes.join(", ")));
        for scope in &scopes {
            if let Some((_, help)) = QUOTA_SCOPE_HELP.iter().find(|(s, _)| s == scope) {
                w.write(level, &format!("{bullet}{help}\n"));
            }
        }
    }
    w.write(level, "Resource\tUsed\tHard\n");
    w.write(level, &format!("--------\t{dashes}\t{dashes}\n"));
    for (name, hard) in q["status"]["hard"].as_object().into_iter().flatten() {
        let used = q["status"]["used"][name].as_str().unwrap_or("0");
        w.write(
            level,
            &format!("{name}\t{used}\t{}\n", hard.as_str().unwrap_or_default()),
        );
    }
}

/// upstream `describeQuota`.
pub fn resource_quota(w: &mut PrefixWriter, q: &Value) {
    super::name_namespace(w, q);
    quota_body(w, q, 0, " * ", "----");
}

/// upstream `describeLimitRange`.
pub fn limit_range(w: &mut PrefixWriter, lr: &Value) {
    super::name_namespace(w, lr);
    w.write(
        0,
        "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio\n",
    );
    w.write(
        0,
        "----\t--------\t---\t---\t---------------\t-------------\t-----------------------\n",
    );
    limit_range_spec(w, &lr["spec"], "");
}
