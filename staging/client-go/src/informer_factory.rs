//! The shared informer factory (upstream `client-go/informers` SharedInformerFactory):
//! one informer per kind (and namespace) however many controllers ask for it, started
//! together once every controller has registered its handlers.

use crate::informer::Informer;
use kube::Api;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Starter = Box<dyn Fn() + Send + Sync>;

/// A typed Kubernetes object an informer can hold.
pub trait Object:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Object for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

pub struct SharedInformerFactory {
    client: kube::Client,
    /// (kind, namespace or "" for all) -> `Arc<Informer<K>>`.
    informers: Mutex<HashMap<(TypeId, String), Arc<dyn Any + Send + Sync>>>,
    starters: Mutex<Vec<Starter>>,
}

impl SharedInformerFactory {
    pub fn new(client: kube::Client) -> Self {
        SharedInformerFactory {
            client,
            informers: Mutex::default(),
            starters: Mutex::default(),
        }
    }

    /// The informer of every `K` in the cluster.
    pub fn get<K>(&self) -> Arc<Informer<K>>
    where
        K: Object,
    {
        self.shared("", || Api::all(self.client.clone()))
    }

    /// The informer of the `K`s in one namespace.
    pub fn namespaced<K>(&self, namespace: &str) -> Arc<Informer<K>>
    where
        K: Object + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        self.shared(namespace, || {
            Api::namespaced(self.client.clone(), namespace)
        })
    }

    fn shared<K>(&self, namespace: &str, api: impl FnOnce() -> Api<K>) -> Arc<Informer<K>>
    where
        K: Object,
    {
        let mut informers = self.informers.lock().unwrap();
        let slot = informers
            .entry((TypeId::of::<K>(), namespace.to_string()))
            .or_insert_with(|| {
                let informer = Informer::new(api());
                let run = informer.clone();
                self.starters
                    .lock()
                    .unwrap()
                    .push(Box::new(move || run.run()));
                informer
            });
        slot.clone()
            .downcast::<Informer<K>>()
            .expect("one informer type per key")
    }

    /// Starts every informer asked for so far (again safe: each starts once).
    pub fn start(&self) {
        for start in self.starters.lock().unwrap().iter() {
            start();
        }
    }

    /// How many informers were asked for.
    pub fn len(&self) -> usize {
        self.informers.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
