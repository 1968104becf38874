//! kubeadm's logic (upstream `cmd/kubeadm/app`): the configuration API, the `init`
//! phases, and the `certs` and `token` commands.

pub mod apis {
    pub mod kubeadm;
}
pub mod cmd {
    pub mod certs;
    pub mod init;
    pub mod join;
    pub mod joincontrolplane;
    pub mod renew;
    pub mod reset;
    pub mod token;
    pub mod upgrade;
}
pub mod phases {
    pub mod addons;
    pub mod bootstraptoken;
    pub mod certs;
    pub mod controlplane;
    pub mod copycerts;
    pub mod kubeconfig;
    pub mod kubelet;
    pub mod markcontrolplane;
    pub mod uploadconfig;
    pub mod upgrade {
        pub mod policy;
        pub mod staticpods;
    }
    pub mod waitcontrolplane;
}
pub mod preflight;
pub mod util {
    pub mod apiclient;
    pub mod etcd;
    pub mod netfilter;
    pub mod pkiutil;
}
