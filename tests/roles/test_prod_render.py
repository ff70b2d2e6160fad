"""postgres_prod without a cluster: render-only output, the CRD schema, and validation before anything is applied.

Runs ``ansible-playbook playbooks/deploy.yml -i inventories/prod`` in render-only mode (no cluster is
contacted) and checks the rendered ``postgresql`` resource against the OpenAPI v3 schema of the
operator's CRD (from the v2.0.1 fixtures) with jsonschema, strictly (unknown fields are errors, as with
``kubectl apply --validate=strict``), including negative cases.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .helpers import output
from .prod_helpers import FIXTURES, SERVICES, run_prod


def deploy(extra_vars: dict[str, Any] | None = None):
    """The prod deploy playbook with a kubeconfig that does not exist: nothing may contact a cluster."""
    return run_prod(kubeconfig="/nonexistent/kubeconfig", extra_vars=extra_vars, timeout=600)


def render(tmp_path: Path, **overrides: Any) -> dict[str, dict[str, Any]]:
    """Render-only run; returns the written manifests keyed by file name."""
    out = tmp_path / "render"
    proc = deploy({"postgres_prod_render_only": True, "postgres_prod_render_dir": str(out), **overrides})
    assert proc.returncode == 0, output(proc)[-6000:]
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(out.glob("*.yaml"))}


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields rejected (objects with properties and no other rule get
    additionalProperties: false), as the API server does with field validation Strict."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def crd_schema() -> dict[str, Any]:
    if not FIXTURES.is_dir():
        pytest.skip(f"operator fixtures not found at {FIXTURES}")
    crd = next(doc for doc in yaml.safe_load_all((FIXTURES / "postgresql.crd.yaml").read_text())
               if doc and doc.get("kind") == "CustomResourceDefinition")
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is validated by the server, not the CRD
    schema["properties"].pop("status", None)
    return schema


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return render(tmp_path_factory.mktemp("default"))


def _cluster(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return next(doc for doc in manifests.values() if doc["kind"] == "postgresql")


def errors(schema: dict[str, Any], resource: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(resource)]


# ---- the rendered resource -----------------------------------------------------------------------
def test_rendered_cluster_matches_the_guide(rendered: dict[str, dict[str, Any]]) -> None:
    cluster = _cluster(rendered)
    assert cluster["metadata"]["name"] == "postgres-cluster" and cluster["metadata"]["namespace"] == "microservices"
    spec = cluster["spec"]
    assert spec["numberOfInstances"] == 3 and spec["volume"]["size"] == "50Gi"
    assert spec["databases"] == SERVICES
    assert set(spec["users"]) == set(SERVICES.values())
    assert spec["enableConnectionPooler"] is True and spec["connectionPooler"]["mode"] == "transaction"
    assert spec["enableLogicalBackup"] is True and spec["logicalBackupSchedule"] == "30 00 * * *"
    exporter = spec["sidecars"][0]
    assert exporter["ports"][0]["containerPort"] == 9187
    env = {item["name"]: item["value"] for item in exporter["env"]}
    assert env["DATA_SOURCE_URI"].startswith("localhost:5432/")
    assert env["DATA_SOURCE_USER"] == "$(POSTGRES_USER)" and env["DATA_SOURCE_PASS"] == "$(POSTGRES_PASSWORD)"


def test_rendered_cluster_validates_against_the_crd_schema(crd_schema, rendered) -> None:
    assert errors(crd_schema, _cluster(rendered)) == []


def test_variants_validate_against_the_crd_schema(crd_schema, tmp_path: Path) -> None:
    manifests = render(tmp_path, postgres_prod_instances=5, postgres_prod_storage_class="fast-ssd",
                       postgres_prod_postgres_version="18", postgres_prod_exporter_enabled=False,
                       postgres_prod_replica_connection_pooler_enabled=True,
                       postgres_prod_postgresql_parameters={"max_connections": 200, "log_statement": "ddl"},
                       postgres_prod_user_flags={"userservice": ["createdb"]},
                       postgres_prod_cluster_extra_spec={"patroni": {"synchronous_mode": True},
                                                         "allowedSourceRanges": ["10.0.0.0/8"]})
    cluster = _cluster(manifests)
    assert errors(crd_schema, cluster) == []
    spec = cluster["spec"]
    assert spec["numberOfInstances"] == 5 and spec["volume"]["storageClass"] == "fast-ssd"
    assert spec["postgresql"]["parameters"] == {"max_connections": "200", "log_statement": "ddl"}
    assert spec["patroni"] == {"synchronous_mode": True} and "sidecars" not in spec
    assert spec["users"]["userservice"] == ["createdb"]
    assert not any(doc["metadata"]["name"] == "postgres-cluster-metrics" for doc in manifests.values())


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda s: s.pop("teamId"), "'teamId' is a required property"),
    (lambda s: s["postgresql"].update(version="19"), "'19' is not one of"),
    (lambda s: s["postgresql"].update(version=17), "is not of type 'string'"),
    (lambda s: s.update(numberOfInstances="3"), "is not of type 'integer'"),
    (lambda s: s["users"].update(userservice=["superduper"]), "'superduper' is not one of"),
    (lambda s: s["connectionPooler"].update(mode="statement"), "'statement' is not one of"),
    (lambda s: s.update(logicalBackupSchedule="every night"), "does not match"),
    (lambda s: s.update(enableConectionPooler=True), "Additional properties are not allowed"),
    (lambda s: s["volume"].pop("size"), "'size' is a required property"),
])
def test_broken_resources_are_rejected_by_the_schema(crd_schema, rendered, mutate, expected: str) -> None:
    cluster = copy.deepcopy(_cluster(rendered))
    mutate(cluster["spec"])
    found = errors(crd_schema, cluster)
    assert any(expected in message for message in found), found


# ---- the other rendered manifests ----------------------------------------------------------------
def test_render_only_writes_everything_in_order_without_secrets(rendered) -> None:
    kinds = [(doc["kind"], doc["metadata"]["name"]) for doc in rendered.values()]
    assert kinds[0] == ("Namespace", "postgres-operator")
    assert ("Deployment", "postgres-operator") in kinds
    assert kinds.index(("Deployment", "postgres-operator")) < kinds.index(("postgresql", "postgres-cluster"))
    for name in ("postgres-cluster-rw", "postgres-cluster-ro", "postgres-cluster-metrics"):
        assert ("Service", name) in kinds
    secrets = [doc for doc in rendered.values() if doc["kind"] == "Secret"]
    assert sorted(s["metadata"]["name"] for s in secrets) == sorted(f"{db}-credentials" for db in SERVICES)
    for secret in secrets:
        assert base64.b64decode(secret["data"]["password"]).decode() == "<set-at-apply-time>"


def test_standard_manifests_pass_strict_kubernetes_validation(rendered) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for name, doc in rendered.items():
        if doc["kind"] in ("postgresql", "ServiceMonitor"):
            continue  # custom resources: the CRD schema test covers postgresql
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_operator_is_rewritten_for_its_namespace(rendered) -> None:
    docs = list(rendered.values())
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == "postgres-operator"
    account = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert account["metadata"]["namespace"] == "postgres-operator"
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "postgres-operator")
    assert config["data"]["watched_namespace"] == "microservices"
    assert config["data"]["logical_backup_provider"] == "s3"
    assert config["data"]["logical_backup_s3_bucket"] == "microservices-postgres-backups"


def test_services_select_the_operators_pod_labels(rendered) -> None:
    services = {d["metadata"]["name"]: d for d in rendered.values() if d["kind"] == "Service"}
    base = {"application": "spilo", "cluster-name": "postgres-cluster"}
    assert services["postgres-cluster-rw"]["spec"]["selector"] == {**base, "spilo-role": "master"}
    assert services["postgres-cluster-ro"]["spec"]["selector"] == {**base, "spilo-role": "replica"}
    assert services["postgres-cluster-metrics"]["spec"]["selector"] == base
    assert services["postgres-cluster-metrics"]["spec"]["ports"][0]["port"] == 9187


def test_backup_settings_and_pod_environment(tmp_path: Path) -> None:
    manifests = render(tmp_path, postgres_prod_pod_environment={"WAL_S3_BUCKET": "wal", "USE_WALG_BACKUP": True},
                       postgres_prod_backup_credentials_secret="postgres-backup-credentials",
                       postgres_prod_backup_credentials={"AWS_SECRET_ACCESS_KEY": "very-secret-value"})
    docs = list(manifests.values())
    env = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("pod-environment"))
    assert env["data"] == {"USE_WALG_BACKUP": "true", "WAL_S3_BUCKET": "wal"}
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "postgres-operator")
    assert config["data"]["pod_environment_configmap"] == "microservices/postgres-cluster-pod-environment"
    assert config["data"]["pod_environment_secret"] == "postgres-backup-credentials"
    assert config["data"]["logical_backup_cronjob_environment_secret"] == "postgres-backup-credentials"
    rendered_text = "".join(path.read_text() for path in (tmp_path / "render").glob("*.yaml"))
    assert "very-secret-value" not in rendered_text
    assert base64.b64encode(b"very-secret-value").decode() not in rendered_text


# ---- validation before anything is applied -------------------------------------------------------
@pytest.mark.parametrize(("overrides", "expected"), [
    ({"postgres_prod_cluster_name": "Postgres_Cluster"}, "postgres_prod_cluster_name 'Postgres_Cluster' is not a valid"),
    ({"postgres_prod_postgres_version": "13"}, "postgres_prod_postgres_version '13' is not supported"),
    ({"postgres_prod_instances": 0}, "postgres_prod_instances 0 is out of range"),
    ({"postgres_prod_cluster_extra_spec": {"databases": {"reportdb": "reporter"}}},
     "database 'reportdb' has owner 'reporter', which is not declared"),
    ({"postgres_prod_services": [{"database": "userdb", "owner": "a"}, {"database": "userdb", "owner": "b"}]},
     "every database and every owner must appear once"),
    ({"postgres_prod_operator_version": "v9.9.9"}, "set postgres_prod_supported_postgres_versions"),
])
def test_invalid_input_stops_before_anything_is_applied(overrides: dict[str, Any], expected: str) -> None:
    # Not render-only: the run would contact the (non-existent) cluster if validation let it through.
    proc = deploy(overrides)
    text = output(proc)
    assert proc.returncode != 0, text[-4000:]
    assert expected in " ".join(text.split()), text[-4000:]
    assert "nothing was applied" in " ".join(text.split())
    assert "Apply the operator" not in text and "Apply postgresql" not in text
