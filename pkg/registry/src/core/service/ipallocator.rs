//! ClusterIP allocation (upstream `pkg/registry/core/service/ipallocator`, the IPAddress
//! allocator of 1.33+): each allocated IP is an `networking.k8s.io/v1` IPAddress object
//! created with create-if-absent, so two apiservers can never hand out the same IP.

use apimachinery::{Cause, StatusError};
use apiserver::storage::interface::{Backend, StoreError};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {s:?}"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR {s:?} (only IPv4 service ranges are supported)"))?;
        let prefix: u8 = len.parse().map_err(|_| format!("invalid CIDR {s:?}"))?;
        if !(1..=30).contains(&prefix) {
            return Err(format!(
                "service CIDR {s:?} must have a prefix length between /1 and /30"
            ));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            base: u32::from(ip) & mask,
            prefix,
        })
    }

    pub fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == self.base
    }

    /// The `n`th address of the range.
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + n)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

pub struct IpAllocator {
    pub cidr: Cidr,
    backend: Arc<dyn Backend>,
    prefix: String,
}

fn invalid_ip(field: &str, ip: &str, detail: &str) -> Cause {
    Cause::invalid(field, &json!(ip), detail)
}

impl IpAllocator {
    pub fn new(cidr: Cidr, backend: Arc<dyn Backend>, storage_prefix: &str) -> Self {
        Self {
            cidr,
            backend,
            prefix: format!("{storage_prefix}/ipaddresses/"),
        }
    }

    fn record(ip: &str, parent: &Value) -> Value {
        json!({
            "kind": "IPAddress",
            "apiVersion": "networking.k8s.io/v1",
            "metadata": {
                "name": ip,
                "uid": uuid_like(),
                "creationTimestamp": apiserver::registry::meta::now_rfc3339(),
                "labels": {
                    "ipaddress.kubernetes.io/ip-family": "IPv4",
                    "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"
                }
            },
            "spec": {"parentRef": {"group": "", "resource": "services", "namespace": parent["metadata"]["namespace"], "name": parent["metadata"]["name"]}}
        })
    }

    async fn try_claim(&self, ip: Ipv4Addr, svc: &Value) -> Result<bool, StatusError> {
        let rec = Self::record(&ip.to_string(), svc);
        let bytes = serde_json::to_vec(&rec).expect("JSON").into();
        match self
            .backend
            .create(&format!("{}{ip}", self.prefix), bytes)
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists) => Ok(false),
            Err(e) => Err(StatusError::internal(format!("allocating cluster IP: {e}"))),
        }
    }

    /// Allocates `requested` (validated against the range) or a free address.
    pub async fn allocate(
        &self,
        requested: Option<&str>,
        svc: &Value,
    ) -> Result<String, StatusError> {
        let name = svc["metadata"]["name"].as_str().unwrap_or_default();
        let invalid = |c: Cause| StatusError::invalid("", "Service", name, vec![c]);
        if let Some(req) = requested {
            let ip: Ipv4Addr = req.parse().map_err(|_| {
                invalid(invalid_ip(
                    "spec.clusterIPs[0]",
                    req,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ))
            })?;
            if !self.cidr.contains(ip)
                || u32::from(ip) == self.cidr.base
                || u32::from(ip) == self.cidr.base + self.cidr.size() - 1
            {
                return Err(invalid(invalid_ip(
                    "spec.clusterIPs[0]",
                    req,
                    &format!(
                        "failed to allocate IP {req}: the provided IP ({req}) is not in the valid range. The range of valid IPs is {}",
                        self.cidr
                    ),
                )));
            }
            if !self.try_claim(ip, svc).await? {
                return Err(invalid(invalid_ip(
                    "spec.clusterIPs[0]",
                    req,
                    &format!("failed to allocate IP {req}: provided IP is already allocated"),
                )));
            }
            return Ok(req.to_string());
        }
        // Usable offsets are 1..size-1 (network and broadcast excluded). As upstream,
        // dynamic allocation prefers the upper part of the range, leaving the lower part
        // for addresses users pick themselves.
        let usable = self.cidr.size() - 2;
        let lower = (usable / 16).clamp(16.min(usable), 256).min(usable);
        let start = 1 + (rand_u32() % (usable - lower).max(1)) + lower;
        for i in 0..usable {
            let off = 1 + ((start - 1 + i) % usable);
            let ip = self.cidr.nth(off);
            if self.try_claim(ip, svc).await? {
                return Ok(ip.to_string());
            }
        }
        Err(StatusError::new(
            500,
            "InternalError",
            "Internal error occurred: failed to allocate a serviceIP: range is full".to_string(),
        ))
    }

    pub async fn release(&self, ip: &str) {
        if let Err(e) = self
            .backend
            .delete(&format!("{}{ip}", self.prefix), 0)
            .await
            && e != StoreError::NotFound
        {
            tracing::warn!(ip, error = %e, "releasing cluster IP");
        }
    }
}

pub fn rand_u32() -> u32 {
    let b = uuid::Uuid::new_v4().into_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn uuid_like() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        let c = Cidr::parse("10.96.0.0/12").unwrap();
        assert_eq!(c.size(), 1 << 20);
        assert!(c.contains("10.100.1.1".parse().unwrap()));
        assert!(!c.contains("10.112.0.1".parse().unwrap()));
        assert_eq!(c.nth(1).to_string(), "10.96.0.1");
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
    }
}
