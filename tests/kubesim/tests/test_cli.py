"""The command line: ``python -m tests.kubesim serve`` is ready within seconds, and SIGTERM
leaves nothing running — its PostgreSQL servers included."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubernetes import client, config

from .conftest import REPO, wait_for


def _postgres_processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if marker in line and "postgres" in line]


def test_serve_writes_kubeconfig_and_sigterm_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tests.kubesim", "serve", "--port", "0", "--state-dir",
                             str(state)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for((state / "kubeconfig").exists, timeout=30, interval=0.05)
        ready_after = time.monotonic() - started
        api = client.CoreV1Api(config.new_client_from_config(str(state / "kubeconfig")))
        assert {n.metadata.name for n in api.list_namespace().items} >= {"default", "kube-system"}
        api.create_namespaced_pod("default", {"metadata": {"name": "db"}, "spec": {"containers": [
            {"name": "postgres", "image": "postgres:15", "env": [{"name": "POSTGRES_PASSWORD", "value": "pw"}]}]}})
        wait_for(lambda: api.read_namespaced_pod("db", "default").status.phase == "Running", timeout=60)
        marker = f"kubesim-pg/{proc.pid}-"
        assert _postgres_processes(marker), "the database pod has no PostgreSQL server"
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert ready_after < 10, f"kubeconfig appeared only after {ready_after:.1f}s"
    assert "kubesim serving on http://127.0.0.1:" in output
    assert _postgres_processes(f"kubesim-pg/{proc.pid}-") == []
    assert not list((Path(tempfile.gettempdir()) / "kubesim-pg").glob(f"{proc.pid}-*"))
