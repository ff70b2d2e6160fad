"""The test bed is a real cluster: pinned release, RBAC, real pods with real PostgreSQL, clean stop."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import yaml

from tests.localcluster.pytest_plugin import LocalClusterProcess, require_test_bed

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "zalando-postgres-operator-v2.0.1"
STATEFULSET = """
apiVersion: v1
kind: Secret
metadata: {name: pw, namespace: NS}
stringData: {p: first-password}
---
apiVersion: v1
kind: Service
metadata: {name: pg, namespace: NS}
spec:
  selector: {app: pg}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: pg, namespace: NS}
spec:
  serviceName: pg
  replicas: 1
  selector: {matchLabels: {app: pg}}
  template:
    metadata: {labels: {app: pg}}
    spec:
      securityContext: {runAsUser: 999, fsGroup: 999}
      containers:
      - name: postgresql
        image: postgres:15
        env:
        - {name: POSTGRES_PASSWORD, valueFrom: {secretKeyRef: {name: pw, key: p}}}
        - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
        readinessProbe:
          exec: {command: [pg_isready, -U, postgres, -h, 127.0.0.1, -p, "5432"]}
        volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def _json(bed: LocalClusterProcess, *args: str):
    return json.loads(bed.kubectl(*args, "-o", "json").stdout)


def _wait_ready(bed: LocalClusterProcess, namespace: str, pod: str, timeout: int = 120, not_uid: str = "") -> dict:
    deadline = time.monotonic() + timeout
    last = {}
    while time.monotonic() < deadline:
        proc = bed.kubectl("-n", namespace, "get", "pod", pod, "-o", "json", check=False)
        if proc.returncode == 0:
            last = json.loads(proc.stdout)
            ready = [c for c in last.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
            if last["metadata"]["uid"] != not_uid and ready and ready[0]["status"] == "True":
                return last
        time.sleep(1)
    raise AssertionError(f"pod {namespace}/{pod} not Ready in {timeout} s: {json.dumps(last.get('status'))[:2000]}")


def test_server_and_kubectl_are_the_pinned_release(localcluster):
    versions = json.loads(localcluster.kubectl("version", "-o", "json").stdout)
    assert versions["serverVersion"]["gitVersion"] == "v1.36.3"
    assert versions["clientVersion"]["gitVersion"] == "v1.36.3"


def test_three_nodes_are_ready_and_rbac_is_enforced(localcluster):
    nodes = _json(localcluster, "get", "nodes")["items"]
    ready = {n["metadata"]["name"]: [c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready"] for n in nodes}
    assert ready == {"lc-node-0": ["True"], "lc-node-1": ["True"], "lc-node-2": ["True"]}
    modes = localcluster.kubectl("auth", "can-i", "list", "secrets", "--as=system:serviceaccount:default:default", check=False).stdout
    assert modes.strip() == "no"


def test_operator_service_account_gets_exactly_its_cluster_role(localcluster):
    """The release's RBAC, rewritten for the role's namespace as the role rewrites it."""
    documents = list(yaml.safe_load_all((FIXTURES / "operator-service-account-rbac.yaml").read_text()))
    namespace = "postgres-operator"
    localcluster.kubectl("create", "namespace", namespace)
    for doc in documents:
        if doc["kind"] == "ServiceAccount":
            doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    localcluster.kubectl("apply", "-f", "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    role = next(d for d in documents if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "postgres-operator")
    user = f"system:serviceaccount:{namespace}:postgres-operator"
    granted = 0
    for rule in role["rules"]:
        for group in rule.get("apiGroups", [""]):
            for resource in rule.get("resources", []):
                for verb in rule["verbs"]:
                    assert _allowed(localcluster, user, verb, group, resource), f"{verb} {resource}.{group} is not granted"
                    granted += 1
    assert granted > 40
    for verb, group, resource in (("delete", "", "nodes"), ("create", "rbac.authorization.k8s.io", "clusterroles"),
                                  ("delete", "", "namespaces"), ("create", "", "serviceaccounts/token"),
                                  ("escalate", "rbac.authorization.k8s.io", "clusterroles")):
        assert not _allowed(localcluster, user, verb, group, resource), f"{verb} {resource}.{group} should not be granted"
    # kubectl's own view agrees where the resource type is known to discovery.
    assert localcluster.kubectl("auth", "can-i", "delete", "pods", f"--as={user}", "-A", check=False).stdout.strip() == "yes"
    assert localcluster.kubectl("auth", "can-i", "delete", "nodes", f"--as={user}", check=False).stdout.strip() == "no"


def _allowed(bed: LocalClusterProcess, user: str, verb: str, group: str, resource: str) -> bool:
    """The API server's RBAC verdict (a SubjectAccessReview), also for types not yet registered."""
    name, _slash, sub = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:serviceaccounts", "system:authenticated"],
                 "resourceAttributes": {"group": group, "resource": name, "subresource": sub, "verb": verb}},
    }
    answer = json.loads(bed.kubectl("create", "-o", "json", "-f", "-", input_text=json.dumps(review)).stdout)
    return bool(answer["status"].get("allowed"))


def test_statefulset_pod_runs_real_postgres_and_keeps_its_data(localcluster):
    namespace = "lc-sts"
    localcluster.kubectl("create", "namespace", namespace)
    localcluster.kubectl("apply", "-f", "-", input_text=STATEFULSET.replace("NS", namespace))
    first = _wait_ready(localcluster, namespace, "pg-0")
    address = first["status"]["podIP"]
    assert re.fullmatch(r"10\.244\.\d+\.\d+", address)
    psql = ("-n", namespace, "exec", "pg-0", "--", "psql", "-U", "postgres", "-At", "-c")
    localcluster.kubectl(*psql, "CREATE TABLE kept AS SELECT g AS n FROM generate_series(1, 1000) g")
    version = localcluster.kubectl(*psql, "SHOW server_version_num").stdout.strip()
    assert version.startswith("15")
    # An exec runs inside the container: its loopback, its env, its user, its files.
    inside = localcluster.kubectl(
        "-n", namespace, "exec", "pg-0", "--", "sh", "-c",
        'psql -h 127.0.0.1 -U postgres -At -c "SELECT 1" >/dev/null 2>&1; echo "$? $PGDATA $(id -un) $(ls /var/lib/postgresql/data/pgdata/PG_VERSION)"',
    ).stdout.split()
    assert inside == ["0", "/var/lib/postgresql/data/pgdata", "postgres", "/var/lib/postgresql/data/pgdata/PG_VERSION"]
    # Another pod's view: the Service name resolves to the pod, and the password from the Secret works.
    lookup = localcluster.kubectl("-n", namespace, "exec", "pg-0", "--", "getent", "hosts", f"pg.{namespace}.svc.cluster.local").stdout
    assert lookup.split()[0] == address
    remote = localcluster.kubectl(
        "-n", namespace, "exec", "pg-0", "--", "env", "PGPASSWORD=first-password", "psql", "-h", f"pg.{namespace}.svc.cluster.local",
        "-U", "postgres", "-At", "-c", "SELECT host(inet_server_addr())",
    )
    assert remote.stdout.strip() == address
    wrong = localcluster.kubectl(
        "-n", namespace, "exec", "pg-0", "--", "env", "PGPASSWORD=wrong", "psql", "-h", f"pg.{namespace}.svc.cluster.local",
        "-U", "postgres", "-c", "SELECT 1", check=False,
    )
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    logs = localcluster.kubectl("-n", namespace, "logs", "pg-0").stdout
    assert "database system is ready to accept connections" in logs

    localcluster.kubectl("-n", namespace, "delete", "pod", "pg-0", "--wait=true", timeout=120)
    second = _wait_ready(localcluster, namespace, "pg-0", not_uid=first["metadata"]["uid"])
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert localcluster.kubectl(*psql, "SELECT count(*) FROM kept").stdout.strip() == "1000"


def test_two_test_beds_run_at_once_and_leave_nothing_behind(localcluster, tmp_path):
    require_test_bed()
    with LocalClusterProcess(tmp_path / "second") as second:
        netns = (second.state_dir / "netns").read_text().strip()
        assert second.kubeconfig_path.read_text() != localcluster.kubeconfig_path.read_text()
        assert second.kubectl("get", "nodes", "-o", "name").stdout.split() == ["node/lc-node-0", "node/lc-node-1", "node/lc-node-2"]
        assert localcluster.kubectl("get", "namespace", "lc-sts", check=False).returncode in (0, 1)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert netns not in namespaces
    assert not Path(f"/sys/fs/cgroup/unified/localcluster-{netns}").exists()
    leftovers = subprocess.run(["pgrep", "-af", str(second.state_dir)], capture_output=True, text=True, check=False).stdout
    assert leftovers == ""
