"""The pod exec stream for real: 16 MiB and 512 MiB out of the dev pod through kubesim's exec WebSocket, each in
a fresh process; its peak resident memory must not grow with the size of the stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.roles.helpers import REPO_ROOT

from .helpers import DEV, NAMESPACE, Deployment

CHILD = r"""
import json, resource, sys
from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.pod import PodStreamer
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.kubernetes_exec import PodTarget

kubeconfig, namespace, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
received = 0
def count(chunk):
    global received
    received += len(chunk)
stream = PodStreamer(PodTarget(namespace=namespace, pod="postgresql-0", container="postgresql", kubeconfig=kubeconfig), 600)
result = stream(["head", "-c", str(size), "/dev/zero"], (), count)
print(json.dumps({"rc": result.rc, "received": received, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _stream(dev: Deployment, size: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(dev.kubeconfig), NAMESPACE, str(size)],
                          capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT / ".collections")})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


@DEV
def test_peak_memory_of_a_stream_does_not_grow_with_its_size(dev_deployment: Deployment) -> None:
    small = _stream(dev_deployment, 16 * 1024 * 1024)
    large = _stream(dev_deployment, 512 * 1024 * 1024)
    assert small["rc"] == large["rc"] == 0
    assert small["received"] == 16 * 1024 * 1024 and large["received"] == 512 * 1024 * 1024
    assert large["peak_kib"] - small["peak_kib"] < 16 * 1024, (small, large)
