"""playbooks/backup.yml -i inventories/dev: a verified pg_dumpall file on the controller, retention, check mode.

Each test writes into a directory of its own (tmp_path), so nothing here changes the shared deployment.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import stat
from pathlib import Path

import pytest

from .helpers import DEV, Deployment, flat, output, recap

NAME = re.compile(r"dev-postgres-\d{8}T\d{6}Z\.sql\.gz")


def _backups(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if NAME.fullmatch(path.name))


def _backup(dev: Deployment, directory: Path, *args: str, **extra: object):
    return dev.run("backup", *args, extra_vars={"backup_dir": str(directory), **extra})


@DEV
def test_backup_writes_a_verified_compressed_dump_with_its_checksum(dev_deployment: Deployment, tmp_path: Path) -> None:
    directory = tmp_path / "new" / "backups"
    proc = _backup(dev_deployment, directory)
    assert proc.returncode == 0, output(proc)[-6000:]
    assert recap(proc)[dev_deployment.host]["failed"] == 0
    backups = _backups(directory)
    assert len(backups) == 1, sorted(path.name for path in directory.iterdir())
    backup = backups[0]
    checksum = backup.with_name(backup.name + ".sha256")
    assert checksum.read_text() == f"{hashlib.sha256(backup.read_bytes()).hexdigest()}  {backup.name}\n"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(checksum.stat().st_mode) == 0o600
    assert sorted(path.name for path in directory.iterdir()) == [backup.name, checksum.name]  # no partial file left
    script = gzip.decompress(backup.read_bytes()).decode("utf-8")
    assert script.rstrip().endswith("--"), script[-200:]
    assert "-- PostgreSQL database cluster dump complete" in script[-500:]
    for database, owner in (("userdb", "userservice"), ("paymentdb", "paymentservice"),
                            ("settlementdb", "settlementservice"), ("partnerdb", "partnerservice"),
                            ("accountingdb", "accountingservice")):
        assert f"DROP DATABASE IF EXISTS {database};" in script
        assert f"CREATE DATABASE {database} WITH TEMPLATE = template0" in script
        assert f"CREATE ROLE {owner};" in script
    text = flat(proc)
    assert f"written: {backup}" in text
    assert "Verified: the gzip stream reads back whole and ends with pg_dumpall's completion marker" in text
    assert "Retention (backup_keep=7): nothing to delete" in text


@DEV
def test_backup_keep_deletes_only_this_hosts_oldest_backups(dev_deployment: Deployment, tmp_path: Path) -> None:
    others = {"prod-postgres-20200101T000000Z.sql.gz": b"other host", "dev-postgres-notes.txt": b"notes",
              "dev-postgres-20200101T000000Z.sql.gz.partial": b"not a backup"}
    for name, content in others.items():
        (tmp_path / name).write_bytes(content)
    names = []
    for _run in range(2):
        proc = _backup(dev_deployment, tmp_path, backup_keep=2)
        assert proc.returncode == 0, output(proc)[-6000:]
        names.append([path.name for path in _backups(tmp_path)])
    assert [len(found) for found in names] == [1, 2]
    first, second = names[1]
    proc = _backup(dev_deployment, tmp_path, backup_keep=2)
    assert proc.returncode == 0, output(proc)[-6000:]
    remaining = [path.name for path in _backups(tmp_path)]
    assert len(remaining) == 2 and remaining[0] == second and remaining[1] > second, remaining
    assert not (tmp_path / first).exists() and not (tmp_path / f"{first}.sha256").exists()
    assert f"Retention (backup_keep=2): deleted {tmp_path / first} (and their .sha256)" in flat(proc)
    for name, content in others.items():
        assert (tmp_path / name).read_bytes() == content
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [*others, *remaining, *(f"{name}.sha256" for name in remaining)])


@DEV
def test_backup_check_mode_writes_nothing_and_says_what_it_would_do(dev_deployment: Deployment, tmp_path: Path) -> None:
    existing = tmp_path / "dev-postgres-20200101T000000Z.sql.gz"
    existing.write_bytes(b"old")
    (tmp_path / f"{existing.name}.sha256").write_text("0" * 64 + f"  {existing.name}\n")
    proc = _backup(dev_deployment, tmp_path, "--check", backup_keep=1)
    assert proc.returncode == 0, output(proc)[-6000:]
    text = flat(proc)
    assert re.search(r"Check mode: would dump microservices/postgresql-0 into " + re.escape(str(tmp_path))
                     + r"/dev-postgres-\d{8}T\d{6}Z\.sql\.gz", text), text[-3000:]
    assert f"would delete {existing} (and their .sha256)" in text
    assert sorted(path.name for path in tmp_path.iterdir()) == [existing.name, f"{existing.name}.sha256"]
    missing = tmp_path / "missing"
    proc = _backup(dev_deployment, missing, "--check")
    assert proc.returncode == 0, output(proc)[-6000:]
    assert "(creating the directory, mode 0700)" in flat(proc)
    assert not missing.exists()


@DEV
@pytest.mark.parametrize("keep", [0, -3])
def test_backup_keep_below_one_is_refused_before_anything_is_written(
        dev_deployment: Deployment, tmp_path: Path, keep: int) -> None:
    directory = tmp_path / "backups"
    proc = _backup(dev_deployment, directory, backup_keep=keep)
    assert proc.returncode != 0
    assert recap(proc)[dev_deployment.host]["failed"] == 1
    assert f"backup_keep must be an integer of at least 1; given: {keep}. Nothing was changed." in flat(proc)
    assert not directory.exists()
