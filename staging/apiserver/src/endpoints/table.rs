//! `meta.k8s.io/v1` Table rendering (what `kubectl get` prints), with upstream's default
//! NAME / CREATED AT columns or the resource's own printer columns.

use crate::registry::strategy::Column;
use serde_json::{Value, json};
use std::borrow::Cow;

/// Upstream's `duration.HumanDuration`: `45s`, `5m10s`, `3h`, `2d4h`, `400d`, `3y12d`.
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "<invalid>".into();
    }
    let (s, m, h) = (secs, secs / 60, secs / 3600);
    if s < 60 * 2 {
        return format!("{s}s");
    }
    if m < 10 {
        let rem = s % 60;
        return if rem == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rem}s")
        };
    }
    if m < 60 * 3 {
        return format!("{m}m");
    }
    if h < 8 {
        let rem = m % 60;
        return if rem == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rem}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        let rem = h % 24;
        return if rem == 0 {
            format!("{}d", h / 24)
        } else {
            format!("{}d{rem}h", h / 24)
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    if h < 24 * 365 * 8 {
        let dy = (h / 24) % 365;
        return if dy == 0 {
            format!("{}y", h / 24 / 365)
        } else {
            format!("{}y{dy}d", h / 24 / 365)
        };
    }
    format!("{}y", h / 24 / 365)
}

/// Age of an RFC 3339 timestamp, as printers show it (`<unknown>` when absent).
pub fn age(ts: Option<&str>) -> String {
    match ts.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

fn column_json(c: &Column) -> Value {
    json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
}

const NAME: Column = Column {
    name: Cow::Borrowed("Name"),
    type_: Cow::Borrowed("string"),
    format: Cow::Borrowed("name"),
    description: Cow::Borrowed(
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    ),
    priority: 0,
};

const CREATED_AT: Column = Column {
    name: Cow::Borrowed("Created At"),
    type_: Cow::Borrowed("date"),
    format: Cow::Borrowed(""),
    description: Cow::Borrowed(
        "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    ),
    priority: 0,
};

/// The object of a row: its metadata only (`includeObject=Metadata`), the whole object
/// (`Object`) or nothing (`None`).
fn row_object(obj: &Value, include: &str) -> Value {
    match include {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => partial_object_metadata(obj),
    }
}

pub fn partial_object_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"].clone()})
}

/// Renders objects as a Table: cells from each object as given (the form its printer
/// reads), the row's object as `served` turns it into the requested version. A printer
/// whose columns include `Name` places it itself (events print it last, in `-o wide`);
/// otherwise NAME comes first.
pub fn render<'a>(
    custom: Option<Vec<Column>>,
    row_cells: &dyn Fn(&Value) -> Vec<Value>,
    objs: impl Iterator<Item = &'a Value>,
    served: &dyn Fn(&Value) -> Value,
    list_meta: Value,
    include: &str,
) -> Value {
    let names_itself = custom
        .as_ref()
        .is_some_and(|cols| cols.iter().any(|c| c.name == "Name"));
    let mut columns = Vec::new();
    if !names_itself {
        columns.push(column_json(&NAME));
    }
    match &custom {
        Some(cols) => columns.extend(cols.iter().map(column_json)),
        None => columns.push(column_json(&CREATED_AT)),
    }
    let rows: Vec<Value> = objs
        .map(|o| {
            let mut cells = Vec::new();
            if !names_itself {
                cells.push(o["metadata"]["name"].clone());
            }
            match &custom {
                Some(_) => cells.extend(row_cells(o)),
                None => cells.push(o["metadata"]["creationTimestamp"].clone()),
            }
            let mut row = json!({"cells": cells});
            let object = row_object(&served(o), include);
            if !object.is_null() {
                row["object"] = object;
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_match_upstream() {
        for (s, want) in [
            (5, "5s"),
            (119, "119s"),
            (130, "2m10s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (10 * 3600, "10h"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (800 * 86400, "2y70d"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }
}
