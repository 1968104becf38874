//! What to do with a dependent, from the state of its owners (upstream's
//! `attemptToDeleteItem` in `garbagecollector.go`): pure, so the rules are table-tested.

use kube::api::PropagationPolicy;

/// One owner of a dependent, as the collector found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists and is not waiting for its dependents to go.
    Solid,
    /// Gone (or replaced by another object of the same name).
    Dangling,
    /// Being deleted in the foreground: waits for its dependents.
    Waiting,
}

#[derive(Debug, PartialEq)]
pub enum Decision {
    Nothing,
    /// The dependent stays (a solid owner keeps it) but no longer references these
    /// owners, so a waiting owner is no longer blocked by it.
    DropOwners(Vec<String>),
    Delete(PropagationPolicy),
}

/// `owners`: (uid, state) of each owner reference; `has_dependents`: whether the
/// dependent owns objects itself; `finalizers`: its own.
pub fn decide(
    owners: &[(String, OwnerState)],
    has_dependents: bool,
    finalizers: &[String],
) -> Decision {
    let stale: Vec<String> = owners
        .iter()
        .filter(|(_, s)| *s != OwnerState::Solid)
        .map(|(uid, _)| uid.clone())
        .collect();
    if owners.iter().any(|(_, s)| *s == OwnerState::Solid) {
        return match stale.is_empty() {
            true => Decision::Nothing,
            false => Decision::DropOwners(stale),
        };
    }
    if owners.iter().any(|(_, s)| *s == OwnerState::Waiting) && has_dependents {
        return Decision::Delete(PropagationPolicy::Foreground);
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    Decision::Delete(if has(super::ORPHAN) {
        PropagationPolicy::Orphan
    } else if has(super::FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    })
}

#[cfg(test)]
mod tests {
    use super::OwnerState::*;
    use super::*;

    fn owners(states: &[OwnerState]) -> Vec<(String, OwnerState)> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("o{i}"), *s))
            .collect()
    }

    /// (what, owner states, has dependents, finalizers, expected decision)
    type Case<'a> = (&'a str, Vec<OwnerState>, bool, &'a Vec<String>, Decision);

    #[test]
    fn table() {
        let none: Vec<String> = Vec::new();
        let fg = vec![super::super::FOREGROUND.to_string()];
        let orphan = vec![super::super::ORPHAN.to_string()];
        let cases: Vec<Case> = vec![
            (
                "all owners solid",
                vec![Solid, Solid],
                false,
                &none,
                Decision::Nothing,
            ),
            (
                "a solid owner keeps it; the waiting owner's reference goes",
                vec![Waiting, Solid],
                false,
                &none,
                Decision::DropOwners(vec!["o0".into()]),
            ),
            (
                "a solid owner keeps it; gone owners' references go",
                vec![Dangling, Solid, Waiting],
                true,
                &none,
                Decision::DropOwners(vec!["o0".into(), "o2".into()]),
            ),
            (
                "only a waiting owner, no dependents: background",
                vec![Waiting],
                false,
                &none,
                Decision::Delete(PropagationPolicy::Background),
            ),
            (
                "a waiting owner and dependents of its own: foreground",
                vec![Waiting, Dangling],
                true,
                &none,
                Decision::Delete(PropagationPolicy::Foreground),
            ),
            (
                "all gone: its own orphan finalizer is honoured",
                vec![Dangling],
                true,
                &orphan,
                Decision::Delete(PropagationPolicy::Orphan),
            ),
            (
                "all gone: its own foreground finalizer is honoured",
                vec![Dangling],
                false,
                &fg,
                Decision::Delete(PropagationPolicy::Foreground),
            ),
        ];
        for (what, states, deps, fins, want) in cases {
            assert_eq!(decide(&owners(&states), deps, fins), want, "{what}");
        }
    }
}
