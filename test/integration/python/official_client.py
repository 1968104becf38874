"""The official Python client (`pip install kubernetes`) against our apiserver: list,
create, watch and delete pods, plus a typed read of a Deployment. Prints one JSON line
with what it saw; exits non-zero on any failure."""

import json
import sys
import threading

from kubernetes import client, config, watch


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    v1 = client.CoreV1Api()
    ns = "pyclient"
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

    start_rv = v1.list_namespaced_pod(ns).metadata.resource_version
    seen = []

    def follow():
        w = watch.Watch()
        for ev in w.stream(v1.list_namespaced_pod, ns, resource_version=start_rv, timeout_seconds=20):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=follow)
    t.start()

    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]),
    )
    created = v1.create_namespaced_pod(ns, pod)
    listed = v1.list_namespaced_pod(ns, label_selector="app=web")
    got = v1.read_namespaced_pod("web", ns)
    v1.delete_namespaced_pod("web", ns, grace_period_seconds=0)
    t.join(timeout=25)

    try:
        v1.read_namespaced_pod("missing", ns)
        missing = None
    except client.exceptions.ApiException as e:
        missing = {"status": e.status, "reason": json.loads(e.body)["reason"]}

    print(json.dumps({
        "created_uid": created.metadata.uid,
        "listed": [p.metadata.name for p in listed.items],
        "restart_policy": got.spec.restart_policy,
        "dns_policy": got.spec.dns_policy,
        "pull_policy": got.spec.containers[0].image_pull_policy,
        "events": seen,
        "missing": missing,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
