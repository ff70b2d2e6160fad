# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where backups live on the controller: their names, their checksum files and their retention.

The names are a contract with the status playbook and with operators reading the directory:
``<prefix>-<UTC %Y%m%dT%H%M%SZ>.sql.gz`` next to ``<same name>.sha256`` in sha256sum format,
so ``sha256sum -c`` works on them by hand. The timestamp sorts lexically, so "newest" never
depends on file modification times (which copies and restores of the directory change).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

BACKUP_SUFFIX = ".sql.gz"
CHECKSUM_SUFFIX = ".sha256"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
READ_CHUNK = 1024 * 1024
_CHECKSUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)\n?$")


class BackupFileError(Exception):
    """A backup or checksum file is missing, malformed or does not match."""


def backup_name(prefix: str, now: datetime) -> str:
    """The file name of a backup of ``prefix`` taken at ``now`` (converted to UTC)."""
    return f"{prefix}-{now.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)}{BACKUP_SUFFIX}"


def checksum_path(backup: Path) -> Path:
    """The sha256sum file that belongs to ``backup``."""
    return backup.with_name(backup.name + CHECKSUM_SUFFIX)


def list_backups(directory: Path, prefix: str) -> list[Path]:
    """This prefix's backups in ``directory``, oldest first; other files (other hosts, partial files) are ignored.

    The timestamp must follow the prefix directly, so host ``dev`` never claims ``dev-postgres``'s files.
    """
    pattern = re.compile(re.escape(prefix) + r"-\d{8}T\d{6}Z" + re.escape(BACKUP_SUFFIX))
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if pattern.fullmatch(path.name) and path.is_file())


def expired(backups: list[Path], keep: int) -> list[Path]:
    """The backups beyond the newest ``keep`` of ``backups`` (sorted oldest first)."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    return backups[:max(len(backups) - keep, 0)]


def remove_backup(backup: Path) -> None:
    """Delete a backup and its checksum file; a checksum file already gone is not an error."""
    backup.unlink()
    checksum_path(backup).unlink(missing_ok=True)


def ensure_directory(directory: Path) -> bool:
    """Create the backup directory (mode 0700: dumps hold password verifiers); True when it was created."""
    if directory.is_dir():
        return False
    directory.mkdir(mode=0o700, parents=True)
    os.chmod(directory, 0o700)
    return True


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksum(backup: Path, hexdigest: str) -> Path:
    """Write ``<hex>  <basename>`` to the backup's new checksum file, mode 0600, atomically.

    The temporary file has a unique name (mkstemp) and is published with a hard link, which fails
    where one exists: two runs in the same second never write into or over each other's files.
    """
    target = checksum_path(backup)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{hexdigest}  {backup.name}\n")
        os.link(name, target)
    except FileExistsError:
        raise BackupFileError(f"{target} already exists; backups are never overwritten") from None
    finally:
        os.unlink(name)
    return target


def read_checksum(backup: Path) -> str:
    """The hex digest recorded for ``backup``; a missing, malformed or foreign checksum file is an error."""
    target = checksum_path(backup)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackupFileError(f"checksum file {target} is missing") from None
    match = _CHECKSUM_LINE.match(text)
    if not match:
        raise BackupFileError(f"checksum file {target} is not in sha256sum format (<hex>  <file name>)")
    if match.group(2) != backup.name:
        raise BackupFileError(f"checksum file {target} is for {match.group(2)!r}, not {backup.name!r}")
    return match.group(1)


def verify_checksum(backup: Path) -> str:
    """Check ``backup`` against its checksum file before anything reads it further; returns the digest."""
    if not backup.is_file():
        raise BackupFileError(f"backup file {backup} does not exist")
    recorded = read_checksum(backup)
    actual = sha256_of(backup)
    if actual != recorded:
        raise BackupFileError(f"checksum mismatch for {backup}: the file's SHA-256 is {actual}, "
                              f"{checksum_path(backup).name} records {recorded}")
    return actual
