//! The `resource.k8s.io/v1` group (Dynamic Resource Allocation, GA in v1.34; upstream
//! `pkg/registry/resource`): DeviceClasses, ResourceClaims, ResourceClaimTemplates and
//! ResourceSlices, stored and validated so that drivers and clients that use them work.
//! Allocating claims is not built: the scheduler refuses pods with resource claims by
//! name (DynamicResources) rather than place them without their devices.

pub mod deviceclass;
pub mod resourceclaim;
pub mod resourceslice;
mod validation;
