#!/usr/bin/env python3
"""Print the DaskCluster resource for grading workers on Kubernetes, as YAML.

    .venv/bin/python deploy/kubernetes/make_spec.py --image REGISTRY/cnn-grader-worker:TAG --workers 8 \\
        | kubectl apply -n cnn-grading -f -

It starts from ``dask_kubernetes.operator.make_cluster_spec`` and adds what the
grader needs: one thread per worker process, the pod settings bubblewrap needs
to build its sandbox inside the pod (see docs/scale.md, "Bubblewrap inside
containers"), and the ``dask`` command of current distributed releases (they no
longer install the ``dask-scheduler`` / ``dask-worker`` scripts that
``make_cluster_spec`` writes).

``deploy/kubernetes/daskcluster.yaml`` is this script's output with the
defaults, plus comments and the Namespace; a test keeps the two identical.
The same dict can be handed to ``KubeCluster(custom_cluster_spec=...)``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_IMAGE = "REGISTRY/cnn-grader-worker:TAG"
DEFAULT_NAME = "cnn-grader"
DEFAULT_NAMESPACE = "cnn-grading"
#: The uid the image's `grader` user has (deploy/kubernetes/Dockerfile).
GRADER_UID = 10001


def worker_container_security(seccomp_localhost: str | None = None,
                              apparmor_localhost: str | None = None) -> dict[str, Any]:
    """The worker container's securityContext: what bubblewrap needs, nothing more.

    * seccomp: the runtime's default profile refuses unshare/mount/setns (and clone with
      namespace flags) to a process without CAP_SYS_ADMIN; bwrap needs them. Unconfined,
      or a Localhost profile that allows them.
    * AppArmor: the runtime's default profile has ``deny mount``; bwrap mounts its tmpfs,
      binds and /proc. Unconfined, or a Localhost profile that allows them.
    * procMount Unmasked: with the runtime's masked /proc the kernel refuses the fresh /proc
      bwrap mounts for the sandbox's PID namespace. Needs ``hostUsers: false`` on the pod.
    * No capabilities and no privilege escalation: bwrap gets what it needs inside the user
      namespace it creates.
    """
    seccomp = ({"type": "Localhost", "localhostProfile": seccomp_localhost} if seccomp_localhost
               else {"type": "Unconfined"})
    apparmor = ({"type": "Localhost", "localhostProfile": apparmor_localhost} if apparmor_localhost
                else {"type": "Unconfined"})
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "procMount": "Unmasked",
        "seccompProfile": seccomp,
        "appArmorProfile": apparmor,
    }


def pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": GRADER_UID, "runAsGroup": GRADER_UID}


def scheduler_container_security() -> dict[str, Any]:
    """The scheduler runs no student code: the Restricted profile's settings suit it."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _drop_none(value: Any) -> Any:
    """make_cluster_spec writes ``env: None``; leave such keys out of the resource."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def build_spec(name: str = DEFAULT_NAME, image: str = DEFAULT_IMAGE, workers: int = 4,
               cpu: str = "1", cpu_limit: str = "2", memory: str = "6Gi",
               namespace: str | None = DEFAULT_NAMESPACE,
               seccomp_localhost: str | None = None, apparmor_localhost: str | None = None) -> dict[str, Any]:
    from dask_kubernetes.operator import make_cluster_spec

    spec = make_cluster_spec(
        name=name,
        image=image,
        n_workers=workers,
        resources={"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory}},
        # One worker process per pod, one thread per process: grading uses process-wide state.
        # Scale with replicas (kubectl scale daskcluster ... or --workers), not threads.
        worker_command="dask worker --nthreads 1 --nworkers 1",
    )
    spec = _drop_none(spec)
    if namespace:
        spec["metadata"]["namespace"] = namespace

    scheduler = spec["spec"]["scheduler"]["spec"]
    scheduler["securityContext"] = pod_security()
    container = scheduler["containers"][0]
    container["args"] = ["dask", "scheduler", "--host", "0.0.0.0"]
    container["resources"] = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
    container["securityContext"] = scheduler_container_security()

    worker = spec["spec"]["worker"]["spec"]
    # A user namespace for the pod: required by procMount Unmasked, and it keeps the
    # container's users unprivileged on the node.
    worker["hostUsers"] = False
    worker["securityContext"] = pod_security()
    worker["containers"][0]["securityContext"] = worker_container_security(seccomp_localhost, apparmor_localhost)
    return spec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="'' to leave metadata.namespace out")
    p.add_argument("--image", default=DEFAULT_IMAGE)
    p.add_argument("--workers", type=int, default=4, help="worker pods (one grading process each)")
    p.add_argument("--cpu", default="1", help="CPU request per worker pod")
    p.add_argument("--cpu-limit", default="2", help="CPU limit per worker pod")
    p.add_argument("--memory", default="6Gi", help="memory request and limit per worker pod")
    p.add_argument("--seccomp-localhost", metavar="PATH",
                   help="use this Localhost seccomp profile (relative to the kubelet's seccomp dir) "
                        "instead of Unconfined")
    p.add_argument("--apparmor-localhost", metavar="PROFILE",
                   help="use this AppArmor profile, loaded on every node, instead of Unconfined")
    args = p.parse_args(argv)

    import yaml

    spec = build_spec(name=args.name, image=args.image, workers=args.workers, cpu=args.cpu,
                      cpu_limit=args.cpu_limit, memory=args.memory, namespace=args.namespace or None,
                      seccomp_localhost=args.seccomp_localhost, apparmor_localhost=args.apparmor_localhost)
    yaml.safe_dump(spec, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
