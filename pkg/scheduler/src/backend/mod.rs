//! The scheduler's state (upstream `pkg/scheduler/backend`): the cache of nodes and the
//! pods placed on them, and the scheduling queue.

pub mod cache;
pub mod queue;
