//! The bootstrap-token controllers (upstream `cmd/kube-controller-manager/app/
//! bootstrap.go`), both off by default.

use crate::controller_descriptor::{ControllerContext, ControllerDescriptor, Started, workers};
use futures::future::BoxFuture;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![
        ControllerDescriptor::new(
            "bootstrap-signer-controller",
            &["bootstrapsigner"],
            start_signer,
        )
        .off_by_default(),
        ControllerDescriptor::new("token-cleaner-controller", &["tokencleaner"], start_cleaner)
            .off_by_default(),
    ]
}

fn start_signer(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::bootstrap::bootstrapsigner::BootstrapSigner::new(
            ctx.client_for("bootstrap-signer").await?,
            ctx.informers.namespaced("kube-public"),
            ctx.informers.namespaced("kube-system"),
        );
        workers(c, 1)
    })
}

fn start_cleaner(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::bootstrap::tokencleaner::TokenCleaner::new(
            ctx.client_for("token-cleaner").await?,
            ctx.informers.namespaced("kube-system"),
        );
        workers(c, 1)
    })
}
