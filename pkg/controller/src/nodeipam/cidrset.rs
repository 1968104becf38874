//! A cluster CIDR cut into node subnets (upstream `nodeipam/ipam/cidrset`): which
//! subnets are used, the next one to hand out (round-robin after the last given), and
//! upstream's limit on how many subnets one set may hold (mask difference at most 16).

use std::net::IpAddr;

#[derive(Debug)]
pub struct CidrSet {
    base: u128,
    v6: bool,
    cluster_mask: u8,
    node_mask: u8,
    used: Vec<bool>,
    next: usize,
}

fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (ip, len) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("invalid CIDR address: {s}"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("invalid CIDR address: {s}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("invalid CIDR address: {s}"));
    }
    Ok((ip, len))
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

impl CidrSet {
    /// `cluster` cut into subnets of prefix length `node_mask`.
    pub fn new(cluster: &str, node_mask: u8) -> Result<CidrSet, String> {
        let (ip, cluster_mask) = parse_cidr(cluster)?;
        let bits: u8 = if ip.is_ipv4() { 32 } else { 128 };
        if node_mask < cluster_mask || node_mask > bits {
            return Err(format!(
                "invalid node CIDR mask size {node_mask} for cluster CIDR {cluster}: must be between {cluster_mask} and {bits}"
            ));
        }
        if node_mask - cluster_mask > 16 {
            return Err(format!(
                "CIDRSet: subnet mask size too big ({node_mask}) for cluster CIDR {cluster}: at most 16 bits more than {cluster_mask}"
            ));
        }
        let host_bits = u32::from(bits - cluster_mask);
        let mask = if host_bits >= 128 {
            0
        } else {
            !((1u128 << host_bits) - 1)
        };
        let count = 1usize << (node_mask - cluster_mask);
        Ok(CidrSet {
            base: to_u128(ip)
                & mask
                & if bits == 32 {
                    u128::from(u32::MAX)
                } else {
                    u128::MAX
                },
            v6: ip.is_ipv6(),
            cluster_mask,
            node_mask,
            used: vec![false; count],
            next: 0,
        })
    }

    fn bits(&self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    fn cidr(&self, index: usize) -> String {
        let step = 1u128 << (self.bits() - self.node_mask);
        let addr = self.base + step * index as u128;
        let ip: IpAddr = if self.v6 {
            IpAddr::V6(addr.into())
        } else {
            IpAddr::V4((addr as u32).into())
        };
        format!("{ip}/{}", self.node_mask)
    }

    /// The subnet index of `cidr`, if it is one of this set's subnets (or lies within one).
    fn index(&self, cidr: &str) -> Result<usize, String> {
        let (ip, len) = parse_cidr(cidr)?;
        if ip.is_ipv6() != self.v6 {
            return Err(format!("{cidr} is not of this family"));
        }
        if len < self.cluster_mask {
            return Err(format!("{cidr} is larger than the cluster CIDR"));
        }
        let step = 1u128 << (self.bits() - self.node_mask);
        let addr = to_u128(ip);
        if addr < self.base {
            return Err(format!("{cidr} is outside the cluster CIDR"));
        }
        let i = ((addr - self.base) / step) as usize;
        if i >= self.used.len() {
            return Err(format!("{cidr} is outside the cluster CIDR"));
        }
        Ok(i)
    }

    /// The next free subnet after the last one given, or None when all are used.
    pub fn allocate_next(&mut self) -> Option<String> {
        let n = self.used.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if !self.used[i] {
                self.used[i] = true;
                self.next = (i + 1) % n;
                return Some(self.cidr(i));
            }
        }
        None
    }

    pub fn occupy(&mut self, cidr: &str) -> Result<(), String> {
        let i = self.index(cidr)?;
        self.used[i] = true;
        Ok(())
    }

    /// Marks every subnet that overlaps `cidr` used (upstream's `occupyServiceCIDR`: pod
    /// ranges never overlap the service range).
    pub fn occupy_overlapping(&mut self, cidr: &str) {
        let Ok((ip, len)) = parse_cidr(cidr) else {
            return;
        };
        if ip.is_ipv6() != self.v6 {
            return;
        }
        let bits = u32::from(self.bits());
        let host = bits - u32::from(len);
        let size = if host >= 128 {
            u128::MAX
        } else {
            1u128 << host
        };
        let start = to_u128(ip) & !(size.wrapping_sub(1));
        let end = start.saturating_add(size - 1);
        let step = 1u128 << (self.bits() - self.node_mask);
        for (i, used) in self.used.iter_mut().enumerate() {
            let lo = self.base + step * i as u128;
            let hi = lo + step - 1;
            if lo <= end && start <= hi {
                *used = true;
            }
        }
    }

    pub fn release(&mut self, cidr: &str) -> Result<(), String> {
        let i = self.index(cidr)?;
        self.used[i] = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_subnets_round_robin_and_takes_them_back() {
        let mut s = CidrSet::new("10.244.0.0/22", 24).unwrap();
        s.occupy("10.244.1.0/24").unwrap();
        assert_eq!(s.allocate_next().as_deref(), Some("10.244.0.0/24"));
        assert_eq!(s.allocate_next().as_deref(), Some("10.244.2.0/24"));
        assert_eq!(s.allocate_next().as_deref(), Some("10.244.3.0/24"));
        assert_eq!(s.allocate_next(), None);
        s.release("10.244.2.0/24").unwrap();
        assert_eq!(s.allocate_next().as_deref(), Some("10.244.2.0/24"));
        assert!(s.occupy("10.245.0.0/24").is_err());
        assert!(s.occupy("fd00::/64").is_err());
        // The service range is never handed out.
        let mut s = CidrSet::new("10.0.0.0/14", 16).unwrap();
        s.occupy_overlapping("10.1.128.0/17");
        s.occupy_overlapping("192.168.0.0/16");
        assert_eq!(s.allocate_next().as_deref(), Some("10.0.0.0/16"));
        assert_eq!(s.allocate_next().as_deref(), Some("10.2.0.0/16"));
    }

    #[test]
    fn ipv6_and_limits() {
        let mut s = CidrSet::new("fd00:10:244::/56", 64).unwrap();
        assert_eq!(s.allocate_next().as_deref(), Some("fd00:10:244::/64"));
        assert_eq!(s.allocate_next().as_deref(), Some("fd00:10:244:1::/64"));
        assert!(CidrSet::new("10.0.0.0/8", 25).is_err(), "more than 16 bits");
        assert!(CidrSet::new("10.0.0.0/16", 8).is_err());
        assert!(CidrSet::new("10.0.0.0", 24).is_err());
        // A cluster CIDR written with host bits is normalized.
        let mut s = CidrSet::new("10.244.7.9/16", 24).unwrap();
        assert_eq!(s.allocate_next().as_deref(), Some("10.244.0.0/24"));
    }
}
