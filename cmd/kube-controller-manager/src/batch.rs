//! The batch controllers (upstream `cmd/kube-controller-manager/app/batch.go`).

use crate::controller_descriptor::{ControllerContext, ControllerDescriptor, Started, workers};
use futures::future::BoxFuture;

pub fn descriptors() -> Vec<ControllerDescriptor> {
    vec![
        ControllerDescriptor::new("job-controller", &["job"], start_job),
        ControllerDescriptor::new("cronjob-controller", &["cronjob"], start_cronjob),
    ]
}

fn start_job(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::job::JobController::new(
            ctx.client_for("job-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("job-controller"),
        );
        workers(c, ctx.flags.concurrent_job_syncs)
    })
}

fn start_cronjob(ctx: &ControllerContext) -> BoxFuture<'_, Started> {
    Box::pin(async move {
        let c = controller::cronjob::CronJobController::new(
            ctx.client_for("cronjob-controller").await?,
            ctx.informers.get(),
            ctx.informers.get(),
            ctx.recorder("cronjob-controller"),
        );
        workers(c, ctx.flags.concurrent_cron_job_syncs)
    })
}
