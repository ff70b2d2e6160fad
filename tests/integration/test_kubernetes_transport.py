"""The module's ``kubernetes`` transport through a real ansible-playbook run, against kubesim.

The database pod is a StatefulSet pod of the official image's shape, backed by a real
PostgreSQL: the module reaches it only through the Kubernetes exec API (psql inside the
pod), the way it reaches a pod on a real cluster. Error cases must end in a clear message
naming what was wrong, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.kubesim.pytest_plugin import kubesim, kubesim_kubeconfig  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
NAMESPACE = "transport-test"


def _statefulset() -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "pgk", "namespace": NAMESPACE},
        "spec": {
            "replicas": 1, "serviceName": "pgk", "selector": {"matchLabels": {"app": "pgk"}},
            "template": {
                "metadata": {"labels": {"app": "pgk"}},
                "spec": {"containers": [{"name": "postgresql", "image": "postgres:15",
                                         "env": [{"name": "POSTGRES_PASSWORD", "value": "superuser-secret"}]}]},
            },
        },
    }


@pytest.fixture(scope="module")
def database_pod(kubesim_kubeconfig):  # noqa: F811  pylint: disable=redefined-outer-name
    api = config.new_client_from_config(config_file=str(kubesim_kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    apps.create_namespaced_stateful_set(NAMESPACE, _statefulset())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector="app=pgk").items
        if pods and any(c.type == "Ready" and c.status == "True" for c in (pods[0].status.conditions or [])):
            return kubesim_kubeconfig
        time.sleep(0.5)
    pytest.fail("pod pgk-0 did not become Ready within 120 s")


def _run(kubeconfig: Path, tmp_path: Path, module_args: dict, check: bool = False) -> dict:
    """One ansible-playbook run of the module; returns the task result (JSON callback) plus raw output."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "converge", "microservices.postgres.service_databases": module_args, "register": "out"}],
    }]))
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "K8S_AUTH_KUBECONFIG": str(kubeconfig)}
    venv_bin = REPO / ".venv" / "bin"
    argv = [str(venv_bin / "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={venv_bin / 'python'}", str(playbook)]
    proc = subprocess.run(argv + (["--check"] if check else []), capture_output=True, text=True, env=env,
                          cwd=REPO, check=False)
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    result["_output"] = proc.stdout + proc.stderr
    return result


def _services() -> list[dict]:
    return [{"database": "kt_orders", "owner": "kt_orders_svc", "password": "kt-orders-pw", "extensions": ["pg_trgm"]},
            {"database": "kt_stock", "owner": "kt_stock_svc", "password": "kt-stock-pw"}]


def _pod_args(**overrides) -> dict:
    """Module arguments for the test pod; an override of None leaves that option out."""
    args = {"transport": "kubernetes", "namespace": NAMESPACE, "pod": "pgk-0", "container": "postgresql",
            "services": _services(), **overrides}
    return {key: value for key, value in args.items() if value is not None}


def _psql_in_pod(kubeconfig: Path, sql: str, database: str = "postgres") -> str:
    proc = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "exec", "-n", NAMESPACE, "pgk-0", "--",
                           "psql", "-U", "postgres", "-d", database, "-At", "-c", sql],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_converges_through_exec_then_changes_nothing(database_pod, tmp_path):
    check = _run(database_pod, tmp_path, _pod_args(), check=True)
    assert check["changed"] is True and check["statements"], check["_output"]
    assert _psql_in_pod(database_pod, "SELECT count(*) FROM pg_database WHERE datname LIKE 'kt_%'") == "0"

    created = _run(database_pod, tmp_path, _pod_args())
    assert created.get("failed") is not True, created["_output"]
    assert [s["status"] for s in created["services"]] == ["created", "created"]
    assert created["statements"] == check["statements"], "check mode listed exactly what the real run executed"
    owners = _psql_in_pod(database_pod, "SELECT string_agg(datname || '=' || pg_get_userbyid(datdba), ',' "
                                        "ORDER BY datname) FROM pg_database WHERE datname LIKE 'kt_%'")
    assert owners == "kt_orders=kt_orders_svc,kt_stock=kt_stock_svc"
    assert _psql_in_pod(database_pod, "SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'", "kt_orders") == "pg_trgm"
    assert _psql_in_pod(database_pod, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'") == "0", \
        "the extension lives in the service database, not in postgres"
    for secret in ("kt-orders-pw", "kt-stock-pw"):
        assert secret not in created["_output"]

    again = _run(database_pod, tmp_path, _pod_args(pod=None, pod_selector="app=pgk"))
    assert again["changed"] is False and again["statements"] == [], again["_output"]


@pytest.mark.parametrize("overrides, expected", [
    ({"pod": "no-such-pod"}, "cannot read pod 'no-such-pod' in namespace 'transport-test': 404"),
    ({"pod": None, "pod_selector": "app=nothing"}, "expected exactly one Ready pod for the pod selected by 'app=nothing'"),
    ({"kubeconfig": "/nonexistent/kubeconfig"}, "cannot load kubeconfig '/nonexistent/kubeconfig'"),
    ({"container": "sidecar"}, "exec into pod 'pgk-0' failed: 400 Bad Request container sidecar is not valid for pod pgk-0"),
], ids=["missing-pod", "selector-matches-nothing", "wrong-kubeconfig", "missing-container"])
def test_errors_name_the_cause_without_a_traceback(database_pod, tmp_path, overrides, expected):
    result = _run(database_pod, tmp_path, _pod_args(**overrides))
    assert result.get("failed") is True, result["_output"]
    assert expected in result["msg"], result["msg"]
    assert "nothing was changed" in result["msg"]
    assert "Traceback" not in result["_output"]
