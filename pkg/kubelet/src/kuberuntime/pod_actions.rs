//! What a sync must do to a pod's containers (upstream `kuberuntime_manager.go`
//! `computePodActions`), decided from the spec and the runtime's view alone; `sync.rs`
//! carries the actions out. Init containers run one at a time in order; a sidecar (an
//! init container with `restartPolicy: Always`) keeps running and lets the next one
//! start once it has started (its startup probe passed); app containers start when
//! every init container is done, and restart per the pod's `restartPolicy`.

use super::container::container_hash;
use crate::prober::Kind;
use crate::status::{Instance, PodRuntime};
use k8s_openapi::api::core::v1::{Container, Pod};

/// One container's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerAction {
    /// Never ran in this sandbox: start it with this restart count.
    Start { restart_count: i32 },
    /// Exited, and the policy restarts it (after its CrashLoopBackOff).
    Restart { restart_count: i32 },
    /// Running, but to be killed so it restarts (liveness or startup probe failed, or
    /// its definition changed); the reason is the Killing event's message.
    Kill { reason: String },
    /// Running and healthy: apply an in-place resize if one is pending.
    Running,
    /// Created and never started (the kubelet restarted in between): remove it.
    Remove { id: String },
    /// Exited for good (the policy does not restart it).
    Done,
}

/// Everything one sync does, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PodActions {
    /// No ready sandbox: kill what runs, make a new sandbox, decide again.
    pub create_sandbox: bool,
    /// Init containers (sidecars included) to act on, by name, in order.
    pub init: Vec<(String, ContainerAction)>,
    /// An init container failed under `restartPolicy: Never`: the pod fails.
    pub init_failed: bool,
    /// Every init container completed (sidecars: started): app containers run.
    pub init_done: bool,
    /// App containers to act on, by name.
    pub app: Vec<(String, ContainerAction)>,
    /// Ephemeral containers to start (they never restart).
    pub ephemeral: Vec<String>,
}

/// What the prober knows of a running container.
pub trait Health {
    /// The last result of a probe of this container instance (None: none yet).
    fn probe(&self, container: &str, kind: Kind, id: &str) -> Option<bool>;
    /// Whether the startup probe's window (initial delay + period × threshold) is over.
    fn startup_window_over(&self, c: &Container, i: &Instance) -> bool;
}

/// The pod's restartPolicy (Always when unset).
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

pub fn compute_pod_actions(pod: &Pod, rt: &PodRuntime, health: &dyn Health) -> PodActions {
    if !rt.sandbox_ready() {
        return PodActions {
            create_sandbox: true,
            ..Default::default()
        };
    }
    let mut actions = PodActions::default();
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = restart_policy(pod);
    actions.init_done = true;
    for c in spec.init_containers.iter().flatten() {
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        let (action, next) = if sidecar {
            sidecar_step(c, rt, health)
        } else {
            init_step(c, rt, policy, &mut actions.init_failed)
        };
        if let Some(a) = action {
            actions.init.push((c.name.clone(), a));
        }
        if !next {
            actions.init_done = false;
            break;
        }
    }
    if !actions.init_done {
        return actions;
    }
    for c in &spec.containers {
        let action = match rt.current(&c.name) {
            None => ContainerAction::Start {
                restart_count: rt.next_restart_count(&c.name),
            },
            Some(i) if i.running() => match unhealthy(c, i, health) {
                Some(reason) => ContainerAction::Kill { reason },
                None => ContainerAction::Running,
            },
            Some(i) if i.exited() => {
                let restart = match policy {
                    "Always" => true,
                    "OnFailure" => i.status.exit_code != 0,
                    _ => false,
                };
                if restart {
                    ContainerAction::Restart {
                        restart_count: i.restart_count(),
                    }
                } else {
                    ContainerAction::Done
                }
            }
            Some(i) => ContainerAction::Remove {
                id: i.status.id.clone(),
            },
        };
        actions.app.push((c.name.clone(), action));
    }
    actions.ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .filter(|e| rt.current(&e.name).is_none())
        .map(|e| e.name.clone())
        .collect();
    actions
}

/// A regular init container: (its action, whether the next one may go on).
fn init_step(
    c: &Container,
    rt: &PodRuntime,
    policy: &str,
    failed: &mut bool,
) -> (Option<ContainerAction>, bool) {
    match rt.current(&c.name) {
        None => (
            Some(ContainerAction::Start {
                restart_count: rt.next_restart_count(&c.name),
            }),
            false,
        ),
        Some(i) if i.exited() && i.status.exit_code == 0 => (None, true),
        Some(i) if i.exited() => {
            if policy == "Never" {
                *failed = true;
                (None, false)
            } else {
                (
                    Some(ContainerAction::Restart {
                        restart_count: i.restart_count(),
                    }),
                    false,
                )
            }
        }
        Some(_) => (None, false),
    }
}

/// A sidecar: started in order, restarted always; the next init container waits until
/// it runs and its startup probe passed.
fn sidecar_step(
    c: &Container,
    rt: &PodRuntime,
    health: &dyn Health,
) -> (Option<ContainerAction>, bool) {
    match rt.current(&c.name) {
        None => (
            Some(ContainerAction::Start {
                restart_count: rt.next_restart_count(&c.name),
            }),
            false,
        ),
        Some(i) if i.running() => {
            if let Some(reason) = unhealthy(c, i, health) {
                return (Some(ContainerAction::Kill { reason }), false);
            }
            let started = c.startup_probe.is_none()
                || health.probe(&c.name, Kind::Startup, &i.status.id) == Some(true);
            (None, started)
        }
        Some(i) if i.exited() => (
            Some(ContainerAction::Restart {
                restart_count: i.restart_count(),
            }),
            false,
        ),
        Some(_) => (None, false),
    }
}

/// Why a running container must be restarted, if it must (upstream's messages).
fn unhealthy(c: &Container, i: &Instance, health: &dyn Health) -> Option<String> {
    let id = &i.status.id;
    if health.probe(&c.name, Kind::Liveness, id) == Some(false) {
        return Some(format!(
            "Container {} failed liveness probe, will be restarted",
            c.name
        ));
    }
    if c.startup_probe.is_some()
        && health.probe(&c.name, Kind::Startup, id) == Some(false)
        && health.startup_window_over(c, i)
    {
        return Some(format!(
            "Container {} failed startup probe, will be restarted",
            c.name
        ));
    }
    let changed = i
        .status
        .annotations
        .get(crate::cri::CONTAINER_HASH)
        .is_some_and(|h| *h != container_hash(c));
    changed.then(|| format!("Container {} definition changed, will be restarted", c.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::api;
    use ContainerAction::*;
    use std::collections::HashMap;

    /// Probe results by (container, kind); every startup window is over.
    #[derive(Default)]
    struct Probes(HashMap<(&'static str, Kind), bool>);

    impl Health for Probes {
        fn probe(&self, container: &str, kind: Kind, _: &str) -> Option<bool> {
            self.0
                .iter()
                .find(|((c, k), _)| *c == container && *k == kind)
                .map(|(_, v)| *v)
        }
        fn startup_window_over(&self, _: &Container, _: &Instance) -> bool {
            true
        }
    }

    fn container(name: &str) -> Container {
        Container {
            name: name.into(),
            image: Some("busybox".into()),
            ..Default::default()
        }
    }

    fn sidecar(name: &str, startup_probe: bool) -> Container {
        Container {
            restart_policy: Some("Always".into()),
            startup_probe: startup_probe.then(Default::default),
            ..container(name)
        }
    }

    fn pod(policy: &str, init: Vec<Container>, app: Vec<Container>) -> Pod {
        Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                restart_policy: Some(policy.into()),
                init_containers: Some(init),
                containers: app,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A container of this pod in the ready sandbox: ("running" | "exited:<code>" |
    /// "created"), with a restart count and the hash of `spec` (None: a stale hash).
    fn instance(name: &str, state: &str, restarts: i32, spec: Option<&Container>) -> Instance {
        let (state, code) = match state.split_once(':') {
            Some(("exited", code)) => (api::ContainerState::ContainerExited, code.parse().unwrap()),
            _ if state == "running" => (api::ContainerState::ContainerRunning, 0),
            _ => (api::ContainerState::ContainerCreated, 0),
        };
        let mut annotations =
            HashMap::from([(crate::cri::RESTART_COUNT.to_string(), restarts.to_string())]);
        annotations.insert(
            crate::cri::CONTAINER_HASH.to_string(),
            spec.map_or("stale".into(), container_hash),
        );
        Instance {
            sandbox: "sb".into(),
            status: api::ContainerStatus {
                id: format!("id-{name}"),
                metadata: Some(api::ContainerMetadata {
                    name: name.into(),
                    attempt: restarts as u32,
                }),
                state: state as i32,
                exit_code: code,
                annotations,
                ..Default::default()
            },
        }
    }

    fn runtime(ready: bool, containers: Vec<Instance>) -> PodRuntime {
        PodRuntime {
            sandboxes: vec![api::PodSandboxStatus {
                id: "sb".into(),
                state: if ready {
                    api::PodSandboxState::SandboxReady
                } else {
                    api::PodSandboxState::SandboxNotready
                } as i32,
                ..Default::default()
            }],
            containers,
        }
    }

    fn named(v: &[(&str, ContainerAction)]) -> Vec<(String, ContainerAction)> {
        v.iter().map(|(n, a)| (n.to_string(), a.clone())).collect()
    }

    #[test]
    fn decides_as_upstreams_compute_pod_actions() {
        let (init, app, side) = (container("init"), container("app"), sidecar("side", true));
        struct Case {
            what: &'static str,
            pod: Pod,
            rt: PodRuntime,
            probes: Probes,
            init: Vec<(&'static str, ContainerAction)>,
            init_done: bool,
            init_failed: bool,
            app: Vec<(&'static str, ContainerAction)>,
        }
        let base = |what, pod, rt| Case {
            what,
            pod,
            rt,
            probes: Probes::default(),
            init: vec![],
            init_done: true,
            init_failed: false,
            app: vec![],
        };
        let cases = vec![
            Case {
                init: vec![("init", Start { restart_count: 0 })],
                init_done: false,
                ..base(
                    "the first init container starts; nothing else",
                    pod("Always", vec![init.clone()], vec![app.clone()]),
                    runtime(true, vec![]),
                )
            },
            Case {
                app: vec![("app", Start { restart_count: 0 })],
                ..base(
                    "init done: app starts",
                    pod("Always", vec![init.clone()], vec![app.clone()]),
                    runtime(true, vec![instance("init", "exited:0", 0, Some(&init))]),
                )
            },
            Case {
                init: vec![("init", Restart { restart_count: 2 })],
                init_done: false,
                ..base(
                    "a failed init container restarts under OnFailure",
                    pod("OnFailure", vec![init.clone()], vec![app.clone()]),
                    runtime(true, vec![instance("init", "exited:1", 2, Some(&init))]),
                )
            },
            Case {
                init_done: false,
                init_failed: true,
                ..base(
                    "a failed init container fails the pod under Never",
                    pod("Never", vec![init.clone()], vec![app.clone()]),
                    runtime(true, vec![instance("init", "exited:1", 0, Some(&init))]),
                )
            },
            Case {
                init_done: false,
                ..base(
                    "a sidecar whose startup probe has not passed holds the next one",
                    pod(
                        "Always",
                        vec![side.clone(), init.clone()],
                        vec![app.clone()],
                    ),
                    runtime(true, vec![instance("side", "running", 0, Some(&side))]),
                )
            },
            Case {
                probes: Probes(HashMap::from([(("side", Kind::Startup), true)])),
                init: vec![("init", Start { restart_count: 0 })],
                init_done: false,
                ..base(
                    "a started sidecar lets the next init container go",
                    pod(
                        "Always",
                        vec![side.clone(), init.clone()],
                        vec![app.clone()],
                    ),
                    runtime(true, vec![instance("side", "running", 0, Some(&side))]),
                )
            },
            Case {
                init: vec![("side", Restart { restart_count: 3 })],
                init_done: false,
                ..base(
                    "an exited sidecar restarts whatever the pod's policy",
                    pod("Never", vec![side.clone()], vec![app.clone()]),
                    runtime(true, vec![instance("side", "exited:0", 3, Some(&side))]),
                )
            },
            Case {
                app: vec![("app", Restart { restart_count: 1 })],
                ..base(
                    "Always restarts a succeeded container",
                    pod("Always", vec![], vec![app.clone()]),
                    runtime(true, vec![instance("app", "exited:0", 1, Some(&app))]),
                )
            },
            Case {
                app: vec![("app", Done)],
                ..base(
                    "OnFailure leaves a succeeded container",
                    pod("OnFailure", vec![], vec![app.clone()]),
                    runtime(true, vec![instance("app", "exited:0", 0, Some(&app))]),
                )
            },
            Case {
                app: vec![("app", Done)],
                ..base(
                    "Never leaves a failed container",
                    pod("Never", vec![], vec![app.clone()]),
                    runtime(true, vec![instance("app", "exited:2", 0, Some(&app))]),
                )
            },
            Case {
                probes: Probes(HashMap::from([(("app", Kind::Liveness), false)])),
                app: vec![(
                    "app",
                    Kill {
                        reason: "Container app failed liveness probe, will be restarted".into(),
                    },
                )],
                ..base(
                    "a failed liveness probe kills",
                    pod("Always", vec![], vec![app.clone()]),
                    runtime(true, vec![instance("app", "running", 0, Some(&app))]),
                )
            },
            Case {
                app: vec![(
                    "app",
                    Kill {
                        reason: "Container app definition changed, will be restarted".into(),
                    },
                )],
                ..base(
                    "a changed definition (hash) kills",
                    pod("Always", vec![], vec![app.clone()]),
                    runtime(true, vec![instance("app", "running", 0, None)]),
                )
            },
            Case {
                app: vec![("app", Running)],
                ..base(
                    "a healthy container runs on",
                    pod("Always", vec![], vec![app.clone()]),
                    runtime(true, vec![instance("app", "running", 0, Some(&app))]),
                )
            },
            Case {
                app: vec![(
                    "app",
                    Remove {
                        id: "id-app".into(),
                    },
                )],
                ..base(
                    "a created, never started container is removed",
                    pod("Always", vec![], vec![app.clone()]),
                    runtime(true, vec![instance("app", "created", 0, Some(&app))]),
                )
            },
        ];
        for c in cases {
            let got = compute_pod_actions(&c.pod, &c.rt, &c.probes);
            let want = PodActions {
                create_sandbox: false,
                init: named(&c.init),
                init_failed: c.init_failed,
                init_done: c.init_done,
                app: named(&c.app),
                ephemeral: vec![],
            };
            assert_eq!(got, want, "{}", c.what);
        }
        let no_sandbox = compute_pod_actions(
            &pod("Always", vec![], vec![app.clone()]),
            &runtime(false, vec![instance("app", "running", 0, Some(&app))]),
            &Probes::default(),
        );
        assert!(no_sandbox.create_sandbox && no_sandbox.app.is_empty());
    }
}
