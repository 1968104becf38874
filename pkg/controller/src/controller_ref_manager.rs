//! Which objects a controller claims (upstream `pkg/controller/controller_ref_manager.go`):
//! its own that still match its selector, orphans that match and that it adopts, and its
//! own that stopped matching and that it releases. The decision is pure (`claim`); the
//! adoption and the release are strategic-merge patches preconditioned on the object's
//! UID, as upstream's `ownerRefControllerPatch`.

use crate::controller_utils::controller_of;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams};

/// What a controller does with one object its informer holds.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Claim {
    /// Ours, and it still matches.
    Owned,
    /// An orphan that matches: take it.
    Adopt,
    /// Ours, but it no longer matches: let it go.
    Release,
    /// Someone else's, or not for us to touch now.
    Ignore,
}

/// Upstream's `ClaimObject`: `owner` is the controller (its UID, namespace and deletion
/// state), `matches` whether its selector selects the object.
pub fn claim(obj: &ObjectMeta, owner: &ObjectMeta, matches: bool) -> Claim {
    let owner_deleting = owner.deletion_timestamp.is_some();
    match controller_of(obj) {
        Some(r) if Some(&r.uid) == owner.uid.as_ref() => {
            if matches {
                Claim::Owned
            } else if owner_deleting {
                // A controller being deleted neither adopts nor releases.
                Claim::Ignore
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None if owner_deleting
            || !matches
            || obj.deletion_timestamp.is_some()
            || obj.namespace != owner.namespace =>
        {
            Claim::Ignore
        }
        None => Claim::Adopt,
    }
}

/// Upstream's `ClaimObjects`: of `objects`, those `owner` controls once the orphans
/// `matches` accepts are adopted and its own it no longer accepts are released.
/// `recheck` runs once, before the first adoption (see [`recheck_owner`]).
pub async fn claim_all<K, Fut>(
    objects: impl IntoIterator<Item = std::sync::Arc<K>>,
    owner: &ObjectMeta,
    owner_ref: &OwnerReference,
    api: &Api<K>,
    matches: impl Fn(&K) -> bool,
    recheck: impl FnOnce() -> Fut,
) -> Result<Vec<std::sync::Arc<K>>, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    Fut: Future<Output = Result<(), String>>,
{
    let uid = owner.uid.as_deref().unwrap_or_default();
    let mut recheck = Some(recheck);
    let mut owned = Vec::new();
    for obj in objects {
        match claim(obj.meta(), owner, matches(&obj)) {
            Claim::Owned => owned.push(obj),
            Claim::Release => release(api, obj.meta(), uid).await?,
            Claim::Adopt => {
                if let Some(recheck) = recheck.take() {
                    recheck().await?;
                }
                if adopt(api, obj.meta(), owner_ref).await? {
                    owned.push(obj);
                }
            }
            Claim::Ignore => {}
        }
    }
    Ok(owned)
}

/// Adopts `obj` under `owner` (marked controller and blocking deletion). `Ok(false)`
/// when the object is gone or has changed identity, as upstream ignores NotFound.
pub async fn adopt<K>(
    api: &Api<K>,
    obj: &ObjectMeta,
    owner: &OwnerReference,
) -> Result<bool, String>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let owner = OwnerReference {
        controller: Some(true),
        block_owner_deletion: Some(true),
        ..owner.clone()
    };
    let patch = serde_json::json!({"metadata": {"ownerReferences": [owner], "uid": obj.uid}});
    let name = obj.name.as_deref().unwrap_or_default();
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(false),
        Err(e) => Err(format!("adopting {name}: {e}")),
    }
}

/// Removes the owner reference with `owner_uid` from `obj`. A gone object, or one whose
/// reference is already gone (422), is released already.
pub async fn release<K>(api: &Api<K>, obj: &ObjectMeta, owner_uid: &str) -> Result<(), String>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": obj.uid}});
    let name = obj.name.as_deref().unwrap_or_default();
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 || e.code == 409 => Ok(()),
        Err(e) => Err(format!("releasing {name}: {e}")),
    }
}

/// Upstream's `RecheckDeletionTimestamp`: before the first adoption of a sync, a fresh
/// read of the controller, so that one deleted (or re-created under the same name) since
/// the cache saw it adopts nothing.
pub async fn recheck_owner<K>(api: &Api<K>, cached: &ObjectMeta) -> Result<(), String>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug + kube::Resource,
{
    let name = cached.name.as_deref().unwrap_or_default();
    let fresh = api.get(name).await.map_err(|e| e.to_string())?;
    let meta = fresh.meta();
    let ns = cached.namespace.as_deref().unwrap_or_default();
    if meta.uid != cached.uid {
        return Err(format!(
            "original {ns}/{name} is gone: got uid {}, wanted {}",
            meta.uid.as_deref().unwrap_or_default(),
            cached.uid.as_deref().unwrap_or_default()
        ));
    }
    if let Some(at) = &meta.deletion_timestamp {
        return Err(format!("{ns}/{name} has just been deleted at {}", at.0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn meta(ns: &str, uid: &str, controller: Option<&str>, deleting: bool) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(ns.into()),
            uid: Some(uid.into()),
            owner_references: controller.map(|c| {
                vec![OwnerReference {
                    uid: c.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            }),
            deletion_timestamp: deleting.then(|| Time(Default::default())),
            ..Default::default()
        }
    }

    #[test]
    fn claims_as_upstream() {
        let owner = meta("a", "o", None, false);
        let deleting_owner = meta("a", "o", None, true);
        let cases = [
            // (object, owner, matches, expected)
            (meta("a", "x", Some("o"), false), &owner, true, Claim::Owned),
            (
                meta("a", "x", Some("o"), false),
                &owner,
                false,
                Claim::Release,
            ),
            (
                meta("a", "x", Some("o"), false),
                &deleting_owner,
                false,
                Claim::Ignore,
            ),
            (
                meta("a", "x", Some("o"), false),
                &deleting_owner,
                true,
                Claim::Owned,
            ),
            (
                meta("a", "x", Some("other"), false),
                &owner,
                true,
                Claim::Ignore,
            ),
            (meta("a", "x", None, false), &owner, true, Claim::Adopt),
            (meta("a", "x", None, false), &owner, false, Claim::Ignore),
            (meta("a", "x", None, true), &owner, true, Claim::Ignore),
            (
                meta("a", "x", None, false),
                &deleting_owner,
                true,
                Claim::Ignore,
            ),
            (meta("b", "x", None, false), &owner, true, Claim::Ignore),
        ];
        for (i, (obj, owner, matches, want)) in cases.iter().enumerate() {
            assert_eq!(claim(obj, owner, *matches), *want, "case {i}");
        }
    }
}
