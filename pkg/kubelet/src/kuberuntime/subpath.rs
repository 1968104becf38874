//! A volume mount's sub-path (upstream `makeMounts` and `ExpandContainerVolumeMounts`):
//! `subPathExpr` expanded from the container's environment, every variable it names
//! set; the result must stay inside the volume (relative, no `..`). A refused sub-path
//! keeps the container waiting with CreateContainerConfigError and upstream's message.

use k8s_openapi::api::core::v1::VolumeMount;
use std::collections::BTreeMap;
use std::path::{Component, Path};

/// The sub-path to mount ("" for the whole volume), or why it cannot be used.
pub fn resolve(vm: &VolumeMount, env: &BTreeMap<String, String>) -> Result<String, String> {
    let sub = match vm.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
        Some(expr) => {
            let missing: Vec<&str> = references(expr)
                .into_iter()
                .filter(|k| env.get(*k).is_none_or(|v| v.is_empty()))
                .collect();
            if !missing.is_empty() {
                let mut missing = missing;
                missing.sort();
                missing.dedup();
                return Err(format!("missing value for {}", missing.join(", ")));
            }
            super::env::expand(expr, env)
        }
        None => vm.sub_path.clone().unwrap_or_default(),
    };
    if sub.is_empty() {
        return Ok(sub);
    }
    if Path::new(&sub).is_absolute() {
        return Err(format!(
            "error SubPath `{sub}` must not be an absolute path"
        ));
    }
    if Path::new(&sub)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(format!(
            "unable to provision SubPath `{sub}`: must not contain '..'"
        ));
    }
    Ok(sub)
}

/// The `$(VAR)` names an expression refers to (`$$` escapes a dollar).
fn references(expr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            rest = r;
        } else if let Some(r) = after.strip_prefix('(')
            && let Some(end) = r.find(')')
        {
            out.push(&r[..end]);
            rest = &r[end + 1..];
        } else {
            rest = after;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(sub: Option<&str>, expr: Option<&str>) -> VolumeMount {
        VolumeMount {
            name: "v".into(),
            mount_path: "/v".into(),
            sub_path: sub.map(String::from),
            sub_path_expr: expr.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn expansions_and_refusals() {
        let env = BTreeMap::from([
            ("POD".to_string(), "web-0".to_string()),
            ("UP".to_string(), "..".to_string()),
            ("ABS".to_string(), "/etc".to_string()),
        ]);
        assert_eq!(
            resolve(&vm(None, Some("logs/$(POD)")), &env).unwrap(),
            "logs/web-0"
        );
        assert_eq!(resolve(&vm(Some("a/b"), None), &env).unwrap(), "a/b");
        assert_eq!(resolve(&vm(None, None), &env).unwrap(), "");
        assert_eq!(
            resolve(&vm(None, Some("$(NOPE)/x")), &env).unwrap_err(),
            "missing value for NOPE"
        );
        assert_eq!(
            resolve(&vm(None, Some("$(UP)/x")), &env).unwrap_err(),
            "unable to provision SubPath `../x`: must not contain '..'"
        );
        assert_eq!(
            resolve(&vm(None, Some("$(ABS)")), &env).unwrap_err(),
            "error SubPath `/etc` must not be an absolute path"
        );
    }
}
