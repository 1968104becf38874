//! The in-tree plugin registry (upstream `framework/plugins/registry.go`
//! `NewInTreeRegistry`): every plugin by name, built by its factory from the profile's
//! args and the shared handle.

use super::noderesources::{self, balanced_allocation, fit};
use super::{
    defaultbinder, defaultpreemption, dynamicresources, imagelocality, interpodaffinity, names,
    nodeaffinity, nodename, nodeports, nodeunschedulable, podtopologyspread, queuesort,
    schedulinggates, tainttoleration, volume,
};
use crate::framework::{Handle, PluginRef};
use std::collections::HashMap;
use std::sync::Arc;

/// Builds a plugin from its args (`pluginConfig`), if any.
pub type Factory = fn(Option<&serde_json::Value>, &Handle) -> Result<PluginRef, String>;

pub type Registry = HashMap<&'static str, Factory>;

pub fn in_tree() -> Registry {
    let entries: [(&'static str, Factory); 19] = [
        (names::SCHEDULING_GATES, |_, _| {
            Ok(Arc::new(schedulinggates::SchedulingGates))
        }),
        (names::PRIORITY_SORT, |_, _| {
            Ok(Arc::new(queuesort::PrioritySort))
        }),
        (names::NODE_UNSCHEDULABLE, |_, _| {
            Ok(Arc::new(nodeunschedulable::NodeUnschedulable))
        }),
        (names::NODE_NAME, |_, _| Ok(Arc::new(nodename::NodeName))),
        (names::TAINT_TOLERATION, |_, _| {
            Ok(Arc::new(tainttoleration::TaintToleration))
        }),
        (names::NODE_AFFINITY, |_, _| {
            Ok(Arc::new(nodeaffinity::NodeAffinity))
        }),
        (names::NODE_PORTS, |_, _| Ok(Arc::new(nodeports::NodePorts))),
        (names::NODE_RESOURCES_FIT, |args, _| {
            Ok(Arc::new(fit::Fit::from_args(args)?))
        }),
        (names::NODE_RESOURCES_BALANCED_ALLOCATION, |args, _| {
            let resources = match args.and_then(|a| a.get("resources")) {
                Some(r) => serde_json::from_value(r.clone())
                    .map_err(|e| format!("NodeResourcesBalancedAllocation args: {e}"))?,
                None => noderesources::default_resources(),
            };
            Ok(Arc::new(balanced_allocation::BalancedAllocation {
                resources,
            }))
        }),
        (names::IMAGE_LOCALITY, |_, _| {
            Ok(Arc::new(imagelocality::ImageLocality))
        }),
        (names::DYNAMIC_RESOURCES, |_, _| {
            Ok(Arc::new(dynamicresources::DynamicResources))
        }),
        (names::POD_TOPOLOGY_SPREAD, |_, _| {
            Ok(Arc::new(podtopologyspread::PodTopologySpread))
        }),
        (names::VOLUME_RESTRICTIONS, |_, _| {
            Ok(Arc::new(volume::restrictions::VolumeRestrictions))
        }),
        (names::NODE_VOLUME_LIMITS, |_, _| {
            Ok(Arc::new(volume::limits::NodeVolumeLimits))
        }),
        (names::VOLUME_BINDING, |_, handle| {
            Ok(Arc::new(volume::binding::VolumeBinding {
                assumed: handle.assumed_volumes.clone(),
            }))
        }),
        (names::VOLUME_ZONE, |_, _| {
            Ok(Arc::new(volume::zone::VolumeZone))
        }),
        (names::INTER_POD_AFFINITY, |_, _| {
            Ok(Arc::new(interpodaffinity::InterPodAffinity))
        }),
        (names::DEFAULT_PREEMPTION, |_, _| {
            Ok(Arc::new(defaultpreemption::DefaultPreemption))
        }),
        (names::DEFAULT_BINDER, |_, _| {
            Ok(Arc::new(defaultbinder::DefaultBinder))
        }),
    ];
    entries.into_iter().collect()
}
