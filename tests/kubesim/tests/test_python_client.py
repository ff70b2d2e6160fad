"""The kubernetes Python client (dynamic and typed) against the simulator: verbs, patch
types, status codes, watch and exec over v4.channel.k8s.io."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError
from kubernetes.stream import stream

from tests.kubesim import KubeSim

from .conftest import wait_for


def _configmap(namespace: str, name: str, labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "data": {"k": "v"}}


def test_crud_selectors_and_resource_versions(dynamic_client: object, namespace: str) -> None:
    cms = dynamic_client.resources.get(api_version="v1", kind="ConfigMap")  # type: ignore[attr-defined]
    created = cms.create(body=_configmap(namespace, "a", {"env": "dev", "tier": "db"}))
    cms.create(body=_configmap(namespace, "b", {"env": "prod"}))
    assert created.metadata.uid and created.metadata.creationTimestamp

    def names(**kw: str) -> list[str]:
        return sorted(i.metadata.name for i in cms.get(namespace=namespace, **kw).items)

    assert names(label_selector="env in (dev,prod),!tier") == ["b"]
    assert names(field_selector="metadata.name=a") == ["a"]
    rv = created.metadata.resourceVersion
    same = cms.patch(name="a", namespace=namespace, body={"data": {"k": "v"}},
                     content_type="application/merge-patch+json")
    assert same.metadata.resourceVersion == rv
    changed = cms.patch(name="a", namespace=namespace, body={"data": {"k": "w"}},
                        content_type="application/merge-patch+json")
    assert int(changed.metadata.resourceVersion) > int(rv)
    stale = _configmap(namespace, "a")
    stale["metadata"]["resourceVersion"] = rv
    with pytest.raises(ConflictError) as caught:
        cms.replace(body=stale)
    assert "the object has been modified" in caught.value.summary()
    with pytest.raises(ConflictError):
        cms.create(body=_configmap(namespace, "a"))
    cms.delete(name="a", namespace=namespace)
    with pytest.raises(NotFoundError):
        cms.get(name="a", namespace=namespace)


def test_patch_types_and_generation(dynamic_client: object, namespace: str) -> None:
    deployments = dynamic_client.resources.get(api_version="apps/v1", kind="Deployment")  # type: ignore
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}},
                                  "spec": {"containers": [{"name": "api", "image": "api:1"},
                                                          {"name": "proxy", "image": "proxy:1"}]}}}}
    created = deployments.create(body=body)
    assert created.metadata.generation == 1
    patched = deployments.patch(name="api", namespace=namespace, content_type="application/strategic-merge-patch+json",
                                body={"spec": {"template": {"spec": {"containers": [{"name": "api",
                                                                                     "image": "api:2"}]}}}})
    assert [(c.name, c.image) for c in patched.spec.template.spec.containers] == [("api", "api:2"),
                                                                                  ("proxy", "proxy:1")]
    assert patched.metadata.generation == 2
    labelled = deployments.patch(name="api", namespace=namespace, content_type="application/json-patch+json",
                                 body=[{"op": "add", "path": "/metadata/labels", "value": {"team": "a"}}])
    assert labelled.metadata.generation == 2
    scale = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": namespace},
             "spec": {"replicas": 3}}
    with pytest.raises(ConflictError) as conflict:
        deployments.server_side_apply(name="api", namespace=namespace, field_manager="tester", body=scale)
    # The creator owns the defaulted replicas, as on a real server.
    status = json.loads(conflict.value.body)
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "OpenAPI-Generator" using apps/v1: ' \
                                '.spec.replicas'
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                            "message": 'conflict with "OpenAPI-Generator" using apps/v1'}]
    applied = deployments.server_side_apply(name="api", namespace=namespace, field_manager="tester", body=scale,
                                            force_conflicts=True)
    assert applied.spec.replicas == 3
    assert {m.manager for m in applied.metadata.managedFields} >= {"tester"}
    with pytest.raises(UnprocessibleEntityError) as caught:
        deployments.patch(name="api", namespace=namespace, content_type="application/merge-patch+json",
                          body={"spec": {"selector": {"matchLabels": {"app": "other"}}}})
    assert "field is immutable" in caught.value.summary()


def test_missing_namespace_and_dry_run(kubesim: KubeSim, namespace: str) -> None:
    api = client.CoreV1Api(config.new_client_from_config(str(kubesim.kubeconfig_path)))
    with pytest.raises(client.ApiException) as caught:
        api.create_namespaced_secret("nowhere", {"metadata": {"name": "s"}})
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["message"] == 'namespaces "nowhere" not found'
    dry = api.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"a": "b"}},
                                       dry_run="All")
    assert dry.data == {"a": "Yg=="}
    with pytest.raises(client.ApiException) as missing:
        api.read_namespaced_secret("s", namespace)
    assert missing.value.status == 404


def test_watch_streams_changes(kubesim: KubeSim, namespace: str) -> None:
    api = client.CoreV1Api(config.new_client_from_config(str(kubesim.kubeconfig_path)))
    seen: list[tuple[str, str]] = []
    listed = api.list_namespaced_config_map(namespace)

    def consume() -> None:
        for event in watch.Watch().stream(api.list_namespaced_config_map, namespace, timeout_seconds=10,
                                          resource_version=listed.metadata.resource_version):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                return

    thread = threading.Thread(target=consume)
    thread.start()
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "w"}})
    api.patch_namespaced_config_map("w", namespace, {"data": {"x": "1"}})
    api.delete_namespaced_config_map("w", namespace)
    thread.join(timeout=15)
    assert [s for s in seen if s[1] == "w"] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_exec_stream_v4_returns_output_and_exit_code(kubesim: KubeSim, namespace: str) -> None:
    api = client.CoreV1Api(config.new_client_from_config(str(kubesim.kubeconfig_path)))
    api.create_namespaced_pod(namespace, {"metadata": {"name": "box"},
                                          "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}})
    wait_for(lambda: api.read_namespaced_pod("box", namespace).status.phase == "Running")
    output = stream(api.connect_get_namespaced_pod_exec, "box", namespace, command=["sh", "-c", "echo hello"],
                    stderr=True, stdin=False, stdout=True, tty=False)
    assert output == "hello\n"
    resp = stream(api.connect_get_namespaced_pod_exec, "box", namespace, command=["sh", "-c", "cat; exit 4"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    resp.write_stdin("piped\n")
    out = ""
    while resp.is_open() and "piped" not in out:
        resp.update(timeout=1)
        out += resp.read_stdout() if resp.peek_stdout() else ""
    assert out == "piped\n"
    resp.close()


def _statefulset(namespace: str) -> dict:
    return {"metadata": {"name": "pg", "namespace": namespace},
            "spec": {"serviceName": "pg", "replicas": 1, "selector": {"matchLabels": {"app": "pg"}},
                     "template": {"metadata": {"labels": {"app": "pg"}}, "spec": {"containers": [{
                         "name": "postgres", "image": "postgres:15",
                         "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}


def _psql(api: client.CoreV1Api, namespace: str, pod: str, sql: str) -> str:
    return stream(api.connect_get_namespaced_pod_exec, pod, namespace,
                  command=["psql", "-U", "postgres", "-Atc", sql], stderr=True, stdin=False, stdout=True, tty=False)


def test_statefulset_data_survives_pod_deletion_and_scale_subresource(kubesim: KubeSim, namespace: str) -> None:
    api_client = config.new_client_from_config(str(kubesim.kubeconfig_path))
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    apps.create_namespaced_stateful_set(namespace, _statefulset(namespace))

    def ready() -> int:
        return apps.read_namespaced_stateful_set("pg", namespace).status.ready_replicas or 0

    wait_for(lambda: ready() == 1)
    assert _psql(core, namespace, "pg-0", "create table kept(x int); insert into kept values (5)") == "CREATE TABLE\nINSERT 0 1\n"
    first_uid = core.read_namespaced_pod("pg-0", namespace).metadata.uid
    core.delete_namespaced_pod("pg-0", namespace)
    wait_for(lambda: core.list_namespaced_pod(namespace).items
             and core.list_namespaced_pod(namespace).items[0].metadata.uid != first_uid and ready() == 1)
    assert _psql(core, namespace, "pg-0", "select x from kept") == "5\n"
    apps.patch_namespaced_stateful_set_scale("pg", namespace, {"spec": {"replicas": 2}})
    wait_for(lambda: ready() == 2)
    status = apps.read_namespaced_stateful_set("pg", namespace).status
    assert (status.replicas, status.current_replicas, status.updated_replicas) == (2, 2, 2)
    assert status.current_revision == status.update_revision
    claims = sorted(c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items)
    assert claims == ["data-pg-0", "data-pg-1"]
    assert apps.read_namespaced_stateful_set_scale("pg", namespace).spec.replicas == 2


def test_deployment_rollout_replaces_pods(kubesim: KubeSim, namespace: str) -> None:
    apps = client.AppsV1Api(config.new_client_from_config(str(kubesim.kubeconfig_path)))
    core = client.CoreV1Api(apps.api_client)
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                              "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                                                  "containers": [{"name": "web", "image": "nginx:1.26"}]}}}})
    wait_for(lambda: apps.read_namespaced_deployment("web", namespace).status.available_replicas == 2)
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.27"}]}}}})

    def rolled() -> bool:
        deploy = apps.read_namespaced_deployment("web", namespace)
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        return (deploy.status.observed_generation == 2 and deploy.status.updated_replicas == 2
                and len(pods) == 2 and {p.spec.containers[0].image for p in pods} == {"nginx:1.27"})

    wait_for(rolled)
    conditions = {c.type: c.status for c in apps.read_namespaced_deployment("web", namespace).status.conditions}
    assert conditions == {"Available": "True", "Progressing": "True"}
