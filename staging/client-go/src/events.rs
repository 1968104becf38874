//! The events recorder (upstream `tools/events`): `events.k8s.io/v1` Events naming the
//! reporting controller and instance, sent in the background and never blocking the
//! caller; an event about the same object, reason and note within the series window
//! bumps the first one's series instead of creating another.

use crate::flowcontrol::RateLimiter;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upstream's window for folding repeated events into a series.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

pub struct Recorder {
    client: kube::Client,
    controller: String,
    instance: String,
    limiter: Arc<RateLimiter>,
    /// Events are sent from any thread (the scheduler's loop is not a runtime thread).
    runtime: tokio::runtime::Handle,
    /// (namespace, name of the first event, count, when last seen) per identical event.
    series: Mutex<HashMap<String, (String, String, i32, Instant)>>,
    /// When the series map was last pruned of entries older than the window.
    pruned: Mutex<Instant>,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

impl Recorder {
    pub fn new(
        client: kube::Client,
        controller: &str,
        instance: &str,
        limiter: Arc<RateLimiter>,
    ) -> Arc<Self> {
        Arc::new(Recorder {
            client,
            controller: controller.into(),
            instance: instance.into(),
            limiter,
            runtime: tokio::runtime::Handle::current(),
            series: Mutex::default(),
            pruned: Mutex::new(Instant::now()),
        })
    }

    /// Records `type_` (`Normal`/`Warning`) `reason` about `regarding` in the background.
    /// Must be created inside a tokio runtime; may be called from any thread.
    pub fn eventf(
        self: &Arc<Self>,
        regarding: ObjectReference,
        type_: &str,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let me = self.clone();
        let (type_, reason, action) = (type_.to_string(), reason.to_string(), action.to_string());
        self.runtime.spawn(async move {
            me.limiter.wait().await;
            if let Err(e) = me.record(regarding, &type_, &reason, &action, note).await {
                tracing::debug!(error = %e, reason, "event not recorded");
            }
        });
    }

    async fn record(
        &self,
        regarding: ObjectReference,
        type_: &str,
        reason: &str,
        action: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        let ns = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let key = format!(
            "{}/{}/{}/{}/{reason}/{action}/{note}",
            ns,
            regarding.kind.as_deref().unwrap_or_default(),
            regarding.name.as_deref().unwrap_or_default(),
            regarding.uid.as_deref().unwrap_or_default()
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let earlier = {
            let mut series = self.series.lock().unwrap();
            let mut pruned = self.pruned.lock().unwrap();
            if pruned.elapsed() > SERIES_WINDOW / 6 {
                series.retain(|_, v| v.3.elapsed() < SERIES_WINDOW);
                *pruned = Instant::now();
            }
            series
                .get_mut(&key)
                .filter(|v| v.3.elapsed() < SERIES_WINDOW)
                .map(|v| {
                    v.2 += 1;
                    v.3 = Instant::now();
                    (v.1.clone(), v.2)
                })
        };
        if let Some((name, count)) = earlier {
            let patch =
                serde_json::json!({"series": EventSeries { count, last_observed_time: now() }});
            let r = api
                .patch(
                    &name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(patch),
                )
                .await;
            if r.is_ok() {
                return Ok(());
            }
        }
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or("object"),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            event_time: Some(now()),
            type_: Some(type_.into()),
            reason: Some(reason.into()),
            action: Some(action.into()),
            note: Some(note),
            regarding: Some(regarding),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &event).await?;
        self.series
            .lock()
            .unwrap()
            .insert(key, (ns, name, 1, Instant::now()));
        Ok(())
    }
}
