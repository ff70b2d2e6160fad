"""playbooks/status.yml: one read-only report with real figures, on dev and on prod."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from .helpers import DEV, NAMESPACE, PROD, Deployment, SleepingSession, flat, output, psql, recap

ROWS = 60000
UNITS = {"bytes": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}
# Pages that autovacuum may add to or truncate from a database between two reads of its size.
SIZE_DRIFT = 64 * 1024


def size_bytes(pretty: str) -> int:
    """pg_size_pretty()'s text back to (rounded) bytes."""
    number, unit = pretty.split()
    return int(number) * UNITS[unit]


def assert_size_is_real(database: str, pretty: str, before: dict[str, int], after: dict[str, int]) -> None:
    """The report's pg_size_pretty() figure is the database's size as read just before and just after the
    report: within the rounding of its unit and a few pages of drift (autovacuum), not an exact match."""
    low, high = sorted((before[database], after[database]))
    slack = UNITS[pretty.split()[1]] // 2 + SIZE_DRIFT
    assert low - slack <= size_bytes(pretty) <= high + slack, (database, pretty, before[database], after[database])


def database_sizes(deployment: Deployment, pod: str, container: str) -> dict[str, int]:
    """Every database's pg_database_size() in bytes."""
    return json.loads(psql(deployment, pod, container, "postgres",
                           "SELECT json_object_agg(datname, pg_database_size(datname)) FROM pg_database"))


def database_line(text: str, database: str) -> list[str]:
    """The columns of a database's row in the report: name, size (2 fields), connections, by state..., limit."""
    match = re.search(rf"^\s+{database}\s+(\d+ \w+)\s+(\d+)\s+(\S.*?)\s+(none|\d+)\s*$", text, re.MULTILINE)
    assert match, f"no line for {database} in:\n{text}"
    return list(match.groups())


def status(deployment: Deployment, *args: str, **extra_vars):
    proc = deployment.run("status", *args, extra_vars=extra_vars or None)
    assert proc.returncode == 0, output(proc)[-6000:]
    assert recap(proc)[deployment.host]["changed"] == 0, output(proc)[-3000:]
    return proc


def report_text(path: Path) -> str:
    text = path.read_text()
    assert text.startswith("PostgreSQL status of "), text
    return text


@DEV
def test_dev_report_has_real_figures(dev_deployment: Deployment, tmp_path: Path):
    """A table of ROWS rows in userdb makes it the biggest; a sleeping session in paymentdb is counted
    as active; the pod and StatefulSet match kubectl; no backup in an empty directory, then the newest
    of two backup files; changed=0, also in check mode."""
    pod, container = "postgresql-0", "postgresql"
    backup_dir = tmp_path / "backups"
    backup_dir.mkdir()
    report_file = tmp_path / "status.txt"
    try:
        # VACUUM ANALYZE gives the table its visibility and free space maps now, not in the middle of the report.
        psql(dev_deployment, pod, container, "userdb",
             f"DROP TABLE IF EXISTS status_filler; CREATE TABLE status_filler AS "
             f"SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, {ROWS}) g; VACUUM ANALYZE status_filler")
        with SleepingSession(dev_deployment, pod, container, "paymentdb", seconds=300):
            before = database_sizes(dev_deployment, pod, container)
            status(dev_deployment, backup_dir=str(backup_dir), status_report_file=str(report_file))
            after = database_sizes(dev_deployment, pod, container)
            text = report_text(report_file)
    finally:
        psql(dev_deployment, pod, container, "userdb", "DROP TABLE IF EXISTS status_filler")
    user, payment = database_line(text, "userdb"), database_line(text, "paymentdb")
    for database in ("userdb", "paymentdb", "settlementdb", "partnerdb", "accountingdb"):
        assert_size_is_real(database, database_line(text, database)[0], before, after)
    assert size_bytes(user[0]) - size_bytes(payment[0]) >= 3 * 1024 ** 2, (user, payment)
    assert int(payment[1]) >= 1 and "active=" in payment[2], payment

    pod_json = dev_deployment.kubectl_json("get", "pod", pod, "-n", NAMESPACE)
    restarts = sum(container_status["restartCount"] for container_status in pod_json["status"]["containerStatuses"])
    assert re.search(rf"^\s+{pod}\s+-\s+{pod_json['status']['phase']}\s+yes\s+{restarts}\s+", text, re.MULTILINE), text
    sts = dev_deployment.kubectl_json("get", "statefulset", "postgresql", "-n", NAMESPACE)
    assert f"StatefulSet postgresql: {sts['status']['readyReplicas']}/{sts['spec']['replicas']} ready" in text
    pvc = dev_deployment.kubectl_json("get", "pvc", "-n", NAMESPACE)["items"]
    claim = next(item for item in pvc if item["metadata"]["name"].endswith(pod))
    assert re.search(rf"^\s+{claim['metadata']['name']}\s+Bound\s+{claim['status']['capacity']['storage']}\s+", text, re.MULTILINE), text
    assert "sum of database sizes (not the volume usage):" in text
    assert f"none found in {backup_dir} (dev-postgres-*.sql.gz)" in text

    older = backup_dir / "dev-postgres-20261125T010000Z.sql.gz"
    newest = backup_dir / "dev-postgres-20261126T020304Z.sql.gz"
    older.write_bytes(b"x" * 1000)
    newest.write_bytes(os.urandom(123456))
    (backup_dir / "other-host-20261127T000000Z.sql.gz").write_bytes(b"y")
    stamp = time.time() - 7200
    os.utime(newest, (stamp, stamp))
    check = status(dev_deployment, "--check", backup_dir=str(backup_dir))
    check_text = flat(check)
    assert re.search(r"dev-postgres-20261126T020304Z.sql.gz: 120\.56 KB, 2h \d+m ago \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\), in "
                     + re.escape(str(backup_dir)), check_text), check_text[-4000:]
    assert "PostgreSQL 1" in check_text and ", primary, read as postgres" in check_text


@PROD
def test_prod_report_has_real_figures(prod_deployment: Deployment, tmp_path: Path):
    """Pods and roles as kubectl shows them, Running, pooler and operator ready, each replica not
    streaming (kubesim has no replication), a sleeping session counted in accountingdb, the CronJob's
    schedule and the newest logical-backup Job (one created here) Complete; changed=0."""
    pods = prod_deployment.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", "application=spilo,cluster-name=postgres-cluster")["items"]
    master = next(pod["metadata"]["name"] for pod in pods if pod["metadata"]["labels"]["spilo-role"] == "master")
    cron = prod_deployment.kubectl_json("get", "cronjob", "logical-backup-postgres-cluster", "-n", NAMESPACE)
    job_name = f"logical-backup-status-test-{int(time.time())}"
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": job_name, "namespace": NAMESPACE,
                        "labels": {"application": "spilo-logical-backup", "cluster-name": "postgres-cluster"}},
           "spec": cron["spec"]["jobTemplate"]["spec"]}
    report_file = tmp_path / "status.txt"
    try:
        prod_deployment.kubectl("create", "-f", "-", stdin=json.dumps(job))
        prod_deployment.kubectl("wait", "--for=condition=Complete", f"job/{job_name}", "-n", NAMESPACE, "--timeout=120s")
        with SleepingSession(prod_deployment, master, "postgres", "accountingdb", seconds=300):
            status(prod_deployment, status_report_file=str(report_file))
    finally:
        prod_deployment.kubectl("delete", "job", job_name, "-n", NAMESPACE, "--ignore-not-found", "--wait=false")
    text = report_text(report_file)

    pods = prod_deployment.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", "application=spilo,cluster-name=postgres-cluster")["items"]
    assert "Cluster: postgresql postgres-cluster status Running" in text, text
    for pod in pods:
        role = pod["metadata"]["labels"]["spilo-role"]
        assert re.search(rf"^\s+{pod['metadata']['name']}\s+{role}\s+Running\s+yes\s+\d+\s+", text, re.MULTILINE), text
    replicas = sorted(pod["metadata"]["name"] for pod in pods if pod["metadata"]["labels"]["spilo-role"] == "replica")
    assert replicas and all(f"  {name}: not streaming" in text for name in replicas), text
    assert text.count(": not streaming") == len(replicas)
    pooler = prod_deployment.kubectl_json("get", "deployment", "postgres-cluster-pooler", "-n", NAMESPACE)
    ready = pooler["status"]["readyReplicas"]
    assert f"Pooler: Deployment {NAMESPACE}/postgres-cluster-pooler {ready}/{pooler['spec']['replicas']} ready, Available" in text
    assert "Operator: Deployment postgres-operator/postgres-operator 1/1 ready, Available" in text
    accounting = database_line(text, "accountingdb")
    assert int(accounting[1]) >= 1 and "active=" in accounting[2], accounting
    for pod in pods:
        assert re.search(rf"^\s+pgdata-{pod['metadata']['name']}\s+Bound\s+\S+", text, re.MULTILINE), text
    assert f'CronJob logical-backup-postgres-cluster: schedule "{cron["spec"]["schedule"]}"' in text
    assert f"newest Job {job_name}: Complete, created " in text, text
