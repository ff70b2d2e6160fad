"""kwok: three fake nodes kept Ready, and the kubelet endpoint that forwards exec and logs.

kwok is given node stages only. Pod lifecycle (addresses, processes, readiness, deletion) is the
pod runner's (``pods/``), because it depends on real processes kwok knows nothing of; kwok's
part for pods is its kubelet API, which runs ``kubectl exec`` as a local process and serves
``kubectl logs`` from a file, as the runner's per-pod ``Exec`` and ``Logs`` objects say.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.support.pgserver import PgServerError, bindir_for

from .addresses import KUBELET_PORT, KWOK_POD_CIDR, NODE_IP
from .binaries import Binaries
from .kubeconfig import write_kubeconfig
from .pki import PKI
from .processes import ProcessError, Supervisor

NODE_NAMES = ("lc-node-0", "lc-node-1", "lc-node-2")
NODE_ANNOTATION = "kwok.x-k8s.io/node"
_NODE_STAGES = ("kustomize/stage/node/fast/node-initialize.yaml", "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml")
_CRDS = ("execs", "clusterexecs", "logs", "clusterlogs")


def kwok_source_dir(components: Path) -> Path:
    """kwok's module folder in the Go module cache (its pinned stages and CRDs are read from there)."""
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"], cwd=components / "kwok",
        capture_output=True, text=True, check=True,
    )
    return Path(out.stdout.strip())


def _postgres_bindirs() -> list[Path]:
    found = []
    for major in (15, 18):
        try:
            found.append(bindir_for(major))
        except PgServerError:
            continue
    return found


def _node_manifest(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: "fake"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
        },
        "status": {
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
        },
    }


def exec_shims(folder: Path, extra_bindirs: tuple[Path, ...]) -> Path:
    """A folder with a link named after every program on this machine, to a script running ``pods/exec_shim.py``.

    kwok resolves an exec's program on its own PATH; with this folder first, every name resolves
    to the shim, which runs the real program inside the container (see exec_shim.py).
    """
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / ".exec-shim"
    program = Path(__file__).resolve().parent / "pods" / "exec_shim.py"
    shim.write_text(f'#!/bin/sh\nexec /usr/bin/python3 -I {program} "$0" "$@"\n')
    shim.chmod(0o700)
    dirs = [Path(p) for p in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")]
    # Programs that only stand-ins bring (into the container's own PATH) need a name here too.
    for program in ("patronictl",):
        link = folder / program
        if not link.exists():
            link.symlink_to(shim)
    for directory in [*dirs, *extra_bindirs]:
        if not directory.is_dir():
            continue
        for program in directory.iterdir():
            link = folder / program.name
            if not link.exists() and os.access(program, os.X_OK) and not program.is_dir():
                link.symlink_to(shim)
    return folder


def start_kwok(state: Path, binaries: Binaries, pki: PKI, supervisor: Supervisor, server: str, components: Path, kubectl) -> None:
    """Install kwok's CRDs, register the nodes and start kwok; return once every node is Ready."""
    source = kwok_source_dir(components)
    kubectl("apply", "--server-side", *[arg for crd in _CRDS for arg in ("-f", str(source / f"kustomize/crd/bases/kwok.x-k8s.io_{crd}.yaml"))])
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{crd}.kwok.x-k8s.io" for crd in _CRDS])
    kubectl("apply", "-f", "-", input_data={"apiVersion": "v1", "kind": "List", "items": [_node_manifest(n) for n in NODE_NAMES]})
    # kwok stands in for every node's kubelet with one identity, so it is an administrator here.
    client = pki.issue("kwok", "kwok", organizations=("system:masters",))
    serving = pki.issue("kwok-serving", "kwok", server=True, ips=(NODE_IP,), dns_names=NODE_NAMES)
    kubeconfig = write_kubeconfig(state / "kubeconfigs" / "kwok.kubeconfig", server, pki.ca.cert, client)
    shims = exec_shims(state / "exec-shims", tuple(_postgres_bindirs()))
    env = {**os.environ, "PATH": f"{shims}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    managed = supervisor.start("kwok", env=env, argv=[
        str(binaries.kwok),
        f"--kubeconfig={kubeconfig}",
        f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake",
        f"--node-ip={NODE_IP}", f"--node-port={KUBELET_PORT}", f"--server-address={NODE_IP}:{KUBELET_PORT}",
        f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
        f"--cidr={KWOK_POD_CIDR}",
        # The heartbeat stage renews node leases and writes node status only every ~10 minutes;
        # without leases the node lifecycle controller marks the nodes (and their pods) NotReady.
        "--node-lease-duration-seconds=40",
        "--enable-crds=Exec,ClusterExec,Logs,ClusterLogs",
        *[f"--config={source / stage}" for stage in _NODE_STAGES],
    ])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        supervisor.check(managed)
        ready = kubectl("get", "nodes", "-o", "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}")
        if ready.split() == ["True"] * len(NODE_NAMES):
            return
        time.sleep(0.5)
    raise ProcessError(f"kwok nodes not Ready after 120 s: {ready!r}")
