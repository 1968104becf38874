//! Where an APIService's Service is reached (upstream `kube-aggregator/pkg/apiserver/
//! resolvers.go` and `apiserver/pkg/util/proxy`): by its cluster IP (the default), or by
//! one of its ready endpoints with `--enable-aggregator-routing`; an ExternalName
//! Service by its external name either way.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    ClusterIp,
    Endpoint,
}

/// `(host, port)` of `port` on the Service, given its EndpointSlices.
pub fn resolve(
    routing: Routing,
    name: &str,
    svc: &Value,
    slices: &[Value],
    port: i32,
) -> Result<(String, u16), String> {
    let spec = &svc["spec"];
    let port_u16 = |p: i64| u16::try_from(p).map_err(|_| format!("invalid port {p}"));
    if spec["type"] == "ExternalName" {
        let host = spec["externalName"].as_str().unwrap_or_default();
        return Ok((host.to_string(), port_u16(port.into())?));
    }
    if !matches!(
        spec["type"].as_str().unwrap_or("ClusterIP"),
        "ClusterIP" | "NodePort" | "LoadBalancer"
    ) {
        return Err(format!("unsupported service type {:?}", spec["type"]));
    }
    let svc_port = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == Some(port.into()))
        .ok_or_else(|| format!("no service port {port} found for service {name:?}"))?;
    match routing {
        Routing::ClusterIp => {
            let ip = spec["clusterIP"].as_str().unwrap_or_default();
            if ip == "None" {
                return Err("cannot route to service with ClusterIP \"None\"".into());
            }
            Ok((ip.to_string(), port_u16(port.into())?))
        }
        Routing::Endpoint => {
            let port_name = svc_port["name"].as_str().unwrap_or_default();
            for slice in slices {
                let Some(p) = slice["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"].as_str().unwrap_or_default() == port_name)
                    .and_then(|p| p["port"].as_i64())
                else {
                    continue;
                };
                let ready = slice["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| {
                        e["conditions"]["ready"].as_bool().unwrap_or(true)
                            && e["addresses"].as_array().is_some_and(|a| !a.is_empty())
                    });
                if let Some(e) = ready {
                    let ip = e["addresses"][0].as_str().unwrap_or_default();
                    return Ok((ip.to_string(), port_u16(p)?));
                }
            }
            Err(format!("no endpoints available for service {name:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_as_upstream() {
        let cluster = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.9", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}});
        let slice = json!({"ports": [{"name": "https", "port": 6443}], "endpoints": [
            {"addresses": ["10.244.1.3"], "conditions": {"ready": false}},
            {"addresses": ["10.244.1.4"], "conditions": {"ready": true}}]});
        let cases = vec![
            (
                "cluster IP",
                Routing::ClusterIp,
                cluster.clone(),
                vec![],
                443,
                Ok(("10.96.0.9", 443)),
            ),
            (
                "ready endpoint",
                Routing::Endpoint,
                cluster.clone(),
                vec![slice.clone()],
                443,
                Ok(("10.244.1.4", 6443)),
            ),
            (
                "no endpoints",
                Routing::Endpoint,
                cluster.clone(),
                vec![],
                443,
                Err("no endpoints available for service \"api\""),
            ),
            (
                "other port",
                Routing::ClusterIp,
                cluster.clone(),
                vec![],
                8443,
                Err("no service port 8443 found for service \"api\""),
            ),
            (
                "headless",
                Routing::ClusterIp,
                json!({"spec": {"clusterIP": "None", "ports": [{"port": 443}]}}),
                vec![],
                443,
                Err("cannot route to service with ClusterIP \"None\""),
            ),
            (
                "external name",
                Routing::Endpoint,
                json!({"spec": {"type": "ExternalName", "externalName": "api.example.com"}}),
                vec![],
                443,
                Ok(("api.example.com", 443)),
            ),
        ];
        for (name, routing, svc, slices, port, want) in cases {
            let got = resolve(routing, "api", &svc, &slices, port);
            let want = want.map(|(h, p)| (h.to_string(), p)).map_err(String::from);
            assert_eq!(got, want, "{name}");
        }
    }
}
