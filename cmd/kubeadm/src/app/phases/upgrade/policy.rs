//! Which version a cluster may be moved to (upstream `phases/upgrade/policy.go`
//! `EnforceVersionPolicies`): errors that nothing lifts and errors `--force` lifts,
//! decided from the cluster's, kubeadm's, the kubelets' and the target's versions.

use std::fmt;

/// The lowest control-plane version this kubeadm manages (upstream
/// `constants.MinimumControlPlaneVersion`: one minor release back).
pub const MINIMUM_CONTROL_PLANE: Version = Version {
    major: 1,
    minor: 34,
    patch: 0,
    pre: String::new(),
};

/// This kubeadm's own version.
pub const KUBEADM_VERSION: &str = "v1.35.0";

/// A Kubernetes release version: `v1.35.1`, `1.35.1`, `v1.36.0-rc.1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// The pre-release part after `-` (empty for a release).
    pub pre: String,
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, String> {
        let bad = || format!("{s:?} is not a valid semantic version (e.g. v1.35.1)");
        let core_pre = s.strip_prefix('v').unwrap_or(s);
        let core_pre = core_pre.split('+').next().unwrap_or_default();
        let (core, pre) = core_pre.split_once('-').unwrap_or((core_pre, ""));
        let parts: Vec<u64> = core
            .split('.')
            .map(|p| p.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [major, minor, patch] = parts[..] else {
            return Err(bad());
        };
        Ok(Version {
            major,
            minor,
            patch,
            pre: pre.to_string(),
        })
    }

    /// Semantic order: a pre-release sorts before its release.
    fn less_than(&self, o: &Version) -> bool {
        let a = (self.major, self.minor, self.patch);
        let b = (o.major, o.minor, o.patch);
        if a != b {
            return a < b;
        }
        match (self.pre.is_empty(), o.pre.is_empty()) {
            (false, true) => true,
            (false, false) => self.pre < o.pre,
            _ => false,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

/// What stands against an upgrade: `mandatory` errors always stop it, `skippable` ones
/// only without `--force`.
#[derive(Debug, Default, PartialEq)]
pub struct SkewErrors {
    pub mandatory: Vec<String>,
    pub skippable: Vec<String>,
}

impl SkewErrors {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.mandatory.is_empty() && self.skippable.is_empty()
    }

    /// Upstream's message for errors that stop the upgrade; None when `force` lets it go.
    pub fn blocking(&self, force: bool) -> Option<String> {
        let list = |v: &[String]| v.iter().map(|e| format!("\t- {e}\n")).collect::<String>();
        if !self.mandatory.is_empty() {
            return Some(format!(
                "the version argument is invalid due to these fatal errors:\n\n{}\nPlease fix the misalignments highlighted above and try upgrading again",
                list(&self.mandatory)
            ));
        }
        if !self.skippable.is_empty() && !force {
            return Some(format!(
                "the version argument is invalid due to these errors:\n\n{}\nCan be bypassed if you pass the --force flag",
                list(&self.skippable)
            ));
        }
        None
    }
}

/// Upstream's `detectUnstableVersionError`: a pre-release the `--allow-*-upgrades` flags
/// do not allow.
pub fn unstable_not_allowed(
    new: &Version,
    allow_experimental: bool,
    allow_rc: bool,
) -> Option<String> {
    let rc_allowed = new.pre.starts_with("rc") && allow_rc;
    (!(new.pre.is_empty() || allow_experimental || rc_allowed)).then(|| format!(
        "Specified version to upgrade to \"{new}\" is an unstable version and such upgrades weren't allowed via setting the --allow-*-upgrades flags"
    ))
}

/// Upstream's version skew policy for moving a cluster at `cluster` to `new` with this
/// kubeadm at `kubeadm`, its kubelets at `kubelets`.
pub fn enforce(
    cluster: &Version,
    kubeadm: &Version,
    kubelets: &[Version],
    new: &Version,
    allow_experimental: bool,
    allow_rc: bool,
) -> SkewErrors {
    let mut e = SkewErrors::default();
    let released = new.pre.is_empty();
    let by_release = |e: &mut SkewErrors, msg: String| match released {
        true => e.mandatory.push(msg),
        false => e.skippable.push(msg),
    };
    if !MINIMUM_CONTROL_PLANE.less_than(new) {
        e.mandatory.push(format!(
            "Specified version to upgrade to \"{new}\" is equal to or lower than the minimum supported version \"{cluster}\". Please specify a higher version to upgrade to"
        ));
    }
    if new.minor > cluster.minor + 1 {
        by_release(
            &mut e,
            format!(
                "Specified version to upgrade to \"{new}\" is too high; kubeadm can upgrade only 1 minor version at a time"
            ),
        );
    }
    if new.minor + 1 < cluster.minor {
        by_release(
            &mut e,
            format!(
                "Specified version to downgrade to \"{new}\" is too low; kubeadm can downgrade only 1 minor version at a time"
            ),
        );
    }
    if kubeadm.less_than(new) {
        if new.minor > kubeadm.minor {
            by_release(
                &mut e,
                format!(
                    "Specified version to upgrade to \"{new}\" is at least one minor release higher than the kubeadm minor release ({} > {}). Such an upgrade is not supported",
                    new.minor, kubeadm.minor
                ),
            );
        } else {
            e.skippable.push(format!(
                "Specified version to upgrade to \"{new}\" is higher than the kubeadm version \"{kubeadm}\". Upgrade kubeadm first using the tool you used to install kubeadm"
            ));
        }
    }
    if kubeadm.major > new.major || kubeadm.minor > new.minor {
        e.skippable.push(format!(
            "Kubeadm version {kubeadm} can only be used to upgrade to Kubernetes version {}.{}",
            kubeadm.major, kubeadm.minor
        ));
    }
    e.skippable
        .extend(unstable_not_allowed(new, allow_experimental, allow_rc));
    let mut too_old: Vec<String> = kubelets
        .iter()
        .filter(|k| new.minor > k.minor + 1)
        .map(|k| k.to_string())
        .collect();
    too_old.sort();
    too_old.dedup();
    if !too_old.is_empty() {
        e.skippable.push(format!(
            "There are kubelets in this cluster that are too old that have these versions [{}]",
            too_old.join(" ")
        ));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_parse_and_print() {
        assert_eq!(v("1.35.1"), v("v1.35.1"));
        assert_eq!(v("v1.36.0-rc.1").to_string(), "v1.36.0-rc.1");
        assert!(Version::parse("v1.35").is_err());
        assert!(Version::parse("latest").is_err());
        assert!(v("v1.36.0-rc.1").less_than(&v("v1.36.0")));
        assert!(v("v1.35.9").less_than(&v("v1.36.0-alpha.0")));
    }

    #[test]
    fn upgrade_policies() {
        let k = v("v1.35.0");
        let ok = |cluster: &str, new: &str| {
            enforce(&v(cluster), &k, &[v(cluster)], &v(new), false, false)
        };
        // A patch upgrade, a minor one, and the same version again.
        assert!(ok("v1.34.2", "v1.35.0").is_empty());
        assert!(ok("v1.35.0", "v1.35.0").is_empty());
        // Above kubeadm's own patch: --force lifts it.
        let e = ok("v1.35.0", "v1.35.1");
        assert!(e.mandatory.is_empty());
        assert_eq!(
            e.skippable,
            [
                "Specified version to upgrade to \"v1.35.1\" is higher than the kubeadm version \"v1.35.0\". Upgrade kubeadm first using the tool you used to install kubeadm"
            ]
        );
        assert!(
            e.blocking(false)
                .unwrap()
                .contains("Can be bypassed if you pass the --force flag")
        );
        assert_eq!(e.blocking(true), None);
        // A newer minor than kubeadm, or two minors at once: nothing lifts these.
        let e = ok("v1.35.0", "v1.36.0");
        assert_eq!(e.mandatory.len(), 1, "{e:?}");
        assert!(e.blocking(true).is_some());
        let e = enforce(
            &v("v1.34.0"),
            &v("v1.36.0"),
            &[],
            &v("v1.36.0"),
            false,
            false,
        );
        assert!(
            e.mandatory[0]
                .contains("is too high; kubeadm can upgrade only 1 minor version at a time")
        );
        // Below the minimum.
        assert!(!ok("v1.35.0", "v1.34.0").mandatory.is_empty());
        // Unstable versions need --allow-*-upgrades (or --force).
        let e = ok("v1.35.0", "v1.35.0-rc.1");
        assert!(
            e.skippable
                .iter()
                .any(|m| m.contains("is an unstable version"))
        );
        let e = enforce(&v("v1.35.0"), &k, &[], &v("v1.35.0-rc.1"), false, true);
        assert!(e.is_empty(), "{e:?}");
        // Kubelets two minors behind the target.
        let e = enforce(
            &v("v1.34.0"),
            &k,
            &[v("v1.33.4"), v("v1.34.0")],
            &v("v1.35.0"),
            false,
            false,
        );
        assert_eq!(
            e.skippable,
            [
                "There are kubelets in this cluster that are too old that have these versions [v1.33.4]"
            ]
        );
    }
}
