"""Unit tests for the Zalando postgres-operator filters (plugins/filter/zalando.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.microservices.postgres.plugins.filter import zalando

FIXTURES = Path(__file__).resolve().parents[4].parent / "shared" / "fixtures" / "zalando-postgres-operator-v2.0.1"
KUSTOMIZATION = ["configmap.yaml", "operator-service-account-rbac.yaml", "postgres-operator.yaml", "api-service.yaml"]
V201 = ["14", "15", "16", "17", "18"]


def _operator_docs() -> list[dict]:
    if not FIXTURES.is_dir():
        pytest.skip(f"operator fixtures not found at {FIXTURES}")
    return [doc for name in KUSTOMIZATION for doc in yaml.safe_load_all((FIXTURES / name).read_text())]


def _spec(**overrides) -> dict:
    spec = {"teamId": "microservices", "numberOfInstances": 3, "postgresql": {"version": "17"},
            "volume": {"size": "50Gi"}, "users": {"userservice": []}, "databases": {"userdb": "userservice"}}
    spec.update(overrides)
    return spec


# ---- operator_secret_name ------------------------------------------------------------------------
@pytest.mark.parametrize(("user", "cluster", "expected"), [
    ("userservice", "postgres-cluster", "userservice.postgres-cluster.credentials.postgresql.acid.zalan.do"),
    ("report_reader", "postgres-cluster", "report-reader.postgres-cluster.credentials.postgresql.acid.zalan.do"),
    ("a_b_c", "x", "a-b-c.x.credentials.postgresql.acid.zalan.do"),
])
def test_operator_secret_name(user: str, cluster: str, expected: str) -> None:
    assert zalando.operator_secret_name(user, cluster) == expected


@pytest.mark.parametrize(("user", "cluster"), [("", "c"), ("u", ""), (None, "c"), ("u", 3)])
def test_operator_secret_name_rejects_empty_or_non_strings(user, cluster) -> None:
    with pytest.raises(AnsibleFilterError):
        zalando.operator_secret_name(user, cluster)


# ---- zalando_operator_manifests ------------------------------------------------------------------
def test_manifests_are_moved_to_the_namespace_and_rbac_subjects_rewritten() -> None:
    docs = _operator_docs()
    out = zalando.zalando_operator_manifests(docs, "pg-operator", {"watched_namespace": "microservices"})
    kinds = [(o["kind"], o["metadata"]["name"]) for o in out]
    assert ("Deployment", "postgres-operator") in kinds and ("ClusterRoleBinding", "postgres-operator") in kinds
    for obj in out:
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == "pg-operator"
    binding = next(o for o in out if o["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "postgres-operator", "namespace": "pg-operator"}]
    # the input is untouched
    assert next(d for d in docs if d and d["kind"] == "ClusterRoleBinding")["subjects"][0]["namespace"] == "default"


def test_manifests_config_is_merged_as_strings_and_hashed_into_the_deployment() -> None:
    docs = _operator_docs()
    out = zalando.zalando_operator_manifests(docs, "ns", {"watched_namespace": "microservices", "workers": 4,
                                                          "enable_sidecars": False, "cluster_labels": {"a": "b"},
                                                          "protected_role_names": ["admin", "cron_admin"]})
    data = next(o for o in out if o["kind"] == "ConfigMap")["data"]
    assert data["watched_namespace"] == "microservices"
    assert data["workers"] == "4" and data["enable_sidecars"] == "false"
    assert data["cluster_labels"] == "a:b" and data["protected_role_names"] == "admin,cron_admin"
    assert data["super_username"] == "postgres"  # upstream values kept

    def digest(config):
        deploy = next(o for o in zalando.zalando_operator_manifests(docs, "ns", config) if o["kind"] == "Deployment")
        return deploy["spec"]["template"]["metadata"]["annotations"][zalando.CONFIG_HASH_ANNOTATION]

    assert digest({"workers": 4}) == digest({"workers": "4"})
    assert digest({"workers": 4}) != digest({"workers": 8})


def test_manifests_image_override() -> None:
    out = zalando.zalando_operator_manifests(_operator_docs(), "ns", {}, "registry.local/postgres-operator:v2.0.1")
    deploy = next(o for o in out if o["kind"] == "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/postgres-operator:v2.0.1"
    default = zalando.zalando_operator_manifests(_operator_docs(), "ns")
    assert next(o for o in default if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0][
        "image"] == "ghcr.io/zalando/postgres-operator:v2.0.1"


def test_manifests_drop_empty_documents_and_reject_garbage() -> None:
    assert zalando.zalando_operator_manifests([None, {}], "ns") == []
    with pytest.raises(AnsibleFilterError):
        zalando.zalando_operator_manifests(["text"], "ns")
    with pytest.raises(AnsibleFilterError):
        zalando.zalando_operator_manifests([], "")


# ---- zalando_cluster_errors ----------------------------------------------------------------------
def test_a_valid_cluster_has_no_errors() -> None:
    assert zalando.zalando_cluster_errors(_spec(), "postgres-cluster", V201) == []


@pytest.mark.parametrize("name", ["Postgres", "1cluster", "pg_cluster", "pg-", "", "a" * 59])
def test_invalid_cluster_names(name: str) -> None:
    errors = zalando.zalando_cluster_errors(_spec(), name, V201)
    assert len(errors) == 1 and "postgres_prod_cluster_name" in errors[0] and "DNS-1035" in errors[0]


def test_a_58_character_name_is_accepted() -> None:
    assert zalando.zalando_cluster_errors(_spec(), "a" * 58, V201) == []


@pytest.mark.parametrize("version", ["13", "19", "", "17.2"])
def test_unsupported_versions(version: str) -> None:
    errors = zalando.zalando_cluster_errors(_spec(postgresql={"version": version}), "pg", V201)
    assert len(errors) == 1 and "postgres_prod_postgres_version" in errors[0] and "14, 15, 16, 17, 18" in errors[0]


@pytest.mark.parametrize("instances", [0, -1, 11, "3", True, None])
def test_instances_out_of_range(instances) -> None:
    errors = zalando.zalando_cluster_errors(_spec(numberOfInstances=instances), "pg", V201, 10)
    assert len(errors) == 1 and "postgres_prod_instances" in errors[0]


def test_owner_must_be_declared() -> None:
    errors = zalando.zalando_cluster_errors(_spec(databases={"userdb": "userservice", "reportdb": "reporter"}),
                                            "pg", V201)
    assert len(errors) == 1 and "'reportdb'" in errors[0] and "'reporter'" in errors[0]
    assert zalando.zalando_cluster_errors(_spec(databases={"x": "postgres"}), "pg", V201) == []


def test_invalid_user_names_and_several_errors_at_once() -> None:
    errors = zalando.zalando_cluster_errors(_spec(users={"Bad": [], "ok_user": []}, databases={},
                                                  numberOfInstances=0), "Bad", V201)
    assert len(errors) == 3


# ---- pods and events -----------------------------------------------------------------------------
def _pod(name: str, role: str | None, ready: bool, waiting: str | None = None) -> dict:
    labels = {"application": "spilo"}
    if role:
        labels["spilo-role"] = role
    status = {"phase": "Running" if ready else "Pending",
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": "boom"}}
        status["containerStatuses"] = [{"name": "postgres", "state": state}]
    return {"metadata": {"name": name, "labels": labels}, "status": status}


def test_pod_summary() -> None:
    summary = zalando.k8s_pod_summary([_pod("c-1", "replica", True), _pod("c-0", "master", True),
                                       _pod("c-2", None, False, "CreateContainerConfigError")])
    assert summary["total"] == 3 and summary["ready"] == ["c-0", "c-1"]
    assert summary["masters"] == ["c-0"] and summary["replicas"] == ["c-1"]
    assert summary["not_ready"] == ["c-2: container postgres CreateContainerConfigError: boom"]
    assert "not Ready: c-2" in summary["text"]
    assert zalando.k8s_pod_summary([])["text"].startswith("0 pod(s)")


def test_last_event() -> None:
    events = [{"type": "Normal", "reason": "Create", "message": "first", "lastTimestamp": "2026-01-01T00:00:01Z"},
              {"type": "Warning", "reason": "Create", "message": "last", "lastTimestamp": "2026-01-01T00:00:09Z"},
              {"type": "Normal", "reason": "Sync", "message": "middle", "lastTimestamp": "2026-01-01T00:00:05Z"}]
    assert zalando.k8s_last_event(events) == "Warning Create: last"
    assert zalando.k8s_last_event([]) == "no event recorded"


def test_filter_module_lists_every_filter() -> None:
    assert set(zalando.FilterModule().filters()) == {
        "operator_secret_name", "zalando_operator_manifests", "zalando_cluster_errors", "k8s_pod_summary",
        "k8s_last_event"}
