# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring a backup without ever exposing the live databases: load, verify, safety dump, swap.

1. check: the checksum file, gzip integrity and completeness (nothing read from the server yet);
2. read: the server's roles and databases, once;
3. load: every application database of the backup into ``<name>__restoring_<stamp>`` (staging.LoadScript),
   missing roles created, existing roles untouched;
4. verify: every table of every loaded database holds as many rows as the backup's data block;
5. safety dump: the live server (without staged copies) into a verified backup file, as logical_backup writes;
6. swap: in ONE transaction, ``<name>`` becomes ``<name>__replaced_<stamp>`` and the loaded copy becomes
   ``<name>``; sessions on the live databases are ended inside it.

Until step 6 commits, the databases the services use are untouched; a run stopped anywhere before (psql
killed, exec timed out, the module killed) leaves only ``__restoring_`` copies, and a swap stopped half-way
rolls back. The verify and swap phases take an advisory lock of their own first, and the load between two
databases, so concurrent restores of one server queue instead of interleaving. Leftovers are listed on failure and dropped by ``cleanup``.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.archive import (
    ArchiveError,
    ArchiveInfo,
    inspect_archive,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.dump import (
    BackupResult,
    DumpError,
    Streamer,
    take_backup,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import (
    BackupFileError,
    verify_checksum,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.staging import (
    LEFTOVER,
    REPLACED,
    RESTORING,
    LoadScript,
    StagingError,
    application_databases,
    check_names,
    staged_name,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.identifiers import quote_ident
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    TransportError,
    redact,
)

STDIN_CHUNK = 256 * 1024
OUTPUT_KEPT = 1024 * 1024
"""Bytes of a query's stdout kept: the catalog read and the row counts are small; a runaway is cut, not kept."""
LOCK_CLASS = 1836077651
"""First key of the restore's advisory locks (``mpRS``); the second is the phase number."""
PHASES = ("load", "verify", "swap")
STAGED_PATTERNS = (f"*__{RESTORING}_*", f"*__{REPLACED}_*")
_END_OF_SCRIPT = b"\\q\n"
_SWAP_ATTEMPTS = 50
_SWAP_READY = "microservices.postgres: swap ready to commit"


class RestoreError(Exception):
    """A restore stopped; ``phase`` says where, ``leftovers`` what is left to clean up (live databases unchanged)."""

    def __init__(self, message: str, phase: str, leftovers: list[str] | None = None, swapped: bool = False) -> None:
        super().__init__(message)
        self.phase = phase
        self.leftovers = leftovers or []
        self.swapped = swapped


@dataclass(frozen=True)
class ServerState:
    """The roles and databases of the server, as read once before anything changes."""

    roles: frozenset[str]
    databases: frozenset[str]

    def leftovers(self) -> list[str]:
        """Databases left by earlier restores (staged copies and replaced originals)."""
        return sorted(name for name in self.databases if LEFTOVER.match(name))


@dataclass(frozen=True)
class RestorePlan:
    """What a restore of one backup into one server does, decided before anything changes."""

    archive: ArchiveInfo
    when: str
    databases: list[str]
    replaced: list[str]
    created: list[str]
    roles_created: list[str]
    skipped: list[str]


@dataclass
class RestoreResult:
    """A restore that swapped: what it replaced, kept and wrote."""

    plan: RestorePlan
    pod: str
    kept: list[str]
    safety_dump: BackupResult
    row_counts: dict[str, dict[str, int]]
    durations: dict[str, float] = field(default_factory=dict)


APPLICATION = "microservices.postgres restore"


def psql_command(login_user: str, phase: str, when: str) -> list[str]:
    """psql on the pod's socket reading a script from stdin; run and phase show in pg_stat_activity.application_name."""
    return ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", login_user,
            "-d", f"dbname=postgres application_name='{APPLICATION} {phase} {when}'", "-f", "-"]


def lock_statement(phase: str) -> bytes:
    """Take the phase's advisory lock in database ``postgres`` (advisory locks belong to a database; session level;
    \\gset keeps its row out of the output)."""
    return (f"\\connect postgres\nSELECT pg_advisory_lock({LOCK_CLASS}, {PHASES.index(phase) + 1}) AS locked "
            f"\\gset\n").encode()


def check_backup(path: Path) -> ArchiveInfo:
    """Everything a restore checks before it reads the server: checksum file, gzip integrity, completeness."""
    try:
        digest = verify_checksum(path)
        info = inspect_archive(path)
    except (BackupFileError, ArchiveError) as exc:
        raise RestoreError(f"{exc}; nothing was restored", phase="check") from None
    if info.sha256 != digest:
        raise RestoreError(f"{path} changed while it was being verified; nothing was restored", phase="check")
    return info


class Restorer:
    """Runs the phases of one restore through ``stream`` as ``login_user``; see the module docstring."""

    def __init__(self, stream: Streamer, login_user: str, when: str) -> None:
        self.stream = stream
        self.login_user = login_user
        self.when = when
        self.pod = ""

    def query(self, phase: str, script: bytes) -> str:
        """Run a short script; its output (bounded) as text. psql's failure is a RestoreError of ``phase``."""
        output = bytearray()

        def keep(chunk: bytes) -> None:
            output.extend(chunk[:OUTPUT_KEPT - len(output)])

        self._run(phase, (script + _END_OF_SCRIPT,), keep)
        return output.decode("utf-8", "replace")

    def _run(self, phase: str, stdin: Iterable[bytes], on_stdout: Callable[[bytes], None]) -> None:
        try:
            outcome = self.stream(psql_command(self.login_user, phase, self.when), stdin, on_stdout)
        except TransportError as exc:
            raise RestoreError(f"{phase}: {exc}", phase=phase) from None
        self.pod = outcome.pod
        if outcome.rc != 0:
            lines = [redact(line) for line in outcome.stderr.splitlines() if line.strip()]
            errors = [line for line in lines if "ERROR:" in line or "FATAL:" in line or "error:" in line] or lines
            raise RestoreError(f"{phase}: psql in pod {outcome.pod!r} stopped with exit code {outcome.rc}: "
                               f"{' '.join(errors[-3:]) or 'no error output'}", phase=phase)

    def read_state(self, stop_run: bool = False) -> ServerState:
        """The server's roles and databases in one query; ``stop_run`` first ends this run's other sessions.

        An exec that was cut (timeout, lost connection) does not stop psql in the pod: a swap waiting for its
        lock would still commit later. Ending the run's sessions (and waiting until they are gone) first makes
        the state read final: an uncommitted swap is rolled back, a committed one shows.
        """
        stop = (f"SELECT count(pg_catalog.pg_terminate_backend(pid, 10000)) AS stopped FROM pg_catalog.pg_stat_activity "
                f"WHERE application_name LIKE '{APPLICATION} % {self.when}' AND pid <> pg_catalog.pg_backend_pid() "
                f"\\gset\n").encode() if stop_run else b""
        catalog = (b"SELECT json_build_object('roles', (SELECT json_agg(rolname) FROM pg_catalog.pg_roles), "
                   b"'databases', (SELECT json_agg(datname) FROM pg_catalog.pg_database));\n")
        text = self.query("read", stop + catalog)
        try:
            found = json.loads(text)
            return ServerState(roles=frozenset(found["roles"]), databases=frozenset(found["databases"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise RestoreError(f"read: the server's roles and databases could not be read ({exc})", phase="read") from None

    def plan(self, info: ArchiveInfo, state: ServerState, script: LoadScript) -> RestorePlan:
        """What this restore does; refuses names that cannot be staged, and staged names already taken."""
        databases = application_databases(info.databases)
        try:
            check_names(databases, self.when)
        except StagingError as exc:
            raise RestoreError(f"{exc}; nothing was restored", phase="check") from None
        taken = sorted(name for database in databases for kind in (RESTORING, REPLACED)
                       if (name := staged_name(database, kind, self.when)) in state.databases)
        if taken:
            raise RestoreError(f"databases {', '.join(taken)} already exist (another restore in the same second); "
                               f"nothing was restored", phase="check")
        return RestorePlan(archive=info, when=self.when, databases=databases,
                           replaced=[name for name in databases if name in state.databases],
                           created=[name for name in databases if name not in state.databases],
                           roles_created=[role for role in info.roles if role not in script.existing_roles],
                           skipped=[name for name in info.databases if name not in databases])

    def load(self, path: Path, script: LoadScript) -> None:
        """Stream the rewritten backup into psql: the staged databases, and the missing roles."""
        with gzip.open(path, "rb") as dump:
            self._run("load", _chunks(script.lines(dump)), _discard)

    def verify(self, plan: RestorePlan, row_counts: dict[str, dict[str, int]]) -> None:
        """Every loaded database exists and every table holds the rows its data block had."""
        script = bytearray()
        expected: list[tuple[str, str, int]] = []
        for database in plan.databases:
            script += lock_statement("verify")
            script += f"\\connect {staged_name(database, RESTORING, self.when)}\n".encode()
            script += b"SELECT -1, 0;\n"
            for table, rows in sorted(row_counts.get(database, {}).items()):
                script += f"SELECT {len(expected)}, count(*) FROM {table};\n".encode("utf-8", "surrogateescape")
                expected.append((database, table, rows))
        found: dict[int, int] = {}
        reached = 0
        for line in self.query("verify", bytes(script)).splitlines():
            index, _sep, count = line.partition("|")
            if index == "-1":
                reached += 1
            elif index.isdigit() and count.isdigit():
                found[int(index)] = int(count)
        differences = [f"{database}: table {table} has {found.get(index, 'no')} rows, the backup {rows}"
                       for index, (database, table, rows) in enumerate(expected) if found.get(index) != rows]
        if reached != len(plan.databases) or differences:
            raise RestoreError("verify: the loaded copies do not match the backup: "
                               + ("; ".join(differences[:10]) or f"{reached} of {len(plan.databases)} databases reached"),
                               phase="verify")

    def swap(self, plan: RestorePlan) -> list[str]:
        """One transaction renames every live database away and every loaded copy into its place; returns the kept names.

        COMMIT is sent only once psql has said the renames are done (_CommitGate): a controller killed before
        that leaves psql at the end of its input, which rolls the transaction back, even when the swap was still
        waiting for its lock.
        """
        renames = []
        names = []
        for database in plan.databases:
            if database in plan.replaced:
                renames.append(f"ALTER DATABASE {quote_ident(database)} RENAME TO "
                               f"{quote_ident(staged_name(database, REPLACED, self.when))};")
            renames.append(f"ALTER DATABASE {quote_ident(staged_name(database, RESTORING, self.when))} RENAME TO "
                           f"{quote_ident(database)};")
            names += [database, staged_name(database, RESTORING, self.when)]
        literals = ", ".join("'" + name + "'" for name in names)
        body = "\n      ".join(renames)
        prepare = (lock_statement("swap").decode() + f"""BEGIN;
DO $swap$
BEGIN
  FOR attempt IN 1..{_SWAP_ATTEMPTS} LOOP
    BEGIN
      PERFORM pg_catalog.pg_terminate_backend(pid, 1000) FROM pg_catalog.pg_stat_activity
        WHERE datname IN ({literals}) AND pid <> pg_catalog.pg_backend_pid();
      {body}
      RETURN;
    EXCEPTION WHEN object_in_use THEN
      PERFORM pg_catalog.pg_sleep(0.1);
    END;
  END LOOP;
  RAISE EXCEPTION 'sessions kept reconnecting to the databases being swapped; nothing was swapped';
END
$swap$;
\\echo {_SWAP_READY}
""").encode()
        gate = _CommitGate()
        self._run("swap", gate.script(prepare), gate.watch)
        if not gate.committed:
            raise RestoreError("swap: psql ended before COMMIT was sent, so the swap was rolled back", phase="swap")
        return [staged_name(database, REPLACED, self.when) for database in plan.replaced]


def restore_backup(stream: Streamer, path: Path, login_user: str, when: str, safety_target: Path) -> RestoreResult:
    """Restore ``path`` by load, verify, safety dump and swap (see the module docstring).

    A failure after the read raises RestoreError with the phase, whether the swap happened (only when the
    swap's own exec failed after committing) and the databases left to clean up, read from the server again.
    """
    info = check_backup(path)
    restorer = Restorer(stream, login_user, when)
    durations: dict[str, float] = {}
    started = time.monotonic()
    state = restorer.read_state()
    script = LoadScript(existing_roles=state.roles, when=when, between_databases=lock_statement("load"))
    plan = restorer.plan(info, state, script)
    try:
        for phase, action in (("load", lambda: restorer.load(path, script)),
                              ("verify", lambda: restorer.verify(plan, script.row_counts))):
            action()
            durations[phase] = round(time.monotonic() - started, 3)
            started = time.monotonic()
        try:
            safety = take_backup(stream, safety_target, login_user, exclude=STAGED_PATTERNS)
        except (DumpError, TransportError) as exc:
            raise RestoreError(f"safety dump: {exc}", phase="safety dump") from None
        durations["safety dump"] = round(time.monotonic() - started, 3)
        started = time.monotonic()
        kept = restorer.swap(plan)
        durations["swap"] = round(time.monotonic() - started, 3)
    except RestoreError as exc:
        raise _with_leftovers(exc, restorer, plan) from None
    return RestoreResult(plan=plan, pod=restorer.pod, kept=kept, safety_dump=safety, row_counts=script.row_counts,
                         durations=durations)


def _with_leftovers(error: RestoreError, restorer: Restorer, plan: RestorePlan) -> RestoreError:
    """The error with what the server holds now: this restore's staged copies, and whether the swap committed."""
    try:
        state = restorer.read_state(stop_run=True)
    except RestoreError:
        mine = [staged_name(database, RESTORING, plan.when) for database in plan.databases]
        return RestoreError(f"{error}. The server could not be read again: databases {', '.join(mine)} may be left "
                            f"to clean up", phase=error.phase, leftovers=mine)
    swapped = error.phase == "swap" and all(
        staged_name(name, RESTORING, plan.when) not in state.databases for name in plan.databases) and all(
        staged_name(name, REPLACED, plan.when) in state.databases for name in plan.replaced)
    leftovers = state.leftovers()
    outcome = ("The swap had committed: the restored databases are live." if swapped
               else "The databases the services use are unchanged.")
    tail = (f" Left to clean up: {', '.join(leftovers)} (run again with cleanup=true)." if leftovers
            else " Nothing is left to clean up.")
    return RestoreError(f"{error}. {outcome}{tail}", phase=error.phase, leftovers=leftovers, swapped=swapped)


def cleanup(stream: Streamer, login_user: str, check_only: bool) -> list[str]:
    """Drop the databases earlier restores left (staged copies, replaced originals); returns their names."""
    restorer = Restorer(stream, login_user, when="")
    leftovers = restorer.read_state().leftovers()
    if leftovers and not check_only:
        drops = "".join(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE);\n" for name in leftovers)
        restorer.query("cleanup", drops.encode())
    return leftovers


class _CommitGate:
    """The swap's input: the transaction, then COMMIT once psql's output shows the renames are done."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.committed = False
        self._seen = b""

    def watch(self, chunk: bytes) -> None:
        """psql's stdout: look for the ready line (it may span two messages); keep only a tail to match across them."""
        self._seen = (self._seen + chunk)[-(len(_SWAP_READY) * 2):]
        if _SWAP_READY.encode() in self._seen:
            self.ready.set()

    def script(self, prepare: bytes) -> Iterator[bytes]:
        """The prepared transaction, then empty chunks while waiting (so the stream can drop this), then COMMIT."""
        yield prepare
        while not self.ready.wait(0.2):
            yield b""
        self.committed = True
        yield b"COMMIT;\n" + _END_OF_SCRIPT


def _chunks(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Lines joined into chunks of about STDIN_CHUNK bytes (one message each, not one per line)."""
    buffer = bytearray()
    for line in lines:
        buffer.extend(line)
        if len(buffer) >= STDIN_CHUNK:
            yield bytes(buffer)
            buffer.clear()
    buffer.extend(_END_OF_SCRIPT)
    yield bytes(buffer)


def _discard(chunk: bytes) -> None:
    """psql's output during the load (set_config rows) says nothing a restore needs."""
    del chunk
