//! The volume controllers (upstream keeps their descriptors in `cmd/
//! kube-controller-manager/app/core.go`).

use crate::controller_descriptor::{ControllerContext, ControllerDescriptor, Started, workers};
use apimachinery::duration::parse as duration;
use futures::future::BoxFuture;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![
        ControllerDescriptor::new(
            "persistentvolume-binder-controller",
            &["persistentvolume-binder"],
            start_binder,
        ),
        ControllerDescriptor::new(
            "persistentvolumeclaim-protection-controller",
            &["pvc-protection"],
            start_pvc_protection,
        ),
        ControllerDescriptor::new(
            "persistentvolume-protection-controller",
            &["pv-protection"],
            start_pv_protection,
        ),
        ControllerDescriptor::new(
            "attachdetach-controller",
            &["attachdetach"],
            start_attach_detach,
        ),
        ControllerDescriptor::new(
            "persistentvolume-expander-controller",
            &["persistentvolume-expander"],
            start_expander,
        ),
        ControllerDescriptor::new(
            "ephemeral-volume-controller",
            &["ephemeral-volume"],
            start_ephemeral,
        ),
    ]
}

fn start_binder(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::volume::persistentvolume::PersistentVolumeController::new(
            ctx.client_for("persistent-volume-binder").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("persistentvolume-controller"),
            duration(&ctx.flags.pvclaimbinder_sync_period)?,
        );
        workers(c, 1)
    })
}

fn start_pvc_protection(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::volume::pvcprotection::PvcProtection::new(
            ctx.client_for("pvc-protection-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
        );
        workers(c, 1)
    })
}

fn start_pv_protection(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::volume::pvprotection::PvProtection::new(
            ctx.client_for("pv-protection-controller").await?,
            ctx.informers.get(),
        );
        workers(c, 1)
    })
}

fn start_ephemeral(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::volume::ephemeral::EphemeralController::new(
            ctx.client_for("ephemeral-volume-controller").await?,
            ctx.informers.get(),
            ctx.recorder("ephemeral_volume"),
        );
        workers(c, 1)
    })
}

fn start_expander(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::volume::expand::ExpandController::new(
            ctx.client_for("expand-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("volume_expand"),
        );
        workers(c, 1)
    })
}

fn start_attach_detach(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::volume::attachdetach::AttachDetachController::new(
            ctx.client_for("attachdetach-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("attachdetach-controller"),
        );
        workers(c, 1)
    })
}
