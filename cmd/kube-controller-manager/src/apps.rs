//! The apps controllers (upstream `cmd/kube-controller-manager/app/apps.go`).

use crate::controller_descriptor::{ControllerContext, ControllerDescriptor, Started, workers};
use futures::future::BoxFuture;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![
        ControllerDescriptor::new("deployment-controller", &["deployment"], start_deployment),
        ControllerDescriptor::new("daemonset-controller", &["daemonset"], start_daemonset),
        ControllerDescriptor::new(
            "statefulset-controller",
            &["statefulset"],
            start_statefulset,
        ),
        ControllerDescriptor::new("replicaset-controller", &["replicaset"], start_replicaset),
    ]
}

fn start_deployment(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::deployment::DeploymentController::new(
            ctx.client_for("deployment-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("deployment-controller"),
        );
        workers(c, ctx.flags.concurrent_deployment_syncs)
    })
}

fn start_daemonset(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::daemon::DaemonSetController::new(
            ctx.client_for("daemon-set-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("daemonset-controller"),
        );
        workers(c, ctx.flags.concurrent_daemonset_syncs)
    })
}

fn start_statefulset(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::statefulset::StatefulSetController::new(
            ctx.client_for("statefulset-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("statefulset-controller"),
        );
        workers(c, ctx.flags.concurrent_statefulset_syncs)
    })
}

fn start_replicaset(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::replicaset::ReplicaSetController::new(
            &controller::replicaset::REPLICA_SET,
            ctx.client_for("replicaset-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("replicaset-controller"),
        );
        workers(c, ctx.flags.concurrent_replicaset_syncs)
    })
}
