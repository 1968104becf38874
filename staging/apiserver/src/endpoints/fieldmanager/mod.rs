//! Field ownership (upstream `endpoints/handlers/fieldmanager` over structured-merge-diff):
//! every write records which manager set which fields in `metadata.managedFields`, and
//! server-side apply merges a manager's partial configuration into the live object,
//! removes the fields that manager stopped applying, and refuses (409) to change fields
//! another manager owns unless forced.

pub mod fieldpath;

use super::shape::{ApplyList, Shape};
use apimachinery::StatusError;
use fieldpath::{FieldSet, display, is_associative, item_key, remove_at, value_at};
use serde_json::{Map, Value, json};

/// Where a write lands: the main resource or its status subresource.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The resource has a status subresource (so the main resource does not own status).
    pub status_split: bool,
    pub subresource: &'a str,
    pub api_version: &'a str,
    /// The object's schema (how its lists and maps merge).
    pub shape: Shape<'a>,
}

impl Scope<'_> {
    fn fields(&self, obj: &Value) -> FieldSet {
        FieldSet::of_object(
            obj,
            self.status_split,
            self.subresource == "status",
            self.shape,
        )
    }
}

#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Value,
    subresource: String,
    set: FieldSet,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().to_string(),
            operation: e["operation"].as_str().unwrap_or_default().to_string(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
            time: e["time"].clone(),
            subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
            set: FieldSet::from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn store(obj: &mut Value, list: Vec<Entry>) {
    let out: Vec<Value> = list
        .into_iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut v = json!({"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version, "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": e.set.to_fields_v1()});
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(m) = obj["metadata"].as_object_mut() {
        if out.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(out));
        }
    }
}

fn node<'a>(set: &'a FieldSet, path: &[String]) -> Option<&'a FieldSet> {
    let mut cur = set;
    for el in path {
        cur = cur.children.get(el)?;
    }
    Some(cur)
}

/// Owned paths of `set` whose value differs between `a` and `b` (for items that have
/// owned fields of their own, only their presence counts).
fn differing(set: &FieldSet, a: Option<&Value>, b: &Value) -> Vec<Vec<String>> {
    set.leaves()
        .into_iter()
        .filter(|p| {
            let va = a.and_then(|a| value_at(a, p));
            let vb = value_at(b, p);
            let has_children = node(set, p).is_some_and(|n| !n.children.is_empty());
            if has_children {
                va.is_some() != vb.is_some()
            } else {
                va != vb
            }
        })
        .collect()
}

/// The manager name of a non-apply write: `fieldManager`, else the client's user agent
/// up to its first `/` (upstream `prefixFromUserAgent`).
pub fn manager_name(field_manager: Option<&str>, user_agent: &str) -> String {
    match field_manager.filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => {
            let ua = user_agent.split('/').next().unwrap_or_default();
            if ua.is_empty() {
                "unknown".into()
            } else {
                ua.chars().take(128).collect()
            }
        }
    }
}

/// Records a create/update/patch by `manager`: it takes the fields it changed, others
/// lose them; a write that changes nothing leaves managedFields as they were.
pub fn update(old: Option<&Value>, new: &mut Value, manager: &str, scope: Scope<'_>) {
    let mut list = old.map(entries).unwrap_or_default();
    let new_fields = scope.fields(new);
    let changed = differing(&new_fields, old, new);
    let removed: Vec<Vec<String>> = old
        .map(|o| {
            scope
                .fields(o)
                .leaves()
                .into_iter()
                .filter(|p| value_at(new, p).is_none())
                .collect()
        })
        .unwrap_or_default();
    if changed.is_empty() && removed.is_empty() {
        store(new, list);
        return;
    }
    for e in list.iter_mut() {
        e.set.remove_paths(&changed);
        e.set.remove_paths(&removed);
    }
    let mut mine = FieldSet::default();
    for p in &changed {
        let n = node(&new_fields, p).cloned().unwrap_or_default();
        let mut at = &mut mine;
        for el in p {
            at = at.children.entry(el.clone()).or_default();
        }
        at.member = n.member;
    }
    let pos = list.iter().position(|e| {
        e.manager == manager && e.operation == "Update" && e.subresource == scope.subresource
    });
    match pos {
        Some(i) => {
            let e = &mut list[i];
            e.set.union(&mine);
            e.time = json!(now());
            e.api_version = scope.api_version.to_string();
        }
        None => list.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: scope.api_version.to_string(),
            time: json!(now()),
            subresource: scope.subresource.to_string(),
            set: mine,
        }),
    }
    store(new, list);
}

/// Merges an applied configuration into the live object (associative lists by key, sets
/// by value, everything else replaced).
fn merge(live: &Value, cfg: &Value, shape: Shape<'_>) -> Value {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) if !shape.is_atomic_object() => {
            let mut out = l.clone();
            for (k, cv) in c {
                let lv = l.get(k).unwrap_or(&Value::Null);
                out.insert(k.clone(), merge(lv, cv, shape.child(k)));
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) if shape.apply_list() == ApplyList::Set => {
            let mut out = l.clone();
            for v in c {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Value::Array(out)
        }
        (Value::Array(l), Value::Array(c))
            if is_associative(shape, c) && is_associative(shape, l) =>
        {
            let mut out = l.clone();
            for it in c {
                let key = item_key(shape, it);
                match out.iter_mut().find(|o| item_key(shape, o) == key) {
                    Some(o) => *o = merge(o, it, shape.item()),
                    None => out.push(it.clone()),
                }
            }
            Value::Array(out)
        }
        _ => cfg.clone(),
    }
}

/// Server-side apply of `config` by `manager` onto `live` (None: the object is created).
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    scope: Scope<'_>,
) -> Result<Value, StatusError> {
    let mut list = live.map(entries).unwrap_or_default();
    let applied = scope.fields(config);
    let base = live.cloned().unwrap_or_else(|| json!({}));
    let mut merged = merge(&base, config, scope.shape);
    // Conflicts: fields another manager owns whose value this apply changes.
    let mut conflicts: Vec<(String, String, Vec<String>)> = Vec::new();
    for e in list.iter() {
        if e.manager == manager && e.operation == "Apply" && e.subresource == scope.subresource {
            continue;
        }
        let shared = applied.intersection(&e.set);
        let who = if e.subresource.is_empty() {
            format!("\"{}\"", e.manager)
        } else {
            format!("\"{}\" with subresource \"{}\"", e.manager, e.subresource)
        };
        for p in differing(&shared, live, &merged) {
            conflicts.push((who.clone(), e.api_version.clone(), p));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    for e in list.iter_mut() {
        if e.manager == manager && e.operation == "Apply" && e.subresource == scope.subresource {
            continue;
        }
        let lost: Vec<Vec<String>> = conflicts
            .iter()
            .filter(|(m, _, _)| m.starts_with(&format!("\"{}\"", e.manager)))
            .map(|(_, _, p)| p.clone())
            .collect();
        e.set.remove_paths(&lost);
    }
    // Fields this manager applied before and no longer applies go, unless others own them.
    let pos = list.iter().position(|e| {
        e.manager == manager && e.operation == "Apply" && e.subresource == scope.subresource
    });
    if let Some(i) = pos {
        let mut others = FieldSet::default();
        for (j, e) in list.iter().enumerate() {
            if j != i {
                others.union(&e.set);
            }
        }
        let dropped = list[i].set.difference(&applied).difference(&others);
        let mut paths = dropped.leaves();
        // Shallowest first: a removed item takes its fields with it (removing its key
        // fields first would leave an unidentifiable remnant).
        paths.sort_by_key(|p| p.len());
        for p in paths {
            remove_at(&mut merged, &p);
        }
    }
    // Re-applying the same fields keeps the entry's time, so a no-op apply writes nothing.
    let time = match pos {
        Some(i) if list[i].set == applied && list[i].api_version == scope.api_version => {
            list[i].time.clone()
        }
        _ => json!(now()),
    };
    let entry = Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: scope.api_version.to_string(),
        time,
        subresource: scope.subresource.to_string(),
        set: applied,
    };
    match pos {
        Some(i) => list[i] = entry,
        None => list.push(entry),
    }
    store(&mut merged, list);
    Ok(merged)
}

fn conflict_error(conflicts: &[(String, String, Vec<String>)]) -> StatusError {
    let n = conflicts.len();
    let message = if n == 1 {
        let (m, av, p) = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with {m} using {av}: {}",
            display(p)
        )
    } else {
        let mut s = format!("Apply failed with {n} conflicts: ");
        let mut by_manager: Vec<(&str, &str, Vec<String>)> = Vec::new();
        for (m, av, p) in conflicts {
            match by_manager.iter_mut().find(|(bm, _, _)| bm == m) {
                Some(e) => e.2.push(display(p)),
                None => by_manager.push((m, av, vec![display(p)])),
            }
        }
        let parts: Vec<String> = by_manager
            .iter()
            .map(|(m, av, ps)| format!("conflicts with {m} using {av}:\n- {}", ps.join("\n- ")))
            .collect();
        s.push_str(&parts.join("\n"));
        s
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, av, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m} using {av}"), "field": display(p)}))
        .collect();
    let mut e = StatusError::new(409, "Conflict", message);
    e.details = Some(Value::Object(Map::from_iter([(
        "causes".to_string(),
        Value::Array(causes),
    )])));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope<'static> = Scope {
        status_split: true,
        subresource: "",
        api_version: "apps/v1",
        shape: Shape::unknown(),
    };

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    #[test]
    fn apply_owns_merges_and_conflicts() {
        let created = apply(None, &deployment(2, "nginx:1"), "alice", false, SCOPE).unwrap();
        let mf = &created["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "alice");
        assert_eq!(mf["operation"], "Apply");
        // Another manager changing replicas by update takes that field.
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(5);
        update(Some(&created), &mut scaled, "kubectl-scale", SCOPE);
        let mf = scaled["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 2);
        assert_eq!(mf[1]["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        // Re-applying a different replica count conflicts; forcing takes it back.
        let err = apply(
            Some(&scaled),
            &deployment(3, "nginx:1"),
            "alice",
            false,
            SCOPE,
        )
        .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
        );
        let forced = apply(
            Some(&scaled),
            &deployment(3, "nginx:2"),
            "alice",
            true,
            SCOPE,
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        assert_eq!(
            forced["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
        assert_eq!(
            forced["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // Applying the same replicas another manager set is no conflict.
        assert!(
            apply(
                Some(&scaled),
                &deployment(5, "nginx:1"),
                "alice",
                false,
                SCOPE
            )
            .is_ok()
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed() {
        let mut cfg = deployment(2, "nginx");
        cfg["metadata"]["labels"] = json!({"a": "1", "b": "2"});
        let live = apply(None, &cfg, "alice", false, SCOPE).unwrap();
        cfg["metadata"]["labels"] = json!({"a": "1"});
        let next = apply(Some(&live), &cfg, "alice", false, SCOPE).unwrap();
        assert_eq!(next["metadata"]["labels"], json!({"a": "1"}));
    }

    #[test]
    fn no_op_update_keeps_managed_fields() {
        let live = apply(None, &deployment(2, "nginx"), "alice", false, SCOPE).unwrap();
        let mut same = live.clone();
        update(Some(&live), &mut same, "bob", SCOPE);
        assert_eq!(same, live);
    }
}

#[cfg(test)]
mod removal_tests {
    use super::*;

    #[test]
    fn dropped_list_items_are_removed_whole() {
        let scope = Scope {
            status_split: true,
            subresource: "",
            api_version: "apps/v1",
            shape: Shape::unknown(),
        };
        let two = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "a"}, {"name": "side", "image": "b"}]}}}});
        let mut live = apply(None, &two, "m", false, scope).unwrap();
        live["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"] = json!("Always");
        let mut one = two.clone();
        one["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .pop();
        let next = apply(Some(&live), &one, "m", false, scope).unwrap();
        assert_eq!(
            next["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "a"}])
        );
    }
}
