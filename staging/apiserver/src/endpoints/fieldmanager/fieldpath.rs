//! Sets of field paths as `managedFields` carries them (`FieldsV1`, upstream
//! structured-merge-diff's `fieldpath.Set`): `f:<field>` for object fields, `k:{...}` for
//! items of associative lists (by their merge keys), `v:<value>` for set items, and `.`
//! marking an item that is itself owned.

use crate::endpoints::shape::{ApplyList, Shape, key_default};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// The node itself is owned (a leaf, or a list item with `.`).
    pub member: bool,
    pub children: BTreeMap<String, FieldSet>,
}

/// The key of an item of an associative list (its list-map-key fields, defaulted where
/// upstream defaults them), or None when the list is not associative.
pub fn item_key(list: Shape<'_>, item: &Value) -> Option<Value> {
    let ApplyList::Map(keys) = list.apply_list() else {
        return None;
    };
    let obj = item.as_object()?;
    let mut k = Map::new();
    for key in &keys {
        match obj.get(key).cloned().or_else(|| key_default(key)) {
            Some(v) => {
                k.insert(key.clone(), v);
            }
            // Without a schema only the first key present identifies (ports by number).
            None if !list_is_known(&list) => {}
            None => return None,
        }
    }
    (!k.is_empty()).then_some(Value::Object(k))
}

fn list_is_known(list: &Shape<'_>) -> bool {
    // Unknown shapes name one candidate key; a known one names all of them.
    !matches!(list.apply_list(), ApplyList::Map(ref k) if k.len() == 1)
}

/// Whether a list's items are identified by keys (every item has one).
pub fn is_associative(list: Shape<'_>, items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| item_key(list, i).is_some())
}

/// Whether `item` is the one a `k:` element names: it has every key field's value.
fn key_matches(item: &Value, key: &Value) -> bool {
    key.as_object().is_some_and(|k| {
        k.iter()
            .all(|(f, v)| item.get(f).cloned().or_else(|| key_default(f)).as_ref() == Some(v))
    })
}

pub fn key_element(key: &Value) -> String {
    // serde_json maps are sorted, as upstream sorts the key fields.
    format!("k:{key}")
}

fn value_element(v: &Value) -> String {
    format!("v:{v}")
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// The fields a value sets, its lists and maps read as `shape` says.
    fn collect(&mut self, v: &Value, shape: Shape<'_>) {
        match v {
            Value::Object(m) if !m.is_empty() && !shape.is_atomic_object() => {
                for (k, child) in m {
                    let node = self.children.entry(format!("f:{k}")).or_default();
                    node.collect(child, shape.child(k));
                }
            }
            Value::Array(items) if shape.apply_list() == ApplyList::Set => {
                for it in items {
                    self.children.entry(value_element(it)).or_default().member = true;
                }
                if items.is_empty() {
                    self.member = true;
                }
            }
            Value::Array(items) if is_associative(shape, items) => {
                for it in items {
                    let key = item_key(shape, it).expect("associative");
                    let node = self.children.entry(key_element(&key)).or_default();
                    node.member = true;
                    node.collect(it, shape.item());
                }
            }
            // Scalars, atomic lists and empty objects are owned whole.
            _ => self.member = true,
        }
    }

    /// The fields of an object that managers can own: no apiVersion/kind, only the
    /// user-facing parts of metadata, and `status` only when `status_only` (or when the
    /// resource has no status subresource).
    pub fn of_object(
        obj: &Value,
        status_split: bool,
        status_only: bool,
        shape: Shape<'_>,
    ) -> FieldSet {
        let mut set = FieldSet::default();
        let Some(m) = obj.as_object() else { return set };
        for (k, v) in m {
            let keep = match k.as_str() {
                "apiVersion" | "kind" => false,
                "status" => status_only || !status_split,
                "metadata" => !status_only,
                _ => !status_only,
            };
            if !keep {
                continue;
            }
            let node = set.children.entry(format!("f:{k}")).or_default();
            if k == "metadata" {
                let meta = shape.child("metadata");
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if matches!(
                        mk.as_str(),
                        "labels" | "annotations" | "finalizers" | "ownerReferences"
                    ) {
                        node.children
                            .entry(format!("f:{mk}"))
                            .or_default()
                            .collect(mv, meta.child(mk));
                    }
                }
                if node.is_empty() {
                    set.children.remove("f:metadata");
                }
            } else {
                node.collect(v, shape.child(k));
            }
        }
        set
    }

    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, c) in &other.children {
            self.children.entry(k.clone()).or_default().union(c);
        }
    }

    /// `self` without what `other` has.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every owned path, as element lists.
    pub fn leaves(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.walk(&mut Vec::new(), &mut out);
        out
    }

    fn walk(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.walk(prefix, out);
            prefix.pop();
        }
    }

    /// Drops the given paths.
    pub fn remove_paths(&mut self, paths: &[Vec<String>]) {
        for p in paths {
            self.remove_path(p);
        }
    }

    fn remove_path(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = false,
            Some((head, rest)) => {
                if let Some(c) = self.children.get_mut(head) {
                    c.remove_path(rest);
                    if c.is_empty() {
                        self.children.remove(head);
                    }
                }
            }
        }
    }

    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_fields_v1());
        }
        Value::Object(m)
    }

    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        let Some(m) = v.as_object() else { return set };
        if m.is_empty() {
            set.member = true;
        }
        for (k, c) in m {
            if k == "." {
                set.member = true;
            } else {
                set.children.insert(k.clone(), FieldSet::from_fields_v1(c));
            }
        }
        set
    }
}

/// The value at a path of elements (`f:`, `k:`, `v:`), if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            cur = cur.get(f)?;
        } else if let Some(k) = el.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).ok()?;
            cur = cur.as_array()?.iter().find(|it| key_matches(it, &key))?;
        } else if let Some(v) = el.strip_prefix("v:") {
            let val: Value = serde_json::from_str(v).ok()?;
            cur = cur.as_array()?.iter().find(|it| **it == val)?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Removes the value at a path (a field, a keyed item or a set value).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for el in parents {
        let next = if let Some(f) = el.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = el.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Value>(k) else {
                return;
            };
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|it| key_matches(it, &key)))
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        if let (Ok(key), Some(a)) = (serde_json::from_str::<Value>(k), cur.as_array_mut()) {
            a.retain(|it| !key_matches(it, &key));
        }
    } else if let Some(v) = last.strip_prefix("v:")
        && let (Ok(val), Some(a)) = (serde_json::from_str::<Value>(v), cur.as_array_mut())
    {
        a.retain(|it| *it != val);
    }
}

/// A path as upstream prints it in conflicts: `.spec.replicas`,
/// `.spec.containers[name="nginx"].image`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = key
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = el.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_of_a_deployment() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"app": "x"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
            "status": {"replicas": 1}});
        let set = FieldSet::of_object(&d, true, false, Shape::unknown());
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
        assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()), set);
        let leaves: Vec<String> = set.leaves().iter().map(|p| display(p)).collect();
        assert!(
            leaves.contains(&".spec.template.spec.containers[name=\"nginx\"].image".to_string()),
            "{leaves:?}"
        );
        let status = FieldSet::of_object(&d, true, true, Shape::unknown());
        assert_eq!(
            status.to_fields_v1(),
            json!({"f:status": {"f:replicas": {}}})
        );
    }

    #[test]
    fn set_algebra_and_removal() {
        let a = FieldSet::of_object(
            &json!({"spec": {"a": 1, "b": 2}}),
            false,
            false,
            Shape::unknown(),
        );
        let b = FieldSet::of_object(&json!({"spec": {"b": 3}}), false, false, Shape::unknown());
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:spec": {"f:a": {}}})
        );
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:spec": {"f:b": {}}})
        );
        let mut o = json!({"spec": {"a": 1, "b": 2, "containers": [{"name": "x"}, {"name": "y"}]}});
        remove_at(&mut o, &["f:spec".into(), "f:a".into()]);
        remove_at(
            &mut o,
            &[
                "f:spec".into(),
                "f:containers".into(),
                "k:{\"name\":\"x\"}".into(),
            ],
        );
        assert_eq!(o, json!({"spec": {"b": 2, "containers": [{"name": "y"}]}}));
    }
}
