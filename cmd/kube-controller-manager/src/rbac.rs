//! The RBAC controllers (upstream `cmd/kube-controller-manager/app/rbac.go`).

use crate::controller_descriptor::{ControllerContext, ControllerDescriptor, Started, workers};
use futures::future::BoxFuture;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![ControllerDescriptor::new(
        "clusterrole-aggregation-controller",
        &["clusterrole-aggregation"],
        start_aggregation,
    )]
}

fn start_aggregation(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::clusterroleaggregation::AggregationController::new(
            ctx.client_for("clusterrole-aggregation-controller").await?,
            ctx.informers.get(),
        );
        workers(c, 1)
    })
}
