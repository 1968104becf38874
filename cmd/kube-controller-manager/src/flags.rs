//! kube-controller-manager's flags (upstream `cmd/kube-controller-manager/app/options`).

use clap::Parser;
use component_base::logs::LoggingOptions;
use std::path::PathBuf;

/// The Kubernetes controller manager is a daemon that embeds the core control loops
/// shipped with Kubernetes. A controller is a control loop that watches the shared state
/// of the cluster through the apiserver and makes changes attempting to move the current
/// state towards the desired state.
#[derive(Parser, Debug)]
#[command(name = "kube-controller-manager", version = "v1.35.0")]
pub(crate) struct Flags {
    /// Path to kubeconfig file with authorization and master location information.
    #[arg(long = "kubeconfig")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// A list of controllers to enable. '*' enables all on-by-default controllers, 'foo' enables the controller named 'foo', '-foo' disables the controller named 'foo'.
    #[arg(long = "controllers", value_delimiter = ',', default_value = "*")]
    pub(crate) controllers: Vec<String>,
    /// QPS to use while talking with kubernetes apiserver.
    #[arg(long = "kube-api-qps", default_value_t = 20.0)]
    pub(crate) kube_api_qps: f32,
    /// Burst to use while talking with kubernetes apiserver.
    #[arg(long = "kube-api-burst", default_value_t = 30)]
    pub(crate) kube_api_burst: u32,
    /// Start a leader election client and gain leadership before executing the main loop.
    #[arg(long = "leader-elect", action = clap::ArgAction::Set, default_value_t = true)]
    pub(crate) leader_elect: bool,
    #[arg(long = "leader-elect-lease-duration", default_value = "15s")]
    pub(crate) leader_elect_lease_duration: String,
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s")]
    pub(crate) leader_elect_renew_deadline: String,
    #[arg(long = "leader-elect-retry-period", default_value = "2s")]
    pub(crate) leader_elect_retry_period: String,
    #[arg(long = "leader-elect-resource-lock", default_value = "leases")]
    pub(crate) leader_elect_resource_lock: String,
    #[arg(
        long = "leader-elect-resource-name",
        default_value = "kube-controller-manager"
    )]
    pub(crate) leader_elect_resource_name: String,
    #[arg(
        long = "leader-elect-resource-namespace",
        default_value = "kube-system"
    )]
    pub(crate) leader_elect_resource_namespace: String,
    /// The number of replica sets that are allowed to sync concurrently.
    #[arg(long = "concurrent-replicaset-syncs", default_value_t = 5)]
    pub(crate) concurrent_replicaset_syncs: usize,
    /// The number of replication controllers that are allowed to sync concurrently. Larger number = more responsive replica management, but more CPU (and network) load
    #[arg(long = "concurrent-rc-syncs", default_value_t = 5)]
    pub(crate) concurrent_rc_syncs: usize,
    /// The number of deployment objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-deployment-syncs", default_value_t = 5)]
    pub(crate) concurrent_deployment_syncs: usize,
    /// The number of garbage collector workers that are allowed to sync concurrently.
    #[arg(long = "concurrent-gc-syncs", default_value_t = 20)]
    pub(crate) concurrent_gc_syncs: usize,
    /// The number of endpoint syncing operations that will be done concurrently.
    #[arg(long = "concurrent-endpoint-syncs", default_value_t = 5)]
    pub(crate) concurrent_endpoint_syncs: usize,
    /// The number of service endpoint syncing operations that will be done concurrently by the endpointslice-mirroring-controller.
    #[arg(
        long = "mirroring-concurrent-service-endpoint-syncs",
        default_value_t = 5
    )]
    pub(crate) mirroring_concurrent_service_endpoint_syncs: usize,
    /// The maximum number of endpoints that will be added to an EndpointSlice by the EndpointSliceMirroring controller.
    #[arg(long = "mirroring-max-endpoints-per-subset", default_value_t = 1000)]
    pub(crate) mirroring_max_endpoints_per_subset: usize,
    /// The number of service endpoint slice syncing operations that will be done concurrently.
    #[arg(long = "concurrent-service-endpoint-syncs", default_value_t = 5)]
    pub(crate) concurrent_service_endpoint_syncs: usize,
    /// The number of daemonset objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-daemonset-syncs", default_value_t = 2)]
    pub(crate) concurrent_daemonset_syncs: usize,
    /// The number of statefulset objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-statefulset-syncs", default_value_t = 5)]
    pub(crate) concurrent_statefulset_syncs: usize,
    /// The number of job objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-job-syncs", default_value_t = 5)]
    pub(crate) concurrent_job_syncs: usize,
    /// The number of cron job objects that are allowed to sync concurrently. Larger number = more responsive jobs, but more CPU (and network) load
    #[arg(long = "concurrent-cron-job-syncs", default_value_t = 5)]
    pub(crate) concurrent_cron_job_syncs: usize,
    /// Number of terminated pods that can exist before the terminated pod garbage collector starts deleting terminated pods. If <= 0, the terminated pod garbage collector is disabled.
    #[arg(long = "terminated-pod-gc-threshold", default_value_t = 12500)]
    pub(crate) terminated_pod_gc_threshold: i64,
    /// The number of ttl-after-finished-controller workers that are allowed to sync concurrently.
    #[arg(long = "concurrent-ttl-after-finished-syncs", default_value_t = 5)]
    pub(crate) concurrent_ttl_after_finished_syncs: usize,
    /// The number of namespace objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-namespace-syncs", default_value_t = 10)]
    pub(crate) concurrent_namespace_syncs: usize,
    /// The number of service account objects that are allowed to sync concurrently.
    #[arg(long = "concurrent-serviceaccount-syncs", default_value_t = 1)]
    pub(crate) concurrent_serviceaccount_syncs: usize,
    /// The number of resource quotas that are allowed to sync concurrently. Larger number = more responsive quota management, but more CPU (and network) load.
    #[arg(long = "concurrent-resource-quota-syncs", default_value_t = 5)]
    pub(crate) concurrent_resource_quota_syncs: usize,
    /// The period for syncing quota usage status in the system.
    #[arg(long = "resource-quota-sync-period", default_value = "5m0s")]
    pub(crate) resource_quota_sync_period: String,
    /// If set, this root certificate authority will be included in service account's token secret and the kube-root-ca.crt ConfigMap.
    #[arg(long = "root-ca-file")]
    pub(crate) root_ca_file: Option<PathBuf>,
    /// Filename containing a PEM-encoded private RSA or ECDSA key used to sign service account tokens.
    #[arg(long = "service-account-private-key-file")]
    pub(crate) service_account_private_key_file: Option<PathBuf>,
    /// If true, use individual service account credentials for each controller.
    #[arg(long = "use-service-account-credentials", action = clap::ArgAction::Set, default_value_t = false)]
    pub(crate) use_service_account_credentials: bool,
    /// Filename containing a PEM-encoded X509 CA certificate used to issue cluster-scoped certificates.
    #[arg(long = "cluster-signing-cert-file")]
    pub(crate) cluster_signing_cert_file: Option<PathBuf>,
    /// Filename containing a PEM-encoded RSA or ECDSA private key used to sign cluster-scoped certificates.
    #[arg(long = "cluster-signing-key-file")]
    pub(crate) cluster_signing_key_file: Option<PathBuf>,
    /// The max length of duration signed certificates will be given. Individual CSRs may request shorter certs by setting spec.expirationSeconds.
    #[arg(long = "cluster-signing-duration", default_value = "8760h0m0s")]
    pub(crate) cluster_signing_duration: String,
    /// Should CIDRs for Pods be allocated and set on the cloud provider.
    #[arg(long = "allocate-node-cidrs", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub(crate) allocate_node_cidrs: bool,
    /// CIDR Range for Pods in cluster (a comma-separated pair for dual stack).
    #[arg(long = "cluster-cidr")]
    pub(crate) cluster_cidr: Option<String>,
    /// CIDR Range for Services in cluster; node pod CIDRs never overlap it.
    #[arg(long = "service-cluster-ip-range")]
    pub(crate) service_cluster_ip_range: Option<String>,
    /// Mask size for node cidr in cluster. Default is 24 for IPv4 and 64 for IPv6.
    #[arg(long = "node-cidr-mask-size")]
    pub(crate) node_cidr_mask_size: Option<u8>,
    /// Mask size for IPv4 node cidr in dual-stack cluster. Default is 24.
    #[arg(long = "node-cidr-mask-size-ipv4")]
    pub(crate) node_cidr_mask_size_ipv4: Option<u8>,
    /// Mask size for IPv6 node cidr in dual-stack cluster. Default is 64.
    #[arg(long = "node-cidr-mask-size-ipv6")]
    pub(crate) node_cidr_mask_size_ipv6: Option<u8>,
    /// The period for syncing persistent volumes and persistent volume claims
    #[arg(long = "pvclaimbinder-sync-period", default_value = "15s")]
    pub(crate) pvclaimbinder_sync_period: String,
    /// The period for syncing the number of pods in horizontal pod autoscaler.
    #[arg(long = "horizontal-pod-autoscaler-sync-period", default_value = "15s")]
    pub(crate) horizontal_pod_autoscaler_sync_period: String,
    /// The minimum change (from 1.0) in the desired-to-actual metrics ratio for the horizontal pod autoscaler to consider scaling.
    #[arg(long = "horizontal-pod-autoscaler-tolerance", default_value_t = 0.1)]
    pub(crate) horizontal_pod_autoscaler_tolerance: f64,
    /// The period for which autoscaler will look backwards and not scale down below any recommendation it made during that period.
    #[arg(
        long = "horizontal-pod-autoscaler-downscale-stabilization",
        default_value = "5m0s"
    )]
    pub(crate) horizontal_pod_autoscaler_downscale_stabilization: String,
    /// The number of horizontal pod autoscaler objects that are allowed to sync concurrently.
    #[arg(
        long = "concurrent-horizontal-pod-autoscaler-syncs",
        default_value_t = 5
    )]
    pub(crate) concurrent_horizontal_pod_autoscaler_syncs: usize,
    /// The period for syncing NodeStatus in cloud-node-lifecycle-controller and node-lifecycle-controller.
    #[arg(long = "node-monitor-period", default_value = "5s")]
    pub(crate) node_monitor_period: String,
    /// Amount of time which we allow running Node to be unresponsive before marking it unhealthy.
    #[arg(long = "node-monitor-grace-period", default_value = "50s")]
    pub(crate) node_monitor_grace_period: String,
    #[command(flatten)]
    pub(crate) serving: client_go::secure::SecureServingFlags,
    #[command(flatten)]
    pub(crate) logging: LoggingOptions,
}
