"""playbooks/restore.yml -i inventories/prod: point-in-time restore into a clone cluster, the running one untouched.

kubesim's operator seeds a clone from the source cluster's current contents (tests/kubesim/README.md, "Clones"),
so a clone made "now" must hold exactly the rows the source holds now: the tests compare row counts and an md5
of the rows. The operator's WAL archive setting is switched on for these tests and put back afterwards.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import NAMESPACE, PROD, Deployment, flat, output, recap

SOURCE = "postgres-cluster"
CLONE = f"{SOURCE}-restore"
OPERATOR_NAMESPACE = "postgres-operator"
WAL_BUCKET = "microservices-postgres-wal"
PROBE = "select count(*), md5(coalesce(string_agg(id::text || ':' || note, ',' order by id), '')) from restore_probe"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _psql(deployment: Deployment, cluster: str, sql: str, database: str = "userdb") -> str:
    master = deployment.kubectl_json("get", "pods", "-n", NAMESPACE, "-l",
                                     f"application=spilo,cluster-name={cluster},spilo-role=master")["items"]
    assert len(master) == 1, [p["metadata"]["name"] for p in master]
    proc = deployment.kubectl("exec", "-n", NAMESPACE, master[0]["metadata"]["name"], "-c", "postgres", "--",
                              "psql", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql)
    return proc.stdout.strip()


def _clusters(deployment: Deployment) -> set[str]:
    return {c["metadata"]["name"] for c in deployment.kubectl_json("get", "postgresql", "-n", NAMESPACE)["items"]}


def _wal_bucket(deployment: Deployment) -> str | None:
    """wal_s3_bucket in the operator's ConfigMap (None: not set)."""
    configmap = deployment.kubectl_json("get", "configmap", "postgres-operator", "-n", OPERATOR_NAMESPACE)
    return (configmap.get("data") or {}).get("wal_s3_bucket")


def _set_wal_bucket(deployment: Deployment, bucket: str | None) -> None:
    """Set (or remove, with None) wal_s3_bucket in the operator's ConfigMap, as a redeploy with it would."""
    deployment.kubectl("patch", "configmap", "postgres-operator", "-n", OPERATOR_NAMESPACE, "--type=merge", "-p",
                       json.dumps({"data": {"wal_s3_bucket": bucket}}))


def _restore(deployment: Deployment, *args: str, **extra_vars: Any) -> Any:
    return deployment.run("restore", *args, extra_vars=extra_vars)


def _source_state(deployment: Deployment) -> dict[str, Any]:
    """What must not change on the running cluster: its resource, its StatefulSet, its pods and its data."""
    pg = deployment.kubectl_json("get", "postgresql", SOURCE, "-n", NAMESPACE)
    sts = deployment.kubectl_json("get", "statefulset", SOURCE, "-n", NAMESPACE)
    pods = deployment.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", f"application=spilo,cluster-name={SOURCE}")
    return {"postgresql": (pg["metadata"]["resourceVersion"], pg["metadata"]["generation"], pg["spec"]),
            "statefulset": (sts["metadata"]["resourceVersion"], sts["metadata"]["generation"], sts["spec"]["replicas"]),
            "pods": sorted((p["metadata"]["name"], p["metadata"]["uid"]) for p in pods["items"]),
            "rows": _psql(deployment, SOURCE, PROBE)}


@pytest.fixture(scope="module")
def restored(prod_deployment: Deployment) -> Iterator[dict[str, Any]]:
    """500 rows in userdb.restore_probe of the running cluster, then one restore to now; the clone, the table and
    the operator's wal_s3_bucket (as found) put back afterwards, also when the setup failed half-way."""
    previous_bucket = _wal_bucket(prod_deployment)
    try:
        _set_wal_bucket(prod_deployment, WAL_BUCKET)
        _psql(prod_deployment, SOURCE, "drop table if exists restore_probe; "
              "create table restore_probe (id int primary key, note text); "
              "insert into restore_probe select g, md5(g::text) from generate_series(1, 500) g")
        before = _source_state(prod_deployment)
        timestamp = _now()
        proc = _restore(prod_deployment, confirm_restore=True, restore_timestamp=timestamp)
        yield {"proc": proc, "before": before, "timestamp": timestamp}
    finally:
        try:
            prod_deployment.kubectl("delete", "postgresql", CLONE, "-n", NAMESPACE, "--ignore-not-found", "--wait")
            _psql(prod_deployment, SOURCE, "drop table if exists restore_probe")
        finally:
            _set_wal_bucket(prod_deployment, previous_bucket)
    assert _wal_bucket(prod_deployment) == previous_bucket


@PROD
def test_restore_creates_a_running_clone_with_the_data(prod_deployment: Deployment, restored: dict[str, Any]) -> None:
    proc = restored["proc"]
    assert proc.returncode == 0, output(proc)[-6000:]
    assert recap(proc)[prod_deployment.host]["failed"] == 0
    assert recap(proc)[prod_deployment.host]["changed"] >= 1
    text = flat(proc)
    assert (f"Restored: postgresql {NAMESPACE}/{CLONE} is a clone of {SOURCE}" in text
            and f"at {restored['timestamp']}, Running with 1 Ready pod(s)." in text), text[-4000:]
    assert f"Master Service: {CLONE}.{NAMESPACE}.svc:5432" in text
    clone = prod_deployment.kubectl_json("get", "postgresql", CLONE, "-n", NAMESPACE)
    source = prod_deployment.kubectl_json("get", "postgresql", SOURCE, "-n", NAMESPACE)
    assert clone["status"]["PostgresClusterStatus"] == "Running"
    assert clone["spec"]["clone"] == {"cluster": SOURCE, "uid": source["metadata"]["uid"],
                                      "timestamp": restored["timestamp"]}
    assert clone["spec"]["numberOfInstances"] == 1
    for field in ("teamId", "postgresql", "volume", "users", "databases"):
        assert clone["spec"][field] == source["spec"][field], field
    pods = prod_deployment.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", f"application=spilo,cluster-name={CLONE}")
    assert [(p["metadata"]["name"], p["metadata"]["labels"]["spilo-role"]) for p in pods["items"]] == [
        (f"{CLONE}-0", "master")]
    rows = _psql(prod_deployment, CLONE, PROBE)
    assert rows == restored["before"]["rows"]
    assert rows.startswith("500|")
    databases = _psql(prod_deployment, CLONE, "select string_agg(datname || '=' || pg_get_userbyid(datdba), ',' "
                                              "order by datname) from pg_database where datname like '%db'")
    assert databases == ("accountingdb=accountingservice,partnerdb=partnerservice,paymentdb=paymentservice,"
                         "settlementdb=settlementservice,userdb=userservice")
    # The clone's own credentials (no secret reaches the output).
    secret = prod_deployment.kubectl_json("get", "secret", f"userservice.{CLONE}.credentials.postgresql.acid.zalan.do",
                                          "-n", NAMESPACE)
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert password not in text and password not in output(proc)


@PROD
def test_running_cluster_is_untouched(prod_deployment: Deployment, restored: dict[str, Any]) -> None:
    assert _source_state(prod_deployment) == restored["before"]
    text = flat(restored["proc"])
    generation = restored["before"]["postgresql"][1]
    assert f"{SOURCE} was not touched: its postgresql resource is at generation {generation}, as before the restore." \
        in text
    # Writing to the clone stays in the clone.
    _psql(prod_deployment, CLONE, "create table clone_only (id int); insert into clone_only values (1), (2)")
    assert _psql(prod_deployment, CLONE, "select count(*) from clone_only") == "2"
    assert _psql(prod_deployment, SOURCE, "select to_regclass('clone_only') is null") == "t"


@PROD
def test_second_run_changes_nothing(prod_deployment: Deployment, restored: dict[str, Any]) -> None:
    proc = _restore(prod_deployment, confirm_restore=True, restore_timestamp=restored["timestamp"])
    assert proc.returncode == 0, output(proc)[-6000:]
    assert recap(proc)[prod_deployment.host]["changed"] == 0
    assert f"Already restored: postgresql {NAMESPACE}/{CLONE} is a clone of {SOURCE}" in flat(proc)


@PROD
def test_another_restore_under_the_same_name_is_refused(prod_deployment: Deployment,
                                                        restored: dict[str, Any]) -> None:
    clone_before = prod_deployment.kubectl_json("get", "postgresql", CLONE, "-n", NAMESPACE)["metadata"]
    proc = _restore(prod_deployment, confirm_restore=True, restore_timestamp=_now())
    assert proc.returncode == 2
    assert (f"restore_cluster '{CLONE}' already exists in {NAMESPACE} and is a clone of {SOURCE} at "
            f"{restored['timestamp']}, not of {SOURCE} at ") in flat(proc)
    clone_after = prod_deployment.kubectl_json("get", "postgresql", CLONE, "-n", NAMESPACE)["metadata"]
    assert clone_after["resourceVersion"] == clone_before["resourceVersion"]


@PROD
def test_check_mode_creates_nothing(prod_deployment: Deployment, restored: dict[str, Any]) -> None:
    proc = _restore(prod_deployment, "--check", confirm_restore=True, restore_timestamp=_now(),
                    restore_cluster="postgres-cluster-check", restore_instances=2)
    assert proc.returncode == 0, output(proc)[-6000:]
    assert recap(proc)[prod_deployment.host]["changed"] == 1
    assert (f"Check mode: a real run would create postgresql {NAMESPACE}/postgres-cluster-check (2 instance(s), "
            "PostgreSQL 17, volume 50Gi, databases userdb, paymentdb, settlementdb, partnerdb, accountingdb) as a "
            f"clone of {SOURCE}") in flat(proc)
    assert _clusters(prod_deployment) == {SOURCE, CLONE}
    assert _source_state(prod_deployment)["postgresql"] == restored["before"]["postgresql"]


@PROD
@pytest.mark.parametrize(("extra_vars", "message"), [
    ({"restore_timestamp": "2026-01-01T00:00:00+00:00"}, "confirm_restore"),
    ({"confirm_restore": True}, "restore_timestamp is required on prod: the point in time to restore to, ISO 8601 "
                                "with a UTC offset"),
    ({"confirm_restore": True, "restore_timestamp": "2026-01-01T00:00:00Z"},
     "restore_timestamp '2026-01-01T00:00:00Z' is not an ISO 8601 date and time with a UTC offset; allowed: "
     "YYYY-MM-DDTHH:MM:SS[.fraction]+HH:MM or -HH:MM"),
    ({"confirm_restore": True, "restore_timestamp": "2999-01-01T00:00:00+09:00"},
     "restore_timestamp '2999-01-01T00:00:00+09:00' is in the future"),
    ({"confirm_restore": True, "restore_timestamp": "2026-01-01T00:00:00+00:00", "restore_cluster": SOURCE},
     f"restore_cluster '{SOURCE}' is the running cluster: a restore never overwrites it"),
    ({"confirm_restore": True, "restore_timestamp": "2026-01-01T00:00:00+00:00", "restore_cluster": "Restore_1"},
     "restore_cluster 'Restore_1' is not a valid cluster name; allowed: a DNS-1035 label"),
    ({"confirm_restore": True, "restore_timestamp": "2026-01-01T00:00:00+00:00", "restore_instances": 11},
     "restore_instances 11 is out of range; allowed: 1 to 10"),
], ids=["no-confirm", "no-timestamp", "zulu", "future", "running-cluster", "bad-name", "instances"])
def test_bad_inputs_are_refused_before_anything(prod_deployment: Deployment, restored: dict[str, Any],
                                                extra_vars: dict[str, Any], message: str) -> None:
    proc = _restore(prod_deployment, **extra_vars)
    assert proc.returncode == 2, output(proc)[-4000:]
    assert message in flat(proc)
    assert _clusters(prod_deployment) == {SOURCE, CLONE}


@PROD
def test_restore_without_a_wal_archive_is_refused(prod_deployment: Deployment, restored: dict[str, Any]) -> None:
    assert _wal_bucket(prod_deployment) == WAL_BUCKET  # as the fixture set it
    _set_wal_bucket(prod_deployment, None)
    try:
        proc = _restore(prod_deployment, confirm_restore=True, restore_timestamp=_now(), restore_cluster="no-wal")
    finally:
        _set_wal_bucket(prod_deployment, WAL_BUCKET)
    assert proc.returncode == 2
    assert (f"WAL archiving is not configured, so there is no archive to restore {SOURCE} from: the operator's "
            f"ConfigMap {OPERATOR_NAMESPACE}/postgres-operator sets none of wal_s3_bucket, wal_gs_bucket, "
            "wal_az_storage_account.") in flat(proc)
    assert _clusters(prod_deployment) == {SOURCE, CLONE}
