"""playbooks/backup.yml -i inventories/prod: the operator's logical backup Job, run now, waited for, kept N.

kubesim's operator makes CronJob logical-backup-postgres-cluster; a Job made from its jobTemplate really
runs pg_dumpall against the cluster and logs how many bytes it wrote (there is no object storage). The
manual Jobs this file creates are deleted at the end, so the shared deployment is left as found.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .helpers import NAMESPACE, PROD, Deployment, flat, output, recap

CRONJOB = "logical-backup-postgres-cluster"
SELECTOR = "application=spilo-logical-backup,cluster-name=postgres-cluster,app.kubernetes.io/managed-by=microservices.postgres"
JOB_NAME = re.compile(rf"{CRONJOB}-manual-\d{{14}}")


def _manual_jobs(prod: Deployment) -> list[dict]:
    jobs = prod.kubectl_json("get", "jobs", "-n", NAMESPACE, "-l", SELECTOR)["items"]
    return sorted(jobs, key=lambda job: job["metadata"]["name"])


@pytest.fixture
def no_manual_jobs(prod_deployment: Deployment) -> Iterator[Deployment]:
    """Starts and ends with none of this playbook's Jobs (and their pods) in the namespace."""
    prod_deployment.kubectl("delete", "jobs", "-n", NAMESPACE, "-l", SELECTOR, "--cascade=background",
                            "--ignore-not-found")
    yield prod_deployment
    prod_deployment.kubectl("delete", "jobs", "-n", NAMESPACE, "-l", SELECTOR, "--cascade=background",
                            "--ignore-not-found")


@PROD
def test_backup_runs_the_operators_logical_backup_now_and_keeps_the_newest(no_manual_jobs: Deployment) -> None:
    prod = no_manual_jobs
    cronjob = prod.kubectl_json("get", "cronjob", "-n", NAMESPACE, CRONJOB)
    cluster = prod.kubectl_json("get", "postgresql", "-n", NAMESPACE, "postgres-cluster")
    settings = prod.kubectl_json("get", "configmap", "-n", "postgres-operator", "postgres-operator")["data"]
    assert settings["logical_backup_s3_bucket"] == "microservices-postgres-backups"  # inventories/prod
    names = []
    for _run in range(3):
        proc = prod.run("backup", extra_vars={"backup_keep": 2})
        assert proc.returncode == 0, output(proc)[-6000:]
        assert recap(proc)[prod.host]["failed"] == 0
        jobs = _manual_jobs(prod)
        newest = jobs[-1]
        names.append(newest["metadata"]["name"])
        assert JOB_NAME.fullmatch(newest["metadata"]["name"]), newest["metadata"]["name"]
        assert newest["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
        owner = newest["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("CronJob", CRONJOB, cronjob["metadata"]["uid"])
        assert newest["spec"]["template"]["spec"]["containers"][0]["image"] == (
            cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"])
        assert newest["status"]["succeeded"] == 1
        assert {"type": "Complete", "status": "True"}.items() <= next(
            condition for condition in newest["status"]["conditions"] if condition["type"] == "Complete").items()
        text = flat(proc)
        assert f"Created Job {NAMESPACE}/{names[-1]} from CronJob {CRONJOB}: Complete" in text, text[-3000:]
        written = re.search(r"logical backup of postgres-cluster: pg_dumpall wrote (\d+) bytes", text)
        assert written and int(written.group(1)) > 10000, text[-3000:]
        assert (f"(provider s3): s3://{settings['logical_backup_s3_bucket']}/"
                f"{settings.get('logical_backup_s3_bucket_prefix', 'spilo')}/postgres-cluster/{cluster['metadata']['uid']}"
                "/logical_backups/<time of the dump>.sql.gz") in text, text[-3000:]
        assert "logical_backup_s3_retention_time is not set (dumps are kept until deleted by hand)" in text, text[-3000:]
    assert len(set(names)) == 3
    assert [job["metadata"]["name"] for job in _manual_jobs(prod)] == names[1:]
    assert f"Jobs kept (backup_keep=2): deleted {names[0]}" in text, text[-3000:]


@PROD
def test_backup_check_mode_creates_and_deletes_nothing(no_manual_jobs: Deployment) -> None:
    prod = no_manual_jobs
    proc = prod.run("backup", extra_vars={"backup_keep": 1})
    assert proc.returncode == 0, output(proc)[-6000:]
    before = [job["metadata"]["name"] for job in _manual_jobs(prod)]
    assert len(before) == 1
    proc = prod.run("backup", "--check", extra_vars={"backup_keep": 1})
    assert proc.returncode == 0, output(proc)[-6000:]
    text = flat(proc)
    assert re.search(rf"Check mode: would create Job {NAMESPACE}/{CRONJOB}-manual-\d{{14}} from CronJob {CRONJOB}", text)
    assert f"Jobs kept (backup_keep=1): would delete {before[0]}" in text
    assert [job["metadata"]["name"] for job in _manual_jobs(prod)] == before


@PROD
def test_backup_without_the_cronjob_is_a_clear_error(prod_deployment: Deployment) -> None:
    proc = prod_deployment.run("backup", extra_vars={"postgres_prod_cluster_name": "no-such-cluster"})
    assert recap(proc)[prod_deployment.host]["failed"] == 1
    assert (f"CronJob {NAMESPACE}/logical-backup-no-such-cluster does not exist: logical backups are disabled for "
            "cluster no-such-cluster") in flat(proc)
    assert "Nothing was changed." in flat(proc)
