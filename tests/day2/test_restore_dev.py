"""playbooks/restore.yml -i inventories/dev: a backup -> damage -> restore round trip loses nothing.

Real data goes into userdb and paymentdb as their owners (logging in with the password of the per-service
Secret, over TCP inside the pod), is fingerprinted (row count + md5 of the ordered rows), backed up and
damaged; the refusals (no confirmation, corrupted file, missing checksum, check mode) must leave the damage
exactly as it is, and the confirmed restore must bring back the fingerprints exactly, while a session held
open on userdb is terminated rather than blocking the restore. The probe tables are dropped at the end.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import DEV, NAMESPACE, Deployment, SleepingSession, flat, output, recap

POD = ["-n", NAMESPACE, "postgresql-0", "-c", "postgresql"]
# The password arrives on stdin, never on a command line.
AS_OWNER = ('read -r PGPASSWORD; export PGPASSWORD; '
            'exec psql -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U "$1" -d "$2" -c "$3"')
TABLES = {
    "userdb": ("userservice", "restore_probe_orders",
               "CREATE TABLE restore_probe_orders (id int PRIMARY KEY, customer text NOT NULL, total numeric(12,2));"
               "INSERT INTO restore_probe_orders SELECT g, 'customer ' || g || ' 고객', g * 1.25 "
               "FROM generate_series(1, 5000) g;"),
    "paymentdb": ("paymentservice", "restore_probe_payments",
                  "CREATE TABLE restore_probe_payments (id bigint PRIMARY KEY, memo text, paid_at timestamptz);"
                  "INSERT INTO restore_probe_payments SELECT g, E'card \\u00e9\\t' || g || E'\\n\\\\ 💳', "
                  "timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 3000) g;"),
}


def _sql_as_owner(dev: Deployment, database: str, sql: str) -> str:
    owner = TABLES[database][0]
    secret = dev.kubectl_json("get", "secret", "-n", NAMESPACE, f"{database}-credentials")
    password = base64.b64decode(secret["data"]["password"]).decode()
    proc = dev.kubectl("exec", "-i", *POD, "--", "sh", "-c", AS_OWNER, "sh", owner, database, sql,
                       stdin=password + "\n")
    return proc.stdout.strip()


def _fingerprint(dev: Deployment, database: str) -> str:
    table = TABLES[database][1]
    return _sql_as_owner(dev, database, f"SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) "
                                        f"FROM {table} t")


def _count(dev: Deployment, database: str) -> str:
    table = TABLES[database][1]
    return _sql_as_owner(dev, database, f"SELECT count(*) FROM {table}")


@pytest.fixture
def probe_data(dev_deployment: Deployment) -> Iterator[dict[str, str]]:
    """The probe tables filled as their owners; their fingerprints; dropped afterwards whatever happened,
    also when filling them failed half-way."""
    try:
        for database, (_owner, table, create) in TABLES.items():
            _sql_as_owner(dev_deployment, database, f"DROP TABLE IF EXISTS {table}; {create}")
        yield {database: _fingerprint(dev_deployment, database) for database in TABLES}
    finally:
        for database, (_owner, table, _create) in TABLES.items():
            _sql_as_owner(dev_deployment, database, f"DROP TABLE IF EXISTS {table}")


def _restore(dev: Deployment, *args: str, **extra: object) -> subprocess.CompletedProcess[str]:
    return dev.run("restore", *args, extra_vars=extra)


@DEV
def test_backup_then_restore_round_trip_loses_nothing(dev_deployment: Deployment, probe_data: dict[str, str],
                                                      tmp_path: Path) -> None:
    assert probe_data["userdb"].startswith("5000 ") and probe_data["paymentdb"].startswith("3000 "), probe_data
    backup_dir = tmp_path / "backups"
    proc = dev_deployment.run("backup", extra_vars={"backup_dir": str(backup_dir)})
    assert proc.returncode == 0, output(proc)[-6000:]
    (backup,) = backup_dir.glob("dev-postgres-*.sql.gz")

    _sql_as_owner(dev_deployment, "userdb", "DELETE FROM restore_probe_orders WHERE id % 3 = 0;"
                                            "INSERT INTO restore_probe_orders SELECT g, 'junk', 0 "
                                            "FROM generate_series(100001, 100010) g")
    _sql_as_owner(dev_deployment, "paymentdb", "DROP TABLE restore_probe_payments")
    damaged = _count(dev_deployment, "userdb")
    assert damaged == str(5000 - 1666 + 10)

    proc = _restore(dev_deployment, backup_file=str(backup))
    assert recap(proc)[dev_deployment.host]["failed"] == 1
    assert ("A restore replaces data and needs -e confirm_restore=true; given: confirm_restore=false. "
            "Nothing was changed.") in flat(proc)

    corrupted_dir = tmp_path / "corrupted"
    corrupted_dir.mkdir()
    corrupted = corrupted_dir / backup.name
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    shutil.copy(backup.with_name(backup.name + ".sha256"), corrupted_dir)
    proc = _restore(dev_deployment, backup_file=str(corrupted), confirm_restore=True)
    assert recap(proc)[dev_deployment.host]["failed"] == 1
    assert f"checksum mismatch for {corrupted}" in flat(proc)
    assert "nothing was restored" in flat(proc)

    lonely_dir = tmp_path / "no-checksum"
    lonely_dir.mkdir()
    shutil.copy(backup, lonely_dir)
    proc = _restore(dev_deployment, backup_file=str(lonely_dir / backup.name), confirm_restore=True)
    assert recap(proc)[dev_deployment.host]["failed"] == 1
    assert f"missing {lonely_dir / backup.name}.sha256" in flat(proc)

    proc = _restore(dev_deployment, "--check", backup_file=str(backup), confirm_restore=True)
    assert proc.returncode == 0, output(proc)[-6000:]
    text = flat(proc)
    assert f"Check mode: verified {backup}" in text, text[-3000:]
    replaced = re.search(r"Would replace in microservices/postgresql-0: (.+?); would create: (.+?); roles to create: "
                         r"(.+?); left out \(the server's own, earlier restores' copies\): (.+?)'", text)
    assert replaced, text[-3000:]
    # pg_dumpall writes the databases by name; the server's own are left out.
    databases = replaced.group(1).split(", ")
    assert databases == sorted(databases) and {*TABLES, "settlementdb", "partnerdb", "accountingdb"} <= set(databases)
    assert replaced.group(2) == "none" and replaced.group(3) == "none", text[-3000:]
    assert replaced.group(4) == "template1, postgres"
    assert _count(dev_deployment, "userdb") == damaged
    assert "does not exist" in dev_deployment.kubectl(
        "exec", *POD, "--", "psql", "-U", "postgres", "-d", "paymentdb", "-c", "SELECT 1 FROM restore_probe_payments",
        check=False).stderr

    # A session sleeping in userdb, seen in pg_stat_activity before the restore starts: the swap must end it
    # rather than wait for it (it would sleep for longer than the restore may take).
    with SleepingSession(dev_deployment, "postgresql-0", "postgresql", "userdb", seconds=600) as blocker:
        started = time.monotonic()
        proc = _restore(dev_deployment, backup_file=str(backup), confirm_restore=True)
        assert proc.returncode == 0, output(proc)[-6000:]
        assert time.monotonic() - started < 300
        assert f"Restored {backup}" in flat(proc), flat(proc)[-3000:]
        assert blocker.sessions() == 0, "the restore left the sleeping session in userdb running"
        code, stderr = blocker.finish(timeout=60)
        assert code != 0 and "FATAL:  terminating connection due to administrator command" in stderr, (code, stderr)
    text = flat(proc)
    kept = re.search(r"Kept until cleanup=true: ([a-z0-9_, ]+)", text)
    assert kept and "userdb__replaced_" in kept.group(1), text[-3000:]
    safety = re.search(r"Safety dump of what was replaced: (\S+\.sql\.gz)\.", text)
    assert safety and Path(safety.group(1)).is_file() and Path(safety.group(1) + ".sha256").is_file(), text[-3000:]
    assert Path(safety.group(1)).parent == backup.parent

    assert {database: _fingerprint(dev_deployment, database) for database in TABLES} == probe_data
    owners = {database: _sql_as_owner(dev_deployment, database,
                                      f"SELECT tableowner FROM pg_tables WHERE tablename = '{table}'")
              for database, (_owner, table, _create) in TABLES.items()}
    assert owners == {"userdb": "userservice", "paymentdb": "paymentservice"}
