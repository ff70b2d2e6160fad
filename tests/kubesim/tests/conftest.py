"""Fixtures for kubesim's fidelity suite.

One simulator per test session (per xdist worker, from ``tests.kubesim.pytest_plugin``);
tests stay independent by working in namespaces of their own (``namespace`` fixture).
kubectl binaries come from the machine image (``kubectl.1.30`` ... ``kubectl.1.33``); tests
needing one skip when it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Callable

import pytest

from tests.kubesim import KubeSim
from tests.kubesim.pytest_plugin import kubesim, kubesim_kubeconfig  # noqa: F401  # pylint: disable=unused-import

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO.parent / "shared" / "fixtures" / "zalando-postgres-operator-v2.0.1"
KUBECTL_DIRS = ("/usr/lib/google-cloud-sdk/bin",)
KUBECTL_VERSIONS = ("1.30", "1.33")


def kubectl_binary(version: str) -> str | None:
    found = shutil.which(f"kubectl.{version}")
    if found:
        return found
    for directory in KUBECTL_DIRS:
        candidate = Path(directory) / f"kubectl.{version}"
        if candidate.exists():
            return str(candidate)
    return None


@pytest.fixture(scope="session")
def kubeconfig(kubesim_kubeconfig: Path) -> Path:
    return kubesim_kubeconfig


@pytest.fixture
def namespace(kubesim: KubeSim, request: pytest.FixtureRequest) -> str:
    """A fresh namespace, created through the API, named after the test."""
    from kubernetes import client, config  # noqa: PLC0415

    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    api = client.CoreV1Api(config.new_client_from_config(str(kubesim.kubeconfig_path)))
    api.create_namespace({"metadata": {"name": name}})
    return name


class Kubectl:
    """Runs one kubectl version against the simulator with a private discovery cache."""

    def __init__(self, binary: str, kubeconfig: Path, cache_dir: Path) -> None:
        self.binary = binary
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache_dir)}

    def run(self, *args: str, stdin: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True, env=self.env,
                              timeout=timeout, check=False)

    def json(self, *args: str) -> dict:
        proc = self.run(*args, "-o", "json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


@pytest.fixture(params=KUBECTL_VERSIONS)
def kubectl(request: pytest.FixtureRequest, kubeconfig: Path, tmp_path: Path) -> Kubectl:
    binary = kubectl_binary(request.param)
    if binary is None:
        pytest.skip(f"kubectl {request.param} is not installed on this machine")
    return Kubectl(binary, kubeconfig, tmp_path / "kube-cache")


@pytest.fixture
def dynamic_client(kubesim: KubeSim) -> "object":
    from kubernetes import config, dynamic  # noqa: PLC0415

    return dynamic.DynamicClient(config.new_client_from_config(str(kubesim.kubeconfig_path)))


def wait_for(predicate: Callable[[], object], timeout: float = 60, interval: float = 0.2) -> object:
    """Poll until ``predicate`` returns something truthy; fail with the last value otherwise."""
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    assert value, f"condition not met within {timeout}s"
    return value
