//! HorizontalPodAutoscalers (upstream `pkg/registry/autoscaling/horizontalpodautoscaler`):
//! stored as `autoscaling/v2`; `autoscaling/v1` is a view with the CPU target only.

use crate::printers::{age, cols};
use crate::typed::{Typed, info};
use apimachinery::{Cause, StatusError};
use apiserver::endpoints::view::VersionView;
use apiserver::registry::strategy::ResourceInfo;
use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use serde_json::{Value, json};

fn scaling_rules(stabilization: Option<i32>, policies: Vec<(&str, i32)>) -> HPAScalingRules {
    HPAScalingRules {
        stabilization_window_seconds: stabilization,
        select_policy: Some("Max".into()),
        policies: Some(
            policies
                .into_iter()
                .map(|(t, v)| HPAScalingPolicy {
                    type_: t.into(),
                    value: v,
                    period_seconds: 15,
                })
                .collect(),
        ),
        tolerance: None,
    }
}

fn cpu_metric(pct: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: "cpu".into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(pct),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

pub fn strategy() -> Typed<HorizontalPodAutoscaler> {
    let mut i = info(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        "horizontalpodautoscalers",
    );
    i.short_names = vec!["hpa".into()];
    i.categories = vec!["all".into()];
    i.subresources = vec!["status".into()];
    let mut t = Typed::new(i);
    // desiredReplicas is not omitted when zero (upstream's v2 status).
    t.prepare_for_create = |o| {
        o["status"] = json!({"desiredReplicas": 0});
    };
    t.default = |h: &mut HorizontalPodAutoscaler| {
        let Some(spec) = h.spec.as_mut() else { return };
        spec.min_replicas.get_or_insert(1);
        if spec.metrics.as_ref().is_none_or(|m| m.is_empty()) {
            spec.metrics = Some(vec![cpu_metric(80)]);
        }
        if let Some(b) = spec.behavior.as_mut() {
            let up = b
                .scale_up
                .get_or_insert_with(|| scaling_rules(Some(0), vec![]));
            let d = scaling_rules(Some(0), vec![("Pods", 4), ("Percent", 100)]);
            up.stabilization_window_seconds
                .get_or_insert(d.stabilization_window_seconds.unwrap_or(0));
            up.select_policy.get_or_insert_with(|| "Max".into());
            if up.policies.as_ref().is_none_or(|p| p.is_empty()) {
                up.policies = d.policies;
            }
            let down = b
                .scale_down
                .get_or_insert_with(|| scaling_rules(None, vec![]));
            down.select_policy.get_or_insert_with(|| "Max".into());
            if down.policies.as_ref().is_none_or(|p| p.is_empty()) {
                down.policies = scaling_rules(None, vec![("Percent", 100)]).policies;
            }
        }
    };
    t.validate = |h: &HorizontalPodAutoscaler| {
        let Some(spec) = &h.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        if spec.max_replicas < 1 {
            c.push(Cause::invalid(
                "spec.maxReplicas",
                &json!(spec.max_replicas),
                "must be greater than 0",
            ));
        }
        if let Some(m) = spec.min_replicas {
            if m < 1 {
                c.push(Cause::invalid(
                    "spec.minReplicas",
                    &json!(m),
                    "must be greater than or equal to 1",
                ));
            } else if m > spec.max_replicas {
                c.push(Cause::invalid(
                    "spec.maxReplicas",
                    &json!(spec.max_replicas),
                    "must be greater than or equal to `minReplicas`",
                ));
            }
        }
        if spec.scale_target_ref.kind.is_empty() {
            c.push(Cause::required("spec.scaleTargetRef.kind", ""));
        }
        if spec.scale_target_ref.name.is_empty() {
            c.push(Cause::required("spec.scaleTargetRef.name", ""));
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Reference", "string", 0),
            ("Targets", "string", 0),
            ("MinPods", "string", 0),
            ("MaxPods", "integer", 0),
            ("Replicas", "integer", 0),
            ("Age", "string", 0),
        ])
    });
    t.row = |o| {
        let s = &o["spec"];
        let reference = format!(
            "{}/{}",
            s["scaleTargetRef"]["kind"].as_str().unwrap_or_default(),
            s["scaleTargetRef"]["name"].as_str().unwrap_or_default()
        );
        vec![
            json!(reference),
            json!(targets(o)),
            json!(
                s["minReplicas"]
                    .as_i64()
                    .map(|m| m.to_string())
                    .unwrap_or("<unset>".into())
            ),
            json!(s["maxReplicas"]),
            json!(o["status"]["currentReplicas"].as_i64().unwrap_or(0)),
            age(o),
        ]
    };
    t
}

/// TARGETS: `cpu: 40%/80%` per metric, `<unknown>` when not yet measured.
fn targets(o: &Value) -> String {
    let current = o["status"]["currentMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let parts: Vec<String> = o["spec"]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| {
            let ty = m["type"].as_str().unwrap_or_default();
            let key = match ty {
                "Resource" => "resource",
                "ContainerResource" => "containerResource",
                "Pods" => "pods",
                "Object" => "object",
                _ => "external",
            };
            let src = &m[key];
            let target = &src["target"];
            let cur = &current
                .get(i)
                .map(|c| c[key]["current"].clone())
                .unwrap_or_default();
            let (want, have) = match target["type"].as_str() {
                Some("Utilization") => (
                    format!("{}%", target["averageUtilization"]),
                    cur["averageUtilization"].as_i64().map(|v| format!("{v}%")),
                ),
                Some("AverageValue") => (
                    target["averageValue"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    cur["averageValue"].as_str().map(String::from),
                ),
                _ => (
                    target["value"].as_str().unwrap_or_default().to_string(),
                    cur["value"].as_str().map(String::from),
                ),
            };
            let have = have.unwrap_or_else(|| "<unknown>".into());
            match ty {
                "Resource" | "ContainerResource" => {
                    format!(
                        "{}: {have}/{want}",
                        src["name"].as_str().unwrap_or_default()
                    )
                }
                _ => format!("{have}/{want}"),
            }
        })
        .collect();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(", ")
    }
}

/// `autoscaling/v1`: one CPU utilization target instead of a metrics list.
pub struct V1View {
    pub info: ResourceInfo,
}

impl V1View {
    pub fn new(v2: &ResourceInfo) -> Self {
        let mut info = v2.clone();
        info.gvk =
            apimachinery::GroupVersionKind::new("autoscaling", "v1", "HorizontalPodAutoscaler");
        Self { info }
    }
}

fn is_cpu_utilization(m: &Value) -> bool {
    m["type"] == "Resource"
        && m["resource"]["name"] == "cpu"
        && m["resource"]["target"]["type"] == "Utilization"
}

impl VersionView for V1View {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn openapi_schemas(&self) -> Option<apiserver::endpoints::openapi::SchemaSet> {
        Some(crate::typed::schema_set::<
            k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler,
        >())
    }

    fn to_storage(&self, mut obj: Value) -> Result<Value, StatusError> {
        obj["apiVersion"] = json!("autoscaling/v2");
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
            && let Some(pct) = spec.remove("targetCPUUtilizationPercentage")
            && !pct.is_null()
        {
            spec.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": pct}}}]),
            );
        }
        if let Some(st) = obj.get_mut("status").and_then(Value::as_object_mut)
            && let Some(pct) = st.remove("currentCPUUtilizationPercentage")
            && !pct.is_null()
        {
            st.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": pct}}}]),
            );
        }
        Ok(obj)
    }

    fn to_served(&self, obj: &Value) -> Result<Value, StatusError> {
        let mut out = obj.clone();
        out["apiVersion"] = json!("autoscaling/v1");
        if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
            let metrics = spec.remove("metrics").unwrap_or_default();
            spec.remove("behavior");
            if let Some(m) = metrics
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| is_cpu_utilization(m))
            {
                spec.insert(
                    "targetCPUUtilizationPercentage".into(),
                    m["resource"]["target"]["averageUtilization"].clone(),
                );
            }
        }
        if !out["status"].is_object() {
            out["status"] = json!({});
        }
        if let Some(st) = out.get_mut("status").and_then(Value::as_object_mut) {
            // v1 writes both counts even when zero.
            st.entry("currentReplicas").or_insert(json!(0));
            st.entry("desiredReplicas").or_insert(json!(0));
            let current = st.remove("currentMetrics").unwrap_or_default();
            st.remove("conditions");
            if let Some(m) = current
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
                && let Some(u) = m["resource"]["current"]["averageUtilization"].as_i64()
            {
                st.insert("currentCPUUtilizationPercentage".into(), json!(u));
            }
        }
        Ok(out)
    }
}
