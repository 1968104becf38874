//! The core controllers (upstream `cmd/kube-controller-manager/app/core.go`), and the
//! service-account token controller upstream starts first with the root credentials.

use crate::controller_descriptor::{
    ControllerContext, ControllerDescriptor, Started, running, workers,
};
use crate::flags::Flags;
use apimachinery::duration::parse as duration;
use futures::future::BoxFuture;
use std::time::Duration;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![
        ControllerDescriptor::new(
            "serviceaccount-token-controller",
            &["serviceaccount-token"],
            start_serviceaccount_token,
        ),
        ControllerDescriptor::new("endpoints-controller", &["endpoint"], start_endpoints),
        ControllerDescriptor::new(
            "node-lifecycle-controller",
            &["nodelifecycle"],
            start_node_lifecycle,
        ),
        ControllerDescriptor::new(
            "taint-eviction-controller",
            &["taint-eviction-controller"],
            start_taint_eviction,
        ),
        ControllerDescriptor::new(
            "ttl-after-finished-controller",
            &["ttl-after-finished"],
            start_ttl_after_finished,
        ),
        ControllerDescriptor::new("pod-garbage-collector-controller", &["podgc"], start_podgc),
        ControllerDescriptor::new(
            "garbage-collector-controller",
            &["garbagecollector"],
            start_garbage_collector,
        ),
        ControllerDescriptor::new("namespace-controller", &["namespace"], start_namespace),
        ControllerDescriptor::new(
            "replicationcontroller-controller",
            &["replicationcontroller"],
            start_replication_controller,
        ),
        ControllerDescriptor::new(
            "serviceaccount-controller",
            &["serviceaccount"],
            start_serviceaccount,
        ),
        ControllerDescriptor::new(
            "resourcequota-controller",
            &["resourcequota"],
            start_resourcequota,
        ),
        ControllerDescriptor::new("node-ipam-controller", &["nodeipam"], start_node_ipam),
        ControllerDescriptor::new("ttl-controller", &["ttl"], start_ttl),
    ]
}

fn start_serviceaccount_token(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let Some(path) = &ctx.flags.service_account_private_key_file else {
            tracing::warn!(
                "no --service-account-private-key-file: the serviceaccount-token-controller is not started"
            );
            return Ok(None);
        };
        // As upstream, it runs with the root credentials: the per-controller ones
        // depend on it.
        let c = controller::serviceaccount::tokens::TokensController::new(
            ctx.client.clone(),
            ctx.informers.get(),
            ctx.informers.get(),
            serviceaccount::jwt::Signer::load(path)?,
            ctx.root_ca.clone(),
        );
        workers(c, 1)
    })
}

fn start_endpoints(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::endpoint::EndpointsController::new(
            ctx.client_for("endpoint-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
        );
        workers(c, ctx.flags.concurrent_endpoint_syncs)
    })
}

/// The node lifecycle controller, which also taints and evicts (both descriptors start
/// the one controller, once).
fn node_lifecycle(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::nodelifecycle::NodeLifecycle::new(
            ctx.client_for("node-controller").await?,
            ctx.informers.get(),
            ctx.informers.namespaced("kube-node-lease"),
            ctx.informers.get(),
            ctx.recorder("node-controller"),
            duration(&ctx.flags.node_monitor_period)?,
            duration(&ctx.flags.node_monitor_grace_period)?,
        );
        running(c.run())
    })
}

fn start_node_lifecycle(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    node_lifecycle(ctx)
}

fn start_taint_eviction(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    if ctx.is_enabled("node-lifecycle-controller") {
        return Box::pin(async { Ok(None) });
    }
    node_lifecycle(ctx)
}

fn start_ttl_after_finished(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::ttlafterfinished::TtlAfterFinished::new(
            ctx.client_for("ttl-after-finished-controller").await?,
            ctx.informers.get(),
        );
        workers(c, ctx.flags.concurrent_ttl_after_finished_syncs)
    })
}

fn start_podgc(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::podgc::PodGc::new(
            ctx.client_for("pod-garbage-collector").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.flags.terminated_pod_gc_threshold.max(0) as usize,
            Duration::from_secs(20),
        );
        running(c.run())
    })
}

fn start_garbage_collector(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let gc = controller::garbagecollector::GarbageCollector::new(
            ctx.client_for("generic-garbage-collector").await?,
        );
        let workers = ctx.flags.concurrent_gc_syncs;
        running(async move {
            if let Err(e) = gc.run(workers).await {
                tracing::error!(error = %e, "garbage collector stopped");
            }
        })
    })
}

fn start_namespace(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::namespace::NamespaceController::new(
            ctx.client_for("namespace-controller").await?,
            ctx.informers.get(),
        );
        workers(c, ctx.flags.concurrent_namespace_syncs)
    })
}

/// Upstream runs the ReplicaSet controller over ReplicationControllers.
fn start_replication_controller(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let rcs = ctx
            .informers
            .get::<k8s_openapi::api::core::v1::ReplicationController>();
        let c = controller::replicaset::ReplicaSetController::new(
            &controller::replicaset::REPLICATION_CONTROLLER,
            ctx.client_for("replication-controller").await?,
            client_go::informer::Informer::mirror(
                &rcs,
                controller::replicaset::from_replication_controller,
            ),
            ctx.informers.get(),
            ctx.recorder("replication-controller"),
        );
        workers(c, ctx.flags.concurrent_rc_syncs)
    })
}

fn start_serviceaccount(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::serviceaccount::ServiceAccountsController::new(
            ctx.client_for("service-account-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
        );
        workers(c, ctx.flags.concurrent_serviceaccount_syncs)
    })
}

fn start_resourcequota(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let monitors = controller::resourcequota::Monitors {
            pods: ctx.informers.get(),
            services: ctx.informers.get(),
            claims: ctx.informers.get(),
            config_maps: ctx.informers.get(),
            secrets: ctx.informers.get(),
            controllers: ctx.informers.get(),
        };
        let c = controller::resourcequota::ResourceQuotaController::new(
            ctx.client_for("resourcequota-controller").await?,
            ctx.informers.get(),
            monitors,
            duration(&ctx.flags.resource_quota_sync_period)?,
        );
        workers(c, ctx.flags.concurrent_resource_quota_syncs)
    })
}

fn start_node_ipam(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        if !ctx.flags.allocate_node_cidrs {
            tracing::info!("node-ipam-controller is disabled: --allocate-node-cidrs is not set");
            return Ok(None);
        }
        let sets = node_cidr_sets(&ctx.flags)?;
        let c = controller::nodeipam::NodeIpamController::new(
            ctx.client_for("node-controller").await?,
            ctx.informers.get(),
            sets,
            ctx.recorder("cidrAllocator"),
        );
        workers(c, 1)
    })
}

fn start_ttl(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::ttl::TtlController::new(
            ctx.client_for("ttl-controller").await?,
            ctx.informers.get(),
        );
        workers(c, 1)
    })
}

/// `--cluster-cidr` cut by the node mask sizes (upstream's `processCIDRs` and
/// `setNodeCIDRMaskSizes`): one set per family, dual stack at most one of each.
fn node_cidr_sets(flags: &Flags) -> Result<Vec<controller::nodeipam::cidrset::CidrSet>, String> {
    let cidrs: Vec<&str> = flags
        .cluster_cidr
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if cidrs.is_empty() {
        return Err("--allocate-node-cidrs requires --cluster-cidr".into());
    }
    if cidrs.len() > 2 {
        return Err("len of clusters cidrs is:3 > more than max allowed of 2".into());
    }
    let dual = cidrs.len() == 2;
    if dual && flags.node_cidr_mask_size.is_some() {
        return Err(
            "usage of --node-cidr-mask-size is not allowed with dual-stack clusters".into(),
        );
    }
    let mut sets = Vec::new();
    let mut v6_seen = Vec::new();
    for c in cidrs {
        let v6 = c.contains(':');
        let mask = if v6 {
            flags
                .node_cidr_mask_size_ipv6
                .or(flags.node_cidr_mask_size)
                .unwrap_or(64)
        } else {
            flags
                .node_cidr_mask_size_ipv4
                .or(flags.node_cidr_mask_size)
                .unwrap_or(24)
        };
        v6_seen.push(v6);
        let mut set = controller::nodeipam::cidrset::CidrSet::new(c, mask)?;
        for svc in flags
            .service_cluster_ip_range
            .as_deref()
            .unwrap_or_default()
            .split(',')
        {
            set.occupy_overlapping(svc.trim());
        }
        sets.push(set);
    }
    if dual && v6_seen[0] == v6_seen[1] {
        return Err("--cluster-cidr: a dual-stack pair needs one IPv4 and one IPv6 CIDR".into());
    }
    Ok(sets)
}
