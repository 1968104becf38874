//! The discovery.k8s.io controllers (upstream `cmd/kube-controller-manager/app/
//! discovery.go`).

use crate::controller_descriptor::{ControllerContext, ControllerDescriptor, Started, workers};
use futures::future::BoxFuture;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![
        ControllerDescriptor::new(
            "endpointslice-controller",
            &["endpointslice"],
            start_endpointslice,
        ),
        ControllerDescriptor::new(
            "endpointslice-mirroring-controller",
            &["endpointslicemirroring"],
            start_mirroring,
        ),
    ]
}

fn start_endpointslice(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::endpointslice::EndpointSliceController::new(
            ctx.client_for("endpointslice-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
        );
        workers(c, ctx.flags.concurrent_service_endpoint_syncs)
    })
}

fn start_mirroring(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::endpointslicemirroring::MirroringController::new(
            ctx.client_for("endpointslicemirroring-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.flags.mirroring_max_endpoints_per_subset,
        );
        workers(c, ctx.flags.mirroring_concurrent_service_endpoint_syncs)
    })
}
