"""playbooks/diagnose.yml against the shared dev and prod deployments (kubesim): reads only, writes
one new folder per run, and nothing in it holds a password."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from .helpers import DEV, NAMESPACE, PROD, Deployment, flat, output, recap

STAMP = r"\d{8}T\d{6}Z"


def secret_values(deployment: Deployment) -> set[str]:
    """Every password of the namespace's Secrets, and every URL holding one, decoded."""
    items = deployment.kubectl_json("-n", NAMESPACE, "get", "secrets")["items"]
    return {base64.b64decode(value).decode() for item in items for key, value in (item.get("data") or {}).items()
            if "password" in key or key.endswith("url")}


def folder_text(folder: Path) -> str:
    return "\n".join(path.read_text() for path in sorted(folder.rglob("*")) if path.is_file())


def report_folder(proc_text: str, base: Path, host: str) -> Path:
    """The one folder the run made, as its output names it."""
    folders = [path for path in base.iterdir() if re.fullmatch(f"{host}-{STAMP}", path.name)]
    assert len(folders) == 1, folders
    assert f"Diagnostics written to {folders[0]}" in " ".join(proc_text.split())
    return folders[0]


def assert_no_secret(deployment: Deployment, folder: Path) -> None:
    text = folder_text(folder)
    secrets = secret_values(deployment)
    assert len(secrets) >= 6
    leaked = [value[:4] + "..." for value in secrets if value in text]
    assert not leaked, f"Secret values found in {folder}: {leaked}"
    assert "managedFields" not in text and "last-applied-configuration" not in text


@DEV
def test_dev_diagnose_collects_into_a_new_folder(dev_deployment: Deployment, tmp_path: Path) -> None:
    proc = dev_deployment.run("diagnose", extra_vars={"diagnose_dir": str(tmp_path), "diagnose_log_lines": 40})
    text = output(proc)
    assert proc.returncode == 0, text[-6000:]
    # Nothing in the cluster changes; the changed tasks are the folder and the files written into it.
    assert recap(proc)[dev_deployment.host]["changed"] == 6, text[-3000:]
    folder = report_folder(text, tmp_path, "dev-postgres")
    files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    assert files == ["cluster.yaml", "configmap-postgres-config.yaml", "endpoints.yaml", "events.txt", "events.yaml",
                     "logs/postgresql-0_postgresql.log", "pods.yaml", "pvcs.yaml", "secret-names.txt", "services.yaml",
                     "statefulsets.yaml", "summary.txt"]

    assert "name: postgresql-0" in (folder / "pods.yaml").read_text()
    assert "kind: StatefulSet" in (folder / "cluster.yaml").read_text()
    assert "listen_addresses = '*'" in (folder / "configmap-postgres-config.yaml").read_text()
    assert "name: postgresql-headless" in (folder / "services.yaml").read_text()
    assert "storage: 5Gi" in (folder / "pvcs.yaml").read_text()
    log = (folder / "logs" / "postgresql-0_postgresql.log").read_text().splitlines()
    assert 0 < len(log) <= 40
    names = (folder / "secret-names.txt").read_text()
    assert "userdb-credentials (Opaque, keys: database, host, password, port, url, username)" in names
    summary = (folder / "summary.txt").read_text()
    assert "microservices/postgresql-0: phase Running, 1/1 containers ready, restarts 0" in summary
    assert "StatefulSet postgresql: 1/1 replicas ready" in summary
    assert f"logs/postgresql-0_postgresql.log: {len(log)} line(s)" in summary
    assert "nothing: every read succeeded" in summary
    assert_no_secret(dev_deployment, folder)

    again = dev_deployment.run("diagnose", extra_vars={"diagnose_dir": str(tmp_path)})
    assert again.returncode == 0, output(again)[-6000:]
    folders = {path.name for path in tmp_path.iterdir()}
    assert len(folders) == 2 and folder.name in folders, folders
    (second,) = folders - {folder.name}
    assert f"Diagnostics written to {tmp_path / second}" in flat(again)
    assert (tmp_path / second / "summary.txt").is_file()


@DEV
def test_dev_diagnose_reports_a_missing_deployment(dev_deployment: Deployment, tmp_path: Path) -> None:
    # The same inventory pointed at a namespace without the database: every part is still read and
    # the summary says what is missing instead of stopping half-way.
    proc = dev_deployment.run("diagnose", extra_vars={"diagnose_dir": str(tmp_path),
                                                      "postgres_dev_namespace": "no-such-namespace"})
    assert proc.returncode == 0, output(proc)[-6000:]
    folder = report_folder(output(proc), tmp_path, "dev-postgres")
    summary = (folder / "summary.txt").read_text()
    assert "pods.yaml: 0 object(s)" in summary
    assert "no pod found" in summary
    assert "StatefulSet postgresql: not found" in summary
    assert ("2 finding(s): no pod of the deployment found; StatefulSet postgresql not found") in summary
    assert not list((folder / "logs").glob("*.log"))


@DEV
def test_dev_diagnose_notes_what_it_cannot_read(dev_deployment: Deployment, tmp_path: Path) -> None:
    # A kubeconfig that does not exist: every read fails, the run still ends with its summary.
    missing = tmp_path / "missing-kubeconfig"
    proc = dev_deployment.run("diagnose", extra_vars={"diagnose_dir": str(tmp_path / "reports"),
                                                      "postgres_dev_kubeconfig": str(missing)})
    assert proc.returncode == 0, output(proc)[-6000:]
    folder = report_folder(output(proc), tmp_path / "reports", "dev-postgres")
    summary = (folder / "summary.txt").read_text()
    not_collected = summary.split("== Not collected", 1)[1].split("== Pods", 1)[0]
    for name in ["services", "endpoints", "statefulsets", "pvcs", "events", "pods", "cluster", "configmap-postgres-config"]:
        assert f"\n{name} (" in not_collected, name
    assert "secret-names.txt: the Secrets could not be listed" in not_collected
    assert "Invalid kube-config file" in not_collected
    assert "StatefulSet postgresql: not read" in summary
    assert "10 finding(s): could not read services; could not read endpoints;" in summary
    assert sorted(path.name for path in folder.iterdir()) == ["events.txt", "logs", "summary.txt"]


@PROD
def test_prod_diagnose_collects_cluster_operator_and_logs(prod_deployment: Deployment, tmp_path: Path) -> None:
    proc = prod_deployment.run("diagnose", extra_vars={"diagnose_dir": str(tmp_path)})
    text = output(proc)
    assert proc.returncode == 0, text[-6000:]
    folder = report_folder(text, tmp_path, "prod-postgres")
    for name in ["summary.txt", "cluster.yaml", "pods.yaml", "pooler-pods.yaml", "services.yaml", "endpoints.yaml",
                 "statefulsets.yaml", "pvcs.yaml", "deployments.yaml", "cronjobs.yaml", "events.yaml", "events.txt",
                 "operator-configmap.yaml", "operator-deployment.yaml", "operator-pods.yaml", "operator-events.yaml",
                 "secret-names.txt"]:
        assert (folder / name).is_file(), name

    cluster = (folder / "cluster.yaml").read_text()
    assert "kind: postgresql" in cluster and "PostgresClusterStatus: Running" in cluster
    assert "name: logical-backup-postgres-cluster" in (folder / "cronjobs.yaml").read_text()
    assert '"watched_namespace": "microservices"' in (folder / "operator-configmap.yaml").read_text()
    operator_pod = prod_deployment.kubectl_json("-n", "postgres-operator", "get", "pods", "-l",
                                                "name=postgres-operator")["items"][0]["metadata"]["name"]
    assert f"name: {operator_pod}" in (folder / "operator-pods.yaml").read_text()
    logs = sorted(path.name for path in (folder / "logs").iterdir())
    pooler_pods = [pod["metadata"]["name"] for pod in prod_deployment.kubectl_json(
        "-n", NAMESPACE, "get", "pods", "-l", "application=db-connection-pooler")["items"]]
    assert len(pooler_pods) == 2
    expected = sorted([f"postgres-cluster-{n}_{c}.log" for n in range(3) for c in ("postgres", "postgres-exporter")]
                      + [f"{pod}_connection-pooler.log" for pod in pooler_pods]
                      + [f"{operator_pod}_postgres-operator.log"])
    assert logs == expected
    assert "database system is ready to accept connections" in (folder / "logs" / "postgres-cluster-0_postgres.log").read_text()
    events = (folder / "events.txt").read_text()
    assert "postgresql/postgres-cluster  Create (x1): Cluster has been created" in events

    summary = (folder / "summary.txt").read_text()
    assert "postgresql postgres-cluster: status Running, numberOfInstances 3" in summary
    assert "microservices/postgres-cluster-0: phase Running, 2/2 containers ready, restarts 0, role master" in summary
    assert f"postgres-operator/{operator_pod}: phase Running, 1/1 containers ready, restarts 0" in summary
    assert "nothing: every read succeeded" in summary
    assert_no_secret(prod_deployment, folder)
