//! DynamicResources (upstream `dynamicresources`), as far as pods without resource
//! claims are concerned: nothing to filter, and at PostFilter "no new claims to
//! deallocate". Allocating claims (DRA) is not built yet: pods that use them are refused
//! with that reason rather than placed without their devices.

use crate::framework::{
    CycleState, Plugin, PodInfo, PostFilterContext, PostFilterResult, PreFilterResult, Snapshot,
    Status,
};

pub const POST_FILTER_MESSAGE: &str = "no new claims to deallocate";

pub struct DynamicResources;

impl Plugin for DynamicResources {
    fn name(&self) -> &'static str {
        super::names::DYNAMIC_RESOURCES
    }

    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot<'_>,
    ) -> (PreFilterResult, Status) {
        let claims = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.resource_claims.as_ref())
            .is_some_and(|c| !c.is_empty());
        if claims {
            (
                None,
                Status::unresolvable("resource claims are not supported by this scheduler yet"),
            )
        } else {
            (None, Status::skip())
        }
    }

    /// No claims of its own to free (allocation is not built yet).
    fn post_filter(
        &self,
        _: &PostFilterContext<'_>,
        _: &CycleState,
        _: &PodInfo,
    ) -> PostFilterResult {
        PostFilterResult::Unresolved(POST_FILTER_MESSAGE.to_string())
    }
}
