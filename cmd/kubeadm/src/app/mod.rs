//! kubeadm's logic (upstream `cmd/kubeadm/app`): the configuration API, the `init`
//! phases, and the `certs` and `token` commands.

pub mod apis {
    pub mod kubeadm;
}
pub mod cmd {
    pub mod certs;
    pub mod token;
}
pub mod phases {
    pub mod certs;
    pub mod kubeconfig;
}
pub mod util {
    pub mod pkiutil;
}
