//! The policy controllers (upstream `cmd/kube-controller-manager/app/policy.go`).

use crate::controller_descriptor::{ControllerContext, ControllerDescriptor, Started, workers};
use futures::future::BoxFuture;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![ControllerDescriptor::new(
        "disruption-controller",
        &["disruption"],
        start_disruption,
    )]
}

fn start_disruption(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::disruption::DisruptionController::new(
            ctx.client_for("disruption-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("controllermanager"),
        );
        workers(c, 1)
    })
}
