//! The autoscaling controllers (upstream `cmd/kube-controller-manager/app/
//! autoscaling.go`).

use crate::controller_descriptor::{ControllerContext, ControllerDescriptor, Started, workers};
use apimachinery::duration::parse as duration;
use futures::future::BoxFuture;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![ControllerDescriptor::new(
        "horizontal-pod-autoscaler-controller",
        &["horizontalpodautoscaling"],
        start_hpa,
    )]
}

fn start_hpa(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let f = &ctx.flags;
        let c = controller::podautoscaler::HpaController::new(
            ctx.client_for("horizontal-pod-autoscaler").await?,
            ctx.informers.get(),
            ctx.recorder("horizontal-pod-autoscaler"),
            duration(&f.horizontal_pod_autoscaler_sync_period)?,
            f.horizontal_pod_autoscaler_tolerance,
            duration(&f.horizontal_pod_autoscaler_downscale_stabilization)?,
        );
        workers(c, f.concurrent_horizontal_pod_autoscaler_syncs)
    })
}
