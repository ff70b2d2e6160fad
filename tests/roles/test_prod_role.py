"""postgres_prod against the Kubernetes test bed (tests/kubesim with its simulated Zalando operator),
checked through kubectl: the converged cluster, a second run and check mode changing nothing,
scaling 3 -> 5, and the failures that must end with a clear message naming their cause.

Each test function owns one kubesim, so pytest-xdist may run them in parallel.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import time
from pathlib import Path

import pytest
import yaml

from .helpers import kubectl, kubectl_json, output, recap
from .prod_helpers import FIXTURES, SERVICES, run_prod

kubesim = pytest.importorskip("tests.kubesim")
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"operator fixtures not found at {FIXTURES}")

NS = "microservices"
CLUSTER = "postgres-cluster"
HOST = "prod-postgres"


def _ok(proc) -> str:
    text = output(proc)
    assert proc.returncode == 0, text[-8000:]
    return text


def _changed_tasks(text: str) -> list[str]:
    """Names of the tasks that reported a change (default callback: TASK [...] then 'changed:')."""
    changed, task = [], None
    for line in text.splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK ["):].split("]", 1)[0]
        elif line.startswith("changed:") and task is not None and task not in changed:
            changed.append(task)
    return changed


def _pods_selected(kubeconfig: Path, service: str) -> list[str]:
    selector = kubectl_json(kubeconfig, "get", "service", service, "-n", NS)["spec"]["selector"]
    label = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    pods = kubectl_json(kubeconfig, "get", "pods", "-n", NS, "-l", label)["items"]
    return sorted(pod["metadata"]["name"] for pod in pods)


def _pods_by_role(kubeconfig: Path) -> dict[str, list[str]]:
    pods = kubectl_json(kubeconfig, "get", "pods", "-n", NS, "-l", f"application=spilo,cluster-name={CLUSTER}")
    roles: dict[str, list[str]] = {}
    for pod in pods["items"]:
        roles.setdefault(pod["metadata"]["labels"].get("spilo-role", "none"), []).append(pod["metadata"]["name"])
    return {role: sorted(names) for role, names in roles.items()}


def _secret(kubeconfig: Path, name: str) -> dict[str, str]:
    data = kubectl_json(kubeconfig, "get", "secret", name, "-n", NS)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def _psql_as(kubeconfig: Path, pod: str, creds: dict[str, str], database: str, sql: str):
    return kubectl(kubeconfig, "exec", "-n", NS, pod, "-c", "postgres", "--", "env",
                   f"PGPASSWORD={creds['password']}", "psql", "-X", "-At", "-h", "127.0.0.1",
                   "-U", creds["username"], "-d", database, "-c", sql, check=False)


def test_converge_idempotence_check_mode_and_scaling(tmp_path: Path) -> None:
    with kubesim.KubeSim(tmp_path / "sim") as sim:
        kubeconfig = sim.kubeconfig_path

        # ---- first run: operator, cluster, Services, databases, Secrets ---------------------------
        _ok(run_prod(kubeconfig=kubeconfig))

        table = kubectl(kubeconfig, "get", "postgresql", CLUSTER, "-n", NS).stdout
        assert "Running" in table, table
        pg = kubectl_json(kubeconfig, "get", "postgresql", CLUSTER, "-n", NS)
        assert pg["status"]["PostgresClusterStatus"] == "Running" and pg["spec"]["numberOfInstances"] == 3
        operator = kubectl_json(kubeconfig, "get", "deployment", "postgres-operator", "-n", "postgres-operator")
        assert {c["type"]: c["status"] for c in operator["status"]["conditions"]}["Available"] == "True"

        secrets = set(kubectl(kubeconfig, "get", "secrets", "-n", NS, "-o", "name").stdout.split())
        for owner in SERVICES.values():
            assert f"secret/{owner}.{CLUSTER}.credentials.postgresql.acid.zalan.do" in secrets
        for database in SERVICES:
            assert f"secret/{database}-credentials" in secrets

        roles = _pods_by_role(kubeconfig)
        assert roles == {"master": [f"{CLUSTER}-0"], "replica": [f"{CLUSTER}-1", f"{CLUSTER}-2"]}
        assert _pods_selected(kubeconfig, f"{CLUSTER}-rw") == roles["master"]
        assert _pods_selected(kubeconfig, f"{CLUSTER}-ro") == roles["replica"]
        assert _pods_selected(kubeconfig, f"{CLUSTER}-metrics") == sorted(roles["master"] + roles["replica"])

        # each service logs in with its published Secret, to its own database only
        master = roles["master"][0]
        for database, owner in SERVICES.items():
            creds = _secret(kubeconfig, f"{database}-credentials")
            assert creds["username"] == owner and creds["database"] == database and creds["port"] == "5432"
            assert creds["host"] == f"{CLUSTER}-pooler.{NS}.svc.cluster.local"
            assert creds["rw_host"] == f"{CLUSTER}-rw.{NS}.svc.cluster.local"
            assert creds["ro_host"] == f"{CLUSTER}-ro.{NS}.svc.cluster.local"
            assert creds["password"] == _secret(kubeconfig, f"{owner}.{CLUSTER}.credentials.postgresql.acid.zalan.do"
                                                )["password"]
            assert creds["url"].endswith(f"@{CLUSTER}-pooler.{NS}.svc.cluster.local:5432/{database}")
            login = _psql_as(kubeconfig, master, creds, database, "SELECT current_user || '@' || current_database()")
            assert login.returncode == 0 and login.stdout.strip() == f"{owner}@{database}", login.stderr
        intruder = _psql_as(kubeconfig, master, _secret(kubeconfig, "userdb-credentials"), "paymentdb", "SELECT 1")
        assert intruder.returncode != 0 and "permission denied" in intruder.stderr
        owners = kubectl(kubeconfig, "exec", "-n", NS, master, "-c", "postgres", "--", "psql", "-X", "-At", "-U",
                         "postgres", "-c", "SELECT datname || ':' || pg_get_userbyid(datdba) FROM pg_database").stdout
        for database, owner in SERVICES.items():
            assert f"{database}:{owner}" in owners.split()

        # ---- second run: nothing changes; check mode: nothing would ------------------------------
        again = run_prod(kubeconfig=kubeconfig)
        text = _ok(again)
        assert recap(again)[HOST]["changed"] == 0, _changed_tasks(text)
        check = run_prod("--check", "--diff", kubeconfig=kubeconfig)
        text = _ok(check)
        assert recap(check)[HOST]["changed"] == 0, _changed_tasks(text)

        # ---- scaling 3 -> 5: only the postgresql resource changes, the run waits for the pods ----
        before = {name: kubectl_json(kubeconfig, "get", "pod", name, "-n", NS)["metadata"]["uid"]
                  for names in roles.values() for name in names}
        scaled = run_prod(kubeconfig=kubeconfig, extra_vars={"postgres_prod_instances": 5})
        text = _ok(scaled)
        assert _changed_tasks(text) == [f"microservices.postgres.postgres_prod : Apply postgresql {CLUSTER}"]
        # the run returned only once the new pods were Ready
        roles = _pods_by_role(kubeconfig)
        assert roles == {"master": [f"{CLUSTER}-0"], "replica": [f"{CLUSTER}-{n}" for n in range(1, 5)]}
        for pod in kubectl_json(kubeconfig, "get", "pods", "-n", NS, "-l",
                                f"application=spilo,cluster-name={CLUSTER}")["items"]:
            ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"]
            assert ready == "True", pod["metadata"]["name"]
        for name, uid in before.items():  # nothing else was replaced
            assert kubectl_json(kubeconfig, "get", "pod", name, "-n", NS)["metadata"]["uid"] == uid
        assert _pods_selected(kubeconfig, f"{CLUSTER}-ro") == roles["replica"]
        assert kubectl_json(kubeconfig, "get", "postgresql", CLUSTER, "-n", NS)["status"][
            "PostgresClusterStatus"] == "Running"


def _broken_operator_manifests(tmp_path: Path) -> Path:
    """The release's manifests with an operator that can never start (a missing ConfigMap key)."""
    target = tmp_path / "broken-manifests"
    shutil.copytree(FIXTURES, target)
    deployment = yaml.safe_load((target / "postgres-operator.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    missing = {"configMapKeyRef": {"name": "no-such-config", "key": "missing"}}
    container["env"].append({"name": "BROKEN", "valueFrom": missing})
    (target / "postgres-operator.yaml").write_text(yaml.safe_dump(deployment))
    return target


def test_failures_end_with_a_clear_message_naming_the_cause(tmp_path: Path) -> None:
    with kubesim.KubeSim(tmp_path / "sim") as sim:
        kubeconfig = sim.kubeconfig_path

        # ---- an invalid cluster name: refused before anything is applied -------------------------
        bad = run_prod(kubeconfig=kubeconfig, extra_vars={"postgres_prod_cluster_name": "Postgres_Cluster"})
        text = " ".join(output(bad).split())
        assert bad.returncode != 0
        assert "postgres_prod_cluster_name 'Postgres_Cluster' is not a valid cluster name" in text
        assert "DNS-1035" in text and "nothing was applied" in text
        namespaces = kubectl(kubeconfig, "get", "namespaces", "-o", "name").stdout.split()
        assert "namespace/postgres-operator" not in namespaces and "namespace/microservices" not in namespaces

        # ---- an operator that never becomes Available ----------------------------------------------
        started = time.monotonic()
        broken = _broken_operator_manifests(tmp_path)
        sums = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in broken.glob("*.yaml")}
        never = run_prod(kubeconfig=kubeconfig, manifests_dir=broken,
                         extra_vars={"postgres_prod_operator_namespace": "broken-operator",
                                     "postgres_prod_operator_wait_timeout": 20,
                                     "postgres_prod_operator_manifest_sha256": sums})
        text = " ".join(output(never).split())
        assert never.returncode != 0, text[-4000:]
        assert ("Deployment postgres-operator in namespace broken-operator did not become Available within 20 s"
                in text), text[-4000:]
        assert "CreateContainerConfigError" in text and "no-such-config" in text
        assert time.monotonic() - started < 600
        assert kubectl(kubeconfig, "get", "postgresql", "-A", check=False).stdout.strip() == ""

        # ---- a cluster the operator rejects (CreateFailed): the run stops at once with the reason --
        started = time.monotonic()
        failed = run_prod(kubeconfig=kubeconfig, extra_vars={
            "postgres_prod_cluster_name": "broken-cluster", "postgres_prod_namespace": "broken",
            "postgres_prod_cluster_wait_timeout": 900,
            "postgres_prod_cluster_extra_spec": {"users": {"reporting": ["login", "nologin"]}}})
        elapsed = time.monotonic() - started
        text = " ".join(output(failed).split())
        assert failed.returncode != 0, text[-4000:]
        assert "The operator rejected postgresql broken/broken-cluster: status CreateFailed" in text, text[-4000:]
        assert "LOGIN and NOLOGIN" in text and "reporting" in text
        assert "postgres_prod : Converge the service databases" not in text
        assert elapsed < 900, "the run waited for the whole timeout instead of stopping at CreateFailed"
        status = kubectl_json(kubeconfig, "get", "postgresql", "broken-cluster", "-n", "broken")["status"]
        assert status["PostgresClusterStatus"] == "CreateFailed"
