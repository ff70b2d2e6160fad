"""Restoring: verification before anything runs, the rewritten conflicts, and psql's errors."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import write_checksum
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.restore import (
    RestoreError,
    check_backup,
    restore_backup,
    restore_command,
    rewrite_for_restore,
)

from .fakes import FakeStream

SCRIPT = (b"DROP DATABASE IF EXISTS userdb;\n"
          b'DROP DATABASE IF EXISTS "Odd db";\n'
          b"DROP ROLE IF EXISTS postgres;\n"
          b"DROP ROLE IF EXISTS userservice;\n"
          b"CREATE ROLE postgres;\n"
          b"ALTER ROLE postgres WITH SUPERUSER;\n"
          b"CREATE ROLE userservice;\n"
          b"DROP DATABASE template1;\n"
          b"CREATE DATABASE userdb WITH TEMPLATE = template0;\n"
          b"\\connect userdb\n"
          b"COPY public.t (id, v) FROM stdin;\n"
          b"1\tDROP DATABASE IF EXISTS userdb;\n"
          b"2\tDROP ROLE IF EXISTS postgres;\n"
          b"\\.\n"
          b"--\n-- PostgreSQL database cluster dump complete\n--\n\n")


def _backup(tmp_path: Path, script: bytes = SCRIPT) -> Path:
    path = tmp_path / "dev-postgres-20261126T081500Z.sql.gz"
    path.write_bytes(gzip.compress(script))
    write_checksum(path, hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def test_rewrite_forces_database_drops_and_keeps_the_restoring_role_outside_copy_data() -> None:
    lines = list(rewrite_for_restore(SCRIPT.splitlines(keepends=True), "postgres"))
    assert lines[:8] == [
        b"DROP DATABASE IF EXISTS userdb WITH (FORCE);\n",
        b'DROP DATABASE IF EXISTS "Odd db" WITH (FORCE);\n',
        b"-- kept the role running the restore: DROP ROLE IF EXISTS postgres;\n",
        b"DROP ROLE IF EXISTS userservice;\n",
        b"-- kept the role running the restore: CREATE ROLE postgres;\n",
        b"ALTER ROLE postgres WITH SUPERUSER;\n",
        b"CREATE ROLE userservice;\n",
        b"DROP DATABASE template1 WITH (FORCE);\n",
    ]
    assert lines[8:] == SCRIPT.splitlines(keepends=True)[8:]


def test_restore_streams_the_rewritten_script_into_psql_and_ends_it(tmp_path: Path) -> None:
    stream = FakeStream(stderr="NOTICE:  database \"Odd db\" does not exist, skipping\n")
    result = restore_backup(stream, _backup(tmp_path), "postgres")
    assert stream.argv == restore_command("postgres") == [
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres", "-f", "-"]
    assert stream.stdin == b"".join(rewrite_for_restore(SCRIPT.splitlines(keepends=True), "postgres")) + b"\\q\n"
    assert result.archive.databases == ["userdb"]
    assert result.archive.roles == ["postgres", "userservice"]
    assert result.messages == ['NOTICE:  database "Odd db" does not exist, skipping']


def test_a_psql_error_fails_the_restore_with_its_message(tmp_path: Path) -> None:
    stream = FakeStream(rc=3, stderr="psql:<stdin>:9: ERROR:  permission denied to create database\n")
    with pytest.raises(RestoreError, match=r"stopped with exit code 3: psql:<stdin>:9: ERROR:  permission denied") as info:
        restore_backup(stream, _backup(tmp_path), "postgres")
    assert info.value.started is True


def test_a_checksum_mismatch_stops_before_psql_runs(tmp_path: Path) -> None:
    path = _backup(tmp_path)
    write_checksum(path, "0" * 64)
    stream = FakeStream()
    with pytest.raises(RestoreError, match="checksum mismatch .* nothing was restored") as info:
        restore_backup(stream, path, "postgres")
    assert info.value.started is False
    assert stream.argv == []


def test_an_incomplete_dump_is_refused_even_with_a_matching_checksum(tmp_path: Path) -> None:
    path = _backup(tmp_path, SCRIPT[:-60])
    with pytest.raises(RestoreError, match="completion marker.*nothing was restored"):
        check_backup(path)
