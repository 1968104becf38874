//! kube-controller-manager: upstream's flags, `--controllers` selection, leader election
//! on the `kube-system/kube-controller-manager` Lease, the secure port (10257), and the
//! controllers built so far.

use clap::Parser;
use component_base::logs::LoggingOptions;
use controller::informer::Informer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The Kubernetes controller manager is a daemon that embeds the core control loops
/// shipped with Kubernetes. A controller is a control loop that watches the shared state
/// of the cluster through the apiserver and makes changes attempting to move the current
/// state towards the desired state.
#[derive(Parser, Debug)]
#[command(name = "kube-controller-manager", version = "v1.35.0")]
struct Flags {
    /// Path to kubeconfig file with authorization and master location information.
    #[arg(long = "kubeconfig")]
    kubeconfig: Option<PathBuf>,
    /// A list of controllers to enable. '*' enables all on-by-default controllers, 'foo' enables the controller named 'foo', '-foo' disables the controller named 'foo'.
    #[arg(long = "controllers", value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    /// QPS to use while talking with kubernetes apiserver.
    #[arg(long = "kube-api-qps", default_value_t = 20.0)]
    kube_api_qps: f32,
    /// Burst to use while talking with kubernetes apiserver.
    #[arg(long = "kube-api-burst", default_value_t = 30)]
    kube_api_burst: u32,
    /// Start a leader election client and gain leadership before executing the main loop.
    #[arg(long = "leader-elect", action = clap::ArgAction::Set, default_value_t = true)]
    leader_elect: bool,
    #[arg(long = "leader-elect-lease-duration", default_value = "15s")]
    leader_elect_lease_duration: String,
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s")]
    leader_elect_renew_deadline: String,
    #[arg(long = "leader-elect-retry-period", default_value = "2s")]
    leader_elect_retry_period: String,
    #[arg(long = "leader-elect-resource-lock", default_value = "leases")]
    leader_elect_resource_lock: String,
    #[arg(
        long = "leader-elect-resource-name",
        default_value = "kube-controller-manager"
    )]
    leader_elect_resource_name: String,
    #[arg(
        long = "leader-elect-resource-namespace",
        default_value = "kube-system"
    )]
    leader_elect_resource_namespace: String,
    /// The number of replica sets that are allowed to sync concurrently.
    #[arg(long = "concurrent-replicaset-syncs", default_value_t = 5)]
    concurrent_replicaset_syncs: usize,
    /// The number of replication controllers that are allowed to sync concurrently. Larger number = more responsive replica management, but more CPU (and network) load
    #[arg(long = "concurrent-rc-syncs", default_value_t = 5)]
    concurrent_rc_syncs: usize,
    /// The number of deployment objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-deployment-syncs", default_value_t = 5)]
    concurrent_deployment_syncs: usize,
    /// The number of garbage collector workers that are allowed to sync concurrently.
    #[arg(long = "concurrent-gc-syncs", default_value_t = 20)]
    concurrent_gc_syncs: usize,
    /// The number of endpoint syncing operations that will be done concurrently.
    #[arg(long = "concurrent-endpoint-syncs", default_value_t = 5)]
    concurrent_endpoint_syncs: usize,
    /// The number of service endpoint syncing operations that will be done concurrently by the endpointslice-mirroring-controller.
    #[arg(
        long = "mirroring-concurrent-service-endpoint-syncs",
        default_value_t = 5
    )]
    mirroring_concurrent_service_endpoint_syncs: usize,
    /// The maximum number of endpoints that will be added to an EndpointSlice by the EndpointSliceMirroring controller.
    #[arg(long = "mirroring-max-endpoints-per-subset", default_value_t = 1000)]
    mirroring_max_endpoints_per_subset: usize,
    /// The number of service endpoint slice syncing operations that will be done concurrently.
    #[arg(long = "concurrent-service-endpoint-syncs", default_value_t = 5)]
    concurrent_service_endpoint_syncs: usize,
    /// The number of daemonset objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-daemonset-syncs", default_value_t = 2)]
    concurrent_daemonset_syncs: usize,
    /// The number of statefulset objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-statefulset-syncs", default_value_t = 5)]
    concurrent_statefulset_syncs: usize,
    /// The number of job objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-job-syncs", default_value_t = 5)]
    concurrent_job_syncs: usize,
    /// The number of cron job objects that are allowed to sync concurrently. Larger number = more responsive jobs, but more CPU (and network) load
    #[arg(long = "concurrent-cron-job-syncs", default_value_t = 5)]
    concurrent_cron_job_syncs: usize,
    /// Number of terminated pods that can exist before the terminated pod garbage collector starts deleting terminated pods. If <= 0, the terminated pod garbage collector is disabled.
    #[arg(long = "terminated-pod-gc-threshold", default_value_t = 12500)]
    terminated_pod_gc_threshold: i64,
    /// The number of ttl-after-finished-controller workers that are allowed to sync concurrently.
    #[arg(long = "concurrent-ttl-after-finished-syncs", default_value_t = 5)]
    concurrent_ttl_after_finished_syncs: usize,
    /// The number of namespace objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-namespace-syncs", default_value_t = 10)]
    concurrent_namespace_syncs: usize,
    /// The number of service account objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-serviceaccount-syncs", default_value_t = 1)]
    concurrent_serviceaccount_syncs: usize,
    /// The number of resource quotas that are allowed to sync concurrently. Larger number = more responsive quota management, but more CPU (and network) load.
    #[arg(long = "concurrent-resource-quota-syncs", default_value_t = 5)]
    concurrent_resource_quota_syncs: usize,
    /// The period for syncing quota usage status in the system.
    #[arg(long = "resource-quota-sync-period", default_value = "5m0s")]
    resource_quota_sync_period: String,
    /// If set, this root certificate authority will be included in service account's token secret and the kube-root-ca.crt ConfigMap.
    #[arg(long = "root-ca-file")]
    root_ca_file: Option<PathBuf>,
    /// Filename containing a PEM-encoded private RSA or ECDSA key used to sign service account tokens.
    #[arg(long = "service-account-private-key-file")]
    service_account_private_key_file: Option<PathBuf>,
    /// If true, use individual service account credentials for each controller.
    #[arg(long = "use-service-account-credentials", action = clap::ArgAction::Set, default_value_t = false)]
    use_service_account_credentials: bool,
    /// Filename containing a PEM-encoded X509 CA certificate used to issue cluster-scoped certificates.
    #[arg(long = "cluster-signing-cert-file")]
    cluster_signing_cert_file: Option<PathBuf>,
    /// Filename containing a PEM-encoded RSA or ECDSA private key used to sign cluster-scoped certificates.
    #[arg(long = "cluster-signing-key-file")]
    cluster_signing_key_file: Option<PathBuf>,
    /// The max length of duration signed certificates will be given. Individual CSRs may request shorter certs by setting spec.expirationSeconds.
    #[arg(long = "cluster-signing-duration", default_value = "8760h0m0s")]
    cluster_signing_duration: String,
    /// Should CIDRs for Pods be allocated and set on the cloud provider.
    #[arg(long = "allocate-node-cidrs", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    allocate_node_cidrs: bool,
    /// CIDR Range for Pods in cluster (a comma-separated pair for dual stack).
    #[arg(long = "cluster-cidr")]
    cluster_cidr: Option<String>,
    /// CIDR Range for Services in cluster; node pod CIDRs never overlap it.
    #[arg(long = "service-cluster-ip-range")]
    service_cluster_ip_range: Option<String>,
    /// Mask size for node cidr in cluster. Default is 24 for IPv4 and 64 for IPv6.
    #[arg(long = "node-cidr-mask-size")]
    node_cidr_mask_size: Option<u8>,
    /// Mask size for IPv4 node cidr in dual-stack cluster. Default is 24.
    #[arg(long = "node-cidr-mask-size-ipv4")]
    node_cidr_mask_size_ipv4: Option<u8>,
    /// Mask size for IPv6 node cidr in dual-stack cluster. Default is 64.
    #[arg(long = "node-cidr-mask-size-ipv6")]
    node_cidr_mask_size_ipv6: Option<u8>,
    /// The period for syncing persistent volumes and persistent volume claims
    #[arg(long = "pvclaimbinder-sync-period", default_value = "15s")]
    pvclaimbinder_sync_period: String,
    /// The period for syncing the number of pods in horizontal pod autoscaler.
    #[arg(long = "horizontal-pod-autoscaler-sync-period", default_value = "15s")]
    horizontal_pod_autoscaler_sync_period: String,
    /// The minimum change (from 1.0) in the desired-to-actual metrics ratio for the horizontal pod autoscaler to consider scaling.
    #[arg(long = "horizontal-pod-autoscaler-tolerance", default_value_t = 0.1)]
    horizontal_pod_autoscaler_tolerance: f64,
    /// The period for which autoscaler will look backwards and not scale down below any recommendation it made during that period.
    #[arg(
        long = "horizontal-pod-autoscaler-downscale-stabilization",
        default_value = "5m0s"
    )]
    horizontal_pod_autoscaler_downscale_stabilization: String,
    /// The number of horizontal pod autoscaler objects that are allowed to sync concurrently.
    #[arg(
        long = "concurrent-horizontal-pod-autoscaler-syncs",
        default_value_t = 5
    )]
    concurrent_horizontal_pod_autoscaler_syncs: usize,
    /// The period for syncing NodeStatus in cloud-node-lifecycle-controller and node-lifecycle-controller.
    #[arg(long = "node-monitor-period", default_value = "5s")]
    node_monitor_period: String,
    /// Amount of time which we allow running Node to be unresponsive before marking it unhealthy.
    #[arg(long = "node-monitor-grace-period", default_value = "50s")]
    node_monitor_grace_period: String,
    #[command(flatten)]
    serving: client_go::secure::SecureServingFlags,
    #[command(flatten)]
    logging: LoggingOptions,
}

/// Controllers upstream knows (canonical name, alias, on by default); the ones built
/// here are started, the others accepted in `--controllers` and reported.
const KNOWN: &[(&str, &str, bool)] = &[
    ("attachdetach-controller", "attachdetach", true),
    ("bootstrap-signer-controller", "bootstrapsigner", false),
    (
        "certificatesigningrequest-approving-controller",
        "csrapproving",
        true,
    ),
    (
        "certificatesigningrequest-cleaner-controller",
        "csrcleaner",
        true,
    ),
    (
        "certificatesigningrequest-signing-controller",
        "csrsigning",
        true,
    ),
    (
        "clusterrole-aggregation-controller",
        "clusterrole-aggregation",
        true,
    ),
    ("cronjob-controller", "cronjob", true),
    ("daemonset-controller", "daemonset", true),
    ("deployment-controller", "deployment", true),
    ("disruption-controller", "disruption", true),
    ("endpoints-controller", "endpoint", true),
    ("endpointslice-controller", "endpointslice", true),
    (
        "endpointslice-mirroring-controller",
        "endpointslicemirroring",
        true,
    ),
    ("ephemeral-volume-controller", "ephemeral-volume", true),
    ("garbage-collector-controller", "garbagecollector", true),
    (
        "horizontal-pod-autoscaler-controller",
        "horizontalpodautoscaling",
        true,
    ),
    ("job-controller", "job", true),
    (
        "legacy-serviceaccount-token-cleaner-controller",
        "legacy-service-account-token-cleaner",
        true,
    ),
    ("namespace-controller", "namespace", true),
    ("node-ipam-controller", "nodeipam", true),
    ("node-lifecycle-controller", "nodelifecycle", true),
    (
        "persistentvolume-binder-controller",
        "persistentvolume-binder",
        true,
    ),
    (
        "persistentvolume-expander-controller",
        "persistentvolume-expander",
        true,
    ),
    (
        "persistentvolume-protection-controller",
        "pv-protection",
        true,
    ),
    (
        "persistentvolumeclaim-protection-controller",
        "pvc-protection",
        true,
    ),
    ("pod-garbage-collector-controller", "podgc", true),
    ("replicaset-controller", "replicaset", true),
    (
        "replicationcontroller-controller",
        "replicationcontroller",
        true,
    ),
    ("resourceclaim-controller", "resourceclaim", true),
    ("resourcequota-controller", "resourcequota", true),
    (
        "root-ca-certificate-publisher-controller",
        "root-ca-cert-publisher",
        true,
    ),
    ("service-cidr-controller", "service-cidr", true),
    ("serviceaccount-controller", "serviceaccount", true),
    (
        "serviceaccount-token-controller",
        "serviceaccount-token",
        true,
    ),
    ("statefulset-controller", "statefulset", true),
    (
        "taint-eviction-controller",
        "taint-eviction-controller",
        true,
    ),
    ("token-cleaner-controller", "tokencleaner", false),
    ("ttl-after-finished-controller", "ttl-after-finished", true),
    ("ttl-controller", "ttl", true),
    (
        "validatingadmissionpolicy-status-controller",
        "validatingadmissionpolicy-status",
        true,
    ),
];

/// Upstream's `--controllers` semantics, by canonical name or alias.
fn enabled(list: &[String]) -> Result<Vec<&'static str>, String> {
    for item in list {
        let name = item.trim_start_matches('-');
        if name != "*" && !KNOWN.iter().any(|(c, a, _)| *c == name || *a == name) {
            return Err(format!("{name:?} is not in the list of known controllers"));
        }
    }
    let says = |c: &str, a: &str, neg: bool| {
        list.iter().any(|i| {
            let (n, is_neg) = match i.strip_prefix('-') {
                Some(n) => (n, true),
                None => (i.as_str(), false),
            };
            is_neg == neg && (n == c || n == a)
        })
    };
    let star = list.iter().any(|i| i == "*");
    Ok(KNOWN
        .iter()
        .filter(|(c, a, default)| says(c, a, false) || (star && *default && !says(c, a, true)))
        .map(|(c, _, _)| *c)
        .collect())
}

const BUILT: &[&str] = &[
    "pod-garbage-collector-controller",
    "ttl-after-finished-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "node-lifecycle-controller",
    "node-ipam-controller",
    "taint-eviction-controller",
    "deployment-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "replicaset-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "resourcequota-controller",
    "disruption-controller",
    "cronjob-controller",
    "replicationcontroller-controller",
    "certificatesigningrequest-approving-controller",
    "certificatesigningrequest-signing-controller",
    "certificatesigningrequest-cleaner-controller",
    "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller",
    "endpointslice-mirroring-controller",
    "bootstrap-signer-controller",
    "token-cleaner-controller",
    "serviceaccount-token-controller",
    "ttl-controller",
    "horizontal-pod-autoscaler-controller",
    "ephemeral-volume-controller",
];

use apimachinery::duration::parse as duration;

/// `--cluster-cidr` cut by the node mask sizes (upstream's `processCIDRs` and
/// `setNodeCIDRMaskSizes`): one set per family, dual stack at most one of each.
fn node_cidr_sets(flags: &Flags) -> Result<Vec<controller::nodeipam::cidrset::CidrSet>, String> {
    let cidrs: Vec<&str> = flags
        .cluster_cidr
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if cidrs.is_empty() {
        return Err("--allocate-node-cidrs requires --cluster-cidr".into());
    }
    if cidrs.len() > 2 {
        return Err("len of clusters cidrs is:3 > more than max allowed of 2".into());
    }
    let dual = cidrs.len() == 2;
    if dual && flags.node_cidr_mask_size.is_some() {
        return Err(
            "usage of --node-cidr-mask-size is not allowed with dual-stack clusters".into(),
        );
    }
    let mut sets = Vec::new();
    let mut v6_seen = Vec::new();
    for c in cidrs {
        let v6 = c.contains(':');
        let mask = if v6 {
            flags
                .node_cidr_mask_size_ipv6
                .or(flags.node_cidr_mask_size)
                .unwrap_or(64)
        } else {
            flags
                .node_cidr_mask_size_ipv4
                .or(flags.node_cidr_mask_size)
                .unwrap_or(24)
        };
        v6_seen.push(v6);
        let mut set = controller::nodeipam::cidrset::CidrSet::new(c, mask)?;
        for svc in flags
            .service_cluster_ip_range
            .as_deref()
            .unwrap_or_default()
            .split(',')
        {
            set.occupy_overlapping(svc.trim());
        }
        sets.push(set);
    }
    if dual && v6_seen[0] == v6_seen[1] {
        return Err("--cluster-cidr: a dual-stack pair needs one IPv4 and one IPv6 CIDR".into());
    }
    Ok(sets)
}

async fn run(flags: Flags) -> Result<(), String> {
    let controllers = enabled(&flags.controllers)?;
    if flags.leader_elect && flags.leader_elect_resource_lock != "leases" {
        return Err(format!(
            "leaderElection.resourceLock: Unsupported value: {:?}: supported values: \"leases\"",
            flags.leader_elect_resource_lock
        ));
    }
    let agent = format!(
        "kube-controller-manager/v1.35.0 ({}/{}) kubernetes/rust",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let config = client_go::rest::config(flags.kubeconfig.as_deref(), &agent).await?;
    let client = kube::Client::try_from(config.clone()).map_err(|e| e.to_string())?;
    let root_ca = match &flags.root_ca_file {
        Some(p) => {
            Some(std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?)
        }
        None => None,
    };
    let id = client_go::leaderelection::identity();

    let mut registry = component_base::metrics::Registry::default();
    let process = component_base::metrics::ProcessMetrics::default();
    process.register(&mut registry);
    client_go::workqueue_metrics::register(&mut registry);
    let registry = Arc::new(registry);
    let endpoints = component_base::serving::Endpoints {
        authorizer: None,
        live: Vec::new(),
        ready: Vec::new(),
        metrics: Arc::new(move || {
            process.refresh();
            client_go::workqueue_metrics::refresh();
            component_base::metrics::render(&registry)
        }),
    };
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    flags
        .serving
        .serve(
            10257,
            "kube-controller-manager",
            &agent,
            endpoints,
            async move {
                let _ = stop_rx.changed().await;
            },
        )
        .await?;

    let lost: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        if flags.leader_elect {
            let cfg = client_go::leaderelection::Config {
                namespace: flags.leader_elect_resource_namespace.clone(),
                name: flags.leader_elect_resource_name.clone(),
                identity: id.clone(),
                lease_duration: duration(&flags.leader_elect_lease_duration)?,
                renew_deadline: duration(&flags.leader_elect_renew_deadline)?,
                retry_period: duration(&flags.leader_elect_retry_period)?,
            };
            tokio::select! {
                lost = client_go::leaderelection::acquire(client.clone(), cfg) => Box::pin(lost),
                _ = component_base::signals::shutdown_signal() => {
                    let _ = stop_tx.send(true);
                    return Ok(());
                }
            }
        } else {
            Box::pin(std::future::pending())
        };

    let limiter = Arc::new(client_go::flowcontrol::RateLimiter::new(
        flags.kube_api_qps,
        flags.kube_api_burst,
    ));
    // Each controller reports events under its upstream component name.
    let recorder_for = |component: &str| {
        client_go::events::Recorder::new(client.clone(), component, &id, limiter.clone())
    };
    let on = |name: &str| controllers.contains(&name);
    // Upstream keeps the tokens in memory; ours go to a private directory the
    // client re-reads.
    let builder = if flags.use_service_account_credentials {
        let dir =
            std::env::temp_dir().join(format!("kube-controller-manager-{}", std::process::id()));
        client_go::clientbuilder::ClientBuilder::service_accounts(client.clone(), config, dir)
    } else {
        client_go::clientbuilder::ClientBuilder::root(client.clone())
    };
    let namespaces = Informer::new(kube::Api::all(client.clone()));
    let pods = Informer::new(kube::Api::all(client.clone()));
    let replica_sets = Informer::new(kube::Api::all(client.clone()));
    let accounts = Informer::new(kube::Api::all(client.clone()));
    let config_maps = Informer::new(kube::Api::all(client.clone()));
    let cluster_roles = Informer::new(kube::Api::all(client.clone()));
    let deployments = Informer::new(kube::Api::all(client.clone()));
    let mut tasks = Vec::new();
    if on("deployment-controller") {
        let cc = builder.client("deployment-controller").await?;
        let c = controller::deployment::DeploymentController::new(
            cc,
            deployments.clone(),
            replica_sets.clone(),
            recorder_for("deployment-controller"),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_deployment_syncs)));
        deployments.run();
        replica_sets.run();
    }
    let services = Informer::new(kube::Api::all(client.clone()));
    let nodes = Informer::new(kube::Api::all(client.clone()));
    let slices = Informer::new(kube::Api::all(client.clone()));
    let endpoints = Informer::new(kube::Api::all(client.clone()));
    if on("endpointslice-controller") {
        let cc = builder.client("endpointslice-controller").await?;
        let c = controller::endpointslice::EndpointSliceController::new(
            cc,
            services.clone(),
            pods.clone(),
            nodes.clone(),
            slices.clone(),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_service_endpoint_syncs)));
        services.run();
        pods.run();
        nodes.run();
        slices.run();
    }
    if on("endpoints-controller") {
        let cc = builder.client("endpoint-controller").await?;
        let c = controller::endpoint::EndpointsController::new(
            cc,
            services.clone(),
            pods.clone(),
            endpoints.clone(),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_endpoint_syncs)));
        services.run();
        pods.run();
        endpoints.run();
    }
    if on("endpointslice-mirroring-controller") {
        let cc = builder.client("endpointslicemirroring-controller").await?;
        let c = controller::endpointslicemirroring::MirroringController::new(
            cc,
            services.clone(),
            endpoints.clone(),
            slices.clone(),
            flags.mirroring_max_endpoints_per_subset,
        );
        tasks.push(tokio::spawn(
            c.run(flags.mirroring_concurrent_service_endpoint_syncs),
        ));
        services.run();
        endpoints.run();
        slices.run();
    }
    if on("node-lifecycle-controller") || on("taint-eviction-controller") {
        let cc = builder.client("node-controller").await?;
        let leases = Informer::new(kube::Api::namespaced(client.clone(), "kube-node-lease"));
        let c = controller::nodelifecycle::NodeLifecycle::new(
            cc,
            nodes.clone(),
            leases.clone(),
            pods.clone(),
            recorder_for("node-controller"),
            duration(&flags.node_monitor_period)?,
            duration(&flags.node_monitor_grace_period)?,
        );
        tasks.push(tokio::spawn(c.run()));
        nodes.run();
        leases.run();
        pods.run();
    }
    let revisions = Informer::new(kube::Api::all(client.clone()));
    if on("daemonset-controller") {
        let cc = builder.client("daemon-set-controller").await?;
        let sets = Informer::new(kube::Api::all(client.clone()));
        let c = controller::daemon::DaemonSetController::new(
            cc,
            sets.clone(),
            pods.clone(),
            nodes.clone(),
            revisions.clone(),
            recorder_for("daemonset-controller"),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_daemonset_syncs)));
        revisions.run();
        sets.run();
        pods.run();
        nodes.run();
    }
    if on("statefulset-controller") {
        let cc = builder.client("statefulset-controller").await?;
        let sets = Informer::new(kube::Api::all(client.clone()));
        let c = controller::statefulset::StatefulSetController::new(
            cc,
            sets.clone(),
            pods.clone(),
            revisions.clone(),
            recorder_for("statefulset-controller"),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_statefulset_syncs)));
        revisions.run();
        sets.run();
        pods.run();
    }
    let jobs = Informer::new(kube::Api::all(client.clone()));
    if on("ttl-after-finished-controller") {
        let cc = builder.client("ttl-after-finished-controller").await?;
        let c = controller::ttlafterfinished::TtlAfterFinished::new(cc, jobs.clone());
        tasks.push(tokio::spawn(c.run()));
        jobs.run();
    }
    if on("pod-garbage-collector-controller") {
        let cc = builder.client("pod-garbage-collector").await?;
        let threshold = flags.terminated_pod_gc_threshold.max(0) as usize;
        let c = controller::podgc::PodGc::new(
            cc,
            pods.clone(),
            nodes.clone(),
            threshold,
            Duration::from_secs(20),
        );
        tasks.push(tokio::spawn(c.run()));
        pods.run();
        nodes.run();
    }
    if on("job-controller") {
        let cc = builder.client("job-controller").await?;
        let c = controller::job::JobController::new(
            cc,
            jobs.clone(),
            pods.clone(),
            recorder_for("job-controller"),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_job_syncs)));
        jobs.run();
        pods.run();
    }
    if on("cronjob-controller") {
        let cc = builder.client("cronjob-controller").await?;
        let cronjobs = Informer::new(kube::Api::all(client.clone()));
        let c = controller::cronjob::CronJobController::new(
            cc,
            cronjobs.clone(),
            jobs.clone(),
            recorder_for("cronjob-controller"),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_cron_job_syncs)));
        cronjobs.run();
        jobs.run();
    }
    if on("garbage-collector-controller") {
        let cc = builder.client("generic-garbage-collector").await?;
        let gc = controller::garbagecollector::GarbageCollector::new(cc);
        let workers = flags.concurrent_gc_syncs;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = gc.run(workers).await {
                tracing::error!(error = %e, "garbage collector stopped");
            }
        }));
    }
    if on("namespace-controller") {
        let cc = builder.client("namespace-controller").await?;
        let c = controller::namespace::NamespaceController::new(cc, namespaces.clone());
        tasks.push(tokio::spawn(c.run(flags.concurrent_namespace_syncs)));
        namespaces.run();
    }
    if on("replicaset-controller") {
        let cc = builder.client("replicaset-controller").await?;
        let c = controller::replicaset::ReplicaSetController::new(
            &controller::replicaset::REPLICA_SET,
            cc,
            replica_sets.clone(),
            pods.clone(),
            recorder_for("replicaset-controller"),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_replicaset_syncs)));
        replica_sets.run();
        pods.run();
    }
    if on("replicationcontroller-controller") {
        let cc = builder.client("replication-controller").await?;
        let rcs = Informer::<k8s_openapi::api::core::v1::ReplicationController>::new(
            kube::Api::all(client.clone()),
        );
        let as_sets = Informer::mirror(&rcs, controller::replicaset::from_replication_controller);
        let c = controller::replicaset::ReplicaSetController::new(
            &controller::replicaset::REPLICATION_CONTROLLER,
            cc,
            as_sets,
            pods.clone(),
            recorder_for("replication-controller"),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_rc_syncs)));
        rcs.run();
        pods.run();
    }
    if on("serviceaccount-controller") {
        let cc = builder.client("service-account-controller").await?;
        let c = controller::serviceaccount::ServiceAccountsController::new(
            cc,
            namespaces.clone(),
            accounts.clone(),
        );
        tasks.push(tokio::spawn(c.run(flags.concurrent_serviceaccount_syncs)));
        namespaces.run();
        accounts.run();
    }
    if on("root-ca-certificate-publisher-controller") {
        let cc = builder.client("root-ca-cert-publisher").await?;
        match root_ca.clone() {
            Some(ca) => {
                let c = controller::certificates::rootcacertpublisher::Publisher::new(
                    cc,
                    namespaces.clone(),
                    config_maps.clone(),
                    ca,
                );
                tasks.push(tokio::spawn(c.run()));
                namespaces.run();
                config_maps.run();
            }
            None => tracing::warn!(
                "no --root-ca-file: the root-ca-certificate-publisher-controller is not started"
            ),
        }
    }
    if on("clusterrole-aggregation-controller") {
        let cc = builder.client("clusterrole-aggregation-controller").await?;
        let c = controller::clusterroleaggregation::AggregationController::new(
            cc,
            cluster_roles.clone(),
        );
        tasks.push(tokio::spawn(c.run()));
        cluster_roles.run();
    }
    if on("resourcequota-controller") {
        let cc = builder.client("resourcequota-controller").await?;
        let monitors = controller::resourcequota::Monitors {
            pods: pods.clone(),
            services: services.clone(),
            claims: Informer::new(kube::Api::all(client.clone())),
            config_maps: config_maps.clone(),
            secrets: Informer::new(kube::Api::all(client.clone())),
            controllers: Informer::new(kube::Api::all(client.clone())),
        };
        let c = controller::resourcequota::ResourceQuotaController::new(
            cc,
            Informer::new(kube::Api::all(client.clone())),
            monitors,
            duration(&flags.resource_quota_sync_period)?,
        );
        c.start_informers();
        tasks.push(tokio::spawn(c.run(flags.concurrent_resource_quota_syncs)));
    }
    if on("disruption-controller") {
        let cc = builder.client("disruption-controller").await?;
        let budgets = Informer::new(kube::Api::all(client.clone()));
        let c = controller::disruption::DisruptionController::new(
            cc,
            budgets.clone(),
            pods.clone(),
            recorder_for("controllermanager"),
        );
        tasks.push(tokio::spawn(c.run()));
        budgets.run();
        pods.run();
    }
    let csrs = Informer::new(kube::Api::all(client.clone()));
    if on("certificatesigningrequest-approving-controller") {
        let cc = builder.client("certificate-controller").await?;
        let c = controller::certificates::approver::Approver::new(cc, csrs.clone());
        tasks.push(tokio::spawn(c.run()));
        csrs.run();
    }
    if on("certificatesigningrequest-signing-controller") {
        let cc = builder.client("certificate-controller").await?;
        match (
            &flags.cluster_signing_cert_file,
            &flags.cluster_signing_key_file,
        ) {
            (Some(cert), Some(key)) => {
                let read = |p: &PathBuf| {
                    std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
                };
                let authority = controller::certificates::authority::Authority::load(
                    &read(cert)?,
                    &read(key)?,
                )?;
                let c = controller::certificates::signer::Signer::new(
                    cc,
                    csrs.clone(),
                    authority,
                    duration(&flags.cluster_signing_duration)?,
                );
                tasks.push(tokio::spawn(c.run()));
                csrs.run();
            }
            _ => tracing::warn!(
                "no --cluster-signing-cert-file/--cluster-signing-key-file: the certificatesigningrequest-signing-controller is not started"
            ),
        }
    }
    if on("certificatesigningrequest-cleaner-controller") {
        let cc = builder.client("certificate-controller").await?;
        let c = controller::certificates::cleaner::Cleaner::new(
            cc,
            csrs.clone(),
            Duration::from_secs(3600),
        );
        tasks.push(tokio::spawn(c.run()));
        csrs.run();
    }
    let volumes = Informer::new(kube::Api::all(client.clone()));
    let claims = Informer::new(kube::Api::all(client.clone()));
    if on("persistentvolume-binder-controller") {
        let cc = builder.client("persistent-volume-binder").await?;
        let classes = Informer::new(kube::Api::all(client.clone()));
        let c = controller::volume::persistentvolume::PersistentVolumeController::new(
            cc,
            volumes.clone(),
            claims.clone(),
            classes.clone(),
            recorder_for("persistentvolume-controller"),
            duration(&flags.pvclaimbinder_sync_period)?,
        );
        tasks.push(tokio::spawn(c.run()));
        volumes.run();
        claims.run();
        classes.run();
    }
    if on("persistentvolumeclaim-protection-controller") {
        let cc = builder.client("pvc-protection-controller").await?;
        let c =
            controller::volume::pvcprotection::PvcProtection::new(cc, claims.clone(), pods.clone());
        tasks.push(tokio::spawn(c.run()));
        claims.run();
        pods.run();
    }
    if on("persistentvolume-protection-controller") {
        let cc = builder.client("pv-protection-controller").await?;
        let c = controller::volume::pvprotection::PvProtection::new(cc, volumes.clone());
        tasks.push(tokio::spawn(c.run()));
        volumes.run();
    }
    let system_secrets = Informer::new(kube::Api::namespaced(client.clone(), "kube-system"));
    if on("bootstrap-signer-controller") {
        let cc = builder.client("bootstrap-signer").await?;
        let public = Informer::new(kube::Api::namespaced(client.clone(), "kube-public"));
        let c = controller::bootstrap::bootstrapsigner::BootstrapSigner::new(
            cc,
            public.clone(),
            system_secrets.clone(),
        );
        tasks.push(tokio::spawn(c.run()));
        public.run();
        system_secrets.run();
    }
    if on("token-cleaner-controller") {
        let cc = builder.client("token-cleaner").await?;
        let c = controller::bootstrap::tokencleaner::TokenCleaner::new(cc, system_secrets.clone());
        tasks.push(tokio::spawn(c.run()));
        system_secrets.run();
    }
    if on("serviceaccount-token-controller") {
        match &flags.service_account_private_key_file {
            // As upstream, it runs with the root credentials: the per-controller ones
            // depend on it.
            Some(path) => {
                let signer = serviceaccount::jwt::Signer::load(path)?;
                let secrets = Informer::new(kube::Api::all(client.clone()));
                let c = controller::serviceaccount::tokens::TokensController::new(
                    client.clone(),
                    accounts.clone(),
                    secrets.clone(),
                    signer,
                    root_ca.clone(),
                );
                tasks.push(tokio::spawn(c.run()));
                accounts.run();
                secrets.run();
            }
            None => tracing::warn!(
                "no --service-account-private-key-file: the serviceaccount-token-controller is not started"
            ),
        }
    }
    if on("node-ipam-controller") && flags.allocate_node_cidrs {
        let sets = node_cidr_sets(&flags)?;
        let cc = builder.client("node-controller").await?;
        let c = controller::nodeipam::NodeIpamController::new(
            cc,
            nodes.clone(),
            sets,
            recorder_for("cidrAllocator"),
        );
        tasks.push(tokio::spawn(c.run()));
        nodes.run();
    }
    if on("ttl-controller") {
        let cc = builder.client("ttl-controller").await?;
        let c = controller::ttl::TtlController::new(cc, nodes.clone());
        tasks.push(tokio::spawn(c.run()));
        nodes.run();
    }
    if on("horizontal-pod-autoscaler-controller") {
        let cc = builder.client("horizontal-pod-autoscaler").await?;
        let hpas = Informer::new(kube::Api::all(client.clone()));
        let c = controller::podautoscaler::HpaController::new(
            cc,
            hpas.clone(),
            recorder_for("horizontal-pod-autoscaler"),
            duration(&flags.horizontal_pod_autoscaler_sync_period)?,
            flags.horizontal_pod_autoscaler_tolerance,
            duration(&flags.horizontal_pod_autoscaler_downscale_stabilization)?,
        );
        tasks.push(tokio::spawn(
            c.run(flags.concurrent_horizontal_pod_autoscaler_syncs),
        ));
        hpas.run();
    }
    if on("ephemeral-volume-controller") {
        let cc = builder.client("ephemeral-volume-controller").await?;
        let c = controller::volume::ephemeral::EphemeralController::new(
            cc,
            pods.clone(),
            recorder_for("ephemeral_volume"),
        );
        tasks.push(tokio::spawn(c.run()));
        pods.run();
    }
    let skipped: Vec<&&str> = controllers.iter().filter(|c| !BUILT.contains(c)).collect();
    tracing::info!(controllers = ?skipped, "controllers not built yet; skipped");
    tracing::info!(controllers = ?controllers.iter().filter(|c| BUILT.contains(c)).collect::<Vec<_>>(), "started controllers");
    let result = tokio::select! {
        _ = component_base::signals::shutdown_signal() => Ok(()),
        _ = lost => Err("leaderelection lost".to_string()),
    };
    let _ = stop_tx.send(true);
    for t in tasks {
        t.abort();
    }
    builder.cleanup();
    result
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    flags.logging.init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    component_base::exit_on_error("kube-controller-manager", run(flags).await);
}

#[cfg(test)]
mod tests {
    use super::enabled;

    #[test]
    fn controllers_flag_follows_upstream() {
        let list = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        let all = enabled(&list("*")).unwrap();
        assert!(all.contains(&"replicaset-controller"));
        assert!(
            !all.contains(&"bootstrap-signer-controller"),
            "off by default"
        );
        let some = enabled(&list("*,-replicaset,bootstrapsigner")).unwrap();
        assert!(!some.contains(&"replicaset-controller"));
        assert!(some.contains(&"bootstrap-signer-controller"));
        assert_eq!(
            enabled(&list("serviceaccount-controller")).unwrap(),
            ["serviceaccount-controller"]
        );
        assert_eq!(
            enabled(&list("*,-nope")).unwrap_err(),
            "\"nope\" is not in the list of known controllers"
        );
    }
}
