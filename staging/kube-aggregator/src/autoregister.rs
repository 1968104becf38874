//! The local APIServices (upstream's autoregister and crdregistration controllers): one
//! per group version this server serves itself, with the kube-apiserver's priorities
//! for built-in ones (labelled `automanaged: onstart`) and 1000/100 for custom resource
//! groups (`automanaged: true`). APIServices without the label are the user's and are
//! never touched; managed ones whose group version is no longer served are deleted.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const MANAGED_LABEL: &str = "kube-aggregator.kubernetes.io/automanaged";

/// A built-in group version's `(group, version, groupPriorityMinimum, versionPriority)`.
pub type Priority = (&'static str, &'static str, i32, i32);

/// What to do with the APIServices.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Created, or replacing a managed one whose spec drifted.
    pub apply: Vec<Value>,
    pub delete: Vec<String>,
}

/// The local APIService of a group version.
pub fn local_apiservice(group: &str, version: &str, priorities: &[Priority]) -> Value {
    let (gp, vp, managed) = match priorities
        .iter()
        .find(|(g, v, _, _)| *g == group && *v == version)
    {
        Some((_, _, gp, vp)) => (*gp, *vp, "onstart"),
        None => (1000, 100, "true"),
    };
    json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": format!("{version}.{group}"), "labels": {MANAGED_LABEL: managed}},
        "spec": {"group": group, "version": version, "groupPriorityMinimum": gp, "versionPriority": vp}})
}

/// Compares the served group versions with the stored APIServices.
pub fn plan(
    served: &BTreeSet<(String, String)>,
    existing: &[Value],
    priorities: &[Priority],
) -> Plan {
    let by_name: BTreeMap<&str, &Value> = existing
        .iter()
        .filter_map(|a| Some((a["metadata"]["name"].as_str()?, a)))
        .collect();
    let mut out = Plan::default();
    let mut wanted = BTreeSet::new();
    for (g, v) in served {
        let want = local_apiservice(g, v, priorities);
        let name = want["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match by_name.get(name.as_str()) {
            None => out.apply.push(want),
            Some(cur) if cur["metadata"]["labels"][MANAGED_LABEL].is_string() => {
                let drifted = cur["spec"] != want["spec"]
                    || cur["metadata"]["labels"][MANAGED_LABEL]
                        != want["metadata"]["labels"][MANAGED_LABEL];
                if drifted {
                    out.apply.push(want);
                }
            }
            // The user's own APIService for this group version wins.
            Some(_) => {}
        }
        wanted.insert(name);
    }
    for (name, a) in by_name {
        if a["metadata"]["labels"][MANAGED_LABEL].is_string() && !wanted.contains(name) {
            out.delete.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Priority] = &[("", "v1", 18000, 1), ("apps", "v1", 17800, 15)];

    fn served(gvs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        gvs.iter()
            .map(|(g, v)| (g.to_string(), v.to_string()))
            .collect()
    }

    fn names(vs: &[Value]) -> Vec<&str> {
        vs.iter()
            .map(|v| v["metadata"]["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn plans_as_upstream() {
        let core = local_apiservice("", "v1", TABLE);
        assert_eq!(core["metadata"]["name"], "v1.");
        assert_eq!(core["spec"]["groupPriorityMinimum"], 18000);
        let crd = local_apiservice("stable.example.com", "v1", TABLE);
        assert_eq!(
            (
                crd["spec"]["groupPriorityMinimum"].as_i64(),
                crd["spec"]["versionPriority"].as_i64()
            ),
            (Some(1000), Some(100))
        );
        assert_eq!(crd["metadata"]["labels"][MANAGED_LABEL], "true");

        let mut drifted = local_apiservice("apps", "v1", TABLE);
        drifted["spec"]["versionPriority"] = json!(1);
        let users = json!({"metadata": {"name": "v1alpha1.wardle.example.com"}, "spec": {"group": "wardle.example.com", "version": "v1alpha1"}});
        let gone_crd = local_apiservice("old.example.com", "v1", TABLE);
        let p = plan(
            &served(&[
                ("", "v1"),
                ("apps", "v1"),
                ("wardle.example.com", "v1alpha1"),
            ]),
            &[core.clone(), drifted, users, gone_crd],
            TABLE,
        );
        // apps/v1 is put back to the table's spec; the user's APIService is left alone
        // even for a group version served here; the CRD group that went is deleted.
        assert_eq!(names(&p.apply), vec!["v1.apps"]);
        assert_eq!(p.delete, vec!["v1.old.example.com".to_string()]);
    }
}
