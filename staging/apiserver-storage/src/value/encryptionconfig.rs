//! `--encryption-provider-config`: an `EncryptionConfiguration`
//! (`apiserver.config.k8s.io/v1`) naming, per list of resources, the providers that
//! write and read them (upstream `server/options/encryptionconfig`).

use super::{Key, Provider, Transformer};
use base64::Engine;
use serde_json::Value;

/// One `resources[]` entry: the resources it names and their providers.
pub struct Rule {
    pub resources: Vec<String>,
    pub transformer: Transformer,
}

pub struct EncryptionConfig {
    pub rules: Vec<Rule>,
}

fn keys(kind: &str, spec: &Value, sizes: &[usize]) -> Result<Vec<Key>, String> {
    let list = spec["keys"]
        .as_array()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            format!("{kind}: keys: Required value: at least one key must be specified")
        })?;
    list.iter()
        .enumerate()
        .map(|(i, k)| {
            let name = k["name"].as_str().filter(|n| !n.is_empty()).ok_or_else(|| {
                format!("{kind}.keys[{i}].name: Required value: key name must be specified")
            })?;
            if name.contains(':') {
                return Err(format!(
                    "{kind}.keys[{i}].name: Invalid value: {name:?}: should not contain ':'"
                ));
            }
            let secret = base64::engine::general_purpose::STANDARD
                .decode(k["secret"].as_str().unwrap_or_default())
                .map_err(|e| format!("{kind}.keys[{i}].secret: Invalid value: secrets must be base64 encoded: {e}"))?;
            if !sizes.contains(&secret.len()) {
                return Err(format!(
                    "{kind}.keys[{i}].secret: Invalid value: secret is not of the expected length, got {}, expected one of {sizes:?}",
                    secret.len()
                ));
            }
            Ok(Key {
                name: name.to_string(),
                secret,
            })
        })
        .collect()
}

fn provider(p: &Value) -> Result<Provider, String> {
    let obj = p.as_object().ok_or("providers[]: must be an object")?;
    let (kind, spec) = obj
        .iter()
        .next()
        .ok_or("providers[]: exactly one provider must be specified")?;
    match kind.as_str() {
        "identity" => Ok(Provider::Identity),
        "aescbc" => Ok(Provider::AesCbc(keys(kind, spec, &[16, 24, 32])?)),
        "aesgcm" => Ok(Provider::AesGcm(keys(kind, spec, &[16, 32])?)),
        "secretbox" => Ok(Provider::Secretbox(keys(kind, spec, &[32])?)),
        other => Err(format!("provider {other:?} is not supported")),
    }
}

impl EncryptionConfig {
    pub fn load(path: &std::path::Path) -> Result<EncryptionConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("error reading encryption provider configuration file {path:?}: {e}")
        })?;
        Self::parse(&text).map_err(|e| format!("error while parsing file {path:?}: {e}"))
    }

    pub fn parse(text: &str) -> Result<EncryptionConfig, String> {
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if doc["kind"] != "EncryptionConfiguration" {
            return Err(format!(
                "got unexpected kind {:?}, expected EncryptionConfiguration",
                doc["kind"].as_str().unwrap_or_default()
            ));
        }
        let rules = doc["resources"]
            .as_array()
            .ok_or("resources: Required value")?
            .iter()
            .map(|r| {
                let resources: Vec<String> = r["resources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect();
                if resources.is_empty() {
                    return Err("resources[].resources: Required value".to_string());
                }
                let providers = r["providers"]
                    .as_array()
                    .filter(|p| !p.is_empty())
                    .ok_or("resources[].providers: Required value")?
                    .iter()
                    .map(provider)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Rule {
                    resources,
                    transformer: Transformer { providers },
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(EncryptionConfig { rules })
    }

    /// The providers for a resource: the first rule naming it (`secrets`,
    /// `deployments.apps`), its group (`*.apps`, `*.` for the core group) or all (`*.*`).
    pub fn transformer_for(&self, group: &str, resource: &str) -> Option<&Transformer> {
        let exact = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        let group_wide = format!("*.{group}");
        self.rules
            .iter()
            .find(|r| {
                r.resources
                    .iter()
                    .any(|n| *n == exact || *n == group_wide || n == "*.*")
            })
            .map(|r| &r.transformer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let cfg = EncryptionConfig::parse(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets, configmaps]\n  providers:\n  - aescbc: {keys: [{name: k1, secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Pz8/Pz8=}]}\n  - identity: {}\n- resources: ['*.apps']\n  providers: [{identity: {}}]\n",
        )
        .unwrap();
        assert!(cfg.transformer_for("", "secrets").is_some());
        assert!(cfg.transformer_for("apps", "deployments").is_some());
        assert!(cfg.transformer_for("", "pods").is_none());
        let bad = EncryptionConfig::parse(
            "kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers: [{aescbc: {keys: [{name: k1, secret: c2hvcnQ=}]}}]\n",
        );
        assert!(
            bad.err()
                .unwrap()
                .contains("secret is not of the expected length")
        );
    }
}
