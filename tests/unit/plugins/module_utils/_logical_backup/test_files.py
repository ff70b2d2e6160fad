"""Backup names, retention and checksum files: the contract with the status playbook and with sha256sum."""

from __future__ import annotations

import hashlib
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import (
    BackupFileError,
    backup_name,
    ensure_directory,
    expired,
    list_backups,
    read_checksum,
    remove_backup,
    verify_checksum,
    write_checksum,
)


def test_backup_name_is_the_prefix_and_the_utc_time() -> None:
    local = datetime(2026, 11, 26, 17, 15, 0, tzinfo=timezone(timedelta(hours=9)))
    assert backup_name("dev-postgres", local) == "dev-postgres-20261126T081500Z.sql.gz"


def test_list_backups_takes_only_this_prefixs_complete_names_oldest_first(tmp_path: Path) -> None:
    names = ["dev-postgres-20261126T081500Z.sql.gz", "dev-postgres-20251231T235959Z.sql.gz",
             "dev-postgres-20261126T081500Z.sql.gz.sha256", "dev-20261126T081500Z.sql.gz",
             "dev-postgres-2-20261126T081500Z.sql.gz", ".dev-postgres-20261126T081501Z.sql.gz.x.partial",
             "dev-postgres-latest.sql.gz"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert [path.name for path in list_backups(tmp_path, "dev-postgres")] == [
        "dev-postgres-20251231T235959Z.sql.gz", "dev-postgres-20261126T081500Z.sql.gz"]
    assert [path.name for path in list_backups(tmp_path, "dev")] == ["dev-20261126T081500Z.sql.gz"]
    assert list_backups(tmp_path / "missing", "dev-postgres") == []


@pytest.mark.parametrize(("count", "keep", "gone"), [(0, 1, 0), (3, 7, 0), (3, 3, 0), (5, 2, 3), (5, 1, 4)])
def test_expired_leaves_the_newest_keep(count: int, keep: int, gone: int) -> None:
    backups = [Path(f"b{index}") for index in range(count)]
    assert expired(backups, keep) == backups[:gone]


def test_expired_refuses_keep_below_one() -> None:
    with pytest.raises(ValueError, match="keep must be at least 1, got 0"):
        expired([Path("a")], 0)


def test_checksum_file_is_sha256sum_format_private_and_verifies(tmp_path: Path) -> None:
    backup = tmp_path / "dev-postgres-20261126T081500Z.sql.gz"
    backup.write_bytes(b"payload")
    digest = hashlib.sha256(b"payload").hexdigest()
    written = write_checksum(backup, digest)
    assert written.read_text() == f"{digest}  {backup.name}\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert read_checksum(backup) == digest
    assert verify_checksum(backup) == digest


def test_verify_checksum_names_the_mismatch(tmp_path: Path) -> None:
    backup = tmp_path / "b.sql.gz"
    backup.write_bytes(b"payload")
    write_checksum(backup, "0" * 64)
    with pytest.raises(BackupFileError, match=r"checksum mismatch for .*b\.sql\.gz: the file's SHA-256 is [0-9a-f]{64}, "
                                              r"b\.sql\.gz\.sha256 records 0{64}"):
        verify_checksum(backup)


@pytest.mark.parametrize(("content", "message"), [
    (None, "is missing"),
    ("not a checksum\n", "is not in sha256sum format"),
    ("a" * 64 + "  other.sql.gz\n", "is for 'other.sql.gz', not 'b.sql.gz'"),
])
def test_read_checksum_refuses_missing_malformed_or_foreign_files(tmp_path: Path, content: str | None,
                                                                  message: str) -> None:
    backup = tmp_path / "b.sql.gz"
    backup.write_bytes(b"x")
    if content is not None:
        (tmp_path / "b.sql.gz.sha256").write_text(content)
    with pytest.raises(BackupFileError, match=message):
        read_checksum(backup)


def test_verify_checksum_of_a_missing_backup(tmp_path: Path) -> None:
    with pytest.raises(BackupFileError, match="does not exist"):
        verify_checksum(tmp_path / "gone.sql.gz")


def test_remove_backup_takes_its_checksum_file_along(tmp_path: Path) -> None:
    backup = tmp_path / "b.sql.gz"
    backup.write_bytes(b"x")
    write_checksum(backup, "a" * 64)
    (tmp_path / "other").write_bytes(b"y")
    remove_backup(backup)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other"]


def test_ensure_directory_creates_a_private_directory_once(tmp_path: Path) -> None:
    target = tmp_path / "a" / "backups"
    assert ensure_directory(target) is True
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert ensure_directory(target) is False
