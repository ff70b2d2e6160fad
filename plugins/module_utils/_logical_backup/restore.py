# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring a backup: checksum first, then the decompressed script streamed into psql in the pod.

A ``pg_dumpall --clean --if-exists`` script replayed into the server it came from (measured on
PostgreSQL 15) fails in exactly these places, each of which cascades into "already exists" errors
further down:

- ``DROP DATABASE`` of a database with open sessions: "database ... is being accessed by other
  users". Each such line is run ``WITH (FORCE)`` (PostgreSQL 13+), which terminates the sessions
  and drops the database in one statement, leaving no window for a service to reconnect.
- ``DROP ROLE`` of the role psql runs as: "current user cannot be dropped", then ``CREATE ROLE``
  of it: "role ... already exists". Both lines are left out (the ``ALTER ROLE`` after them still
  restores its attributes and password).

With those handled, psql runs with ``ON_ERROR_STOP=1``: any other error stops the restore at once
and is reported as psql printed it. Replaced lines keep their line, so psql's line numbers are those
of the decompressed backup.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.archive import (
    ArchiveError,
    ArchiveInfo,
    inspect_archive,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.dump import Streamer
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import (
    BackupFileError,
    verify_checksum,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.script import (
    CREATE_ROLE,
    CREATION,
    DROP_DATABASE,
    DROP_ROLE,
    GLOBALS,
    dump_parts,
    unquote,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import redact

STDIN_CHUNK = 256 * 1024
PARTIAL_RESTORE = ("The restore stopped there: databases and roles of the backup may already have been dropped or replaced "
                   "up to that point. Fix the cause and run the restore of this backup again; it replaces everything it holds.")
_END_OF_SCRIPT = b"\\q\n"


class RestoreError(Exception):
    """The restore failed; ``started`` tells whether the server may already have been changed."""

    def __init__(self, message: str, started: bool) -> None:
        super().__init__(message)
        self.started = started


@dataclass(frozen=True)
class RestoreResult:
    """A backup replayed into the server."""

    archive: ArchiveInfo
    pod: str
    messages: list[str]


def restore_command(login_user: str) -> list[str]:
    """psql reading the script from stdin, stopping at the first error; connected first to ``postgres``."""
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", login_user, "-d", "postgres", "-f", "-"]


def rewrite_for_restore(lines: Iterable[bytes], login_user: str) -> Iterator[bytes]:
    """The dump's lines with the known conflicts of replaying it into a live server resolved (see above).

    Only pg_dumpall's own lines are touched (script.dump_parts): the same text inside a function body,
    a string or table data passes unchanged.
    """
    for line, part in dump_parts(lines):
        yield _rewritten(line, part, login_user)


def _rewritten(line: bytes, part: str, login_user: str) -> bytes:
    """One line as it is replayed: DROP DATABASE forced, the restoring role's DROP and CREATE commented out."""
    if part not in (GLOBALS, CREATION):
        return line
    if DROP_DATABASE.match(line):
        return line[:-2] + b" WITH (FORCE);\n"
    own_role = (DROP_ROLE.match(line) or CREATE_ROLE.match(line)) if part == GLOBALS else None
    if own_role and unquote(own_role.group(1)) == login_user:
        return b"-- kept the role running the restore: " + line
    return line


def _chunks(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Lines joined into chunks of about STDIN_CHUNK bytes (one websocket frame each, not one per line)."""
    buffer = bytearray()
    for line in lines:
        buffer.extend(line)
        if len(buffer) >= STDIN_CHUNK:
            yield bytes(buffer)
            buffer.clear()
    buffer.extend(_END_OF_SCRIPT)
    yield bytes(buffer)


def check_backup(path: Path) -> ArchiveInfo:
    """Everything a restore checks before it changes anything: checksum file, gzip integrity, completeness."""
    try:
        digest = verify_checksum(path)
        info = inspect_archive(path)
    except (BackupFileError, ArchiveError) as exc:
        raise RestoreError(f"{exc}; nothing was restored", started=False) from None
    if info.sha256 != digest:
        raise RestoreError(f"{path} changed while it was being verified; nothing was restored", started=False)
    return info


def _discard(chunk: bytes) -> None:
    """psql's query output (SET, set_config rows) says nothing a restore needs."""
    del chunk


def restore_backup(stream: Streamer, path: Path, login_user: str) -> RestoreResult:
    """Verify ``path`` and replay it into the server through psql as ``login_user`` (a superuser)."""
    info = check_backup(path)
    with gzip.open(path, "rb") as dump:
        outcome = stream(restore_command(login_user), _chunks(rewrite_for_restore(dump, login_user)), _discard)
    messages = [redact(line) for line in outcome.stderr.splitlines() if line.strip()]
    if outcome.rc != 0:
        errors = [line for line in messages if "ERROR:" in line or "FATAL:" in line or "error:" in line] or messages
        raise RestoreError(f"psql in pod {outcome.pod!r} stopped with exit code {outcome.rc}: {' '.join(errors[-3:])}. "
                           f"{PARTIAL_RESTORE}", started=True)
    return RestoreResult(archive=info, pod=outcome.pod, messages=messages)
