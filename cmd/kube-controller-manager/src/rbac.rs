//! The RBAC controllers (upstream `cmd/kube-controller-manager/app/rbac.go`).

use crate::controller_descriptor::{ControllerContext, ControllerDescriptor, Started, workers};
use futures::future::BoxFuture;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![ControllerDescriptor {
        name: "clusterrole-aggregation-controller",
        aliases: &["clusterrole-aggregation"],
        enabled_by_default: true,
        constructor: Some(start_aggregation),
    }]
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
