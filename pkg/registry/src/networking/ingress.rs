//! Ingresses (upstream `pkg/registry/networking/ingress`).

use crate::printers::{age, cols, or_none};
use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

pub fn strategy() -> Typed<Ingress> {
    // Upstream keeps ingresses under the singular key.
    let mut i = info(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        true,
        "ingress",
    );
    i.short_names = vec!["ing".into()];
    i.subresources = vec!["status".into()];
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    t.validate = |ing: &Ingress| {
        let mut c = Vec::new();
        let Some(spec) = &ing.spec else { return c };
        if spec.default_backend.is_none() && spec.rules.as_ref().is_none_or(|r| r.is_empty()) {
            c.push(Cause::invalid(
                "spec",
                &json!(spec),
                "either `defaultBackend` or `rules` must be specified",
            ));
        }
        for (i, r) in spec.rules.iter().flatten().enumerate() {
            for (j, p) in r.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                let f = format!("spec.rules[{i}].http.paths[{j}]");
                match p.path_type.as_str() {
                    "Exact" | "Prefix" | "ImplementationSpecific" => {}
                    "" => c.push(Cause::required(
                        &format!("{f}.pathType"),
                        "pathType must be specified",
                    )),
                    other => c.push(Cause::not_supported(
                        &format!("{f}.pathType"),
                        &json!(other),
                        &["Exact", "ImplementationSpecific", "Prefix"],
                    )),
                }
                if p.path_type != "ImplementationSpecific"
                    && !p.path.as_deref().unwrap_or_default().starts_with('/')
                {
                    c.push(Cause::invalid(
                        &format!("{f}.path"),
                        &json!(p.path),
                        "must be an absolute path",
                    ));
                }
            }
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Class", "string", 0),
            ("Hosts", "string", 0),
            ("Address", "string", 0),
            ("Ports", "string", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| {
        let s = &o["spec"];
        let hosts: Vec<&str> = s["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["host"].as_str())
            .collect();
        let addrs: Vec<&str> = o["status"]["loadBalancer"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
            .collect();
        let ports = if s["tls"].as_array().is_some_and(|t| !t.is_empty()) {
            "80, 443"
        } else {
            "80"
        };
        vec![
            or_none(&s["ingressClassName"]),
            json!(if hosts.is_empty() {
                "*".to_string()
            } else {
                hosts.join(",")
            }),
            json!(addrs.join(",")),
            json!(ports),
            age(o),
        ]
    };
    t
}
