//! Group/version/kind and group/resource identities (upstream `pkg/runtime/schema`).

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl GroupVersionKind {
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// The `apiVersion` string: `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// A resource qualified by its group, printed as upstream does in messages:
/// `pods` for the core group, `deployments.apps` otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.into(),
            resource: resource.into(),
        }
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// Upstream's `version.CompareKubeAwareVersionStrings` as a sort key: GA versions first
/// (highest major first), then betas, then alphas, then anything else alphabetically.
pub fn kube_version_priority(v: &str) -> (u8, i64, i64, String) {
    let parse = |s: &str| -> Option<(i64, u8, i64)> {
        let rest = s.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: i64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 0, 0));
        }
        let (level, n) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (2, n)
        } else {
            return None;
        };
        Some((major, level, n.parse().ok()?))
    };
    match parse(v) {
        Some((major, level, minor)) => (level, -major, -minor, String::new()),
        None => (3, 0, 0, v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::kube_version_priority;

    #[test]
    fn kube_aware_version_order() {
        let mut vs = vec![
            "v1beta1",
            "foo",
            "v1",
            "v2",
            "v1alpha1",
            "v11alpha2",
            "v10beta3",
            "v10",
        ];
        vs.sort_by_key(|v| kube_version_priority(v));
        assert_eq!(
            vs,
            [
                "v10",
                "v2",
                "v1",
                "v10beta3",
                "v1beta1",
                "v11alpha2",
                "v1alpha1",
                "foo"
            ]
        );
    }
}
