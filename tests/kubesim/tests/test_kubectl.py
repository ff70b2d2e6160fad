"""Real kubectl (1.30 and 1.33) against the simulator: the commands and failure shapes the
collection's users see on a real cluster."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.kubesim import KubeSim

from .conftest import Kubectl, kubectl_binary, wait_for

STATEFULSET = """
apiVersion: v1
kind: Secret
metadata: {{name: pg, namespace: {ns}}}
stringData: {{password: s3cret}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: postgresql, namespace: {ns}}}
spec:
  serviceName: postgresql
  replicas: 1
  selector: {{matchLabels: {{app: pg}}}}
  template:
    metadata: {{labels: {{app: pg}}}}
    spec:
      containers:
      - name: postgres
        image: postgres:15
        env:
        - name: POSTGRES_PASSWORD
          valueFrom: {{secretKeyRef: {{name: pg, key: password}}}}
        volumeMounts: [{{name: data, mountPath: /var/lib/postgresql/data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}, labels: {{tier: front}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: web, image: "nginx:1.27", ports: [{{containerPort: 80}}]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{mode: "{mode}"}}
"""


def test_client_side_apply_wait_and_reapply_unchanged(kubectl: Kubectl, namespace: str) -> None:
    manifest = DEPLOYMENT.format(ns=namespace, replicas=2, mode="a")
    first = kubectl.run("apply", "-f", "-", stdin=manifest)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["deployment.apps/web created", "configmap/settings created"]
    waited = kubectl.run("wait", "--for=condition=Available", "deployment/web", "-n", namespace, "--timeout=60s")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == "deployment.apps/web condition met"
    again = kubectl.run("apply", "-f", "-", stdin=manifest)
    assert again.stdout.splitlines() == ["deployment.apps/web unchanged", "configmap/settings unchanged"]
    deploy = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert deploy["metadata"]["generation"] == 1
    assert deploy["status"]["readyReplicas"] == 2
    assert deploy["status"]["observedGeneration"] == 1
    assert deploy["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", "app=web")
    assert len(pods["items"]) == 2
    assert {p["status"]["phase"] for p in pods["items"]} == {"Running"}


def test_server_side_apply_owns_fields_and_reports_conflicts(kubectl: Kubectl, namespace: str) -> None:
    manifest = DEPLOYMENT.format(ns=namespace, replicas=1, mode="a")
    applied = kubectl.run("apply", "--server-side", "-f", "-", stdin=manifest)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == ["deployment.apps/web serverside-applied",
                                           "configmap/settings serverside-applied"]
    cm = kubectl.json("get", "configmap", "settings", "-n", namespace, "--show-managed-fields")
    assert [(m["manager"], m["operation"]) for m in cm["metadata"]["managedFields"]] == [("kubectl", "Apply")]
    assert cm["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {"f:mode": {}}}
    other = kubectl.run("apply", "--server-side", "--field-manager=other", "-f", "-",
                        stdin=DEPLOYMENT.format(ns=namespace, replicas=1, mode="b"))
    assert other.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.mode' in other.stderr
    forced = kubectl.run("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-",
                         stdin=DEPLOYMENT.format(ns=namespace, replicas=1, mode="b"))
    assert forced.returncode == 0, forced.stderr
    assert kubectl.json("get", "configmap", "settings", "-n", namespace)["data"] == {"mode": "b"}


def test_statefulset_rollout_exec_and_delete(kubectl: Kubectl, namespace: str) -> None:
    applied = kubectl.run("apply", "-f", "-", stdin=STATEFULSET.format(ns=namespace))
    assert applied.returncode == 0, applied.stderr
    rollout = kubectl.run("rollout", "status", "statefulset/postgresql", "-n", namespace, "--timeout=90s")
    assert rollout.returncode == 0, rollout.stderr
    assert "roll out complete" in rollout.stdout
    pvc = kubectl.json("get", "pvc", "data-postgresql-0", "-n", namespace)
    assert pvc["status"]["phase"] == "Bound"
    selected = kubectl.run("exec", "-n", namespace, "postgresql-0", "--", "psql", "-U", "postgres", "-Atc",
                           "select 1")
    assert (selected.returncode, selected.stdout) == (0, "1\n"), selected.stderr
    piped = kubectl.run("exec", "-i", "-n", namespace, "postgresql-0", "--", "psql", "-U", "postgres", "-At",
                        "-v", "ON_ERROR_STOP=1", "-f", "-", stdin="create table t(x int); insert into t "
                                                                  "values (7); select sum(x) from t;\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines() == ["CREATE TABLE", "INSERT 0 1", "7"]
    over_tcp = kubectl.run("exec", "-n", namespace, "postgresql-0", "--", "sh", "-c",
                           "PGPASSWORD=s3cret psql -h 127.0.0.1 -U postgres -Atc 'select current_user'")
    assert over_tcp.stdout == "postgres\n", over_tcp.stderr
    failed = kubectl.run("exec", "-n", namespace, "postgresql-0", "--", "sh", "-c", "echo oops >&2; exit 3")
    assert failed.returncode == 3
    assert failed.stderr.splitlines() == ["oops", "command terminated with exit code 3"]
    deleted = kubectl.run("delete", "statefulset", "postgresql", "-n", namespace)
    assert deleted.stdout.strip() == 'statefulset.apps "postgresql" deleted'
    wait_for(lambda: not kubectl.json("get", "pods", "-n", namespace)["items"])


def test_error_shapes_match_a_real_cluster(kubectl: Kubectl, namespace: str) -> None:
    missing = kubectl.run("apply", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\n"
                                                    "metadata: {name: x, namespace: no-such-ns}\n")
    assert missing.returncode == 1
    assert missing.stderr.strip() == ('Error from server (NotFound): error when creating "STDIN": '
                                      'namespaces "no-such-ns" not found')
    unknown = kubectl.run("apply", "-f", "-", stdin="apiVersion: example.com/v1\nkind: Widget\n"
                                                    f"metadata: {{name: w, namespace: {namespace}}}\n")
    assert unknown.returncode == 1
    assert unknown.stderr.splitlines() == [
        f'error: resource mapping not found for name: "w" namespace: "{namespace}" from "STDIN": no matches for '
        f'kind "Widget" in version "example.com/v1"', "ensure CRDs are installed first"]
    not_found = kubectl.run("get", "deployment", "nope", "-n", namespace)
    assert not_found.returncode == 1
    assert not_found.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'
    dup = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: dup, namespace: {namespace}}}\n"
    created = kubectl.run("create", "-f", "-", stdin=dup)
    assert created.returncode == 0, created.stderr
    duplicate = kubectl.run("create", "-f", "-", stdin=dup)
    assert duplicate.returncode == 1
    assert duplicate.stderr.strip() == ('Error from server (AlreadyExists): error when creating "STDIN": '
                                        'configmaps "dup" already exists')


def test_protobuf_request_body_gets_415_status(kubesim: KubeSim, namespace: str, tmp_path: Path) -> None:
    """kubesim serves JSON/YAML only: a protobuf body is refused as by a server without that codec."""
    url = f"{kubesim.url}/api/v1/namespaces/{namespace}/configmaps"
    accept = "application/vnd.kubernetes.protobuf,application/json"  # what kubectl sends
    request = urllib.request.Request(url, data=b"k8s\x00\n\x0f\n\x02v1\x12\tConfigMap", method="POST",
                                     headers={"Content-Type": "application/vnd.kubernetes.protobuf", "Accept": accept})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - loopback test server
    assert refused.value.code == 415
    assert refused.value.headers["Content-Type"] == "application/json"
    status = json.loads(refused.value.read())
    assert (status["kind"], status["status"], status["reason"], status["code"]) == (
        "Status", "Failure", "UnsupportedMediaType", 415)
    assert "kubesim serves JSON/YAML only" in status["message"]
    assert "kubectl apply -f" in status["message"]
    listing = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(listing, timeout=10) as response:  # noqa: S310
        assert response.headers["Content-Type"] == "application/json"
        names = [i["metadata"]["name"] for i in json.loads(response.read())["items"]]
        assert [n for n in names if n != "kube-root-ca.crt"] == []
    proto_only = urllib.request.Request(f"{kubesim.url}/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    with urllib.request.urlopen(proto_only, timeout=10) as response:  # noqa: S310 - empty document, see README
        assert (response.status, response.read()) == (200, b"")
    unknown_type = urllib.request.Request(f"{kubesim.url}/openapi/v2", headers={"Accept": "application/cbor"})
    with pytest.raises(urllib.error.HTTPError) as not_acceptable:
        urllib.request.urlopen(unknown_type, timeout=10)  # noqa: S310
    assert not_acceptable.value.code == 406
    assert json.loads(not_acceptable.value.read())["reason"] == "NotAcceptable"
    with urllib.request.urlopen(f"{kubesim.url}/openapi/v2", timeout=10) as response:  # noqa: S310
        assert json.loads(response.read())["swagger"] == "2.0"
    binary = kubectl_binary("1.33")
    if binary is None:
        pytest.skip("kubectl 1.33 is not installed")
    typed = Kubectl(binary, kubesim.kubeconfig_path, tmp_path).run("create", "configmap", "typed", "-n", namespace)
    assert typed.returncode == 1
    assert typed.stderr.startswith("error: failed to create configmap: the body of the request was in an "
                                   "unknown format")
    assert "kubesim serves JSON/YAML only" in typed.stderr


def test_custom_resource_schema_is_enforced(kubectl: Kubectl, namespace: str) -> None:
    crd = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets, singular: gadget, shortNames: [gd]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, enum: [red, blue]}
"""
    registered = kubectl.run("apply", "-f", "-", stdin=crd)
    assert registered.returncode == 0, registered.stderr
    established = kubectl.run("wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=20s")
    assert established.returncode == 0, established.stderr
    bad = kubectl.run("apply", "-f", "-", stdin=f"apiVersion: example.com/v1\nkind: Gadget\nmetadata: "
                                                f"{{name: g1, namespace: {namespace}}}\nspec: {{color: green}}\n")
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == ['The Gadget "g1" is invalid: ', "* spec.size: Required value",
                                       '* spec.color: Unsupported value: "green": supported values: "red", "blue"']
    gadget = f"apiVersion: example.com/v1\nkind: Gadget\nmetadata: {{name: g1, namespace: {namespace}}}\n"
    good = kubectl.run("apply", "--server-side", "-f", "-", stdin=gadget + "spec: {size: 2, color: red}\n")
    assert good.returncode == 0, good.stderr
    listed = kubectl.json("get", "gd", "-n", namespace)
    assert [(i["metadata"]["name"], i["spec"]["size"], i["metadata"]["generation"]) for i in listed["items"]] == [
        ("g1", 2, 1)]


def test_create_job_from_cronjob_completes(kubectl: Kubectl, namespace: str) -> None:
    cron = f"""
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly, namespace: {namespace}}}
spec:
  schedule: "30 0 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{{name: task, image: "busybox:1.36", command: [sh, -c, "true"]}}]
"""
    assert kubectl.run("apply", "-f", "-", stdin=cron).returncode == 0
    # kubectl 1.32+ sends this typed create as protobuf, which kubesim refuses (README); 1.30 sends JSON.
    binary = kubectl_binary("1.30")
    if binary is None:
        pytest.skip("kubectl 1.30 is not installed")
    old = Kubectl(binary, Path(kubectl.env["KUBECONFIG"]), Path(kubectl.env["KUBECACHEDIR"] + "-1.30"))
    created = old.run("create", "job", "--from=cronjob/nightly", "manual", "-n", namespace)
    assert created.returncode == 0, created.stderr
    done = kubectl.run("wait", "--for=condition=Complete", "job/manual", "-n", namespace, "--timeout=60s")
    assert done.returncode == 0, done.stderr
    job = kubectl.json("get", "job", "manual", "-n", namespace)
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["status"]["succeeded"] == 1


def test_exec_over_spdy_only_kubectl_is_refused(kubesim: KubeSim, namespace: str, tmp_path: Path) -> None:
    binary = kubectl_binary("1.29")
    if binary is None:
        pytest.skip("kubectl 1.29 is not installed")
    old = Kubectl(binary, kubesim.kubeconfig_path, tmp_path)
    assert old.run("run", "box", "-n", namespace, "--image=busybox:1.36").returncode == 0
    wait_for(lambda: old.json("get", "pod", "box", "-n", namespace)["status"].get("phase") == "Running")
    refused = old.run("exec", "-n", namespace, "box", "--", "true")
    assert refused.returncode == 1
    assert "kubesim implements exec over WebSocket" in refused.stderr
    assert "not SPDY" in refused.stderr


def test_get_table_output_lists_ready_pods(kubectl: Kubectl, namespace: str) -> None:
    assert kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT.format(ns=namespace, replicas=1, mode="a")).returncode == 0
    assert kubectl.run("wait", "--for=condition=Available", "deployment/web", "-n", namespace).returncode == 0
    table = kubectl.run("get", "deployments", "-n", namespace)
    header, row = table.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row.split()[:4] == ["web", "1/1", "1", "1"]
    described = json.loads(kubectl.run("get", "deployment", "web", "-n", namespace, "-o", "json").stdout)
    assert described["metadata"]["labels"] == {"tier": "front"}
