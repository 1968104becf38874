//! PrioritySort (upstream `queuesort`): higher priority first, then the earlier arrival.

use crate::framework::Plugin;

pub struct PrioritySort;

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        super::names::PRIORITY_SORT
    }
}
