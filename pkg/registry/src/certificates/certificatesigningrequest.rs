//! CertificateSigningRequests (upstream `pkg/registry/certificates/certificates`): the
//! spec is immutable, `status` carries the issued certificate, `approval` the
//! Approved/Denied conditions.

use crate::printers::{age, cols};
use crate::typed::{Typed, immutable, simple};
use apimachinery::{Cause, StatusError};
use apiserver::endpoints::SubresourceHandler;
use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::meta;
use async_trait::async_trait;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde_json::{Value, json};
use std::sync::Arc;

const USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

fn has_condition(o: &Value, t: &str) -> bool {
    o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == t)
}

fn validate_conditions(conds: &Value) -> Vec<Cause> {
    let types: Vec<&str> = conds
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect();
    if types.contains(&"Approved") && types.contains(&"Denied") {
        return vec![Cause::invalid(
            "status.conditions",
            conds,
            "Approved and Denied conditions are mutually exclusive",
        )];
    }
    Vec::new()
}

pub fn strategy() -> Typed<CertificateSigningRequest> {
    let mut t = simple(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        false,
        &["csr"],
    );
    t.info.subresources = vec!["approval".into(), "status".into()];
    // "We don't care what you call your certificate requests" (upstream's
    // ValidateCertificateRequestName): the kubelet's `node-csr-<base64url digest>` names
    // carry upper case and underscores. A name must still be a path segment.
    t.name_rule = apimachinery::validation::path_segment_name;
    // The requester is whoever creates the CSR, never what the body claims.
    t.record_requester = |obj, user| {
        let spec = &mut obj["spec"];
        spec["username"] = json!(user.name);
        spec["uid"] = json!(user.uid);
        spec["groups"] = json!(user.groups);
        spec["extra"] = json!(user.extra);
        for f in ["uid", "groups", "extra"] {
            let empty = match &spec[f] {
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => true,
            };
            if empty && let Some(m) = spec.as_object_mut() {
                m.remove(f);
            }
        }
        if let Some(m) = obj.as_object_mut().and_then(|o| o.get_mut("status")) {
            // Status is the signer's and approver's to write.
            *m = json!({});
        }
    };
    t.validate = |c: &CertificateSigningRequest| {
        let mut out = Vec::new();
        let pem = String::from_utf8_lossy(&c.spec.request.0);
        if !pem.contains("-----BEGIN CERTIFICATE REQUEST-----") {
            out.push(Cause::invalid(
                "spec.request",
                &json!(pem),
                "PEM block type must be CERTIFICATE REQUEST",
            ));
        }
        if c.spec.signer_name.is_empty() {
            out.push(Cause::required("spec.signerName", ""));
        } else if !c.spec.signer_name.contains('/') {
            out.push(Cause::invalid(
                "spec.signerName",
                &json!(c.spec.signer_name),
                "must be a fully qualified domain and path of the form 'example.com/signer-name'",
            ));
        }
        if c.spec.usages.as_ref().is_none_or(|u| u.is_empty()) {
            out.push(Cause::required("spec.usages", ""));
        }
        for (i, u) in c.spec.usages.iter().flatten().enumerate() {
            if !USAGES.contains(&u.as_str()) {
                out.push(Cause::not_supported(
                    &format!("spec.usages[{i}]"),
                    &json!(u),
                    USAGES,
                ));
            }
        }
        if let Some(s) = c.spec.expiration_seconds.filter(|s| *s < 600) {
            out.push(Cause::invalid(
                "spec.expirationSeconds",
                &json!(s),
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
        out.extend(validate_conditions(&json!(
            c.status.as_ref().map(|s| &s.conditions)
        )));
        out
    };
    t.validate_update = |n, o| {
        immutable("spec", &json!(n.spec), &json!(o.spec))
            .into_iter()
            .collect()
    };
    t.columns = Some(|| {
        cols(&[
            ("Age", "string", 0),
            ("SignerName", "string", 0),
            ("Requestor", "string", 0),
            ("RequestedDuration", "string", 0),
            ("Condition", "string", 0),
        ])
    });
    t.row = |o| {
        let mut conds: Vec<&str> = Vec::new();
        for t in ["Approved", "Denied", "Failed"] {
            if has_condition(o, t) {
                conds.push(t);
            }
        }
        if o["status"]["certificate"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
        {
            conds.push("Issued");
        }
        let cond = if conds.is_empty() {
            "Pending".to_string()
        } else {
            conds.join(",")
        };
        let dur = o["spec"]["expirationSeconds"]
            .as_i64()
            .map(apiserver::endpoints::table::human_duration)
            .unwrap_or_else(|| "<none>".into());
        vec![
            age(o),
            o["spec"]["signerName"].clone(),
            json!(o["spec"]["username"].as_str().unwrap_or_default()),
            json!(dur),
            json!(cond),
        ]
    };
    t
}

/// `certificatesigningrequests/<name>/approval`: only the Approved/Denied conditions
/// change; once set they cannot be removed.
pub struct Approval {
    pub registry: Arc<Registry>,
}

#[async_trait]
impl SubresourceHandler for Approval {
    async fn get(&self, _ns: Option<&str>, name: &str) -> Result<Value, StatusError> {
        self.registry.get(None, name).await
    }

    async fn update(
        &self,
        _ns: Option<&str>,
        name: &str,
        body: Value,
        dry_run: bool,
        _manager: &str,
    ) -> Result<Value, StatusError> {
        let conds = body["status"]["conditions"].clone();
        let mut causes = validate_conditions(&conds);
        let pinned = meta::pinned_resource_version(&body);
        let gr = self.registry.strategy.info().group_resource();
        let (out, _) = self
            .registry
            .guaranteed_update(None, name, Part::Whole, dry_run, &mut |cur| {
                let mut next = cur
                    .cloned()
                    .ok_or_else(|| StatusError::not_found(&gr, name))?;
                for t in ["Approved", "Denied"] {
                    if has_condition(&next, t)
                        && !conds
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|c| c["type"] == t)
                    {
                        causes.push(Cause::forbidden(
                            "status.conditions",
                            &format!("updates may not remove a condition of type {t:?}"),
                        ));
                    }
                }
                if !causes.is_empty() {
                    return Err(StatusError::invalid(
                        "certificates.k8s.io",
                        "CertificateSigningRequest",
                        name,
                        std::mem::take(&mut causes),
                    ));
                }
                next["status"]["conditions"] = conds.clone();
                meta::pin_resource_version(&mut next, &pinned);
                Ok(next)
            })
            .await?;
        Ok(out)
    }
}
