"""Reads the apply test's objects in a namespace with the official Python client and
prints them as the client sees them (sanitized to JSON), volatile fields masked."""
import json, sys
from kubernetes import client, config

config.load_kube_config(config_file=sys.argv[1])
ns = sys.argv[2]
api = client.ApiClient()
objs = {
    "deployment": client.AppsV1Api(api).read_namespaced_deployment("web", ns),
    "service": client.CoreV1Api(api).read_namespaced_service("web", ns),
    "configmap": client.CoreV1Api(api).read_namespaced_config_map("settings", ns),
}
out = {}
for k, o in objs.items():
    d = api.sanitize_for_serialization(o)
    m = d["metadata"]
    for f in ("uid", "resourceVersion", "creationTimestamp", "namespace"):
        m.pop(f, None)
    ann = m.get("annotations") or {}
    key = "kubectl.kubernetes.io/last-applied-configuration"
    if key in ann:
        ann[key] = ann[key].replace('"namespace":"%s"' % ns, '"namespace":"NS"')
    for mf in m.get("managedFields", []):
        mf.pop("time", None)
    d.get("spec", {}).pop("clusterIP", None)
    d.get("spec", {}).pop("clusterIPs", None)
    d.pop("status", None)
    out[k] = d
print(json.dumps(out, sort_keys=True, indent=1))
