"""The Zalando operator simulation, driven the way the collection drives it: install the
v2.0.1 manifests (namespace rewritten), wait for the operator, apply a ``postgresql``
resource, wait for Running, then use the credential Secrets to log in."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

import pytest

from tests.kubesim import KubeSim

from .conftest import FIXTURES, Kubectl, kubectl_binary, wait_for

OPERATOR_NAMESPACE = "postgres-operator"
MANIFESTS = ("configmap.yaml", "operator-service-account-rbac.yaml", "postgres-operator.yaml", "api-service.yaml")
CLUSTER = """
apiVersion: acid.zalan.do/v1
kind: postgresql
metadata: {{name: {name}, namespace: {ns}}}
spec:
  teamId: acid
  numberOfInstances: {instances}
  volume: {{size: 1Gi}}
  users:
    app_owner: [createdb]
    reporting: []
  databases:
    appdb: app_owner
    reportdb: {report_owner}
  postgresql: {{version: "17"}}
  enableConnectionPooler: true
  enableLogicalBackup: true
"""


@pytest.fixture(scope="session")
def operator(kubesim: KubeSim, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """The operator installed from the fixture manifests, Available, its CRD Established."""
    binary = kubectl_binary("1.33") or kubectl_binary("1.30")
    if binary is None:
        pytest.skip("no kubectl 1.30+ on this machine")
    kubectl = Kubectl(binary, kubesim.kubeconfig_path, tmp_path_factory.mktemp("operator-cache"))
    namespace = f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {OPERATOR_NAMESPACE}}}\n"
    created = kubectl.run("create", "-f", "-", stdin=namespace)
    assert created.returncode == 0, created.stderr
    for manifest in MANIFESTS:
        text = (FIXTURES / manifest).read_text().replace("namespace: default", f"namespace: {OPERATOR_NAMESPACE}")
        applied = kubectl.run("apply", "-n", OPERATOR_NAMESPACE, "-f", "-", stdin=text)
        assert applied.returncode == 0, applied.stderr
    available = kubectl.run("wait", "--for=condition=Available", "deployment/postgres-operator", "-n",
                            OPERATOR_NAMESPACE, "--timeout=60s")
    assert available.returncode == 0, available.stderr
    established = kubectl.run("wait", "--for=condition=Established", "crd/postgresqls.acid.zalan.do",
                              "--timeout=30s")
    assert established.returncode == 0, established.stderr
    return kubectl


def _status(kubectl: Kubectl, ns: str, name: str) -> str:
    return kubectl.json("get", "postgresql", name, "-n", ns).get("status", {}).get("PostgresClusterStatus", "")


def _secret(kubectl: Kubectl, ns: str, user: str, cluster: str) -> tuple[str, str]:
    data = kubectl.json("get", "secret", f"{user}.{cluster}.credentials.postgresql.acid.zalan.do", "-n", ns)["data"]
    return base64.b64decode(data["username"]).decode(), base64.b64decode(data["password"]).decode()


def test_operator_registers_its_crd_only_once_available(operator: Kubectl) -> None:
    crd = operator.json("get", "crd", "postgresqls.acid.zalan.do")
    assert crd["spec"]["names"]["shortNames"] == ["pg"]
    assert [c["type"] for c in crd["status"]["conditions"]] == ["NamesAccepted", "Established"]


def test_cluster_runs_with_secrets_roles_and_databases(operator: Kubectl, namespace: str) -> None:
    applied = operator.run("apply", "-f", "-", stdin=CLUSTER.format(name="acid-app", ns=namespace, instances=2,
                                                                    report_owner="reporting"))
    assert applied.returncode == 0, applied.stderr
    assert _status(operator, namespace, "acid-app") in ("Creating", "Running")
    wait_for(lambda: _status(operator, namespace, "acid-app") == "Running", timeout=120)
    pods = operator.json("get", "pods", "-n", namespace, "-l", "application=spilo,cluster-name=acid-app")["items"]
    roles = {p["metadata"]["name"]: p["metadata"]["labels"]["spilo-role"] for p in pods}
    assert roles == {"acid-app-0": "master", "acid-app-1": "replica"}
    assert all(p["status"]["phase"] == "Running" for p in pods)
    secrets = {s["metadata"]["name"] for s in operator.json("get", "secrets", "-n", namespace)["items"]}
    assert {f"{u}.acid-app.credentials.postgresql.acid.zalan.do"
            for u in ("app-owner", "reporting", "postgres", "standby", "pooler")} <= secrets
    services = {s["metadata"]["name"] for s in operator.json("get", "services", "-n", namespace)["items"]}
    assert services == {"acid-app", "acid-app-repl", "acid-app-pooler"}
    assert operator.json("get", "cronjob", "logical-backup-acid-app", "-n", namespace)["spec"]["schedule"] == \
        "30 00 * * *"
    assert {p["metadata"]["name"] for p in operator.json("get", "pvc", "-n", namespace)["items"]} == {
        "pgdata-acid-app-0", "pgdata-acid-app-1"}
    for user, database in (("app_owner", "appdb"), ("reporting", "reportdb")):
        username, password = _secret(operator, namespace, user.replace("_", "-"), "acid-app")
        assert username == user
        login = operator.run("exec", "-n", namespace, "acid-app-0", "--", "env", f"PGPASSWORD={password}", "psql",
                             "-h", "127.0.0.1", "-U", username, "-d", database, "-Atc",
                             "select current_user, pg_get_userbyid(datdba) from pg_database "
                             "where datname = current_database()")
        assert (login.returncode, login.stdout) == (0, f"{user}|{user}\n"), login.stderr


def test_password_changed_behind_the_operators_back_is_restored(operator: Kubectl, namespace: str) -> None:
    assert operator.run("apply", "-f", "-", stdin=CLUSTER.format(name="acid-sync", ns=namespace, instances=1,
                                                                 report_owner="reporting")).returncode == 0
    wait_for(lambda: _status(operator, namespace, "acid-sync") == "Running", timeout=120)
    changed = operator.run("exec", "-n", namespace, "acid-sync-0", "--", "psql", "-U", "postgres", "-c",
                           "ALTER ROLE reporting PASSWORD 'changed-by-hand'")
    assert changed.returncode == 0, changed.stderr
    password = _secret(operator, namespace, "reporting", "acid-sync")[1]

    def secret_password_works() -> bool:
        login = operator.run("exec", "-n", namespace, "acid-sync-0", "--", "env", f"PGPASSWORD={password}", "psql",
                             "-h", "127.0.0.1", "-U", "reporting", "-d", "postgres", "-Atc", "select 1")
        return login.returncode == 0

    wait_for(secret_password_works, timeout=30, interval=1)


def test_scaling_goes_through_updating(operator: Kubectl, namespace: str) -> None:
    assert operator.run("apply", "-f", "-", stdin=CLUSTER.format(name="acid-scale", ns=namespace, instances=1,
                                                                 report_owner="reporting")).returncode == 0
    wait_for(lambda: _status(operator, namespace, "acid-scale") == "Running", timeout=120)
    patched = operator.run("patch", "postgresql", "acid-scale", "-n", namespace, "--type=merge", "-p",
                           '{"spec":{"numberOfInstances":3}}')
    assert patched.returncode == 0, patched.stderr

    def update_finished() -> list[str]:
        events = operator.json("get", "events", "-n", namespace, "--field-selector",
                               "involvedObject.name=acid-scale")["items"]
        messages = [e["message"] for e in sorted(events, key=lambda e: int(e["metadata"]["resourceVersion"]))
                    if e["reason"] == "Update"]
        return messages if "Update of the cluster completed" in messages else []

    # Updating may last well under a second: its events are the durable record of it.
    assert wait_for(update_finished, timeout=120) == ["Started update of the cluster",
                                                      "Update of the cluster completed"]
    assert _status(operator, namespace, "acid-scale") == "Running"
    sts = operator.json("get", "statefulset", "acid-scale", "-n", namespace)
    assert (sts["spec"]["replicas"], sts["status"]["readyReplicas"]) == (3, 3)
    pods = operator.json("get", "pods", "-n", namespace, "-l", "cluster-name=acid-scale,spilo-role=replica")
    assert sorted(p["metadata"]["name"] for p in pods["items"]) == ["acid-scale-1", "acid-scale-2"]


def test_rejected_inputs(operator: Kubectl, namespace: str) -> None:
    bad_owner = operator.run("apply", "-f", "-", stdin=CLUSTER.format(name="acid-bad", ns=namespace, instances=1,
                                                                      report_owner="nobody"))
    assert bad_owner.returncode == 0, bad_owner.stderr
    wait_for(lambda: _status(operator, namespace, "acid-bad") == "CreateFailed", timeout=30)
    events = operator.json("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=acid-bad")
    assert any(e["type"] == "Warning" and "nobody" in e["message"] for e in events["items"])
    schema = operator.run("apply", "-f", "-", stdin=CLUSTER.format(name="acid-old", ns=namespace, instances=1,
                                                                   report_owner="reporting").replace('"17"', '"12"'))
    assert schema.returncode == 1
    assert schema.stderr.strip() == ('The postgresql "acid-old" is invalid: spec.postgresql.version: Unsupported '
                                     'value: "12": supported values: "14", "15", "16", "17", "18"')
    long_name = "a" * 59
    too_long = operator.run("apply", "-f", "-", stdin=CLUSTER.format(name=long_name, ns=namespace, instances=1,
                                                                     report_owner="reporting"))
    assert too_long.returncode == 0, too_long.stderr
    wait_for(lambda: _status(operator, namespace, long_name) == "Invalid", timeout=30)


def test_logical_backup_job_dumps_the_cluster(operator: Kubectl, namespace: str, tmp_path: Path) -> None:
    assert operator.run("apply", "-f", "-", stdin=CLUSTER.format(name="acid-dump", ns=namespace, instances=1,
                                                                 report_owner="reporting")).returncode == 0
    wait_for(lambda: _status(operator, namespace, "acid-dump") == "Running", timeout=120)
    # kubectl 1.32+ sends this typed create as protobuf, which kubesim refuses (README); 1.30 sends JSON.
    binary = kubectl_binary("1.30")
    if binary is None:
        pytest.skip("kubectl 1.30 is not installed")
    created = Kubectl(binary, Path(operator.env["KUBECONFIG"]), tmp_path).run(
        "create", "job", "--from=cronjob/logical-backup-acid-dump", "dump-now", "-n", namespace)
    assert created.returncode == 0, created.stderr
    done = operator.run("wait", "--for=condition=Complete", "job/dump-now", "-n", namespace, "--timeout=60s")
    assert done.returncode == 0, done.stderr
    logs = operator.run("logs", "job/dump-now", "-n", namespace)
    assert logs.stdout.startswith("logical backup of acid-dump: pg_dumpall wrote ")


def test_deleting_the_cluster_removes_what_the_operator_made(operator: Kubectl, namespace: str,
                                                             kubesim: KubeSim) -> None:
    sidecar = ("  sidecars:\n  - name: exporter\n    image: \"busybox:1.36\"\n    env:\n"
               "    - {name: DATA_SOURCE_USER, value: $(POSTGRES_USER)}\n    - {name: POSTGRES_USER, value: ignored}\n")
    assert operator.run("apply", "-f", "-", stdin=CLUSTER.format(name="acid-gone", ns=namespace, instances=1,
                                                                 report_owner="reporting") + sidecar).returncode == 0
    wait_for(lambda: _status(operator, namespace, "acid-gone") == "Running", timeout=120)
    # The CRD's status schema has PostgresClusterStatus only; the operator writes nothing else.
    assert set(operator.json("get", "postgresql", "acid-gone", "-n", namespace)["status"]) == {"PostgresClusterStatus"}
    containers = operator.json("get", "statefulset", "acid-gone", "-n", namespace)["spec"]["template"]["spec"]["containers"]
    exporter = next(c for c in containers if c["name"] == "exporter")
    assert [(e["name"], e.get("value")) for e in exporter["env"]] == [
        ("POD_NAME", None), ("POD_NAMESPACE", None), ("POSTGRES_USER", "postgres"), ("POSTGRES_PASSWORD", None),
        ("DATA_SOURCE_USER", "$(POSTGRES_USER)")]
    assert kubesim.pods.backend(("cluster", namespace, "acid-gone")) is not None
    assert operator.run("delete", "postgresql", "acid-gone", "-n", namespace).returncode == 0
    wait_for(lambda: not operator.json("get", "statefulsets,secrets,services,pvc", "-n", namespace)["items"],
             timeout=30)
    assert kubesim.pods.backend(("cluster", namespace, "acid-gone")) is None


CLONE = """
apiVersion: acid.zalan.do/v1
kind: postgresql
metadata: {{name: {name}, namespace: {ns}}}
spec:
  teamId: acid
  numberOfInstances: 1
  volume: {{size: 1Gi}}
  users: {{app_owner: [], reporting: []}}
  databases: {{appdb: app_owner}}
  postgresql: {{version: "17"}}
  clone: {clone}
"""
OTHER_UID = "00000000-0000-4000-8000-000000000000"
ORDERS = "select count(*), md5(string_agg(id::text || ':' || item, ',' order by id)) from orders"


def _psql(kubectl: Kubectl, ns: str, pod: str, sql: str, database: str = "appdb") -> str:
    proc = kubectl.run("exec", "-n", ns, pod, "--", "psql", "-U", "postgres", "-d", database, "-Atc", sql)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _warnings(kubectl: Kubectl, ns: str, name: str) -> list[str]:
    events = kubectl.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
    return [e["message"] for e in events if e["type"] == "Warning"]


@pytest.fixture
def clone_source(operator: Kubectl, namespace: str) -> dict:
    """A Running cluster acid-src whose appdb holds 250 rows in table orders; its postgresql resource."""
    assert operator.run("apply", "-f", "-", stdin=CLUSTER.format(name="acid-src", ns=namespace, instances=1,
                                                                 report_owner="reporting")).returncode == 0
    wait_for(lambda: _status(operator, namespace, "acid-src") == "Running", timeout=120)
    _psql(operator, namespace, "acid-src-0", "create table orders (id int primary key, item text); "
          "insert into orders select g, 'item-' || g from generate_series(1, 250) g")
    return operator.json("get", "postgresql", "acid-src", "-n", namespace)


def test_clone_starts_from_the_source_data(operator: Kubectl, namespace: str, clone_source: dict) -> None:
    source_rows = _psql(operator, namespace, "acid-src-0", ORDERS)
    assert source_rows.startswith("250|")
    timestamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    uid = clone_source["metadata"]["uid"]
    clones = {"acid-pitr": f'{{cluster: acid-src, uid: "{uid}", timestamp: "{timestamp}", '
                           f's3_wal_path: "s3://bucket/spilo/acid-src/{uid}/wal"}}',
              "acid-basebackup": "{cluster: acid-src}"}
    for name, clone in clones.items():
        applied = operator.run("apply", "-f", "-", stdin=CLONE.format(name=name, ns=namespace, clone=clone))
        assert applied.returncode == 0, applied.stderr
    for name in clones:
        wait_for(lambda name=name: _status(operator, namespace, name) == "Running", timeout=120)
        assert _psql(operator, namespace, f"{name}-0", ORDERS) == source_rows
        events = operator.json("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")
        assert 'Cluster bootstrapped as a clone of "acid-src"' in [e["message"] for e in events["items"]]
        # The clone's roles have the clone's own passwords (its Secrets), not the source's.
        username, password = _secret(operator, namespace, "app-owner", name)
        login = operator.run("exec", "-n", namespace, f"{name}-0", "--", "env", f"PGPASSWORD={password}", "psql",
                             "-h", "127.0.0.1", "-U", username, "-d", "appdb", "-Atc",
                             "select current_user, count(*) from pg_tables where tablename = 'orders'")
        assert (login.returncode, login.stdout) == (0, "app_owner|1\n"), login.stderr
        assert password != _secret(operator, namespace, "app-owner", "acid-src")[1]
    # A clone is a copy: writing to it leaves the source alone, and the source's later writes stay out.
    _psql(operator, namespace, "acid-pitr-0", "delete from orders where id > 100")
    _psql(operator, namespace, "acid-src-0", "insert into orders values (251, 'late')")
    assert _psql(operator, namespace, "acid-pitr-0", "select count(*) from orders") == "100"
    assert _psql(operator, namespace, "acid-basebackup-0", "select count(*) from orders") == "250"
    assert _psql(operator, namespace, "acid-src-0", "select count(*) from orders") == "251"


def test_clone_that_cannot_bootstrap_fails_with_the_reason(operator: Kubectl, namespace: str,
                                                           clone_source: dict) -> None:
    uid = clone_source["metadata"]["uid"]
    created = clone_source["metadata"]["creationTimestamp"]
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    wal = 's3_wal_path: "s3://bucket/wal"'
    cases = {
        "clone-missing": ("{cluster: acid-nope}",
                          'clone of "acid-nope" failed: pg_basebackup could not connect to Service acid-nope'),
        "clone-wrong-uid": (f'{{cluster: acid-src, uid: "{OTHER_UID}", timestamp: "{now}", {wal}}}',
                            f"no base backup found in spilo/acid-src/{OTHER_UID}/wal"),
        "clone-no-wal": (f'{{cluster: acid-src, uid: "{uid}", timestamp: "{now}"}}',
                         "none of wal_s3_bucket, wal_gs_bucket, wal_az_storage_account is set"),
        "clone-too-early": (f'{{cluster: acid-src, uid: "{uid}", timestamp: "2001-01-01T00:00:00+00:00", {wal}}}',
                            f"no base backup before 2001-01-01T00:00:00+00:00 (the cluster was created at {created})"),
        "clone-future": (f'{{cluster: acid-src, uid: "{uid}", timestamp: "2999-01-01T00:00:00+09:00", {wal}}}',
                         "recovery target 2999-01-01T00:00:00+09:00 was reached"),
    }
    for name, (clone, _message) in cases.items():
        applied = operator.run("apply", "-f", "-", stdin=CLONE.format(name=name, ns=namespace, clone=clone))
        assert applied.returncode == 0, applied.stderr
    for name, (_clone, message) in cases.items():
        wait_for(lambda name=name: _status(operator, namespace, name) == "CreateFailed", timeout=30)
        warnings = _warnings(operator, namespace, name)
        assert len(warnings) == 1 and message in warnings[0], warnings
        assert operator.run("get", "statefulset", name, "-n", namespace).returncode == 1
    # The CRD's pattern wants a numeric UTC offset: "Z" is refused by the API server itself.
    zulu = operator.run("apply", "-f", "-", stdin=CLONE.format(
        name="clone-zulu", ns=namespace, clone='{cluster: acid-src, timestamp: "2026-01-01T00:00:00Z"}'))
    assert zulu.returncode == 1
    assert 'spec.clone.timestamp: Invalid value: "2026-01-01T00:00:00Z"' in zulu.stderr
