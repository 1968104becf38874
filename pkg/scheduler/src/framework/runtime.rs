//! A profile's framework (upstream `framework/runtime`): the plugins enabled at each
//! extension point from upstream's default set, the profile's multiPoint and
//! per-point enable/disable lists and weights, and each plugin's args.

use super::plugins::{names, registry};
use super::{BindContext, CycleState, Handle, NodeInfo, PluginRef, PodInfo, Status};
use crate::apis::config::{PluginSet, Profile};
use std::collections::HashMap;

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
/// its default score weight.
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
    (names::VOLUME_RESTRICTIONS, &[PreFilter, Filter], 0),
    (names::NODE_VOLUME_LIMITS, &[PreFilter, Filter], 0),
    (
        names::VOLUME_BINDING,
        &[
            PreFilter, Filter, Reserve, PreBind, PostBind, PreScore, Score,
        ],
        0,
    ),
    (names::VOLUME_ZONE, &[PreFilter, Filter], 0),
    (
        names::POD_TOPOLOGY_SPREAD,
        &[PreFilter, Filter, PreScore, Score],
        2,
    ),
    (
        names::INTER_POD_AFFINITY,
        &[PreFilter, Filter, PreScore, Score],
        2,
    ),
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
    pub post_filter: Vec<PluginRef>,
    pub permit: Vec<PluginRef>,
    /// Reserve lives with the binding cycle, which unreserves when binding fails.
    pub binding: BindingCycle,
}

/// The binding cycle's plugins, run off the scheduling loop.
#[derive(Clone, Default)]
pub struct BindingCycle {
    pub reserve: Vec<PluginRef>,
    pub pre_bind: Vec<PluginRef>,
    pub bind: Vec<PluginRef>,
    pub post_bind: Vec<PluginRef>,
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

impl Framework {
    /// A profile's framework, its plugins built through the in-tree registry.
    pub fn new(profile: &Profile, handle: &Handle) -> Result<Self, String> {
        Self::with_registry(profile, handle, &registry::in_tree())
    }

    pub fn with_registry(
        profile: &Profile,
        handle: &Handle,
        registry: &registry::Registry,
    ) -> Result<Self, String> {
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
        let mut built: HashMap<String, PluginRef> = HashMap::new();
        let mut get = |name: &str| -> Result<PluginRef, String> {
            if let Some(p) = built.get(name) {
                return Ok(p.clone());
            }
            let factory = registry
                .get(name)
                .ok_or_else(|| format!("plugin {name:?} does not exist"))?;
            let p = factory(args(name), handle)?;
            built.insert(name.to_string(), p.clone());
            Ok(p)
        };
        let mut at = |point: Point| -> Result<Vec<(PluginRef, i64)>, String> {
            let mut out = Vec::new();
            for (name, w) in enabled.get(&point).cloned().unwrap_or_default() {
                out.push((get(&name)?, w));
            }
            Ok(out)
        };
        let plain = |v: Vec<(PluginRef, i64)>| v.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        Ok(Framework {
            profile: profile.scheduler_name.clone(),
            percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score,
            pre_enqueue: plain(at(PreEnqueue)?),
            pre_filter: plain(at(PreFilter)?),
            filter: plain(at(Filter)?),
            pre_score: plain(at(PreScore)?),
            score: at(Score)?,
            post_filter: plain(at(PostFilter)?),
            permit: plain(at(Permit)?),
            binding: BindingCycle {
                reserve: plain(at(Reserve)?),
                pre_bind: plain(at(PreBind)?),
                bind: plain(at(Bind)?),
                post_bind: plain(at(PostBind)?),
            },
        })
    }

    /// Reserve, in order; on a failure every Reserve plugin unreserves (upstream's
    /// `RunReservePluginsReserve` then `RunReservePluginsUnreserve`).
    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for p in &self.binding.reserve {
            let s = p.reserve(state, pod, node);
            if !s.is_success() {
                self.run_unreserve(state, pod, &node.name);
                return failed_at("Reserve", p.name(), s);
            }
        }
        Status::success()
    }

    /// Unreserve, in reverse order.
    pub fn run_unreserve(&self, state: &CycleState, pod: &PodInfo, node: &str) {
        self.binding.unreserve(state, pod, node);
    }

    /// Permit: the first rejection stops the pod (Wait is not supported by any
    /// plugin built here, and is refused as an error).
    pub fn run_permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.permit {
            let s = p.permit(state, pod, node);
            if !s.is_success() {
                return failed_at("Permit", p.name(), s);
            }
        }
        Status::success()
    }
}

impl BindingCycle {
    /// PreBind, Bind (the first plugin that does not skip), then PostBind; a failure
    /// unreserves and is returned as upstream words it.
    pub async fn run(
        &self,
        ctx: &BindContext,
        state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Result<(), String> {
        let result = self.bind_pod(ctx, state, pod, node).await;
        match &result {
            Ok(()) => {
                for p in &self.post_bind {
                    p.post_bind(state, pod, node);
                }
            }
            Err(_) => self.unreserve(state, pod, node),
        }
        result
    }

    /// Unreserve, in reverse order.
    fn unreserve(&self, state: &CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            p.unreserve(state, pod, node);
        }
    }

    async fn bind_pod(
        &self,
        ctx: &BindContext,
        state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Result<(), String> {
        for p in &self.pre_bind {
            let s = p.pre_bind(ctx, state, pod, node).await;
            if !s.is_success() {
                return Err(format!(
                    "running PreBind plugin {:?}: {}",
                    p.name(),
                    s.message()
                ));
            }
        }
        for p in &self.bind {
            let s = p.bind(ctx, state, pod, node).await;
            match s.code {
                super::Code::Skip => continue,
                super::Code::Success => return Ok(()),
                _ => {
                    return Err(format!(
                        "running Bind plugin {:?}: {}",
                        p.name(),
                        s.message()
                    ));
                }
            }
        }
        Err("no Bind plugin bound the pod".into())
    }
}

/// A plugin's failure at a point, with the point and plugin named as upstream does.
fn failed_at(point: &str, plugin: &'static str, s: Status) -> Status {
    let code = if s.code == super::Code::Wait {
        super::Code::Error
    } else {
        s.code
    };
    Status::new(
        code,
        format!("running {point} plugin {plugin:?}: {}", s.message()),
    )
    .with_plugin(plugin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn defaults_and_overrides() {
        let fw = Framework::new(&Profile::default(), &Handle::default()).unwrap();
        let scores: Vec<(&str, i64)> = fw.score.iter().map(|(p, w)| (p.name(), *w)).collect();
        assert!(scores.contains(&("TaintToleration", 3)));
        assert!(scores.contains(&("NodeResourcesFit", 1)));
        let names = |ps: &[PluginRef]| ps.iter().map(|p| p.name()).collect::<Vec<_>>();
        assert_eq!(names(&fw.binding.bind), ["DefaultBinder"]);

        let profile: Profile = serde_json::from_value(serde_json::json!({
            "schedulerName": "packer",
            "plugins": {"score": {"disabled": [{"name": "*"}], "enabled": [{"name": "NodeResourcesFit", "weight": 5}]}},
            "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}}]
        }))
        .unwrap();
        let fw = Framework::new(&profile, &Handle::default()).unwrap();
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
            Framework::new(&bad, &Handle::default()).err().unwrap(),
            "plugin \"Nope\" does not exist"
        );
    }

    /// Records the Reserve-point calls of the plugins the registry builds with it.
    struct Recorder {
        name: &'static str,
        fail: bool,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl crate::framework::Plugin for Recorder {
        fn name(&self) -> &'static str {
            self.name
        }
        fn reserve(&self, _: &mut CycleState, _: &PodInfo, _: &NodeInfo) -> Status {
            self.log
                .lock()
                .unwrap()
                .push(format!("reserve {}", self.name));
            if self.fail {
                Status::unschedulable("no room")
            } else {
                Status::success()
            }
        }
        fn unreserve(&self, _: &CycleState, _: &PodInfo, _: &str) {
            self.log
                .lock()
                .unwrap()
                .push(format!("unreserve {}", self.name));
        }
    }

    static LOG: std::sync::LazyLock<Arc<Mutex<Vec<String>>>> =
        std::sync::LazyLock::new(Arc::default);

    #[test]
    fn plugins_come_from_the_registry_and_a_failed_reserve_unreserves_all() {
        let mut reg = registry::in_tree();
        reg.insert(names::VOLUME_BINDING, |_, _| {
            Ok(Arc::new(Recorder {
                name: names::VOLUME_BINDING,
                fail: false,
                log: LOG.clone(),
            }))
        });
        reg.insert(names::DYNAMIC_RESOURCES, |_, _| {
            Ok(Arc::new(Recorder {
                name: names::DYNAMIC_RESOURCES,
                fail: true,
                log: LOG.clone(),
            }))
        });
        let fw = Framework::with_registry(&Profile::default(), &Handle::default(), &reg).unwrap();
        let pod = PodInfo::new(Arc::new(k8s_openapi::api::core::v1::Pod::default()));
        let node = NodeInfo::default();
        let status = fw.run_reserve(&mut CycleState::default(), &pod, &node);
        assert_eq!(status.code, crate::framework::Code::Unschedulable);
        assert_eq!(
            status.message(),
            "running Reserve plugin \"DynamicResources\": no room"
        );
        assert_eq!(
            *LOG.lock().unwrap(),
            [
                "reserve VolumeBinding",
                "reserve DynamicResources",
                "unreserve DynamicResources",
                "unreserve VolumeBinding"
            ]
        );

        // Each extension point gets the plugins the profile enables there.
        let names = |ps: &[PluginRef]| ps.iter().map(|p| p.name()).collect::<Vec<_>>();
        assert_eq!(
            names(&fw.post_filter),
            ["DynamicResources", "DefaultPreemption"]
        );
        assert_eq!(
            names(&fw.binding.pre_bind),
            ["VolumeBinding", "DynamicResources"]
        );
        let profile: Profile = serde_json::from_value(serde_json::json!({
            "plugins": {"postFilter": {"disabled": [{"name": "DefaultPreemption"}]},
                        "reserve": {"disabled": [{"name": "*"}]}}
        }))
        .unwrap();
        let fw = Framework::new(&profile, &Handle::default()).unwrap();
        assert_eq!(names(&fw.post_filter), ["DynamicResources"]);
        assert!(fw.binding.reserve.is_empty());

        // A name the registry lacks is refused.
        reg.remove(names::DEFAULT_BINDER);
        assert_eq!(
            Framework::with_registry(&Profile::default(), &Handle::default(), &reg)
                .err()
                .unwrap(),
            "plugin \"DefaultBinder\" does not exist"
        );
    }
}
