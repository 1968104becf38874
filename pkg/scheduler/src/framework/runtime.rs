//! A profile's framework (upstream `framework/runtime`): the plugins enabled at each
//! extension point from upstream's default set, the profile's multiPoint and
//! per-point enable/disable lists and weights, and each plugin's args.

use super::PluginRef;
use super::plugins::noderesources::{self, ResourceSpec, balanced_allocation, fit};
use super::plugins::{
    dynamicresources, imagelocality, interpodaffinity, names, nodeaffinity, nodename, nodeports,
    nodeunschedulable, podtopologyspread, queuesort, schedulinggates, tainttoleration, volume,
};
use crate::apis::config::{PluginSet, Profile};
use std::collections::HashMap;
use std::sync::Arc;

/// Extension points, as the configuration names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Point {
    PreEnqueue,
    QueueSort,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    Bind,
    PostBind,
}

use Point::*;

/// Upstream's default plugins (v1.35 multiPoint), with the points each implements and
/// its default score weight. Plugins named here but not built yet are accepted and skipped.
const DEFAULTS: &[(&str, &[Point], i64)] = &[
    (names::SCHEDULING_GATES, &[PreEnqueue], 0),
    (names::PRIORITY_SORT, &[QueueSort], 0),
    (names::NODE_UNSCHEDULABLE, &[Filter], 0),
    (names::NODE_NAME, &[Filter], 0),
    (names::TAINT_TOLERATION, &[Filter, PreScore, Score], 3),
    (
        names::NODE_AFFINITY,
        &[PreFilter, Filter, PreScore, Score],
        2,
    ),
    (names::NODE_PORTS, &[PreFilter, Filter], 0),
    (
        names::NODE_RESOURCES_FIT,
        &[PreFilter, Filter, PreScore, Score],
        1,
    ),
    ("VolumeRestrictions", &[PreFilter, Filter], 0),
    ("NodeVolumeLimits", &[PreFilter, Filter], 0),
    (
        "VolumeBinding",
        &[PreFilter, Filter, Reserve, PreBind, PreScore, Score],
        0,
    ),
    ("VolumeZone", &[PreFilter, Filter], 0),
    (
        "PodTopologySpread",
        &[PreFilter, Filter, PreScore, Score],
        2,
    ),
    ("InterPodAffinity", &[PreFilter, Filter, PreScore, Score], 2),
    (
        names::DYNAMIC_RESOURCES,
        &[PreEnqueue, PreFilter, Filter, PostFilter, Reserve, PreBind],
        0,
    ),
    (names::DEFAULT_PREEMPTION, &[PostFilter], 0),
    (
        names::NODE_RESOURCES_BALANCED_ALLOCATION,
        &[PreScore, Score],
        1,
    ),
    (names::IMAGE_LOCALITY, &[Score], 1),
    (names::DEFAULT_BINDER, &[Bind], 0),
];

pub struct Framework {
    pub profile: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub pre_enqueue: Vec<PluginRef>,
    pub pre_filter: Vec<PluginRef>,
    pub filter: Vec<PluginRef>,
    pub pre_score: Vec<PluginRef>,
    pub score: Vec<(PluginRef, i64)>,
    /// Names at PostFilter and Bind (DefaultPreemption, DefaultBinder are built in).
    pub post_filter: Vec<String>,
    pub bind: Vec<String>,
}

fn points(name: &str) -> Option<&'static [Point]> {
    DEFAULTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, _)| *p)
}

fn set_of(p: &crate::apis::config::Plugins, point: Point) -> &PluginSet {
    match point {
        PreEnqueue => &p.pre_enqueue,
        QueueSort => &p.queue_sort,
        PreFilter => &p.pre_filter,
        Filter => &p.filter,
        PostFilter => &p.post_filter,
        PreScore => &p.pre_score,
        Score => &p.score,
        Reserve => &p.reserve,
        Permit => &p.permit,
        PreBind => &p.pre_bind,
        Bind => &p.bind,
        PostBind => &p.post_bind,
    }
}

const ALL_POINTS: [Point; 12] = [
    PreEnqueue, QueueSort, PreFilter, Filter, PostFilter, PreScore, Score, Reserve, Permit,
    PreBind, Bind, PostBind,
];

/// The plugin named `name`, built from its args.
fn build(name: &str, args: Option<&serde_json::Value>) -> Result<Option<PluginRef>, String> {
    let plugin: PluginRef = match name {
        names::SCHEDULING_GATES => Arc::new(schedulinggates::SchedulingGates),
        names::PRIORITY_SORT => Arc::new(queuesort::PrioritySort),
        names::NODE_UNSCHEDULABLE => Arc::new(nodeunschedulable::NodeUnschedulable),
        names::NODE_NAME => Arc::new(nodename::NodeName),
        names::TAINT_TOLERATION => Arc::new(tainttoleration::TaintToleration),
        names::NODE_AFFINITY => Arc::new(nodeaffinity::NodeAffinity),
        names::NODE_PORTS => Arc::new(nodeports::NodePorts),
        names::NODE_RESOURCES_FIT => Arc::new(fit_from_args(args)?),
        names::NODE_RESOURCES_BALANCED_ALLOCATION => {
            let resources = match args.and_then(|a| a.get("resources")) {
                Some(r) => serde_json::from_value(r.clone())
                    .map_err(|e| format!("NodeResourcesBalancedAllocation args: {e}"))?,
                None => noderesources::default_resources(),
            };
            Arc::new(balanced_allocation::BalancedAllocation { resources })
        }
        names::IMAGE_LOCALITY => Arc::new(imagelocality::ImageLocality),
        names::DYNAMIC_RESOURCES => Arc::new(dynamicresources::DynamicResources),
        names::POD_TOPOLOGY_SPREAD => Arc::new(podtopologyspread::PodTopologySpread),
        names::VOLUME_RESTRICTIONS => Arc::new(volume::restrictions::VolumeRestrictions),
        names::NODE_VOLUME_LIMITS => Arc::new(volume::limits::NodeVolumeLimits),
        names::VOLUME_BINDING => Arc::new(volume::binding::VolumeBinding),
        names::VOLUME_ZONE => Arc::new(volume::zone::VolumeZone),
        names::INTER_POD_AFFINITY => Arc::new(interpodaffinity::InterPodAffinity),
        names::DEFAULT_PREEMPTION | names::DEFAULT_BINDER => return Ok(None),
        other if points(other).is_some() => {
            return Ok(None);
        }
        other => return Err(format!("plugin {other:?} does not exist")),
    };
    Ok(Some(plugin))
}

/// NodeResourcesFitArgs: `scoringStrategy` {type, resources, requestedToCapacityRatio}
/// and `ignoredResources`.
fn fit_from_args(args: Option<&serde_json::Value>) -> Result<fit::Fit, String> {
    let strategy = args.map(|a| &a["scoringStrategy"]);
    let resources: Vec<ResourceSpec> = match strategy.and_then(|s| s.get("resources")) {
        Some(r) => {
            serde_json::from_value(r.clone()).map_err(|e| format!("NodeResourcesFit args: {e}"))?
        }
        None => noderesources::default_resources(),
    };
    let kind = strategy
        .and_then(|s| s["type"].as_str())
        .unwrap_or("LeastAllocated");
    let strategy = match kind {
        "LeastAllocated" => fit::Strategy::LeastAllocated,
        "MostAllocated" => fit::Strategy::MostAllocated,
        "RequestedToCapacityRatio" => {
            let shape = strategy
                .and_then(|s| s["requestedToCapacityRatio"]["shape"].as_array())
                .ok_or("NodeResourcesFit args: scoringStrategy.requestedToCapacityRatio.shape: Required value")?;
            fit::Strategy::RequestedToCapacityRatio(
                shape
                    .iter()
                    .map(|p| {
                        (
                            p["utilization"].as_i64().unwrap_or(0),
                            p["score"].as_i64().unwrap_or(0),
                        )
                    })
                    .collect(),
            )
        }
        other => {
            return Err(format!(
                "NodeResourcesFit args: scoringStrategy.type: Unsupported value: {other:?}: supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""
            ));
        }
    };
    let ignored = args
        .and_then(|a| a["ignoredResources"].as_array())
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(fit::Fit {
        strategy,
        resources,
        ignored,
    })
}

impl Framework {
    pub fn new(profile: &Profile) -> Result<Self, String> {
        // Enabled plugins per point, with weights, starting from the defaults.
        let mut enabled: HashMap<Point, Vec<(String, i64)>> = HashMap::new();
        let mp = &profile.plugins.multi_point;
        let all_default_disabled = mp.disabled.iter().any(|d| d.name == "*");
        for (name, pts, weight) in DEFAULTS {
            if all_default_disabled || mp.disabled.iter().any(|d| d.name == *name) {
                continue;
            }
            for p in *pts {
                enabled
                    .entry(*p)
                    .or_default()
                    .push((name.to_string(), *weight));
            }
        }
        for e in &mp.enabled {
            let pts =
                points(&e.name).ok_or_else(|| format!("plugin {:?} does not exist", e.name))?;
            for p in pts {
                let list = enabled.entry(*p).or_default();
                list.retain(|(n, _)| *n != e.name);
                list.push((e.name.clone(), e.weight.unwrap_or(1)));
            }
        }
        for point in ALL_POINTS {
            let set = set_of(&profile.plugins, point);
            let list = enabled.entry(point).or_default();
            if set.disabled.iter().any(|d| d.name == "*") {
                list.clear();
            }
            list.retain(|(n, _)| !set.disabled.iter().any(|d| d.name == *n));
            for e in &set.enabled {
                points(&e.name).ok_or_else(|| format!("plugin {:?} does not exist", e.name))?;
                list.retain(|(n, _)| *n != e.name);
                list.push((e.name.clone(), e.weight.unwrap_or(1)));
            }
        }
        let args = |name: &str| {
            profile
                .plugin_config
                .iter()
                .find(|c| c.name == name)
                .map(|c| &c.args)
        };
        let mut built: HashMap<String, Option<PluginRef>> = HashMap::new();
        let mut get = |name: &str| -> Result<Option<PluginRef>, String> {
            if let Some(p) = built.get(name) {
                return Ok(p.clone());
            }
            let p = build(name, args(name))?;
            let built_in = [names::DEFAULT_PREEMPTION, names::DEFAULT_BINDER].contains(&name);
            if p.is_none() && !built_in {
                tracing::warn!(plugin = name, profile = %profile.scheduler_name, "plugin not implemented yet; skipped");
            }
            built.insert(name.to_string(), p.clone());
            Ok(p)
        };
        let mut at = |point: Point| -> Result<Vec<(PluginRef, i64)>, String> {
            let mut out = Vec::new();
            for (name, w) in enabled.get(&point).cloned().unwrap_or_default() {
                if let Some(p) = get(&name)? {
                    out.push((p, w));
                }
            }
            Ok(out)
        };
        let plain = |v: Vec<(PluginRef, i64)>| v.into_iter().map(|(p, _)| p).collect();
        Ok(Framework {
            profile: profile.scheduler_name.clone(),
            percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score,
            pre_enqueue: plain(at(PreEnqueue)?),
            pre_filter: plain(at(PreFilter)?),
            filter: plain(at(Filter)?),
            pre_score: plain(at(PreScore)?),
            score: at(Score)?,
            post_filter: enabled
                .get(&PostFilter)
                .into_iter()
                .flatten()
                .map(|(n, _)| n.clone())
                .collect(),
            bind: enabled
                .get(&Bind)
                .into_iter()
                .flatten()
                .map(|(n, _)| n.clone())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let fw = Framework::new(&Profile::default()).unwrap();
        let scores: Vec<(&str, i64)> = fw.score.iter().map(|(p, w)| (p.name(), *w)).collect();
        assert!(scores.contains(&("TaintToleration", 3)));
        assert!(scores.contains(&("NodeResourcesFit", 1)));
        assert_eq!(fw.bind, vec!["DefaultBinder"]);

        let profile: Profile = serde_json::from_value(serde_json::json!({
            "schedulerName": "packer",
            "plugins": {"score": {"disabled": [{"name": "*"}], "enabled": [{"name": "NodeResourcesFit", "weight": 5}]}},
            "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}}]
        }))
        .unwrap();
        let fw = Framework::new(&profile).unwrap();
        assert_eq!(fw.score.len(), 1);
        assert_eq!(
            (fw.score[0].0.name(), fw.score[0].1),
            ("NodeResourcesFit", 5)
        );

        let bad: Profile = serde_json::from_value(
            serde_json::json!({"plugins": {"filter": {"enabled": [{"name": "Nope"}]}}}),
        )
        .unwrap();
        assert_eq!(
            Framework::new(&bad).err().unwrap(),
            "plugin \"Nope\" does not exist"
        );
    }
}
