//! Keeps API Priority and Fairness in step with the FlowSchema and
//! PriorityLevelConfiguration objects (upstream's APF configuration controller): every
//! change reloads the classifier, and each schema's `Dangling` condition says whether
//! its priority level exists.

use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::options::ListOptions;
use apiserver::util::flowcontrol::Controller;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn list(reg: &Registry) -> Result<(Vec<Value>, i64), String> {
    let r = reg
        .list(None, &ListOptions::default())
        .await
        .map_err(|e| e.message)?;
    Ok((
        r.items.iter().map(|o| o.value.clone()).collect(),
        r.resource_version,
    ))
}

/// Upstream's `Dangling` condition for a schema given the level names that exist.
fn dangling(fs: &Value, levels: &[Value]) -> Value {
    let level = fs["spec"]["priorityLevelConfiguration"]["name"]
        .as_str()
        .unwrap_or_default();
    let exists = levels.iter().any(|l| l["metadata"]["name"] == level);
    let (status, reason, message) = if exists {
        (
            "False",
            "Found",
            format!(
                "This FlowSchema references the PriorityLevelConfiguration object named {level:?} and it exists"
            ),
        )
    } else {
        (
            "True",
            "NotFound",
            format!(
                "This FlowSchema references the PriorityLevelConfiguration object named {level:?} but there is no such object"
            ),
        )
    };
    json!({"type": "Dangling", "status": status, "reason": reason, "message": message,
        "lastTransitionTime": apiserver::registry::meta::now_rfc3339()})
}

async fn write_conditions(schemas: &Registry, flow_schemas: &[Value], levels: &[Value]) {
    for fs in flow_schemas {
        let want = dangling(fs, levels);
        let current = fs["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Dangling");
        if current.is_some_and(|c| c["status"] == want["status"] && c["message"] == want["message"])
        {
            continue;
        }
        let name = fs["metadata"]["name"].as_str().unwrap_or_default();
        let r = schemas
            .guaranteed_update(None, name, Part::Status, false, &mut |cur| {
                let mut next = cur.cloned().unwrap_or_default();
                let mut conditions: Vec<Value> = next["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                conditions.retain(|c| c["type"] != "Dangling");
                conditions.push(want.clone());
                next["status"] = json!({"conditions": conditions});
                next["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("resourceVersion"));
                Ok(next)
            })
            .await;
        if let Err(e) = r {
            tracing::debug!(flowschema = name, error = %e.message, "updating Dangling condition");
        }
    }
}

/// Reloads on every change of either resource, until the process ends.
pub async fn run(ctl: Arc<Controller>, schemas: Arc<Registry>, levels: Arc<Registry>) {
    loop {
        let round = async {
            let (fs, fs_rv) = list(&schemas).await?;
            let (pl, pl_rv) = list(&levels).await?;
            ctl.update(&fs, &pl);
            write_conditions(&schemas, &fs, &pl).await;
            let filter = |r: &Registry| r.filter(None, &ListOptions::default());
            let mut w1 = schemas
                .watch(filter(&schemas).map_err(|e| e.message)?, Some(fs_rv), false)
                .await
                .map_err(|e| e.message)?;
            let mut w2 = levels
                .watch(filter(&levels).map_err(|e| e.message)?, Some(pl_rv), false)
                .await
                .map_err(|e| e.message)?;
            tokio::select! {
                _ = w1.rx.recv() => {}
                _ = w2.rx.recv() => {}
            }
            Ok::<(), String>(())
        };
        if let Err(e) = round.await {
            tracing::warn!(error = %e, "loading API Priority and Fairness configuration");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
