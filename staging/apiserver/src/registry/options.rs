//! Query-string options of list/watch and the body/query options of delete.

use apimachinery::StatusError;
use apimachinery::fields::FieldSelector;
use apimachinery::labels::Selector;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: Selector,
    pub field_selector: FieldSelector,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub watch: bool,
    pub allow_bookmarks: bool,
    pub timeout_seconds: Option<u64>,
    pub send_initial_events: Option<bool>,
}

pub fn parse_bool(q: &HashMap<String, String>, k: &str) -> Result<Option<bool>, StatusError> {
    match q.get(k).map(String::as_str) {
        None => Ok(None),
        Some("true" | "1" | "True") => Ok(Some(true)),
        Some("false" | "0" | "False" | "") => Ok(Some(false)),
        Some(v) => Err(StatusError::bad_request(format!(
            "invalid value for {k}: {v:?}"
        ))),
    }
}

impl ListOptions {
    /// Whatever the watch cache holds now, without waiting for it to catch up with
    /// storage (`resourceVersion=0`): what upstream's informer-backed authorizers and
    /// admission plugins read, so a request does not pay a storage round trip per lookup.
    pub fn cached() -> Self {
        Self {
            resource_version: Some("0".into()),
            ..Default::default()
        }
    }

    pub fn from_query(q: &HashMap<String, String>) -> Result<Self, StatusError> {
        let label_selector = Selector::parse(
            q.get("labelSelector").map(String::as_str).unwrap_or(""),
        )
        .map_err(|e| StatusError::bad_request(format!("unable to parse requirement: {e}")))?;
        let field_selector =
            FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
                .map_err(StatusError::bad_request)?;
        let limit = match q.get("limit") {
            Some(l) if !l.is_empty() => l
                .parse::<i64>()
                .map_err(|_| StatusError::bad_request(format!("invalid limit: {l:?}")))?
                .max(0) as usize,
            _ => 0,
        };
        let timeout_seconds =
            match q.get("timeoutSeconds") {
                Some(t) if !t.is_empty() => Some(t.parse::<u64>().map_err(|_| {
                    StatusError::bad_request(format!("invalid timeoutSeconds: {t:?}"))
                })?),
                _ => None,
            };
        let opts = Self {
            label_selector,
            field_selector,
            resource_version: q.get("resourceVersion").filter(|v| !v.is_empty()).cloned(),
            resource_version_match: q
                .get("resourceVersionMatch")
                .filter(|v| !v.is_empty())
                .cloned(),
            limit,
            continue_token: q.get("continue").filter(|v| !v.is_empty()).cloned(),
            watch: parse_bool(q, "watch")?.unwrap_or(false),
            allow_bookmarks: parse_bool(q, "allowWatchBookmarks")?.unwrap_or(false),
            timeout_seconds,
            send_initial_events: parse_bool(q, "sendInitialEvents")?,
        };
        opts.check()?;
        Ok(opts)
    }

    /// Upstream's list-option validation (`ValidateListOptions`).
    fn check(&self) -> Result<(), StatusError> {
        let invalid = |field: &str, msg: &str| {
            StatusError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                vec![apimachinery::Cause::forbidden(field, msg)],
            )
        };
        if self.watch {
            return self.check_watch();
        }
        if let Some(m) = &self.resource_version_match {
            if !matches!(m.as_str(), "NotOlderThan" | "Exact") {
                return Err(StatusError::invalid(
                    "meta.k8s.io",
                    "ListOptions",
                    "",
                    vec![apimachinery::Cause::not_supported(
                        "resourceVersionMatch",
                        &Value::from(m.as_str()),
                        &["Exact", "NotOlderThan", ""],
                    )],
                ));
            }
            if self.resource_version.is_none() {
                return Err(invalid(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if self.continue_token.is_some() {
                return Err(invalid(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if m == "Exact" && self.resource_version.as_deref() == Some("0") {
                return Err(invalid(
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if self.send_initial_events == Some(true) {
            return Err(invalid(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ));
        }
        Ok(())
    }

    /// Upstream's `validateWatchOptions`: a watch needs no resourceVersion for its
    /// `resourceVersionMatch`, which only goes with `sendInitialEvents` (watch-list).
    fn check_watch(&self) -> Result<(), StatusError> {
        use apimachinery::Cause;
        let mut causes = Vec::new();
        let m = self.resource_version_match.as_deref();
        if self.send_initial_events.is_some() {
            if m != Some("NotOlderThan") {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !self.allow_bookmarks {
                causes.push(Cause::forbidden(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
        }
        if let Some(m) = m {
            if self.send_initial_events.is_none() {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if m != "NotOlderThan" {
                causes.push(Cause::not_supported(
                    "resourceVersionMatch",
                    &Value::from(m),
                    &["NotOlderThan"],
                ));
            }
            if self.continue_token.is_some() {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
        if causes.is_empty() {
            return Ok(());
        }
        Err(StatusError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            causes,
        ))
    }
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// From the query string, overlaid by a `DeleteOptions` body when one is sent.
    pub fn parse(q: &HashMap<String, String>, body: Option<&Value>) -> Result<Self, StatusError> {
        let mut o = Self {
            grace_period_seconds: match q.get("gracePeriodSeconds") {
                Some(g) => Some(g.parse().map_err(|_| {
                    StatusError::bad_request(format!("invalid gracePeriodSeconds: {g:?}"))
                })?),
                None => None,
            },
            propagation_policy: q.get("propagationPolicy").cloned(),
            dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
            ..Default::default()
        };
        if let Some(orphan) = parse_bool(q, "orphanDependents")? {
            o.propagation_policy = Some(if orphan { "Orphan" } else { "Background" }.into());
        }
        if let Some(b) = body {
            if let Some(g) = b.get("gracePeriodSeconds").and_then(Value::as_i64) {
                o.grace_period_seconds = Some(g);
            }
            if let Some(p) = b.get("propagationPolicy").and_then(Value::as_str) {
                o.propagation_policy = Some(p.into());
            }
            if let Some(orphan) = b.get("orphanDependents").and_then(Value::as_bool) {
                o.propagation_policy = Some(if orphan { "Orphan" } else { "Background" }.into());
            }
            if let Some(p) = b.get("preconditions") {
                o.precondition_uid = p.get("uid").and_then(Value::as_str).map(String::from);
                o.precondition_rv = p
                    .get("resourceVersion")
                    .and_then(Value::as_str)
                    .map(String::from);
            }
            if b.get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"))
            {
                o.dry_run = true;
            }
        }
        if let Some(p) = &o.propagation_policy
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(StatusError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                vec![apimachinery::Cause::not_supported(
                    "propagationPolicy",
                    &Value::from(p.as_str()),
                    &["Foreground", "Background", "Orphan", "nil"],
                )],
            ));
        }
        if o.grace_period_seconds.is_some_and(|g| g < 0) {
            o.grace_period_seconds = Some(1);
        }
        Ok(o)
    }
}
