//! `kubeadm init phase addon` (upstream `phases/addons`): the cluster DNS and
//! kube-proxy add-ons.

pub mod dns;
pub mod proxy;
