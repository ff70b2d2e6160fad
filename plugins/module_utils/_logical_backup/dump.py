# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking a backup: pg_dumpall run inside the database pod, streamed through gzip onto the controller.

The dump never sits in memory or on the pod's disk: every stdout chunk of the exec goes straight
into the archive. The archive appears under its final name only once it has been read back whole
and its checksum file is written (the checksum first, so a listed backup always has one); a
failure at any point leaves neither behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.archive import (
    ArchiveError,
    ArchiveWriter,
    inspect_archive,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import (
    BackupFileError,
    write_checksum,
)
from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.stream import StreamResult
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import redact

Streamer = Callable[[Sequence[str], Iterable[bytes], Callable[[bytes], None]], StreamResult]
"""Runs argv in the pod, feeding it stdin chunks and handing over stdout chunks (a _pod_exec PodStreamer)."""


class DumpError(Exception):
    """The backup could not be taken; no file was left behind."""


@dataclass(frozen=True)
class BackupResult:
    """A backup written and verified."""

    path: Path
    checksum_path: Path
    sha256: str
    size: int
    dump_size: int
    databases: list[str]
    roles: list[str]
    pod: str


def dump_command(login_user: str, exclude: Sequence[str] = ()) -> list[str]:
    """pg_dumpall over the pod's local socket, with DROP ... IF EXISTS; ``exclude``: database name patterns left out."""
    return ["pg_dumpall", "--clean", "--if-exists", "-U", login_user] + [f"--exclude-database={pattern}"
                                                                         for pattern in exclude]


def take_backup(stream: Streamer, target: Path, login_user: str, exclude: Sequence[str] = ()) -> BackupResult:
    """Dump the whole server (but the databases ``exclude`` matches) into ``target`` and its checksum file, verified.

    Both files are published without replacing anything (see ArchiveWriter.commit and write_checksum),
    so a second run in the same second fails instead of overwriting the first one's backup.
    """
    if target.exists():
        raise DumpError(f"{target} already exists; backups are never overwritten")
    writer = ArchiveWriter(target)
    committed = False
    try:
        outcome = stream(dump_command(login_user, exclude), (), writer.write)
        if outcome.rc != 0:
            raise DumpError(f"pg_dumpall in pod {outcome.pod!r} exited with code {outcome.rc}: "
                            f"{redact(outcome.stderr.strip()) or 'no error output'}")
        digest = writer.close()
        info = inspect_archive(writer.partial)
        if info.sha256 != digest:
            raise DumpError(f"{writer.partial} changed while it was verified (SHA-256 {info.sha256}, written {digest})")
        written = _publish(writer, digest)
        committed = True
    except ArchiveError as exc:
        raise DumpError(f"the dump did not verify: {exc}") from None
    except BackupFileError as exc:
        raise DumpError(str(exc)) from None
    finally:
        if not committed:
            writer.abort()
    return BackupResult(path=target, checksum_path=written, sha256=digest, size=info.size, dump_size=info.dump_size,
                        databases=info.databases, roles=info.roles, pod=outcome.pod)


def _publish(writer: ArchiveWriter, digest: str) -> Path:
    """Checksum file first, then the archive, so a listed backup always has one; the checksum goes if the archive cannot."""
    written = write_checksum(writer.target, digest)
    try:
        writer.commit()
    except FileExistsError:
        written.unlink(missing_ok=True)
        raise DumpError(f"{writer.target} already exists; backups are never overwritten") from None
    except BaseException:
        written.unlink(missing_ok=True)
        raise
    return written
