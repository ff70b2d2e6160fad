"""postgres_dev render-only mode: manifests written to a directory, never a password, the cluster
never contacted; every manifest passes strict schema validation for Kubernetes 1.30 and the newest
schema kubernetes-validate ships. Also the role's input validation (before anything runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .helpers import output, recap, run_deploy

kubernetes_validate = pytest.importorskip("kubernetes_validate")

SEED = [("userdb", "userservice"), ("paymentdb", "paymentservice"), ("settlementdb", "settlementservice"),
        ("partnerdb", "partnerservice"), ("accountingdb", "accountingservice")]
PLACEHOLDER = "<set-at-apply-time>"


def render(tmp_path: Path, *extra: str) -> tuple[Path, dict[tuple[str, str], dict]]:
    out = tmp_path / "rendered"
    # A kubeconfig that does not exist: render-only must not need (or read) one.
    proc = run_deploy("-e", "postgres_dev_render_only=true", "-e", f"postgres_dev_render_dir={out}", *extra,
                      kubeconfig=tmp_path / "no-such-kubeconfig")
    assert proc.returncode == 0, output(proc)[-4000:]
    manifests = {}
    for path in sorted(out.glob("*.yaml")):
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert len(docs) == 1, path
        manifests[(docs[0]["kind"], docs[0]["metadata"]["name"])] = docs[0]
    return out, manifests


def write_vars(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(data))
    return f"@{path}"


@pytest.fixture(scope="module")
def default_render(tmp_path_factory):
    return render(tmp_path_factory.mktemp("render-default"))


@pytest.mark.parametrize("version", ["1.30.0", kubernetes_validate.utils.latest_version()])
def test_every_manifest_passes_strict_schema_validation(default_render, version):
    _proc, manifests = default_render
    assert len(manifests) == 12
    for (kind, name), manifest in manifests.items():
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kind}/{name} fails {version} strict validation: {exc.message} at {list(exc.path)}")


def test_objects_and_names(default_render):
    _proc, manifests = default_render
    expected = {("Namespace", "microservices"), ("Secret", "postgresql-credentials"), ("ConfigMap", "postgres-config"),
                ("Service", "postgresql"), ("Service", "postgresql-headless"), ("StatefulSet", "postgresql"),
                ("NetworkPolicy", "postgresql")} | {("Secret", f"{db}-credentials") for db, _owner in SEED}
    assert set(manifests) == expected
    for (kind, _name), manifest in manifests.items():
        if kind != "Namespace":
            assert manifest["metadata"]["namespace"] == "microservices"

    service = manifests[("Service", "postgresql")]["spec"]
    assert service["type"] == "ClusterIP" and service["ports"][0]["port"] == 5432
    headless = manifests[("Service", "postgresql-headless")]["spec"]
    assert headless["clusterIP"] == "None"

    sts = manifests[("StatefulSet", "postgresql")]["spec"]
    assert sts["replicas"] == 1 and sts["serviceName"] == "postgresql-headless"
    pod = sts["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 999 and pod["securityContext"]["fsGroup"] == 999
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["name"] == "postgresql" and container["image"] == "postgres:15"
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert container["livenessProbe"]["exec"]["command"][0] == "pg_isready"
    assert container["resources"]["limits"] and container["resources"]["requests"]
    env = {item["name"]: item for item in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "postgresql-credentials",
                                                                     "key": "postgres-password"}
    assert env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")
    claim = sts["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "storageClassName" not in claim["spec"]  # empty: the cluster's default class

    conf = manifests[("ConfigMap", "postgres-config")]["data"]["postgresql.conf"]
    assert "listen_addresses = '*'" in conf and "password_encryption = 'scram-sha-256'" in conf

    policy = manifests[("NetworkPolicy", "postgresql")]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "microservices"}}}]
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5432}]


def test_secrets_carry_placeholders_only(default_render):
    out, manifests = default_render
    credentials = manifests[("Secret", "postgresql-credentials")]
    assert "data" not in credentials
    assert set(credentials["stringData"]) == {"postgres-password"} | {f"{owner}-password" for _db, owner in SEED}
    assert set(credentials["stringData"].values()) == {PLACEHOLDER}
    userdb = manifests[("Secret", "userdb-credentials")]["stringData"]
    assert userdb["host"] == "postgresql.microservices.svc.cluster.local"
    assert userdb["port"] == "5432" and userdb["database"] == "userdb" and userdb["username"] == "userservice"
    assert userdb["password"] == PLACEHOLDER
    assert out.stat().st_mode & 0o777 == 0o700
    for path in out.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600


def test_inventory_passwords_never_reach_the_render_dir(tmp_path):
    secret = "Inventory-Only-Pw-9f3b"
    services = [{"database": db, "owner": owner, **({"password": secret} if db == "userdb" else {})}
                for db, owner in SEED]
    out, manifests = render(tmp_path, "-e", write_vars(tmp_path, {"postgres_dev_services": services,
                                                                  "postgres_dev_superuser_password": secret}))
    assert len(manifests) == 12
    for path in out.iterdir():
        assert secret not in path.read_text(), path


def test_options_reach_the_manifests(tmp_path):
    settings = {
        "postgres_dev_namespace": "team-a",
        "postgres_dev_image": "registry.example.com/postgres:15.8",
        "postgres_dev_storage_class": "fast-ssd",
        "postgres_dev_storage_size": "20Gi",
        "postgres_dev_network_policy_allowed_namespaces": ["team-a", "ingress"],
        "postgres_dev_network_policy_allowed_pod_labels": [{"app.kubernetes.io/part-of": "payments"}],
        "postgres_dev_extra_env": [{"name": "TZ", "value": "Asia/Seoul"}],
        "postgres_dev_server_settings": {"max_connections": 300, "listen_addresses": "localhost"},
        "postgres_dev_services": [{"database": "user_db", "owner": "userservice"},
                                  {"database": "olddb", "owner": "oldservice", "state": "absent"}],
    }
    _proc, manifests = render(tmp_path, "-e", write_vars(tmp_path, settings))
    assert ("Secret", "user-db-credentials") in manifests
    assert ("Secret", "olddb-credentials") not in manifests
    assert set(manifests[("Secret", "postgresql-credentials")]["stringData"]) == {"postgres-password",
                                                                                  "userservice-password"}
    sts = manifests[("StatefulSet", "postgresql")]
    assert sts["metadata"]["namespace"] == "team-a"
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/postgres:15.8"
    assert {"name": "TZ", "value": "Asia/Seoul"} in container["env"]
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast-ssd" and claim["resources"]["requests"]["storage"] == "20Gi"
    conf = manifests[("ConfigMap", "postgres-config")]["data"]["postgresql.conf"]
    assert "max_connections = '300'" in conf and "listen_addresses = '*'" in conf and "localhost" not in conf
    peers = manifests[("NetworkPolicy", "postgresql")]["spec"]["ingress"][0]["from"]
    assert peers == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}},
                     {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}},
                     {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "payments"}}}]
    host = manifests[("Secret", "user-db-credentials")]["stringData"]["host"]
    assert host == "postgresql.team-a.svc.cluster.local"
    for manifest in manifests.values():
        kubernetes_validate.validate(manifest, "1.30.0", strict=True)


def test_no_allowed_peers_means_no_ingress(tmp_path):
    _proc, manifests = render(tmp_path, "-e", write_vars(tmp_path, {"postgres_dev_network_policy_allowed_namespaces": []}))
    assert manifests[("NetworkPolicy", "postgresql")]["spec"]["ingress"] == []


@pytest.mark.parametrize("services, fragment", [
    ([{"database": "userdb", "owner": "svc"}, {"database": "paydb", "owner": "svc"}], "its own owner"),
    ([{"database": "userdb", "owner": "a"}, {"database": "userdb", "owner": "b"}], "its own database"),
    ([{"database": "UserDB", "owner": "a"}], "^[a-z][a-z0-9_]*$"),
    ([{"database": "userdb", "owner": "postgres"}], "not postgres"),
])
def test_invalid_services_stop_before_anything_runs(tmp_path, services, fragment):
    proc = run_deploy("-e", "postgres_dev_render_only=true", "-e", f"postgres_dev_render_dir={tmp_path / 'out'}",
                      "-e", write_vars(tmp_path, {"postgres_dev_services": services}))
    text = output(proc)
    assert proc.returncode != 0
    assert "Invalid postgres_dev settings" in text and fragment in text
    assert "Traceback" not in text
    assert not (tmp_path / "out").exists()
    assert recap(proc)["dev-postgres"]["failed"] == 1


def test_argument_spec_rejects_a_wrong_type(tmp_path):
    proc = run_deploy("-e", "postgres_dev_render_only=true", "-e", f"postgres_dev_render_dir={tmp_path / 'out'}",
                      "-e", write_vars(tmp_path, {"postgres_dev_services": [{"database": "userdb"}]}))
    text = output(proc)
    assert proc.returncode != 0 and "owner" in text and "Traceback" not in text
