//! Impersonation (upstream `endpoints/filters/impersonation.go`): `Impersonate-User`,
//! `-Uid`, `-Group` and `-Extra-<key>` headers make a request act as another user, when
//! the caller may `impersonate` each of them (users, groups, service accounts, uids,
//! user extras). `kubectl --as` / `--as-group` use it.

use super::{ALL_AUTHENTICATED, UserInfo, serviceaccount};
use crate::authorization::{Attributes, Chain};
use apimachinery::StatusError;
use std::collections::BTreeMap;

const USER: &str = "impersonate-user";
const UID: &str = "impersonate-uid";
const GROUP: &str = "impersonate-group";
const EXTRA: &str = "impersonate-extra-";

/// Every value of a header, as Go reads them: the bytes as a string (UTF-8 names such as
/// `é` included), not only visible ASCII.
fn values<'a>(headers: &'a http::HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .collect()
}

/// Percent-decoding of extra keys (header names cannot carry every character).
fn unescape(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = key
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The user a request acts as: the caller, or whom its headers impersonate.
pub async fn apply(
    caller: UserInfo,
    headers: &http::HeaderMap,
    authz: &Chain,
) -> Result<UserInfo, StatusError> {
    let users = values(headers, USER);
    let groups = values(headers, GROUP);
    let uids = values(headers, UID);
    let extras: BTreeMap<String, Vec<String>> = headers
        .keys()
        .filter_map(|k| k.as_str().strip_prefix(EXTRA))
        .map(|k| {
            let name = format!("{EXTRA}{k}");
            (
                unescape(k),
                values(headers, &name)
                    .into_iter()
                    .map(String::from)
                    .collect(),
            )
        })
        .collect();
    if users.is_empty() {
        if !groups.is_empty() || !uids.is_empty() || !extras.is_empty() {
            return Err(StatusError::internal(
                "requested impersonation without a user (Impersonate-User)",
            ));
        }
        return Ok(caller);
    }
    let name = users[0].to_string();
    // Each impersonated attribute needs its own `impersonate` permission.
    let mut checks: Vec<Attributes> = Vec::new();
    let check = |group: &str, resource: &str, ns: &str, n: &str, sub: &str| Attributes {
        user: caller.clone(),
        verb: "impersonate".into(),
        resource_request: true,
        api_group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: n.into(),
        path: String::new(),
    };
    let mut target_groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, sa)) => {
            checks.push(check("", "serviceaccounts", ns, sa, ""));
            if groups.is_empty() {
                target_groups = serviceaccount::groups(ns);
            }
        }
        None => checks.push(check("", "users", "", &name, "")),
    }
    for g in &groups {
        checks.push(check("", "groups", "", g, ""));
    }
    for u in &uids {
        checks.push(check("authentication.k8s.io", "uids", "", u, ""));
    }
    for (k, vs) in &extras {
        for v in vs {
            checks.push(check("authentication.k8s.io", "userextras", "", v, k));
        }
    }
    for a in &checks {
        authz.authorize(a).await?;
    }
    if name != super::ANONYMOUS && !target_groups.iter().any(|g| g == ALL_AUTHENTICATED) {
        target_groups.push(ALL_AUTHENTICATED.into());
    }
    Ok(UserInfo {
        name,
        uid: uids.first().map(|u| u.to_string()).unwrap_or_default(),
        groups: target_groups,
        extra: extras,
    })
}
