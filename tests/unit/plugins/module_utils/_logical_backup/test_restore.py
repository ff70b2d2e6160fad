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

HEADER = b"--\n-- PostgreSQL database cluster dump\n--\n\n"
GLOBALS = (b"DROP DATABASE IF EXISTS userdb;\n"
           b'DROP DATABASE IF EXISTS "Odd db";\n'
           b"DROP ROLE IF EXISTS postgres;\n"
           b"DROP ROLE IF EXISTS userservice;\n"
           b"CREATE ROLE postgres;\n"
           b"ALTER ROLE postgres WITH SUPERUSER;\n"
           b"CREATE ROLE userservice;\n")
TEMPLATE1 = (b"\n--\n-- Database \"template1\" dump\n--\n\n"
             b"DROP DATABASE template1;\n"
             b"CREATE DATABASE template1 WITH TEMPLATE = template0;\n"
             b"\\connect template1\n")
USERDB = (b"\n--\n-- Database \"userdb\" dump\n--\n\n"
          b"CREATE DATABASE userdb WITH TEMPLATE = template0;\n"
          b"\\connect userdb\n"
          b"--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n"
          b"COPY public.t (id, v) FROM stdin;\n"
          b"1\tDROP DATABASE IF EXISTS userdb;\n"
          b"2\tDROP ROLE IF EXISTS postgres;\n"
          b"\\.\n")
# A function body holding pg_dumpall's own lines, and a COPY line that is not pg_dump's: none may be touched,
# and the body's COPY must not hide the DROP DATABASE of the next database's creation part.
BODY = (b"CREATE FUNCTION public.g() RETURNS text\n"
        b"    LANGUAGE sql\n"
        b"    AS $$\n"
        b"DROP ROLE IF EXISTS postgres;\n"
        b"CREATE ROLE postgres;\n"
        b"COPY t FROM stdin;\n"
        b"DROP DATABASE IF EXISTS userdb;\n"
        b"$$;\n")
POSTGRES = (b"\n--\n-- Database \"postgres\" dump\n--\n\n"
            b"DROP DATABASE postgres;\n"
            b"CREATE DATABASE postgres WITH TEMPLATE = template0;\n"
            b"\\connect postgres\n")
FOOTER = b"--\n-- PostgreSQL database cluster dump complete\n--\n\n"
SCRIPT = HEADER + GLOBALS + TEMPLATE1 + USERDB + FOOTER


def _backup(tmp_path: Path, script: bytes = SCRIPT) -> Path:
    path = tmp_path / "dev-postgres-20261126T081500Z.sql.gz"
    path.write_bytes(gzip.compress(script))
    write_checksum(path, hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def _rewritten(script: bytes) -> list[bytes]:
    return list(rewrite_for_restore(script.splitlines(keepends=True), "postgres"))


def test_rewrite_forces_database_drops_and_keeps_the_restoring_role_in_the_globals() -> None:
    lines = _rewritten(SCRIPT)
    assert lines[4:11] == [
        b"DROP DATABASE IF EXISTS userdb WITH (FORCE);\n",
        b'DROP DATABASE IF EXISTS "Odd db" WITH (FORCE);\n',
        b"-- kept the role running the restore: DROP ROLE IF EXISTS postgres;\n",
        b"DROP ROLE IF EXISTS userservice;\n",
        b"-- kept the role running the restore: CREATE ROLE postgres;\n",
        b"ALTER ROLE postgres WITH SUPERUSER;\n",
        b"CREATE ROLE userservice;\n",
    ]
    assert b"DROP DATABASE template1 WITH (FORCE);\n" in lines
    assert len(lines) == len(SCRIPT.splitlines())


def test_copy_data_is_never_rewritten() -> None:
    lines = _rewritten(SCRIPT)
    assert b"1\tDROP DATABASE IF EXISTS userdb;\n" in lines
    assert b"2\tDROP ROLE IF EXISTS postgres;\n" in lines


def test_a_function_body_is_never_rewritten_and_its_copy_line_is_not_table_data() -> None:
    script = HEADER + GLOBALS + TEMPLATE1 + USERDB + BODY + POSTGRES + FOOTER
    lines = _rewritten(script)
    assert b"".join(lines).count(BODY) == 1
    assert b"DROP DATABASE postgres WITH (FORCE);\n" in lines


def test_lines_like_pg_dumpalls_inside_a_database_part_are_left_alone() -> None:
    after_connect = USERDB + b"DROP DATABASE IF EXISTS userdb;\nCREATE ROLE postgres;\n"
    lines = _rewritten(HEADER + GLOBALS + after_connect + FOOTER)
    assert b"".join(lines).endswith(after_connect + FOOTER)


def test_restore_streams_the_rewritten_script_into_psql_and_ends_it(tmp_path: Path) -> None:
    stream = FakeStream(stderr="NOTICE:  database \"Odd db\" does not exist, skipping\n")
    result = restore_backup(stream, _backup(tmp_path), "postgres")
    assert stream.argv == restore_command("postgres") == [
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres", "-f", "-"]
    assert stream.stdin == b"".join(rewrite_for_restore(SCRIPT.splitlines(keepends=True), "postgres")) + b"\\q\n"
    assert result.archive.databases == ["template1", "userdb"]
    assert result.archive.roles == ["postgres", "userservice"]
    assert result.messages == ['NOTICE:  database "Odd db" does not exist, skipping']


def test_a_psql_error_fails_the_restore_with_its_message(tmp_path: Path) -> None:
    stream = FakeStream(rc=3, stderr="psql:<stdin>:9: ERROR:  permission denied to create database\n")
    with pytest.raises(RestoreError, match=r"stopped with exit code 3: psql:<stdin>:9: ERROR:  permission denied") as info:
        restore_backup(stream, _backup(tmp_path), "postgres")
    assert info.value.started is True


def test_a_checksum_mismatch_stops_before_psql_runs(tmp_path: Path) -> None:
    path = _backup(tmp_path)
    path.with_name(path.name + ".sha256").write_text(f"{'0' * 64}  {path.name}\n")
    stream = FakeStream()
    with pytest.raises(RestoreError, match="checksum mismatch .* nothing was restored") as info:
        restore_backup(stream, path, "postgres")
    assert info.value.started is False
    assert stream.argv == []


def test_an_incomplete_dump_is_refused_even_with_a_matching_checksum(tmp_path: Path) -> None:
    path = _backup(tmp_path, SCRIPT[:-60])
    with pytest.raises(RestoreError, match="completion marker.*nothing was restored"):
        check_backup(path)


def test_psql_errors_are_redacted_and_say_the_restore_must_be_run_again(tmp_path: Path) -> None:
    stderr = "psql:<stdin>:9: ERROR:  syntax error at PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy'\n"
    with pytest.raises(RestoreError) as info:
        restore_backup(FakeStream(rc=3, stderr=stderr), _backup(tmp_path), "postgres")
    message = str(info.value)
    assert "SCRAM-SHA-256$" not in message and "<redacted>" in message
    assert "may already have been dropped or replaced" in message and "run the restore of this backup again" in message
