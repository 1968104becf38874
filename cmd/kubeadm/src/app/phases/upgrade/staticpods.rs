//! Upgrading the static Pod control plane (upstream `phases/upgrade/staticpods.go`
//! `StaticPodControlPlane` / `upgradeComponent` / `rollbackOldManifests`): component by
//! component (etcd first), the certificates it uses renewed, the old manifest backed up
//! under `/etc/kubernetes/tmp`, the new one moved in, and the kubelet's new mirror Pod
//! (a new `kubernetes.io/config.hash`) waited for until Ready. When a component does
//! not come back in time, every manifest changed so far is put back (and etcd's data,
//! if etcd was the one) and kubeadm waits for the old control plane to answer again.

use crate::app::apis::kubeadm::{InitConfig, KUBERNETES_DIR};
use crate::app::cmd::renew;
use crate::app::phases::controlplane;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The static Pod components in upgrade order.
pub const COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// The certificates (and kubeconfig files) each component uses, renewed as it is
/// upgraded (upstream `renewCertsByComponent`).
pub fn certificates_of(component: &str, local_etcd: bool) -> Vec<&'static str> {
    match component {
        "etcd" => vec!["etcd-server", "etcd-peer", "etcd-healthcheck-client"],
        "kube-apiserver" if local_etcd => vec![
            "apiserver",
            "apiserver-kubelet-client",
            "front-proxy-client",
            "apiserver-etcd-client",
        ],
        "kube-apiserver" => vec![
            "apiserver",
            "apiserver-kubelet-client",
            "front-proxy-client",
        ],
        "kube-controller-manager" => vec!["controller-manager.conf"],
        "kube-scheduler" => vec!["scheduler.conf"],
        _ => vec![],
    }
}

/// The manifest `cfg` gives `component` on `node` (the stacked etcd keeps the
/// membership its current manifest names).
pub fn desired(cfg: &InitConfig, component: &str, node: &str, current: &Value) -> Value {
    match component {
        "etcd" => {
            let initial = current["spec"]["containers"][0]["command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find_map(|a| a.strip_prefix("--initial-cluster="));
            let existing = current["spec"]["containers"][0]["command"]
                .to_string()
                .contains("--initial-cluster-state=existing");
            let initial = initial.filter(|_| existing);
            controlplane::etcd_member(cfg, node, initial)
        }
        "kube-apiserver" => controlplane::apiserver(cfg),
        "kube-controller-manager" => controlplane::controller_manager(cfg),
        _ => controlplane::scheduler(cfg),
    }
}

/// A component whose manifest was replaced: where its old manifest went.
struct Changed {
    component: &'static str,
    backup: PathBuf,
}

pub struct Upgrade<'a> {
    pub cfg: &'a InitConfig,
    pub client: &'a kube::Client,
    pub node: String,
    pub manifests_dir: PathBuf,
    pub cert_dir: PathBuf,
    pub renew_certs: bool,
    pub etcd_upgrade: bool,
    pub timeout: Duration,
}

/// kubeadm's backup directory suffix (`2006-01-02-15-04-05`).
pub fn timestamp() -> String {
    jiff::Zoned::now().strftime("%Y-%m-%d-%H-%M-%S").to_string()
}

fn read_manifest(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Copies a directory tree (etcd's data) as it is.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in std::fs::read_dir(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

impl Upgrade<'_> {
    fn mirror_pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "kube-system")
    }

    /// The mirror Pod's config hash, when the API answers.
    async fn hash(&self, component: &str) -> Option<String> {
        let name = format!("{component}-{}", self.node);
        let pod = tokio::time::timeout(Duration::from_secs(5), self.mirror_pods().get(&name))
            .await
            .ok()?
            .ok()?;
        pod.metadata
            .annotations?
            .get("kubernetes.io/config.hash")
            .cloned()
    }

    /// Waits for the kubelet to run `component` from a manifest other than the one
    /// hashed `old`, and for that Pod to be Ready.
    async fn wait_restarted(&self, component: &str, old: Option<&str>) -> Result<(), String> {
        let name = format!("{component}-{}", self.node);
        let deadline = Instant::now() + self.timeout;
        let mut last = String::from("no answer from the API server");
        let pods = self.mirror_pods();
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), pods.get(&name)).await {
                Ok(Ok(pod)) => {
                    let hash = pod
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("kubernetes.io/config.hash"))
                        .cloned();
                    let ready = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    if hash.is_some() && hash.as_deref() != old && ready {
                        return Ok(());
                    }
                    last = match hash.as_deref() == old {
                        true => format!("the mirror Pod {name} still has the old config hash"),
                        false => format!("the mirror Pod {name} is not Ready"),
                    };
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "the API server did not answer within 5s".into(),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!(
            "static Pod hash for component {component} on Node {} did not change after {:?}: {last}",
            self.node, self.timeout
        ))
    }

    fn renew(&self, component: &str) -> Result<(), String> {
        if !self.renew_certs {
            return Ok(());
        }
        for name in certificates_of(component, self.cfg.local_etcd()) {
            println!("[upgrade/staticpods] Renewing {name} certificate");
            renew::renew(self.cfg, name, &self.cert_dir, Path::new(KUBERNETES_DIR))?;
        }
        Ok(())
    }

    /// Upgrades every component whose manifest changes; on failure everything changed
    /// is rolled back and the error says so.
    pub async fn run(&self) -> Result<(), String> {
        let tmp = Path::new(KUBERNETES_DIR).join("tmp");
        let backup_dir = tmp.join(format!("kubeadm-backup-manifests-{}", timestamp()));
        std::fs::create_dir_all(&backup_dir)
            .map_err(|e| format!("{}: {e}", backup_dir.display()))?;
        let mut changed: Vec<Changed> = Vec::new();
        let mut etcd_backup: Option<(PathBuf, PathBuf)> = None;
        for component in COMPONENTS {
            let path = self.manifests_dir.join(format!("{component}.yaml"));
            if component == "etcd" && (!self.cfg.local_etcd() || !self.etcd_upgrade) {
                continue;
            }
            let current_text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let current = read_manifest(&path)?;
            let next = desired(self.cfg, component, &self.node, &current);
            // Both written by the same serializer: equal text, equal manifest.
            if serde_saphyr::to_string(&next).ok().as_deref() == Some(current_text.as_str()) {
                println!(
                    "[upgrade/staticpods] Current and new manifests of {component} are equal, skipping upgrade"
                );
                continue;
            }
            let old_hash = self.hash(component).await;
            if component == "etcd" {
                let data = PathBuf::from(
                    self.cfg
                        .cluster
                        .etcd
                        .local
                        .clone()
                        .unwrap_or_default()
                        .data_dir,
                );
                let copy = tmp.join(format!("kubeadm-backup-etcd-{}", timestamp()));
                copy_tree(&data, &copy.join("etcd"))?;
                etcd_backup = Some((data, copy.join("etcd")));
            }
            self.renew(component)?;
            let backup = backup_dir.join(format!("{component}.yaml"));
            std::fs::copy(&path, &backup).map_err(|e| format!("{}: {e}", backup.display()))?;
            controlplane::write(&self.manifests_dir, component, &next)?;
            println!(
                "[upgrade/staticpods] Moved new manifest to {:?} and backed up old manifest to {:?}",
                path.display().to_string(),
                backup.display().to_string()
            );
            changed.push(Changed { component, backup });
            println!("[upgrade/staticpods] Waiting for the kubelet to restart the component");
            println!(
                "[upgrade/staticpods] This can take up to {}",
                apimachinery::duration::format_go(self.timeout.as_nanos() as i64)
            );
            if let Err(e) = self.wait_restarted(component, old_hash.as_deref()).await {
                let etcd = etcd_backup.as_ref().filter(|_| component == "etcd");
                return Err(self.rollback(&changed, etcd, e).await);
            }
            println!("[upgrade/staticpods] Component {component:?} upgraded successfully!");
        }
        Ok(())
    }

    /// Puts the old manifests (and etcd's data) back; the error to report.
    async fn rollback(
        &self,
        changed: &[Changed],
        etcd: Option<&(PathBuf, PathBuf)>,
        cause: String,
    ) -> String {
        let mut errs = vec![cause];
        if let Some((data, copy)) = etcd {
            println!("[upgrade/etcd] Rolling back etcd data");
            let restored = std::fs::remove_dir_all(data)
                .map_err(|e| e.to_string())
                .and_then(|_| copy_tree(copy, data));
            if let Err(e) = restored {
                errs.push(format!(
                    "restoring the etcd data in {}: {e}",
                    data.display()
                ));
            }
        }
        for c in changed.iter().rev() {
            let to = self.manifests_dir.join(format!("{}.yaml", c.component));
            println!(
                "[upgrade/staticpods] Rolling back the static Pod manifest of {:?} from {:?}",
                c.component,
                c.backup.display().to_string()
            );
            // A rename keeps the kubelet from ever reading a half-written manifest.
            let staged = self.manifests_dir.join(format!(".{}.yaml", c.component));
            let moved =
                std::fs::copy(&c.backup, &staged).and_then(|_| std::fs::rename(&staged, &to));
            if let Err(e) = moved {
                errs.push(format!("restoring {}: {e}", to.display()));
            }
        }
        // The old control plane answering again is what the rollback promised.
        let deadline = Instant::now() + self.timeout;
        let apiserver_back = loop {
            let ok = tokio::time::timeout(
                Duration::from_secs(5),
                self.mirror_pods()
                    .get(&format!("kube-apiserver-{}", self.node)),
            )
            .await
            .is_ok_and(|r| r.is_ok());
            if ok || Instant::now() > deadline {
                break ok;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if !apiserver_back {
            errs.push("the API server did not answer after the rollback".into());
        }
        format!(
            "couldn't upgrade control plane. kubeadm has tried to recover everything into the earlier state. Errors faced: [{}]",
            errs.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_component_renews_what_it_uses() {
        assert_eq!(certificates_of("kube-apiserver", false).len(), 3);
        assert!(certificates_of("kube-apiserver", true).contains(&"apiserver-etcd-client"));
        assert_eq!(certificates_of("kube-scheduler", true), ["scheduler.conf"]);
    }

    #[test]
    fn the_stacked_etcd_keeps_its_membership() {
        let cfg = InitConfig::default();
        let joined =
            controlplane::etcd_member(&cfg, "m3", Some("m1=https://a:2380,m3=https://b:2380"));
        assert_eq!(desired(&cfg, "etcd", "m3", &joined), joined);
        let first = controlplane::etcd(&cfg, "m1");
        assert_eq!(desired(&cfg, "etcd", "m1", &first), first);
    }
}
