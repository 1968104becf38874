//! kube-apiserver assembly (upstream `pkg/controlplane`): picks the storage backend,
//! installs the built-in resources with their subresources and admission, creates the
//! bootstrap objects, runs storage compaction, and serves.

pub mod admission;
pub mod apiserver_identity;
pub mod bootstrap;
pub mod config;
pub mod flowcontrol;
pub mod health;
pub mod reconcilers;
pub mod resources;
pub mod storage;

use apiserver::endpoints::{ApiResource, ApiServer, VirtualRest};
use apiserver::registry::generic::Registry;
use apiserver::registry::strategy::{ResourceInfo, Strategy};
use apiserver::server::Server;
use apiserver::server::healthz::{Flag, Health, Ping};
use apiserver::storage::cacher::Cacher;
use apiserver::storage::interface::Backend;
use apiserver::storage::store::ResourceStore;
use config::Config;
use registry::core::service::{Allocators, ipallocator, portallocator};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Every stored resource's registry by plural name.
pub struct Registries {
    pub by_resource: HashMap<String, Arc<Registry>>,
    /// The `--authorization-mode` chain, and its RBAC authorizer when RBAC is on.
    pub authz: Arc<apiserver::authorization::Chain>,
    pub rbac: Option<Arc<plugin::auth::authorizer::rbac::Rbac>>,
}

fn key(info: &ResourceInfo) -> (String, String, String) {
    (
        info.gvk.group.clone(),
        info.gvk.version.clone(),
        info.resource.clone(),
    )
}

/// Resources computed on request (componentstatuses, the authentication reviews) or
/// acting on another's storage (bindings).
fn computed_resources(
    backend: &Arc<dyn Backend>,
    authn: Arc<apiserver::authentication::Authenticator>,
    pods: Arc<Registry>,
) -> Vec<(Arc<dyn Strategy>, Arc<dyn VirtualRest>)> {
    use registry::core::componentstatus::{ComponentStatuses, Probe};
    let etcd: Arc<dyn apiserver::server::healthz::Check> = Arc::new(health::StorageCheck {
        backend: backend.clone(),
        name: "etcd".into(),
    });
    use registry::core::pod;
    vec![
        (
            Arc::new(pod::legacy_binding()),
            Arc::new(pod::LegacyBindings(pod::Binding { registry: pods })),
        ),
        (
            Arc::new(registry::core::componentstatus::strategy()),
            Arc::new(ComponentStatuses {
                components: vec![
                    ("scheduler".into(), Probe::Healthz { port: 10259 }),
                    ("controller-manager".into(), Probe::Healthz { port: 10257 }),
                    ("etcd-0".into(), Probe::Check(etcd)),
                ],
            }),
        ),
        (
            Arc::new(registry::authentication::self_subject_review()),
            Arc::new(registry::authentication::SelfSubjectReviews),
        ),
        (
            Arc::new(registry::authentication::token_review()),
            Arc::new(registry::authentication::TokenReviews {
                authenticator: authn,
            }),
        ),
    ]
}

/// A computed resource: never stored, so no watch cache either.
fn virtual_resource(
    backend: &Arc<dyn Backend>,
    cfg: &Config,
    strategy: Arc<dyn Strategy>,
    rest: Arc<dyn VirtualRest>,
) -> ApiResource {
    let info = strategy.info().clone();
    let store = ResourceStore {
        backend: backend.clone(),
        prefix: format!(
            "{}/{}/",
            cfg.etcd_prefix.trim_end_matches('/'),
            info.storage_path
        ),
        resource: info.group_resource(),
        protobuf: cfg.storage_protobuf,
    };
    let mut res = ApiResource::new(Arc::new(Registry::new(strategy, store, None)));
    res.virtual_rest = Some(rest);
    res
}

fn install(backend: &Arc<dyn Backend>, cfg: &Config, strategy: Arc<dyn Strategy>) -> Arc<Registry> {
    let info = strategy.info();
    let store = ResourceStore {
        backend: backend.clone(),
        prefix: format!(
            "{}/{}/",
            cfg.etcd_prefix.trim_end_matches('/'),
            info.storage_path
        ),
        resource: info.group_resource(),
        protobuf: cfg.storage_protobuf,
    };
    // Before the watch cache first reads: values may be encrypted.
    backend.register_resource(&store.prefix, &info.gvk.group, &info.resource);
    let cacher = cfg.watch_cache.then(|| {
        let fields = apiserver::registry::generic::fields_fn(strategy.clone());
        Cacher::start(store.clone(), fields, cfg.default_watch_cache_size)
    });
    Arc::new(Registry::new(strategy, store, cacher))
}

/// Builds the API (resources, subresources, admission) over a storage backend.
pub fn build_api(
    backend: Arc<dyn Backend>,
    cfg: &Config,
    authn: Arc<apiserver::authentication::Authenticator>,
    issuer: Arc<apiserver::authentication::serviceaccount::TokenIssuer>,
) -> Result<(Arc<ApiServer>, Registries), String> {
    registry::capabilities::set_allow_privileged(cfg.allow_privileged);
    let kubelet = Arc::new(config::kubelet_client(cfg)?);
    let cidr = ipallocator::Cidr::parse(&cfg.service_cluster_ip_range)?;
    let (port_base, port_size) = portallocator::parse_range(&cfg.service_node_port_range)?;
    let prefix = cfg.etcd_prefix.trim_end_matches('/').to_string();
    let allocators = Arc::new(Allocators {
        ips: ipallocator::IpAllocator::new(cidr, backend.clone(), &prefix),
        ports: portallocator::PortAllocator::new(port_base, port_size, backend.clone(), &prefix),
    });
    let mut by_resource = HashMap::new();
    let mut resources = HashMap::new();
    let mut installed = Vec::new();
    for s in resources::strategies(allocators) {
        let reg = install(&backend, cfg, s);
        by_resource.insert(reg.strategy.info().resource.clone(), reg.clone());
        installed.push(reg);
    }
    // Subresources may act on other resources (evictions consult disruption budgets).
    for reg in installed {
        let info = reg.strategy.info().clone();
        let mut res = ApiResource::new(reg.clone());
        for sub in &info.subresources {
            if let Some(h) =
                resources::subresource(&info.resource, sub, &reg, &by_resource, &issuer)
            {
                res.subresources.insert(sub.clone(), h);
            }
            if let Some(h) = resources::connect(&info.resource, sub, &reg, &by_resource, &kubelet) {
                res.connect.insert(sub.clone(), h);
            }
        }
        resources.insert(key(&info), Arc::new(res));
    }
    for (strategy, rest) in computed_resources(&backend, authn, by_resource["pods"].clone()) {
        let res = virtual_resource(&backend, cfg, strategy, rest);
        resources.insert(key(res.info()), Arc::new(res));
    }
    let stored = |r: &str| by_resource[r].strategy.info().clone();
    for (r, view) in resources::views(&stored) {
        let key = key(view.info());
        let mut res = ApiResource::new(by_resource[r].clone());
        res.view = Some(view);
        resources.insert(key, Arc::new(res));
    }
    let (authz, rbac) = authorizers(cfg, &by_resource)?;
    // Policies' parameter kinds resolve against the served resources (CRDs included),
    // which exist once the server does.
    let served: Arc<std::sync::OnceLock<std::sync::Weak<ApiServer>>> = Arc::default();
    let admission = admission::chain(cfg, &by_resource, rbac.as_ref(), &authz, served.clone())?;
    let api = ApiServer::new(
        resources,
        admission,
        resources::GROUP_ORDER
            .iter()
            .map(|g| g.to_string())
            .collect(),
        json!({
            "major": "1",
            "minor": "35",
            "emulationMajor": "1",
            "emulationMinor": "35",
            "minCompatibilityMajor": "1",
            "minCompatibilityMinor": "34",
            "gitVersion": "v1.35.0",
            "gitCommit": env!("CARGO_PKG_VERSION"),
            "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": "rust",
            "compiler": "rustc",
            "platform": format!("{}/{}", std::env::consts::OS, component_base::go_arch()),
        }),
    );
    let api = Arc::new(api);
    let _ = served.set(Arc::downgrade(&api));
    Ok((
        api,
        Registries {
            by_resource,
            authz,
            rbac,
        },
    ))
}

/// Bootstrap tokens and service-account tokens, which read the registries.
fn token_authenticators(
    authn: &apiserver::authentication::Authenticator,
    cfg: &Config,
    regs: &HashMap<String, Arc<Registry>>,
    issuer: &apiserver::authentication::serviceaccount::TokenIssuer,
    keys: Vec<apiserver::authentication::jwt::PublicKey>,
) {
    use apiserver::authentication::serviceaccount::{Lookup, ServiceAccountTokens};
    if cfg.enable_bootstrap_token_auth {
        authn.add_tokens(Arc::new(
            plugin::auth::authenticator::bootstrap::BootstrapTokens {
                secrets: regs["secrets"].clone(),
            },
        ));
    }
    let mut issuers = cfg.service_account_issuers.clone();
    if issuers.is_empty() {
        issuers.push(issuer.issuer.clone());
    }
    authn.add_tokens(Arc::new(ServiceAccountTokens {
        issuers,
        keys,
        audiences: issuer.audiences.clone(),
        lookup: Lookup {
            serviceaccounts: regs["serviceaccounts"].clone(),
            pods: regs["pods"].clone(),
            secrets: regs["secrets"].clone(),
            nodes: regs["nodes"].clone(),
        },
    }));
}

/// The `--authorization-mode` chain.
fn authorizers(
    cfg: &Config,
    regs: &HashMap<String, Arc<Registry>>,
) -> Result<
    (
        Arc<apiserver::authorization::Chain>,
        Option<Arc<plugin::auth::authorizer::rbac::Rbac>>,
    ),
    String,
> {
    use apiserver::authorization::{AlwaysAllow, Authorizer};
    use plugin::auth::authorizer::rbac::Rbac;
    let mut chain: Vec<Arc<dyn Authorizer>> = Vec::new();
    let mut rbac_authorizer = None;
    for mode in &cfg.authorization_modes {
        match mode.as_str() {
            "AlwaysAllow" => chain.push(Arc::new(AlwaysAllow)),
            "AlwaysDeny" => {}
            "RBAC" => {
                let r = |n: &str| regs[n].clone();
                let rbac = Arc::new(Rbac {
                    roles: r("roles"),
                    cluster_roles: r("clusterroles"),
                    role_bindings: r("rolebindings"),
                    cluster_role_bindings: r("clusterrolebindings"),
                });
                rbac_authorizer = Some(rbac.clone());
                chain.push(rbac);
            }
            "Node" => chain.push(Arc::new(plugin::auth::authorizer::node::NodeAuthorizer {
                pods: regs["pods"].clone(),
                claims: regs["persistentvolumeclaims"].clone(),
                volumes: regs["persistentvolumes"].clone(),
            })),
            other => return Err(format!("unknown authorization mode {other:?}")),
        }
    }
    Ok((
        Arc::new(apiserver::authorization::Chain(chain)),
        rbac_authorizer,
    ))
}

/// The access reviews, answered by the authorizer chain.
fn access_reviews(
    chain: &Arc<apiserver::authorization::Chain>,
    rbac: Option<Arc<plugin::auth::authorizer::rbac::Rbac>>,
) -> Vec<(Arc<dyn Strategy>, Arc<dyn VirtualRest>)> {
    use registry::authorization as az;
    vec![
        (
            Arc::new(az::self_subject_access_review()),
            Arc::new(az::SelfSubjectAccessReviews {
                authorizer: chain.clone(),
            }),
        ),
        (
            Arc::new(az::subject_access_review()),
            Arc::new(az::SubjectAccessReviews {
                authorizer: chain.clone(),
            }),
        ),
        (
            Arc::new(az::local_subject_access_review()),
            Arc::new(az::LocalSubjectAccessReviews {
                authorizer: chain.clone(),
            }),
        ),
        (
            Arc::new(az::self_subject_rules_review()),
            Arc::new(az::SelfSubjectRulesReviews { rbac }),
        ),
    ]
}

/// Runs the apiserver until `shutdown` resolves.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let backend = storage::open(&cfg).await?;
    let certs = config::client_cert_auth(&cfg)?;
    let authn = Arc::new(apiserver::authentication::Authenticator {
        anonymous: cfg.anonymous_auth,
        client_ca: certs.client_ca,
        request_header: certs.request_header,
        ..Default::default()
    });
    if let Some(f) = &cfg.token_auth_file {
        authn.add_tokens(Arc::new(
            apiserver::authentication::token_file::TokenFile::load(f)?,
        ));
    }
    let (issuer, verification_keys) = config::service_accounts(&cfg)?;
    let (api, regs) = build_api(backend.clone(), &cfg, authn.clone(), issuer.clone())?;
    let oidc_keys = verification_keys.clone();
    token_authenticators(&authn, &cfg, &regs.by_resource, &issuer, verification_keys);
    let tls = config::serving_tls(&cfg, &certs.roots)?;
    let bootstrapped = Arc::new(AtomicBool::new(false));
    let caches_synced = Arc::new(AtomicBool::new(!cfg.watch_cache));
    let autoregistered = Arc::new(AtomicBool::new(false));
    let storage_check: Arc<dyn apiserver::server::healthz::Check> =
        Arc::new(health::StorageCheck {
            backend: backend.clone(),
            name: "etcd".into(),
        });
    let health = Health {
        livez: vec![
            Arc::new(Ping),
            Arc::new(health::LogCheck),
            storage_check.clone(),
        ],
        readyz: vec![
            Arc::new(Ping),
            Arc::new(health::LogCheck),
            storage_check,
            Arc::new(Flag {
                name: "informer-sync".into(),
                done: caches_synced.clone(),
            }),
            Arc::new(Flag {
                name: "poststarthook/bootstrap-controller".into(),
                done: bootstrapped.clone(),
            }),
            Arc::new(Flag {
                name: "autoregister-completion".into(),
                done: autoregistered.clone(),
            }),
        ],
    };
    let advertise = format!("{}:{}", cfg.advertise_ip(), cfg.secure_port);
    let (authz, rbac) = (regs.authz.clone(), regs.rbac.clone());
    let reviews: Vec<ApiResource> = access_reviews(&authz, rbac)
        .into_iter()
        .map(|(strategy, rest)| virtual_resource(&backend, &cfg, strategy, rest))
        .collect();
    api.update_resources(|all| {
        for r in reviews {
            all.insert(key(r.info()), Arc::new(r));
        }
    });
    // Both limits at 0 mean no limit at all, with or without APF.
    let seats = cfg.max_requests_inflight + cfg.max_mutating_requests_inflight;
    let aggregator = Arc::new(config::aggregator(&cfg)?);
    let mut metrics = apiserver::endpoints::metrics::ApiMetrics::default();
    aggregator.metrics.register(metrics.registry_mut());
    let apf = (cfg.enable_priority_and_fairness && seats > 0)
        .then(|| Arc::new(apiserver::util::flowcontrol::Controller::new(seats)));
    let server = Arc::new(Server {
        api: api.clone(),
        metrics,
        health,
        advertise,
        authn,
        authz: authz.clone(),
        inflight: apiserver::server::inflight::InflightLimits::new(
            cfg.max_requests_inflight,
            cfg.max_mutating_requests_inflight,
        ),
        flowcontrol: apf.clone(),
        audit: config::auditor(&cfg)?,
        oidc: Some((issuer, oidc_keys)),
        aggregator: Some(aggregator.clone()),
    });
    tokio::spawn(
        kube_aggregator::controller::Controller {
            aggregator,
            registered: autoregistered,
            api: api.clone(),
            apiservices: regs.by_resource["apiservices"].clone(),
            services: regs.by_resource["services"].clone(),
            endpointslices: regs.by_resource["endpointslices"].clone(),
        }
        .run(),
    );
    if let Some(apf) = apf {
        tokio::spawn(flowcontrol::run(
            apf,
            regs.by_resource["flowschemas"].clone(),
            regs.by_resource["prioritylevelconfigurations"].clone(),
        ));
    }
    let lease =
        reconcilers::LeaseReconciler::for_config(&backend, &regs.by_resource, &cfg).map(Arc::new);
    tokio::spawn(bootstrap::run(
        regs.by_resource.clone(),
        cfg.clone(),
        backend.clone(),
        bootstrapped,
        caches_synced,
        lease.clone(),
    ));
    let install: apiextensions_apiserver::controller::InstallFn = {
        let (backend, cfg) = (backend.clone(), cfg.clone());
        Arc::new(move |s| install(&backend, &cfg, s))
    };
    tokio::spawn(
        apiextensions_apiserver::controller::CrdController::new(
            api.clone(),
            regs.by_resource["customresourcedefinitions"].clone(),
            install,
            regs.by_resource["services"].clone(),
        )
        .run(),
    );
    tokio::spawn(storage::compaction_loop(
        backend.clone(),
        cfg.etcd_compaction_interval,
    ));
    let addr = std::net::SocketAddr::new(cfg.bind_address, cfg.secure_port);
    // Upstream's pre-shutdown hook: on the shutdown signal, before draining, this server
    // leaves the `kubernetes` endpoints so that clients move to the other apiservers.
    let leave = async move {
        shutdown.await;
        if let Some(lease) = lease {
            match tokio::time::timeout(std::time::Duration::from_secs(5), lease.remove_self()).await
            {
                Ok(Ok(())) => {
                    tracing::info!("removed this server from the kubernetes service endpoints")
                }
                Ok(Err(e)) => tracing::warn!(
                    error = e,
                    "removing this server from the kubernetes service endpoints"
                ),
                Err(_) => tracing::warn!(
                    "timed out removing this server from the kubernetes service endpoints"
                ),
            }
        }
    };
    server
        .run(addr, tls, leave)
        .await
        .map_err(|e| format!("serving on {addr}: {e}"))
}
