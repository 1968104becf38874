//! The certificates controllers (upstream `cmd/kube-controller-manager/app/
//! certificates.go`).

use crate::controller_descriptor::{
    ControllerContext, ControllerDescriptor, Started, running, workers,
};
use apimachinery::duration::parse as duration;
use futures::future::BoxFuture;
use std::path::Path;
use std::time::Duration;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![
        ControllerDescriptor::new(
            "root-ca-certificate-publisher-controller",
            &["root-ca-cert-publisher"],
            start_root_ca_publisher,
        ),
        ControllerDescriptor::new(
            "certificatesigningrequest-approving-controller",
            &["csrapproving"],
            start_approver,
        ),
        ControllerDescriptor::new(
            "certificatesigningrequest-signing-controller",
            &["csrsigning"],
            start_signer,
        ),
        ControllerDescriptor::new(
            "certificatesigningrequest-cleaner-controller",
            &["csrcleaner"],
            start_cleaner,
        ),
    ]
}

fn start_root_ca_publisher(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let Some(ca) = ctx.root_ca.clone() else {
            tracing::warn!(
                "no --root-ca-file: the root-ca-certificate-publisher-controller is not started"
            );
            return Ok(None);
        };
        let c = controller::certificates::rootcacertpublisher::Publisher::new(
            ctx.client_for("root-ca-cert-publisher").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ca,
        );
        workers(c, 1)
    })
}

fn start_approver(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::certificates::approver::Approver::new(
            ctx.client_for("certificate-controller").await?,
            ctx.informers.get(),
        );
        workers(c, 1)
    })
}

fn start_signer(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let f = &ctx.flags;
        let (Some(cert), Some(key)) = (&f.cluster_signing_cert_file, &f.cluster_signing_key_file)
        else {
            tracing::warn!(
                "no --cluster-signing-cert-file/--cluster-signing-key-file: the certificatesigningrequest-signing-controller is not started"
            );
            return Ok(None);
        };
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
        };
        let authority =
            controller::certificates::authority::Authority::load(&read(cert)?, &read(key)?)?;
        let c = controller::certificates::signer::Signer::new(
            ctx.client_for("certificate-controller").await?,
            ctx.informers.get(),
            authority,
            duration(&f.cluster_signing_duration)?,
        );
        workers(c, 1)
    })
}

fn start_cleaner(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::certificates::cleaner::Cleaner::new(
            ctx.client_for("certificate-controller").await?,
            ctx.informers.get(),
            Duration::from_secs(3600),
        );
        running(c.run())
    })
}
