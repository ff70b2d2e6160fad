"""postgres_prod on the real test bed (tests/localcluster): Kubernetes v1.36.3, the real Zalando
operator (v1.15.1, the newest the Go module proxy serves; see tests/localcluster/README.md) and
real Patroni electing the leader and streaming to the replicas, each pod a local process.

inventories/prod as a platform team runs it, with PostgreSQL 15 (one of the two majors this
machine has, and one both operator versions accept) and the operator manifests from the pinned
release's files.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from .helpers import output, recap
from .prod_helpers import SERVICES, run_prod

pytestmark = pytest.mark.slow

NS = "microservices"
CLUSTER = "postgres-cluster"
REAL_BED = {"postgres_prod_postgres_version": "15"}


def _kubectl(bed, *args: str, check: bool = True, stdin: str | None = None):
    return bed.kubectl(*args, check=check, input_text=stdin)


def _members(bed, pod: str) -> list[dict]:
    """patronictl's view of the cluster, asked inside one of its pods."""
    proc = _kubectl(bed, "-n", NS, "exec", pod, "-c", "postgres", "--", "patronictl", "list", "-f", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else []


def _secret(bed, name: str) -> dict[str, str]:
    data = json.loads(_kubectl(bed, "-n", NS, "get", "secret", name, "-o", "json").stdout)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def _login(bed, pod: str, host: str, user: str, database: str, password: str):
    """psql from inside a cluster pod to ``host``, TLS required as the operator's clients use it; the
    password travels on stdin, not in any argv."""
    script = ('read -r PGPASSWORD; export PGPASSWORD; exec psql -X -At "host=$1 dbname=$3 user=$2 sslmode=require" '
              '-c "SELECT current_user, pg_is_in_recovery(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"')
    return _kubectl(bed, "-n", NS, "exec", "-i", pod, "-c", "postgres", "--", "sh", "-c", script, "sh", host, user, database,
                    check=False, stdin=password + "\n")


@pytest.fixture(scope="module")
def deployed(localcluster):
    proc = run_prod(kubeconfig=localcluster.kubeconfig_path, extra_vars=REAL_BED)
    assert proc.returncode == 0, output(proc)[-8000:]
    assert recap(proc)["prod-postgres"]["failed"] == 0
    return localcluster


def test_the_real_operator_makes_the_cluster_and_it_runs(deployed):
    status = json.loads(_kubectl(deployed, "-n", NS, "get", "postgresql", CLUSTER, "-o", "json").stdout)["status"]
    assert status["PostgresClusterStatus"] == "Running"
    names = set(_kubectl(deployed, "-n", NS, "get", "statefulset,service,endpoints,secret,pdb,deployment,cronjob", "-o", "name").stdout.split())
    expected = {
        f"statefulset.apps/{CLUSTER}", f"service/{CLUSTER}", f"service/{CLUSTER}-repl", f"endpoints/{CLUSTER}",
        f"service/{CLUSTER}-pooler", f"deployment.apps/{CLUSTER}-pooler", f"cronjob.batch/logical-backup-{CLUSTER}",
        f"poddisruptionbudget.policy/postgres-{CLUSTER}-pdb",
        f"service/{CLUSTER}-rw", f"service/{CLUSTER}-ro", f"service/{CLUSTER}-metrics",
        *{f"secret/{user}.{CLUSTER}.credentials.postgresql.acid.zalan.do" for user in (*SERVICES.values(), "postgres", "standby", "pooler")},
        *{f"secret/{database}-credentials" for database in SERVICES},
    }
    assert expected <= names, sorted(expected - names)
    # The operator's own word (its current container's log: it may have restarted once since the creation).
    logs = _kubectl(deployed, "-n", "postgres-operator", "logs", "-l", "name=postgres-operator", "--tail=-1").stdout
    assert "cluster has been synced" in logs or "cluster has been created" in logs


def test_patroni_elects_one_leader_and_streams_to_two_replicas(deployed):
    members = _members(deployed, f"{CLUSTER}-0")
    roles = sorted(member["Role"] for member in members)
    assert roles == ["Leader", "Replica", "Replica"], members
    assert all(member["State"] == "streaming" for member in members if member["Role"] == "Replica"), members
    labels = json.loads(_kubectl(deployed, "-n", NS, "get", "pods", "-l", f"application=spilo,cluster-name={CLUSTER}", "-o", "json").stdout)
    by_role = sorted(pod["metadata"]["labels"].get("spilo-role", "") for pod in labels["items"])
    assert by_role == ["master", "replica", "replica"]


def test_each_service_logs_in_through_the_rw_and_ro_services_with_tls(deployed):
    for database, user in SERVICES.items():
        password = _secret(deployed, f"{user}.{CLUSTER}.credentials.postgresql.acid.zalan.do")["password"]
        published = _secret(deployed, f"{database}-credentials")
        assert published["password"] == password and published["username"] == user
        rw = _login(deployed, f"{CLUSTER}-0", published["rw_host"], user, database, password)
        assert rw.returncode == 0 and rw.stdout.split("|") == [user, "f", "t\n"], rw.stderr
        ro = _login(deployed, f"{CLUSTER}-0", published["ro_host"], user, database, password)
        assert ro.returncode == 0 and ro.stdout.split("|") == [user, "t", "t\n"], ro.stderr
    wrong = _login(deployed, f"{CLUSTER}-0", f"{CLUSTER}-rw.{NS}.svc.cluster.local", "userservice", "userdb", "not-the-password")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


def test_second_run_and_check_mode_change_nothing(deployed):
    again = run_prod(kubeconfig=deployed.kubeconfig_path, extra_vars=REAL_BED)
    assert again.returncode == 0 and recap(again)["prod-postgres"]["changed"] == 0, output(again)[-8000:]
    check = run_prod("--check", kubeconfig=deployed.kubeconfig_path, extra_vars=REAL_BED)
    assert check.returncode == 0 and recap(check)["prod-postgres"]["changed"] == 0, output(check)[-8000:]


def test_failover_promotes_a_replica_and_the_services_follow(deployed):
    before = {m["Member"]: m for m in _members(deployed, f"{CLUSTER}-0")}
    leader = next(name for name, member in before.items() if member["Role"] == "Leader")
    witness = next(name for name in before if name != leader)
    _kubectl(deployed, "-n", NS, "delete", "pod", leader, "--wait=false")
    deadline = time.monotonic() + 120  # Patroni's TTL is 30 s; the rest is the pod's own restart
    new_leader = None
    while time.monotonic() < deadline and new_leader is None:
        members = _members(deployed, witness)
        new_leader = next((m["Member"] for m in members if m["Role"] == "Leader" and m["Member"] != leader), None)
        time.sleep(2)
    assert new_leader is not None, f"no replica was promoted after {leader} went away"

    new_ip = next(m["Host"] for m in _members(deployed, witness) if m["Member"] == new_leader)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rw = json.loads(_kubectl(deployed, "-n", NS, "get", "endpoints", f"{CLUSTER}-rw", "-o", "json").stdout)
        addresses = [a["ip"] for s in rw.get("subsets") or [] for a in s.get("addresses") or []]
        if addresses == [new_ip]:
            break
        time.sleep(2)
    assert addresses == [new_ip]

    password = _secret(deployed, f"paymentservice.{CLUSTER}.credentials.postgresql.acid.zalan.do")["password"]
    rw_login = _login(deployed, witness, f"{CLUSTER}-rw.{NS}.svc.cluster.local", "paymentservice", "paymentdb", password)
    assert rw_login.returncode == 0 and rw_login.stdout.split("|")[:2] == ["paymentservice", "f"], rw_login.stderr

    converge = run_prod(kubeconfig=deployed.kubeconfig_path, extra_vars=REAL_BED)
    assert converge.returncode == 0, output(converge)[-8000:]
    assert recap(converge)["prod-postgres"]["changed"] == 0, output(converge)[-8000:]
    members = _members(deployed, new_leader)
    assert sorted(m["Role"] for m in members) == ["Leader", "Replica", "Replica"], members


def test_the_exporter_sidecar_serves_metrics_on_9187(deployed):
    """The real postgres_exporter (the sidecar's image) runs in each cluster pod, logged in with the
    credentials the operator gives sidecars ($(POSTGRES_USER)/$(POSTGRES_PASSWORD) expanded)."""
    for pod in (f"{CLUSTER}-0", f"{CLUSTER}-1"):
        scrape = _kubectl(deployed, "-n", NS, "exec", pod, "-c", "postgres", "--", "curl", "-sf", "http://127.0.0.1:9187/metrics").stdout
        assert "\npg_up 1\n" in scrape, scrape[-2000:]
        assert "pg_stat_database_xact_commit{" in scrape
    endpoints = json.loads(_kubectl(deployed, "-n", NS, "get", "endpoints", f"{CLUSTER}-metrics", "-o", "json").stdout)
    assert sorted(p["port"] for s in endpoints["subsets"] for p in s["ports"]) == [9187]
