//! The HorizontalPodAutoscaler controller (upstream `pkg/controller/podautoscaler`,
//! autoscaling/v2): every `--horizontal-pod-autoscaler-sync-period` each HPA reads its
//! target's `scale` subresource, computes the replicas its Resource metrics ask for
//! from `metrics.k8s.io` (the largest over metrics), smooths them with the behavior's
//! stabilization windows (0 s up, 300 s down by default) and rate policies (up: 100 %
//! or 4 pods per 15 s, down: 100 % per 15 s), clamps to min/max, writes the scale, and
//! reports status with upstream's conditions (AbleToScale, ScalingActive,
//! ScalingLimited) and events (`SuccessfulRescale`, `FailedGetResourceMetric`, ...).

pub mod replica_calculator;

use crate::controller_utils::{reference, update_status};
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{
    HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::discovery::Discovery;
use replica_calculator::{for_average_value, for_utilization, usage_by_pod};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct HpaController {
    client: kube::Client,
    hpas: Arc<Informer<HorizontalPodAutoscaler>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
    sync_period: Duration,
    tolerance: f64,
    downscale_stabilization: Duration,
    /// Per HPA: recent recommendations and scale events (time, replicas / change).
    history: Mutex<HashMap<String, History>>,
    /// `group/kind` -> the resource serving it.
    resources: Mutex<HashMap<String, ApiResource>>,
}

#[derive(Default)]
struct History {
    recommendations: Vec<(Timestamp, i32)>,
    /// (when, replicas change) of the scale writes.
    scale_events: Vec<(Timestamp, i32)>,
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> HorizontalPodAutoscalerCondition {
    HorizontalPodAutoscalerCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(Timestamp::now())),
    }
}

/// Upstream's default rules for a direction.
fn default_rules(up: bool, downscale_window: i32) -> HPAScalingRules {
    let policy = |t: &str, v: i32| k8s_openapi::api::autoscaling::v2::HPAScalingPolicy {
        type_: t.into(),
        value: v,
        period_seconds: 15,
    };
    if up {
        HPAScalingRules {
            stabilization_window_seconds: Some(0),
            select_policy: Some("Max".into()),
            policies: Some(vec![policy("Pods", 4), policy("Percent", 100)]),
            tolerance: None,
        }
    } else {
        HPAScalingRules {
            stabilization_window_seconds: Some(downscale_window),
            select_policy: Some("Max".into()),
            policies: Some(vec![policy("Percent", 100)]),
            tolerance: None,
        }
    }
}

impl HpaController {
    pub fn new(
        client: kube::Client,
        hpas: Arc<Informer<HorizontalPodAutoscaler>>,
        recorder: Arc<Recorder>,
        sync_period: Duration,
        tolerance: f64,
        downscale_stabilization: Duration,
    ) -> Arc<Self> {
        let queue = Queue::named("horizontalpodautoscaler");
        let q = queue.clone();
        hpas.add_handler(move |h, deleted| {
            if !deleted {
                q.add(key(h));
            }
        });
        Arc::new(HpaController {
            client,
            hpas,
            queue,
            recorder,
            sync_period,
            tolerance,
            downscale_stabilization,
            history: Mutex::default(),
            resources: Mutex::default(),
        })
    }

    /// The API resource of a scale target (by discovery, cached).
    async fn resource_for(&self, api_version: &str, kind: &str) -> Result<ApiResource, String> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let k = format!("{group}/{kind}");
        if let Some(r) = self.resources.lock().unwrap().get(&k) {
            return Ok(r.clone());
        }
        let discovery = Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(|e| e.to_string())?;
        let mut map = self.resources.lock().unwrap();
        for g in discovery.groups() {
            for (ar, _) in g.recommended_resources() {
                map.insert(format!("{}/{}", ar.group, ar.kind), ar);
            }
        }
        map.get(&k)
            .cloned()
            .ok_or_else(|| format!("no matches for kind {kind:?} in group {group:?}"))
    }

    fn event(&self, h: &HorizontalPodAutoscaler, type_: &str, reason: &str, note: String) {
        self.recorder.eventf(reference(h), type_, reason, "", note);
    }

    async fn sync(&self, k: &str) -> Result<(), String> {
        let (ns, name) = split(k);
        let Some(hpa) = self.hpas.store.get(k) else {
            return Ok(());
        };
        let spec = hpa.spec.clone().unwrap_or_default();
        let target = &spec.scale_target_ref;
        let api_version = target.api_version.clone().unwrap_or_else(|| "v1".into());
        let mut conditions: Vec<HorizontalPodAutoscalerCondition> = Vec::new();
        let hpa_api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), ns);
        let old = hpa.status.clone().unwrap_or_default();

        // The target's scale.
        let scale = match self
            .get_scale(ns, &api_version, &target.kind, &target.name)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.event(&hpa, "Warning", "FailedGetScale", e.clone());
                conditions.push(condition(
                    "AbleToScale",
                    "False",
                    "FailedGetScale",
                    format!("the HPA controller was unable to get the target's current scale: {e}"),
                ));
                let patch = json!({"status": {"conditions": conditions, "observedGeneration": hpa.metadata.generation}});
                return update_status(&hpa_api, &hpa, &patch).await;
            }
        };
        let current = scale["spec"]["replicas"].as_i64().unwrap_or(0) as i32;
        let selector = scale["status"]["selector"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let min = spec.min_replicas.unwrap_or(1);
        let max = spec.max_replicas;

        let mut metrics_status: Vec<Value> = Vec::new();
        let (desired, reason) = if current == 0 && min != 0 {
            conditions.push(condition(
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero".into(),
            ));
            (0, String::new())
        } else {
            match self
                .compute(ns, &hpa, current, &selector, &mut metrics_status)
                .await
            {
                Ok((replicas, metric)) => {
                    conditions.push(condition("ScalingActive", "True", "ValidMetricFound", format!("the HPA was able to successfully calculate a replica count from {metric}")));
                    let reason = if replicas > current {
                        format!("{metric} above target")
                    } else {
                        "All metrics below target".to_string()
                    };
                    (replicas, reason)
                }
                Err((reason, message)) => {
                    self.event(&hpa, "Warning", &reason, message.clone());
                    conditions.push(condition(
                        "ScalingActive",
                        "False",
                        &reason,
                        format!("the HPA was unable to compute the replica count: {message}"),
                    ));
                    conditions.push(condition(
                        "AbleToScale",
                        "True",
                        "SucceededGetScale",
                        "the HPA controller was able to get the target's current scale".into(),
                    ));
                    let patch = json!({"status": {"conditions": conditions, "currentReplicas": current,
                        "desiredReplicas": old.desired_replicas, "observedGeneration": hpa.metadata.generation}});
                    return update_status(&hpa_api, &hpa, &patch).await;
                }
            }
        };

        // Behavior: stabilization, rate limits, then min/max.
        let mut desired = if current == 0 && min != 0 {
            0
        } else {
            self.normalize(k, &spec, current, desired, &mut conditions)
        };
        if current != 0 || min == 0 {
            let (limited, why) = if desired < min {
                (
                    min,
                    Some((
                        "TooFewReplicas",
                        "the desired replica count is less than the minimum replica count",
                    )),
                )
            } else if desired > max {
                (
                    max,
                    Some((
                        "TooManyReplicas",
                        "the desired replica count is more than the maximum replica count",
                    )),
                )
            } else {
                (desired, None)
            };
            desired = limited;
            if let Some((r, m)) = why {
                conditions.retain(|c| c.type_ != "ScalingLimited");
                conditions.push(condition("ScalingLimited", "True", r, m.into()));
            } else if !conditions.iter().any(|c| c.type_ == "ScalingLimited") {
                conditions.push(condition(
                    "ScalingLimited",
                    "False",
                    "DesiredWithinRange",
                    "the desired count is within the acceptable range".into(),
                ));
            }
        }

        let mut last_scale = old.last_scale_time.clone();
        if desired != current && !(current == 0 && min != 0) {
            match self
                .set_scale(
                    ns,
                    &api_version,
                    &target.kind,
                    &target.name,
                    &scale,
                    desired,
                )
                .await
            {
                Ok(()) => {
                    self.event(
                        &hpa,
                        "Normal",
                        "SuccessfulRescale",
                        format!("New size: {desired}; reason: {reason}"),
                    );
                    conditions.retain(|c| c.type_ != "AbleToScale");
                    conditions.push(condition(
                        "AbleToScale",
                        "True",
                        "SucceededRescale",
                        format!(
                            "the HPA controller was able to update the target scale to {desired}"
                        ),
                    ));
                    last_scale = Some(Time(Timestamp::now()));
                    self.history
                        .lock()
                        .unwrap()
                        .entry(k.to_string())
                        .or_default()
                        .scale_events
                        .push((Timestamp::now(), desired - current));
                }
                Err(e) => {
                    self.event(
                        &hpa,
                        "Warning",
                        "FailedRescale",
                        format!("New size: {desired}; reason: {reason}; error: {e}"),
                    );
                    conditions.retain(|c| c.type_ != "AbleToScale");
                    conditions.push(condition(
                        "AbleToScale",
                        "False",
                        "FailedUpdateScale",
                        format!("the HPA controller was unable to update the target scale: {e}"),
                    ));
                }
            }
        } else if !conditions.iter().any(|c| c.type_ == "AbleToScale") {
            conditions.push(condition(
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size".into(),
            ));
        }
        // Conditions keep their transition time while their status holds.
        for c in conditions.iter_mut() {
            if let Some(prev) = old.conditions.iter().flatten().find(|p| p.type_ == c.type_)
                && prev.status == c.status
            {
                c.last_transition_time = prev.last_transition_time.clone();
            }
        }
        conditions.sort_by_key(|c| match c.type_.as_str() {
            "AbleToScale" => 0,
            "ScalingActive" => 1,
            _ => 2,
        });
        let patch = json!({"status": {"currentReplicas": current, "desiredReplicas": desired,
            "currentMetrics": metrics_status, "conditions": conditions, "lastScaleTime": last_scale,
            "observedGeneration": hpa.metadata.generation}});
        let _ = name;
        update_status(&hpa_api, &hpa, &patch).await
    }

    async fn scale_api(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<Api<DynamicObject>, String> {
        let ar = self.resource_for(api_version, kind).await?;
        Ok(Api::namespaced_with(self.client.clone(), ns, &ar))
    }

    async fn get_scale(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<Value, String> {
        let api = self.scale_api(ns, api_version, kind).await?;
        let req = api
            .get_subresource("scale", name)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::to_value(req).map_err(|e| e.to_string())
    }

    async fn set_scale(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
        name: &str,
        scale: &Value,
        replicas: i32,
    ) -> Result<(), String> {
        let api = self.scale_api(ns, api_version, kind).await?;
        let mut next = scale.clone();
        next["spec"]["replicas"] = json!(replicas);
        let obj: DynamicObject = serde_json::from_value(next).map_err(|e| e.to_string())?;
        api.replace_subresource("scale", name, &PostParams::default(), &obj)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The replicas the metrics ask for (the largest) and the metric that decided; or
    /// (reason, message) when none could be computed.
    async fn compute(
        &self,
        ns: &str,
        hpa: &HorizontalPodAutoscaler,
        current: i32,
        selector: &str,
        statuses: &mut Vec<Value>,
    ) -> Result<(i32, String), (String, String)> {
        let spec = hpa.spec.clone().unwrap_or_default();
        // autoscaling/v2 defaults to 80 % CPU when no metric is given.
        let metrics = spec.metrics.clone().unwrap_or_else(|| {
            serde_json::from_value(json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]))
            .unwrap_or_default()
        });
        let lp = ListParams::default().labels(selector);
        let pods: Vec<Pod> = Api::<Pod>::namespaced(self.client.clone(), ns)
            .list(&lp)
            .await
            .map_err(|e| ("FailedGetResourceMetric".to_string(), e.to_string()))?
            .items;
        let mut best: Option<(i32, String)> = None;
        let mut first_error = None;
        for m in &metrics {
            let Some(res) = m.resource.as_ref().filter(|_| m.type_ == "Resource") else {
                first_error.get_or_insert((
                    format!("FailedGet{}Metric", m.type_),
                    format!("the HPA controller cannot yet read {} metrics", m.type_),
                ));
                continue;
            };
            let metrics_url = format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector={}",
                url_escape(selector)
            );
            let req = http::Request::get(metrics_url)
                .body(Vec::new())
                .map_err(|e| ("FailedGetResourceMetric".to_string(), e.to_string()))?;
            let list: Result<Value, String> =
                self.client.request(req).await.map_err(|e| e.to_string());
            let described = if res.target.type_ == "Utilization" {
                format!("{} resource utilization (percentage of request)", res.name)
            } else {
                format!("{} resource", res.name)
            };
            let computed = list.and_then(|list| {
                let usage = usage_by_pod(&list, &res.name);
                if res.target.type_ == "Utilization" {
                    for_utilization(
                        current,
                        res.target.average_utilization.unwrap_or(80),
                        &pods,
                        &usage,
                        &res.name,
                        self.tolerance,
                    )
                } else {
                    let target = res
                        .target
                        .average_value
                        .as_ref()
                        .and_then(|q| apimachinery::resource::Quantity::parse(&q.0))
                        .map(|q| q.milli_value())
                        .unwrap_or(0);
                    for_average_value(current, target, &pods, &usage, &res.name, self.tolerance)
                }
            });
            match computed {
                Ok(c) => {
                    let mut cur = json!({"averageValue": format!("{}m", c.average_milli)});
                    if let Some(u) = c.utilization {
                        cur["averageUtilization"] = json!(u);
                        // Upstream prints whole units when exact.
                        if c.average_milli % 1000 == 0 {
                            cur["averageValue"] = json!((c.average_milli / 1000).to_string());
                        }
                    }
                    statuses.push(
                        json!({"type": "Resource", "resource": {"name": res.name, "current": cur}}),
                    );
                    if best.as_ref().is_none_or(|(r, _)| c.replicas > *r) {
                        best = Some((c.replicas, described));
                    }
                }
                Err(e) => {
                    let what = if res.target.type_ == "Utilization" {
                        "utilization"
                    } else {
                        "usage"
                    };
                    first_error.get_or_insert((
                        "FailedGetResourceMetric".to_string(),
                        format!("failed to get {} {what}: {e}", res.name),
                    ));
                }
            }
        }
        // Upstream scales on the metrics it has only if none failed when scaling down.
        match (best, first_error) {
            (Some(b), None) => Ok(b),
            (Some(b), Some(_)) if b.0 > current => Ok(b),
            (_, Some(e)) => Err(e),
            (None, None) => Err(("FailedGetResourceMetric".into(), "no metrics".into())),
        }
    }

    /// Stabilization windows and scaling policies (upstream
    /// `normalizeDesiredReplicasWithBehaviors`).
    fn normalize(
        &self,
        k: &str,
        spec: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerSpec,
        current: i32,
        proposed: i32,
        conditions: &mut Vec<HorizontalPodAutoscalerCondition>,
    ) -> i32 {
        let now = Timestamp::now();
        let down_default = self.downscale_stabilization.as_secs() as i32;
        let behavior = spec.behavior.clone().unwrap_or_default();
        let merge = |given: Option<HPAScalingRules>, up: bool| {
            let d = default_rules(up, down_default);
            let g = given.unwrap_or_default();
            HPAScalingRules {
                stabilization_window_seconds: g
                    .stabilization_window_seconds
                    .or(d.stabilization_window_seconds),
                select_policy: g.select_policy.or(d.select_policy),
                policies: g.policies.or(d.policies),
                tolerance: g.tolerance,
            }
        };
        let up = merge(behavior.scale_up, true);
        let down = merge(behavior.scale_down, false);
        let mut hist = self.history.lock().unwrap();
        let h = hist.entry(k.to_string()).or_default();
        // Stabilization: the most conservative recommendation within each window.
        let keep = i64::from(
            up.stabilization_window_seconds
                .unwrap_or(0)
                .max(down.stabilization_window_seconds.unwrap_or(0)),
        );
        h.recommendations
            .retain(|(t, _)| now.duration_since(*t).as_secs() <= keep);
        h.recommendations.push((now, proposed));
        let within = |w: Option<i32>| {
            let w = i64::from(w.unwrap_or(0));
            h.recommendations
                .iter()
                .filter(move |(t, _)| now.duration_since(*t).as_secs() <= w)
                .map(|(_, r)| *r)
        };
        let up_rec = within(up.stabilization_window_seconds)
            .min()
            .unwrap_or(proposed);
        let down_rec = within(down.stabilization_window_seconds)
            .max()
            .unwrap_or(proposed);
        let mut desired = current;
        if desired < up_rec {
            desired = up_rec;
        }
        if desired > down_rec {
            desired = down_rec;
        }
        if desired != proposed {
            conditions.push(condition("AbleToScale", "True", "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation".into()));
        }
        // Rate limits from the scale events within each policy's period.
        h.scale_events
            .retain(|(t, _)| now.duration_since(*t).as_secs() <= 1800);
        let changed_since = |secs: i32, up: bool| -> i32 {
            h.scale_events
                .iter()
                .filter(|(t, d)| {
                    now.duration_since(*t).as_secs() <= i64::from(secs) && ((*d > 0) == up)
                })
                .map(|(_, d)| d.abs())
                .sum()
        };
        if desired > current {
            let limits: Vec<i32> = up
                .policies
                .iter()
                .flatten()
                .map(|p| {
                    let start = current - changed_since(p.period_seconds, true);
                    if p.type_ == "Pods" {
                        start + p.value
                    } else {
                        (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32
                    }
                })
                .collect();
            let limit = match up.select_policy.as_deref() {
                Some("Disabled") => current,
                Some("Min") => limits.iter().copied().min().unwrap_or(desired),
                _ => limits.iter().copied().max().unwrap_or(desired),
            };
            if desired > limit {
                desired = limit;
                conditions.push(condition(
                    "ScalingLimited",
                    "True",
                    "ScaleUpLimit",
                    "the desired replica count is increasing faster than the maximum scale rate"
                        .into(),
                ));
            }
        } else if desired < current {
            let limits: Vec<i32> = down
                .policies
                .iter()
                .flatten()
                .map(|p| {
                    let start = current + changed_since(p.period_seconds, false);
                    if p.type_ == "Pods" {
                        start - p.value
                    } else {
                        (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)).floor() as i32
                    }
                })
                .collect();
            let limit = match down.select_policy.as_deref() {
                Some("Disabled") => current,
                Some("Min") => limits.iter().copied().max().unwrap_or(desired),
                _ => limits.iter().copied().min().unwrap_or(desired),
            };
            if desired < limit {
                desired = limit;
                conditions.push(condition(
                    "ScalingLimited",
                    "True",
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate"
                        .into(),
                ));
            }
        }
        desired
    }
}

impl Reconciler for HpaController {
    type Error = String;

    fn name(&self) -> &str {
        "horizontalpodautoscaling"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.hpas.clone()]
    }

    /// Level-triggered every sync period whatever happened (a failure is an event on
    /// the autoscaler, not a faster retry).
    async fn sync(&self, key: &str) -> Result<Action, String> {
        if let Err(e) = HpaController::sync(self, key).await {
            tracing::warn!(hpa = key, error = %e, "autoscaler sync failed");
        }
        if self.hpas.store.get(key).is_some() {
            Ok(Action::RequeueAfter(self.sync_period))
        } else {
            self.history.lock().unwrap().remove(key);
            Ok(Action::AwaitChange)
        }
    }
}

/// A label selector as a query value.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, template};
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    /// One sync of an HPA without a metrics API: the conditions say why it cannot
    /// scale (no target, a target scaled to zero, no metrics).
    #[tokio::test]
    async fn sync_reports_why_it_cannot_scale() {
        // (case, target replicas (None: no target), want condition type, status, reason)
        let cases = [
            (
                "no-target",
                None,
                ("AbleToScale", "False", "FailedGetScale"),
            ),
            (
                "scaled-to-zero",
                Some(0),
                ("ScalingActive", "False", "ScalingDisabled"),
            ),
            (
                "no-metrics",
                Some(1),
                ("ScalingActive", "False", "FailedGetResourceMetric"),
            ),
        ];
        for (name, replicas, (want_type, want_status, want_reason)) in cases {
            let env = Env::new(&format!("hpa-{name}")).await;
            let hpas = env.informer::<HorizontalPodAutoscaler>();
            let c = HpaController::new(
                env.client.clone(),
                hpas.clone(),
                env.recorder("horizontal-pod-autoscaler"),
                Duration::from_secs(15),
                0.1,
                Duration::from_secs(300),
            );
            env.start().await;
            if let Some(replicas) = replicas {
                env.create::<Deployment>(json!({"metadata": {"name": "web"}, "spec": {"replicas": replicas,
                    "selector": {"matchLabels": {"app": "web"}}, "template": template(json!({"app": "web"}))}}))
                    .await;
            }
            let hpa: HorizontalPodAutoscaler = env
                .create(json!({"metadata": {"name": "web"}, "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50}}}]}}))
                .await;
            env.cached(&hpas, &[&hpa]).await;
            // A failed metrics fetch is reported in status, whatever the sync returns.
            let _ = c.sync(&env.key("web")).await;

            let status = env
                .api::<HorizontalPodAutoscaler>()
                .get("web")
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            let conditions = status.conditions.unwrap_or_default();
            let got = conditions.iter().find(|c| c.type_ == want_type);
            assert_eq!(
                got.map(|c| (c.status.as_str(), c.reason.as_deref().unwrap_or_default())),
                Some((want_status, want_reason)),
                "{name}: {conditions:?}"
            );
        }
    }
}
