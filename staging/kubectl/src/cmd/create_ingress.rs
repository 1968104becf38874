//! `kubectl create ingress NAME --rule=host/path=service:port[,tls[=secret]]`.
//! Upstream twin: `kubectl/pkg/cmd/create/create_ingress.go`.

use super::create::{GeneratorArgs, name_arg};
use crate::error::CmdError;
use serde_json::{Map, Value, json};

/// What a rule must look like (upstream's `ruleRegex`, matched unanchored at the end).
const RULE: &str = r"^(?P<host>[\w\*\-\.]*)(?P<path>/.*)=(?P<svcname>[\w\-]+):(?P<svcport>[\w\-]+)(,(?P<istls>tls)=?(?P<secretname>[\w\-]+)?)?";

pub fn generate(kind: &str, args: &[String]) -> Result<Value, CmdError> {
    let g = GeneratorArgs::parse(args);
    g.known(kind, &["class", "rule", "default-backend", "annotation"])?;
    let name = name_arg("ingress", &g.positional)?;
    let rules = g.all("rule");
    let annotations = g.all("annotation");
    let default_backend = g.one("default-backend").unwrap_or_default();
    if default_backend.is_empty() && rules.is_empty() {
        return Err(CmdError::msg(
            "not enough information provided: every ingress has to either specify a default-backend (which catches all traffic) or a list of rules (which catch specific paths)",
        ));
    }
    let valid =
        regex::Regex::new(RULE).map_err(|_| CmdError::msg("failed to compile the regex"))?;
    if let Some(bad) = rules.iter().find(|r| !valid.is_match(r)) {
        return Err(CmdError::msg(format!(
            "rule {bad} is invalid and should be in format host/path=svcname:svcport[,tls[=secret]]"
        )));
    }
    let mut annotation_map = Map::new();
    for a in &annotations {
        let Some((k, v)) = a.split_once('=') else {
            return Err(CmdError::msg(format!(
                "annotation {a} is invalid and should be in format key=[value]"
            )));
        };
        annotation_map.insert(k.to_string(), json!(v));
    }
    if !default_backend.is_empty() && default_backend.split(':').count() != 2 {
        return Err(CmdError::msg(
            "default-backend should be in format servicename:serviceport",
        ));
    }
    let mut spec = Map::new();
    if let Some(class) = g.one("class").filter(|c| !c.is_empty()) {
        spec.insert("ingressClassName".into(), json!(class));
    }
    if !default_backend.is_empty() {
        spec.insert("defaultBackend".into(), backend(&default_backend));
    }
    let tls = tls_entries(&rules);
    if !tls.is_empty() {
        spec.insert("tls".into(), json!(tls));
    }
    let ingress_rules = ingress_rules(&rules);
    if !ingress_rules.is_empty() {
        spec.insert("rules".into(), json!(ingress_rules));
    }
    let mut metadata = json!({"name": name});
    if !annotation_map.is_empty() {
        metadata["annotations"] = Value::Object(annotation_map);
    }
    Ok(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
        "status": {"loadBalancer": {}},
    }))
}

/// `buildIngressBackendSvc`: `name:port`, the port a number or a name.
fn backend(service: &str) -> Value {
    let mut parts = service.split(':');
    let name = parts.next().unwrap_or_default();
    let port = parts.next().unwrap_or_default();
    let port = match port.parse::<i32>() {
        Ok(n) => json!({"number": n}),
        Err(_) => json!({"name": port}),
    };
    json!({"service": {"name": name, "port": port}})
}

/// `buildTLSRules`: one entry per secret, gathering the hosts of the rules that name it.
fn tls_entries(rules: &[String]) -> Vec<Value> {
    let mut out: Vec<(Vec<String>, String)> = Vec::new();
    let mut seen_hosts = std::collections::HashSet::new();
    for rule in rules {
        let parts: Vec<&str> = rule.split(',').collect();
        if parts.len() != 2 {
            continue;
        }
        let host = rule.split('/').next().unwrap_or_default().to_string();
        let secret = parts[1].split('=').nth(1).unwrap_or_default().to_string();
        if !seen_hosts.insert(host.clone()) {
            continue;
        }
        if let Some(entry) = out.iter_mut().find(|(_, s)| *s == secret) {
            entry.0.push(host);
            continue;
        }
        let hosts: Vec<String> = if host.is_empty() { vec![] } else { vec![host] };
        if !secret.is_empty() || !hosts.is_empty() {
            out.push((hosts, secret));
        }
    }
    out.into_iter()
        .map(|(hosts, secret)| {
            let mut t = Map::new();
            if !hosts.is_empty() {
                t.insert("hosts".into(), json!(hosts));
            }
            if !secret.is_empty() {
                t.insert("secretName".into(), json!(secret));
            }
            Value::Object(t)
        })
        .collect()
}

/// `buildIngressRules`: paths grouped by host, in rule order; a trailing `*` makes the
/// path a Prefix match.
fn ingress_rules(rules: &[String]) -> Vec<Value> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for rule in rules {
        let without_tls = rule.split(',').next().unwrap_or_default();
        let (host, path_svc) = without_tls.split_once('/').unwrap_or((without_tls, ""));
        let mut parts = path_svc.split('=');
        let mut path = format!("/{}", parts.next().unwrap_or_default());
        let service = parts.next().unwrap_or_default();
        let path_type = if path.ends_with('*') {
            path.pop();
            "Prefix"
        } else {
            "Exact"
        };
        let entry = json!({"backend": backend(service), "path": path, "pathType": path_type});
        match out.iter_mut().find(|(h, _)| h == host) {
            Some((_, paths)) => paths.push(entry),
            None => out.push((host.to_string(), vec![entry])),
        }
    }
    out.into_iter()
        .map(|(host, paths)| {
            let mut r = json!({"http": {"paths": paths}});
            if !host.is_empty() {
                r["host"] = json!(host);
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(args: &[&str]) -> Result<Value, CmdError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        generate("ingress", &args)
    }

    #[test]
    fn rules_group_by_host_and_secret() {
        let ing = build(&[
            "ing",
            "--rule=foo.com/=svc:https,tls",
            "--rule=foo.com/path/sub*=other:8080",
            "--rule=bar.com/*=svc:8080,tls=s1",
            "--default-backend=def:http",
            "--class=nginx",
        ])
        .unwrap();
        let spec = &ing["spec"];
        assert_eq!(spec["ingressClassName"], "nginx");
        assert_eq!(
            spec["defaultBackend"]["service"]["port"],
            json!({"name": "http"})
        );
        assert_eq!(
            spec["tls"],
            json!([{"hosts": ["foo.com"]}, {"hosts": ["bar.com"], "secretName": "s1"}])
        );
        let foo = &spec["rules"][0];
        assert_eq!(foo["host"], "foo.com");
        assert_eq!(foo["http"]["paths"][1]["path"], "/path/sub");
        assert_eq!(foo["http"]["paths"][1]["pathType"], "Prefix");
        assert_eq!(
            foo["http"]["paths"][0]["backend"]["service"]["port"],
            json!({"name": "https"})
        );
        assert_eq!(
            spec["rules"][1]["http"]["paths"][0]["backend"]["service"]["port"],
            json!({"number": 8080})
        );
    }

    #[test]
    fn bad_input_gets_upstreams_errors() {
        assert!(
            build(&["ing"])
                .unwrap_err()
                .text
                .contains("not enough information provided")
        );
        assert!(
            build(&["ing", "--rule=nopath"])
                .unwrap_err()
                .text
                .contains("rule nopath is invalid")
        );
        assert!(
            build(&["ing", "--rule=a/=s:1", "--annotation=x"])
                .unwrap_err()
                .text
                .contains("annotation x is invalid")
        );
        assert!(
            build(&["ing", "--default-backend=svc"])
                .unwrap_err()
                .text
                .contains("servicename:serviceport")
        );
    }
}
