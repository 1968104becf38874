//! Controllers as descriptors (upstream `cmd/kube-controller-manager/app/
//! controller_descriptor.go`): each names itself, its aliases for `--controllers`,
//! whether it is on by default, and how it is built from the shared context. The
//! per-group files (`apps.rs`, `batch.rs` …) hold the constructors; `main.rs` only
//! loops over the table.

use crate::flags::Flags;
use client_go::events::Recorder;
use client_go::flowcontrol::RateLimiter;
use client_go::informer_factory::SharedInformerFactory;
use client_go::reconciler::{Reconciler, run_workers};
use futures::future::BoxFuture;
use std::sync::Arc;

/// A started controller's work, run until the process stops.
pub type Running = BoxFuture<'static, ()>;

/// What a constructor gives back: the controller's work, or None when its
/// configuration says it cannot run (logged by the constructor, as upstream).
pub type Started = Result<Option<Running>, String>;

pub type Constructor = for<'a> fn(&'a ControllerContext) -> BoxFuture<'a, Started>;

pub struct ControllerDescriptor {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub enabled_by_default: bool,
    /// None for controllers upstream has and this repository does not build yet: they
    /// are accepted in `--controllers` and reported as skipped.
    pub constructor: Option<Constructor>,
}

impl ControllerDescriptor {
    /// A controller on by default.
    pub const fn new(
        name: &'static str,
        aliases: &'static [&'static str],
        constructor: Constructor,
    ) -> Self {
        ControllerDescriptor {
            name,
            aliases,
            enabled_by_default: true,
            constructor: Some(constructor),
        }
    }

    /// Only started when `--controllers` names it.
    pub const fn off_by_default(mut self) -> Self {
        self.enabled_by_default = false;
        self
    }
}

/// What every constructor builds from (upstream's `ControllerContext`).
pub struct ControllerContext {
    pub flags: Flags,
    /// The controller-manager's own credentials.
    pub client: kube::Client,
    /// Per-controller credentials with `--use-service-account-credentials`.
    pub builder: client_go::clientbuilder::ClientBuilder,
    pub informers: SharedInformerFactory,
    pub root_ca: Option<String>,
    pub identity: String,
    pub limiter: Arc<RateLimiter>,
    /// The controllers `--controllers` selects (canonical names).
    pub enabled: Vec<&'static str>,
}

impl ControllerContext {
    /// The client a controller acts with (its service account's when asked for).
    pub async fn client_for(&self, account: &str) -> Result<kube::Client, String> {
        self.builder.client(account).await
    }

    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.contains(&name)
    }

    /// An events recorder reporting as `component`.
    pub fn recorder(&self, component: &str) -> Arc<Recorder> {
        Recorder::new(
            self.client.clone(),
            component,
            &self.identity,
            self.limiter.clone(),
        )
    }
}

/// A queue-driven controller's work: its workers.
pub fn workers<R: Reconciler>(controller: Arc<R>, workers: usize) -> Started {
    Ok(Some(Box::pin(run_workers(controller, workers))))
}

/// Any other controller's work (its own loop).
pub fn running(f: impl Future<Output = ()> + Send + 'static) -> Started {
    Ok(Some(Box::pin(f)))
}

/// Every controller upstream knows, in the order they are started.
pub fn all() -> Vec<ControllerDescriptor> {
    [
        crate::apps::descriptors(),
        crate::discovery::descriptors(),
        crate::core::descriptors(),
        crate::batch::descriptors(),
        crate::policy::descriptors(),
        crate::rbac::descriptors(),
        crate::certificates::descriptors(),
        crate::storage::descriptors(),
        crate::bootstrap::descriptors(),
        crate::autoscaling::descriptors(),
        not_built(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Upstream's controllers this repository does not build yet.
fn not_built() -> Vec<ControllerDescriptor> {
    const NOT_BUILT: [(&str, &[&str]); 4] = [
        (
            "legacy-serviceaccount-token-cleaner-controller",
            &["legacy-service-account-token-cleaner"],
        ),
        ("resourceclaim-controller", &["resourceclaim"]),
        ("service-cidr-controller", &["service-cidr"]),
        (
            "validatingadmissionpolicy-status-controller",
            &["validatingadmissionpolicy-status"],
        ),
    ];
    NOT_BUILT
        .into_iter()
        .map(|(name, aliases)| ControllerDescriptor {
            name,
            aliases,
            enabled_by_default: true,
            constructor: None,
        })
        .collect()
}

/// Upstream's `--controllers` semantics, by canonical name or alias: `*` is every
/// controller on by default, `foo` enables one, `-foo` disables one.
pub fn enabled<'a>(
    all: &'a [ControllerDescriptor],
    list: &[String],
) -> Result<Vec<&'a ControllerDescriptor>, String> {
    let is = |d: &ControllerDescriptor, n: &str| d.name == n || d.aliases.contains(&n);
    for item in list {
        let name = item.trim_start_matches('-');
        if name != "*" && !all.iter().any(|d| is(d, name)) {
            return Err(format!("{name:?} is not in the list of known controllers"));
        }
    }
    let says = |d: &ControllerDescriptor, neg: bool| {
        list.iter().any(|i| match i.strip_prefix('-') {
            Some(n) => neg && is(d, n),
            None => !neg && is(d, i),
        })
    };
    let star = list.iter().any(|i| i == "*");
    Ok(all
        .iter()
        .filter(|d| says(d, false) || (star && d.enabled_by_default && !says(d, true)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_flag_follows_upstream() {
        let all = all();
        let names = |s: &str| -> Result<Vec<&str>, String> {
            let list: Vec<String> = s.split(',').map(String::from).collect();
            Ok(enabled(&all, &list)?.iter().map(|d| d.name).collect())
        };
        let every = names("*").unwrap();
        assert!(every.contains(&"replicaset-controller"));
        assert!(
            !every.contains(&"bootstrap-signer-controller"),
            "off by default"
        );
        let some = names("*,-replicaset,bootstrapsigner").unwrap();
        assert!(!some.contains(&"replicaset-controller"));
        assert!(some.contains(&"bootstrap-signer-controller"));
        assert_eq!(
            names("serviceaccount-controller").unwrap(),
            ["serviceaccount-controller"]
        );
        assert_eq!(
            names("*,-nope").unwrap_err(),
            "\"nope\" is not in the list of known controllers"
        );
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let all = all();
        let mut seen = std::collections::HashSet::new();
        for d in &all {
            assert!(seen.insert(d.name), "{}", d.name);
            for a in d.aliases {
                assert!(*a == d.name || seen.insert(a), "{a}");
            }
        }
        assert_eq!(all.len(), 40, "upstream v1.35's controllers");
    }
}
