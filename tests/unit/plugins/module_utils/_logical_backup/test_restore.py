"""The restore's phases: check before anything, load beside, verify, safety dump, swap; and what a stop leaves."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import write_checksum
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.restore import (
    LOCK_CLASS,
    RestoreError,
    check_backup,
    cleanup,
    psql_command,
    restore_backup,
)
from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.stream import StreamError, StreamResult

from .test_staging import SCRIPT, USERDB, WHEN

DUMP_OF_LIVE = SCRIPT
STAGED, KEPT = f"userdb__restoring_{WHEN}", f"userdb__replaced_{WHEN}"


def _backup(tmp_path: Path, script: bytes = SCRIPT) -> Path:
    path = tmp_path / "dev-postgres-20261126T081500Z.sql.gz"
    path.write_bytes(gzip.compress(script))
    write_checksum(path, hashlib.sha256(path.read_bytes()).hexdigest())
    return path


class Server:
    """Plays psql and pg_dumpall in a pod: tracks the databases each phase creates or renames; fails where told."""

    def __init__(self, fail_in: str = "", counts: dict[str, int] | None = None) -> None:
        self.databases = {"postgres", "template1", "userdb", "paymentdb__replaced_20250101_000000"}
        self.fail_in = fail_in
        self.counts = counts if counts is not None else {"public.t": 2, 'public."Empty"': 0}
        self.phases: list[str] = []
        self.stdin: dict[str, bytes] = {}

    def __call__(self, argv: Sequence[str], stdin: Iterable[bytes], on_stdout: Callable[[bytes], None]) -> StreamResult:
        phase = "safety dump" if argv[0] == "pg_dumpall" else argv[argv.index("-d") + 1].split("restore ")[1].split()[0]
        self.phases.append(phase)
        if phase == "swap" and phase != self.fail_in:
            received = []
            for chunk in stdin:
                received.append(chunk)
                if len(received) == 1:
                    on_stdout(b"microservices.postgres: swap ready ")
                    on_stdout(b"to commit\n")
            self.stdin[phase] = b"".join(received)
        elif phase != self.fail_in:
            self.stdin[phase] = b"".join(stdin)
        if phase == self.fail_in:
            if phase == "load":
                self.databases.add(STAGED)
            raise StreamError("psql in pod 'postgresql-0' did not finish within 5 s (restore_timeout); it was stopped",
                              input_sent=True)
        if phase == "read":
            on_stdout(json.dumps({"roles": ["postgres", "userservice"], "databases": sorted(self.databases)}).encode())
        elif phase == "load":
            self.databases.add(STAGED)
        elif phase == "verify":
            rows = "".join(f"{index}|{self.counts[table]}\n" for index, table in enumerate(sorted(self.counts)))
            on_stdout(b"-1|0\n" * self.stdin[phase].count(b"SELECT -1, 0;") + rows.encode())
        elif phase == "safety dump":
            on_stdout(DUMP_OF_LIVE)
        elif phase == "swap":
            self.databases -= {"userdb", STAGED}
            self.databases |= {"userdb", KEPT}
        elif phase == "cleanup":
            self.databases = {name for name in self.databases if "__" not in name}
        return StreamResult(rc=0, stderr="", pod="postgresql-0")


def restore(tmp_path: Path, server: Server):
    return restore_backup(server, _backup(tmp_path), "postgres", WHEN, tmp_path / "pre-20261126T081501Z.sql.gz")


def test_a_restore_loads_verifies_dumps_then_swaps_in_that_order(tmp_path: Path) -> None:
    server = Server()
    result = restore(tmp_path, server)
    assert server.phases == ["read", "load", "verify", "safety dump", "swap"]
    assert result.kept == [KEPT] and result.plan.replaced == ["userdb"] and result.plan.skipped == ["template1"]
    assert result.safety_dump.path.is_file() and result.row_counts == {"userdb": {"public.t": 2, 'public."Empty"': 0}}
    assert server.databases >= {"userdb", KEPT} and STAGED not in server.databases


def test_the_swap_is_one_transaction_renaming_the_live_database_away_first(tmp_path: Path) -> None:
    server = Server()
    restore(tmp_path, server)
    swap = server.stdin["swap"].decode()
    assert swap.index(f'ALTER DATABASE "userdb" RENAME TO "{KEPT}";') < swap.index(
        f'ALTER DATABASE "{STAGED}" RENAME TO "userdb";')
    assert swap.count("DO $swap$") == 1 and "pg_terminate_backend" in swap
    assert swap.index("BEGIN;\nDO $swap$") < swap.index("\\echo microservices.postgres: swap ready to commit\n") < swap.index(
        "COMMIT;\n\\q\n")
    assert f"pg_advisory_lock({LOCK_CLASS}, 3)" in swap


def test_the_safety_dump_leaves_staged_copies_out(tmp_path: Path) -> None:
    server = Server()
    argv: list[list[str]] = []

    def recording(command, stdin, on_stdout):
        argv.append(list(command))
        return server(command, stdin, on_stdout)

    restore_backup(recording, _backup(tmp_path), "postgres", WHEN, tmp_path / "pre-20261126T081501Z.sql.gz")
    assert argv[3] == ["pg_dumpall", "--clean", "--if-exists", "-U", "postgres",
                       "--exclude-database=*__restoring_*", "--exclude-database=*__replaced_*"]


@pytest.mark.parametrize("phase", ["load", "verify", "safety dump", "swap"])
def test_a_restore_stopped_in_any_phase_leaves_the_live_database_and_says_what_is_left(tmp_path: Path, phase: str) -> None:
    server = Server(fail_in=phase)
    with pytest.raises(RestoreError) as info:
        restore(tmp_path, server)
    error = info.value
    assert error.phase == phase and error.swapped is False
    assert "userdb" in server.databases and KEPT not in server.databases
    assert server.phases.count("swap") == (phase == "swap") and server.phases[-1] == "read"
    assert error.leftovers == sorted(["paymentdb__replaced_20250101_000000", STAGED])
    assert str(error).endswith(f"The databases the services use are unchanged. Left to clean up: "
                               f"paymentdb__replaced_20250101_000000, {STAGED} (run again with cleanup=true).")
    assert "restore_timeout" in str(error) or phase == "safety dump"
    assert bool(list(tmp_path.glob("pre-*"))) is (phase == "swap")


def test_a_copy_that_does_not_match_the_backup_is_never_swapped_in(tmp_path: Path) -> None:
    server = Server(counts={"public.t": 1, 'public."Empty"': 0})
    with pytest.raises(RestoreError, match=r"verify: the loaded copies do not match the backup: userdb: table "
                                           r"public.t has 1 rows, the backup 2") as info:
        restore(tmp_path, server)
    assert "swap" not in server.phases and info.value.phase == "verify"


def test_the_verify_script_counts_every_table_of_the_staged_copy(tmp_path: Path) -> None:
    server = Server()
    restore(tmp_path, server)
    assert server.stdin["verify"] == (f"\\connect postgres\nSELECT pg_advisory_lock({LOCK_CLASS}, 2) AS locked \\gset\n"
                                      f"\\connect {STAGED}\n"
                                      f"SELECT -1, 0;\n"
                                      f'SELECT 0, count(*) FROM public."Empty";\nSELECT 1, count(*) FROM public.t;\n'
                                      f"\\q\n").encode()


def test_a_checksum_mismatch_stops_before_the_server_is_read(tmp_path: Path) -> None:
    path = _backup(tmp_path)
    path.with_name(path.name + ".sha256").write_text(f"{'0' * 64}  {path.name}\n")
    server = Server()
    with pytest.raises(RestoreError, match="checksum mismatch .* nothing was restored") as info:
        restore_backup(server, path, "postgres", WHEN, tmp_path / "pre.sql.gz")
    assert server.phases == [] and info.value.phase == "check"


def test_an_incomplete_dump_is_refused_even_with_a_matching_checksum(tmp_path: Path) -> None:
    with pytest.raises(RestoreError, match="completion marker.*nothing was restored"):
        check_backup(_backup(tmp_path, SCRIPT[:-60]))


def test_psql_errors_are_redacted(tmp_path: Path) -> None:
    stderr = "psql:<stdin>:9: ERROR:  syntax error at PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy'\n"
    server = Server()

    def failing(argv, stdin, on_stdout):
        result = server(argv, stdin, on_stdout)
        return StreamResult(rc=3, stderr=stderr, pod="postgresql-0") if server.phases[-1] == "load" else result

    with pytest.raises(RestoreError) as info:
        restore_backup(failing, _backup(tmp_path), "postgres", WHEN, tmp_path / "pre.sql.gz")
    assert "SCRAM-SHA-256$" not in str(info.value) and "<redacted>" in str(info.value)


def test_the_phase_and_the_run_show_in_application_name() -> None:
    assert psql_command("postgres", "swap", WHEN)[-3:] == [
        f"dbname=postgres application_name='microservices.postgres restore swap {WHEN}'", "-f", "-"]


def test_after_a_failure_the_runs_sessions_are_ended_before_the_state_is_read(tmp_path: Path) -> None:
    server = Server(fail_in="swap")
    with pytest.raises(RestoreError):
        restore(tmp_path, server)
    assert server.stdin["read"].startswith(
        f"SELECT count(pg_catalog.pg_terminate_backend(pid, 10000)) AS stopped FROM pg_catalog.pg_stat_activity "
        f"WHERE application_name LIKE 'microservices.postgres restore % {WHEN}'".encode())


def test_the_load_takes_its_lock_in_postgres_between_databases(tmp_path: Path) -> None:
    two = SCRIPT.replace(b"-- PostgreSQL database cluster dump complete", USERDB.replace(b"userdb", b"zdb")
                         + b"-- PostgreSQL database cluster dump complete")
    server = Server(counts={"a": 0, "b": 2, "c": 0, "d": 2})
    restore_backup(server, _backup(tmp_path, two), "postgres", WHEN, tmp_path / "pre-20261126T081501Z.sql.gz")
    lock = f"\\connect postgres\nSELECT pg_advisory_lock({LOCK_CLASS}, 1) AS locked \\gset\n".encode()
    load = server.stdin["load"]
    assert load.count(lock) == 1 and load.index(b"CREATE DATABASE userdb__") < load.index(lock) < load.index(
        b"CREATE DATABASE zdb__")


@pytest.mark.parametrize("check_only", [True, False])
def test_cleanup_drops_only_what_restores_left(check_only: bool) -> None:
    server = Server()
    server.databases |= {STAGED, KEPT, "userdb__mine"}
    assert cleanup(server, "postgres", check_only) == ["paymentdb__replaced_20250101_000000", KEPT, STAGED]
    assert ("cleanup" in server.phases) is not check_only
    if not check_only:
        assert server.stdin["cleanup"].count(b"DROP DATABASE IF EXISTS") == 3 and b"userdb__mine" not in server.stdin["cleanup"]


def test_the_swap_commits_only_after_psql_says_it_is_ready_and_never_when_it_ended_first(tmp_path: Path) -> None:
    server = Server()
    gate_chunks: list[bytes] = []

    def ends_early(argv, stdin, on_stdout):
        if "swap" not in argv[-3]:
            return server(argv, stdin, on_stdout)
        for chunk in stdin:
            gate_chunks.append(chunk)
            if len(gate_chunks) == 3:
                break
        return StreamResult(rc=2, stderr="FATAL:  terminating connection due to administrator command", pod="p")

    with pytest.raises(RestoreError, match="swap: psql in pod 'p' stopped with exit code 2: FATAL"):
        restore_backup(ends_early, _backup(tmp_path), "postgres", WHEN, tmp_path / "pre-20261126T081501Z.sql.gz")
    assert gate_chunks[1:] == [b"", b""] and not any(b"COMMIT" in chunk for chunk in gate_chunks)


def test_a_swap_whose_psql_ended_before_commit_is_reported_as_rolled_back(tmp_path: Path) -> None:
    server = Server()

    def no_ready_line(argv, stdin, on_stdout):
        if "swap" not in argv[-3]:
            return server(argv, stdin, on_stdout)
        next(iter(stdin))
        server.phases.append("swap")
        return StreamResult(rc=0, stderr="", pod="p")

    with pytest.raises(RestoreError, match="swap: psql ended before COMMIT was sent, so the swap was rolled back") as info:
        restore_backup(no_ready_line, _backup(tmp_path), "postgres", WHEN, tmp_path / "pre-20261126T081501Z.sql.gz")
    assert info.value.swapped is False
