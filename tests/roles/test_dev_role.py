"""postgres_dev end to end on the real test bed (tests/localcluster: Kubernetes v1.36.3, the pod running real
PostgreSQL as a local process), checked through kubectl:
objects and names, the five databases and roles, idempotence, truthful check mode, rotating one
password, adding a sixth service."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from .helpers import kubectl, kubectl_json, output, recap, run_deploy

pytestmark = pytest.mark.slow

NS = "microservices"
SEED = [("userdb", "userservice"), ("paymentdb", "paymentservice"), ("settlementdb", "settlementservice"),
        ("partnerdb", "partnerservice"), ("accountingdb", "accountingservice")]
SNAPSHOT_SQL = (
    "SELECT json_build_object("
    "'roles', (SELECT json_agg(json_build_array(rolname, rolcanlogin, rolpassword, rolconnlimit) ORDER BY rolname)"
    " FROM pg_authid WHERE rolname !~ '^pg_'),"
    "'databases', (SELECT json_agg(json_build_array(datname, pg_get_userbyid(datdba), datacl::text, datconnlimit)"
    " ORDER BY datname) FROM pg_database))"
)


def psql(kubeconfig: Path, sql: str, *, user: str = "postgres", db: str = "postgres") -> str:
    return kubectl(kubeconfig, "exec", "postgresql-0", "-n", NS, "-c", "postgresql", "--",
                   "psql", "-X", "-At", "-U", user, "-d", db, "-c", sql).stdout


def tcp_login(kubeconfig: Path, user: str, db: str, password: str):
    """psql over TCP to the Service's name, as an application connects, the password on stdin (not argv of kubectl).

    Not 127.0.0.1: the official image keeps initdb's ``trust`` for loopback host connections, so
    only a connection through the pod's address meets the ``scram-sha-256`` rule for every host.
    """
    script = (f'read -r PGPASSWORD; export PGPASSWORD; exec psql -X -At -h postgresql.{NS}.svc.cluster.local '
              '-U "$1" -d "$2" -c "SELECT current_user"')
    return kubectl(kubeconfig, "exec", "-i", "postgresql-0", "-n", NS, "-c", "postgresql", "--",
                   "sh", "-c", script, "sh", user, db, check=False, stdin=password + "\n")


def secret_data(kubeconfig: Path, name: str) -> dict[str, str]:
    obj = kubectl_json(kubeconfig, "get", "secret", name, "-n", NS)
    return {key: base64.b64decode(value).decode() for key, value in obj["data"].items()}


def resource_versions(kubeconfig: Path) -> dict[str, str]:
    items = kubectl_json(kubeconfig, "get", "secret,configmap,service,statefulset,networkpolicy", "-n", NS)["items"]
    return {f"{item['kind']}/{item['metadata']['name']}": item["metadata"]["resourceVersion"] for item in items}


def vars_file(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "extra-vars.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return f"@{path}"


def statuses(proc) -> dict[str, str]:
    """The role's per-service summary lines: '<db> (owner <role>): <status>'."""
    return dict(re.findall(r"msg: '?(\w+) \(owner \w+\): (\w+)", output(proc)))


@pytest.fixture(scope="module")
def converged(localcluster):
    proc = run_deploy(kubeconfig=localcluster.kubeconfig_path)
    assert proc.returncode == 0, output(proc)[-6000:]
    assert recap(proc)["dev-postgres"]["failed"] == 0
    assert statuses(proc) == {db: "created" for db, _owner in SEED}
    return localcluster.kubeconfig_path


def test_objects_databases_and_roles_after_converge(converged):
    kc = converged
    names = set(resource_versions(kc))
    expected = {"Secret/postgresql-credentials", "ConfigMap/postgres-config", "Service/postgresql",
                "Service/postgresql-headless", "StatefulSet/postgresql", "NetworkPolicy/postgresql"}
    expected |= {f"Secret/{db}-credentials" for db, _owner in SEED}
    assert expected <= names
    pod = kubectl_json(kc, "get", "pod", "postgresql-0", "-n", NS)
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])
    pvc = kubectl_json(kc, "get", "pvc", "data-postgresql-0", "-n", NS)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert kubectl_json(kc, "get", "service", "postgresql", "-n", NS)["spec"]["ports"][0]["port"] == 5432

    listing = kubectl(kc, "exec", "postgresql-0", "-n", NS, "--", "psql", "-U", "postgres", "-c", r"\l").stdout
    for db, owner in SEED:
        assert re.search(rf"^\s*{db}\s*\|\s*{owner}\s*\|", listing, re.M), listing
    roles = kubectl(kc, "exec", "postgresql-0", "-n", NS, "--", "psql", "-U", "postgres", "-c", r"\du").stdout
    for _db, owner in SEED:
        assert re.search(rf"^\s*{owner}\s*\|", roles, re.M), roles

    credentials = secret_data(kc, "postgresql-credentials")
    assert set(credentials) == {"postgres-password"} | {f"{owner}-password" for _db, owner in SEED}
    for db, owner in SEED:
        data = secret_data(kc, f"{db}-credentials")
        assert data["host"] == f"postgresql.{NS}.svc.cluster.local" and data["port"] == "5432"
        assert data["database"] == db and data["username"] == owner
        assert data["password"] == credentials[f"{owner}-password"] and len(data["password"]) == 32
        assert data["url"] == f"postgresql://{owner}:{data['password']}@postgresql.{NS}.svc.cluster.local:5432/{db}"
        login = tcp_login(kc, owner, db, data["password"])
        assert login.returncode == 0 and login.stdout.strip() == owner, login.stderr


def test_second_converge_and_check_mode_change_nothing(converged):
    kc = converged
    versions = resource_versions(kc)
    catalog = psql(kc, SNAPSHOT_SQL)

    proc = run_deploy(kubeconfig=kc)
    assert proc.returncode == 0, output(proc)[-6000:]
    assert recap(proc)["dev-postgres"]["changed"] == 0, output(proc)[-6000:]
    assert set(statuses(proc).values()) == {"unchanged"}

    check = run_deploy("--check", "--diff", kubeconfig=kc)
    assert check.returncode == 0, output(check)[-6000:]
    assert recap(check)["dev-postgres"]["changed"] == 0, output(check)[-6000:]
    assert set(statuses(check).values()) == {"unchanged"}

    assert resource_versions(kc) == versions
    assert psql(kc, SNAPSHOT_SQL) == catalog  # no DDL: roles, verifiers, owners, ACLs unchanged


def test_check_mode_with_a_change_runs_no_ddl(converged, tmp_path):
    kc = converged
    versions = resource_versions(kc)
    catalog = psql(kc, SNAPSHOT_SQL)
    services = [{"database": db, "owner": owner} for db, owner in SEED] + [{"database": "checkdb", "owner": "checkservice"}]
    check = run_deploy("--check", "-e", vars_file(tmp_path, {"postgres_dev_services": services}), kubeconfig=kc)
    assert check.returncode == 0, output(check)[-6000:]
    assert recap(check)["dev-postgres"]["changed"] > 0  # it would create checkdb ...
    assert statuses(check)["checkdb"] == "created"
    assert psql(kc, SNAPSHOT_SQL) == catalog  # ... but nothing ran
    assert resource_versions(kc) == versions


def test_rotating_one_password_touches_only_that_service(converged, tmp_path):
    kc = converged
    before = resource_versions(kc)
    old = secret_data(kc, "userdb-credentials")["password"]
    credentials_before = secret_data(kc, "postgresql-credentials")
    new = "Rotated/pw:with@odd chars-42"
    services = [{"database": db, "owner": owner, **({"password": new} if db == "userdb" else {})} for db, owner in SEED]

    proc = run_deploy("-e", vars_file(tmp_path, {"postgres_dev_services": services}), kubeconfig=kc)
    text = output(proc)
    assert proc.returncode == 0, text[-6000:]
    assert new not in text and old not in text
    assert statuses(proc) == {db: ("updated" if db == "userdb" else "unchanged") for db, _owner in SEED}

    after = resource_versions(kc)
    changed = {name for name in before if before[name] != after.get(name)}
    # The credentials Secret is where the role keeps the passwords, so it changes too; nothing else does.
    assert changed == {"Secret/userdb-credentials", "Secret/postgresql-credentials"}
    data = secret_data(kc, "userdb-credentials")
    assert data["password"] == new
    assert data["url"] == (f"postgresql://userservice:Rotated%2Fpw%3Awith%40odd%20chars-42"
                           f"@postgresql.{NS}.svc.cluster.local:5432/userdb")
    credentials_after = secret_data(kc, "postgresql-credentials")
    assert credentials_after["userservice-password"] == new
    assert {k: v for k, v in credentials_after.items() if k != "userservice-password"} == \
        {k: v for k, v in credentials_before.items() if k != "userservice-password"}

    assert tcp_login(kc, "userservice", "userdb", new).returncode == 0
    refused = tcp_login(kc, "userservice", "userdb", old)
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr
    payment = secret_data(kc, "paymentdb-credentials")["password"]
    assert tcp_login(kc, "paymentservice", "paymentdb", payment).returncode == 0

    # The inventory without the pinned password keeps the rotated one (it lives in the Secret now).
    again = run_deploy(kubeconfig=kc)
    assert again.returncode == 0 and recap(again)["dev-postgres"]["changed"] == 0, output(again)[-6000:]


def test_adding_a_sixth_service_leaves_the_others_alone(converged, tmp_path):
    kc = converged
    before = resource_versions(kc)
    services = [{"database": db, "owner": owner} for db, owner in SEED]
    services.append({"database": "inventory_db", "owner": "inventoryservice", "connection_limit": 20})

    proc = run_deploy("-e", vars_file(tmp_path, {"postgres_dev_services": services}), kubeconfig=kc)
    assert proc.returncode == 0, output(proc)[-6000:]
    assert statuses(proc) == {**{db: "unchanged" for db, _owner in SEED}, "inventory_db": "created"}

    after = resource_versions(kc)
    changed = {name for name in before if before[name] != after.get(name)}
    assert changed == {"Secret/postgresql-credentials"}  # gained the new owner's password
    assert set(after) - set(before) == {"Secret/inventory-db-credentials"}
    data = secret_data(kc, "inventory-db-credentials")
    assert data["database"] == "inventory_db" and data["username"] == "inventoryservice"
    assert tcp_login(kc, "inventoryservice", "inventory_db", data["password"]).returncode == 0
    assert psql(kc, "SELECT datconnlimit FROM pg_database WHERE datname = 'inventory_db'").strip() == "20"
    listing = kubectl(kc, "exec", "postgresql-0", "-n", NS, "--", "psql", "-U", "postgres", "-c", r"\l").stdout
    assert len(re.findall(r"^\s*(\w+db|inventory_db)\s*\|", listing, re.M)) == 6

    again = run_deploy("-e", vars_file(tmp_path, {"postgres_dev_services": services}), kubeconfig=kc)
    assert again.returncode == 0 and recap(again)["dev-postgres"]["changed"] == 0, output(again)[-6000:]


def test_check_mode_before_anything_exists_writes_nothing(localcluster):
    kc = localcluster.kubeconfig_path
    proc = run_deploy("--check", "-e", "postgres_dev_namespace=fresh-check", kubeconfig=kc)
    text = output(proc)
    assert proc.returncode == 0, text[-6000:]
    assert recap(proc)["dev-postgres"]["changed"] > 0
    assert "namespace fresh-check does not exist yet" in text
    assert kubectl(kc, "get", "namespace", "fresh-check", check=False).returncode != 0
