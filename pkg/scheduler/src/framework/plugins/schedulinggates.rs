//! SchedulingGates (upstream `schedulinggates`): a pod with `spec.schedulingGates` waits
//! outside the active queue until the gates are removed.

use crate::framework::{Code, Plugin, PodInfo, Status};

pub struct SchedulingGates;

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        super::names::SCHEDULING_GATES
    }

    fn pre_enqueue(&self, pod: &PodInfo) -> Status {
        let gates: Vec<&str> = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_ref())
            .into_iter()
            .flatten()
            .map(|g| g.name.as_str())
            .collect();
        if gates.is_empty() {
            Status::success()
        } else {
            Status::new(
                Code::Pending,
                format!("waiting for scheduling gates: [{}]", gates.join(" ")),
            )
        }
    }
}
