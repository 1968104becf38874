//! VolumeBinding's PreBind (upstream `volumebinding/binder.go` BindPodVolumes): claim the
//! matched volumes (`claimRef`), ask for provisioning on the chosen node
//! (`volume.kubernetes.io/selected-node`), then wait until the PV controller has bound
//! every claim (polling each second, for upstream's 600 s bind timeout).

use super::binding::Plan;
use client_go::flowcontrol::RateLimiter;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::time::{Duration, Instant};

pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const BIND_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn bind_volumes(
    client: &kube::Client,
    limiter: &RateLimiter,
    plan: &Plan,
    node: &str,
) -> Result<(), String> {
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    for (claim, pv_name) in &plan.static_bindings {
        limiter.wait().await;
        let mut pv = pvs.get(pv_name).await.map_err(|e| e.to_string())?;
        let spec = pv.spec.get_or_insert_with(Default::default);
        spec.claim_ref = Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: claim.metadata.namespace.clone(),
            name: claim.metadata.name.clone(),
            uid: claim.metadata.uid.clone(),
            resource_version: claim.metadata.resource_version.clone(),
            ..Default::default()
        });
        pvs.replace(pv_name, &PostParams::default(), &pv)
            .await
            .map_err(|e| e.to_string())?;
    }
    for claim in &plan.provision {
        limiter.wait().await;
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            client.clone(),
            claim.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let patch = serde_json::json!({"metadata": {"annotations": {SELECTED_NODE: node}}});
        api.patch(
            claim.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    let claims: Vec<&PersistentVolumeClaim> = plan
        .static_bindings
        .iter()
        .map(|(c, _)| c.as_ref())
        .chain(plan.provision.iter().map(|c| c.as_ref()))
        .collect();
    let deadline = Instant::now() + BIND_TIMEOUT;
    loop {
        let mut all = true;
        for c in &claims {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(
                client.clone(),
                c.metadata.namespace.as_deref().unwrap_or_default(),
            );
            let now = api
                .get(c.metadata.name.as_deref().unwrap_or_default())
                .await
                .map_err(|e| e.to_string())?;
            if now.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
                all = false;
                break;
            }
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("binding volumes: context deadline exceeded".into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
