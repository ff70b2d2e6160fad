"""The psql-script transport: rendering, output parsing and failure location, without a server.

The end-to-end behaviour (a real psql against real PostgreSQL 15 and 18) is proved in
tests/integration/test_psql_transport.py; these tests pin the script's shape, which is what
keeps the transport to one psql process per read and per write.
"""

from __future__ import annotations

from typing import Sequence

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.psql import (
    ExecResult,
    PsqlTransport,
    describe_failure,
    last_step,
    parse_rows,
    psql_command,
    render_read_script,
    render_write_script,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    Query,
    Statement,
    TransportError,
)


class RecordingRunner:
    """Returns a prepared ExecResult and remembers what it was asked to run."""

    def __init__(self, result: ExecResult) -> None:
        self.result = result
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, argv: Sequence[str], stdin: str) -> ExecResult:
        self.calls.append((list(argv), stdin))
        return self.result


def test_psql_command_reads_script_from_stdin_and_stops_on_first_error():
    argv = psql_command("postgres", "postgres")
    assert argv[0] == "psql"
    assert argv[-2:] == ["-f", "-"]
    assert "ON_ERROR_STOP=1" in argv
    assert "-X" in argv, "a psqlrc in the pod must not change the output format"


def test_read_script_marks_every_row_and_guards_dependent_queries():
    queries = [
        Query("server", "SELECT '1'::text"),
        Query("db_ready:userdb", "SELECT 'true'::text"),
        Query("extensions:userdb", "SELECT '[]'::text", database="userdb", when="db_ready:userdb"),
    ]
    script = render_read_script(queries, "postgres")
    lines = script.splitlines()
    assert lines[-1] == "\\q", "the script ends psql itself, so no stdin EOF is needed (exec v4 has none)"
    assert sum("'@@msp-row'" in line for line in lines) == 3
    gset = [line for line in lines if line.endswith("\\gset")]
    assert len(gset) == 1 and "AS msp_when_1" in gset[0]
    start = lines.index("\\if :msp_when_1")
    assert lines[start + 1] == '\\connect "userdb"'
    assert "'extensions:userdb'" in lines[start + 2]
    assert lines[start + 3] == '\\connect "postgres"'
    assert lines[start + 4] == "\\endif"


def test_write_script_announces_each_step_before_switching_database():
    statements = [
        Statement("SELECT 1", "SELECT 1", None, reported=False),
        Statement("CREATE DATABASE \"a\"", "CREATE DATABASE \"a\"", "a"),
        Statement("CREATE EXTENSION IF NOT EXISTS \"pg_trgm\";", "x", "a", database="a"),
    ]
    lines = render_write_script(statements, "postgres").splitlines()
    assert lines[-1] == "\\q"
    assert lines.index("\\echo @@msp-step 2") < lines.index('\\connect "a"')
    assert 'CREATE EXTENSION IF NOT EXISTS "pg_trgm";' in lines, "a trailing semicolon is not doubled"
    assert sum(line.startswith("\\echo @@msp-step") for line in lines) == 3


def test_parse_rows_ignores_everything_but_marked_lines():
    stdout = "\n@@msp-row|server|{\"a\": 1}\nnoise|x\n@@msp-row|extensions:db|[\"pg_trgm\"]\n"
    assert parse_rows(stdout) == {"server": {"a": 1}, "extensions:db": ["pg_trgm"]}


def test_last_step_is_the_last_marker_printed():
    assert last_step("@@msp-step 0\n\n@@msp-step 1\n@@msp-step 12\n") == 12
    assert last_step("nothing\n") is None


@pytest.mark.parametrize("stderr, message, sqlstate", [
    ("psql:<stdin>:5: ERROR:  MSP01: microservices.postgres: the catalog changed since it was read\nLOCATION:  x",
     "microservices.postgres: the catalog changed since it was read", "MSP01"),
    ("psql:<stdin>:3: ERROR:  42710: role \"a\" already exists", "role \"a\" already exists", "42710"),
    ("psql: error: connection to server on socket \"/x/.s.PGSQL.5432\" failed: No such file or directory",
     "connection to server on socket \"/x/.s.PGSQL.5432\" failed: No such file or directory", None),
])
def test_describe_failure_extracts_message_and_sqlstate(stderr, message, sqlstate):
    assert describe_failure(stderr) == (message, sqlstate)


def test_write_failure_reports_the_failing_step_and_redacts_verifiers():
    verifier = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"
    runner = RecordingRunner(ExecResult(
        rc=3, stdout="@@msp-step 0\n\n@@msp-step 1\n",
        stderr=f"psql:<stdin>:9: ERROR:  42601: syntax error at or near \"{verifier}\"",
    ))
    transport = PsqlTransport(runner, "postgres", "postgres")
    statements = [Statement("SELECT 1", "SELECT 1", None, reported=False),
                  Statement(f"ALTER ROLE \"a\" PASSWORD '{verifier}'", "ALTER ROLE \"a\" PASSWORD '<redacted>'", "a")]
    with pytest.raises(TransportError) as caught:
        transport.write(statements)
    assert caught.value.index == 1
    assert caught.value.sqlstate == "42601"
    assert verifier not in caught.value.message
    assert len(runner.calls) == 1
    argv, stdin = runner.calls[0]
    assert verifier in stdin and verifier not in " ".join(argv), "secrets travel on stdin, never on the command line"


def test_read_is_one_run_and_fails_when_a_row_is_missing():
    runner = RecordingRunner(ExecResult(rc=0, stdout="@@msp-row|server|1\n", stderr=""))
    transport = PsqlTransport(runner, "postgres", "postgres")
    assert transport.read([Query("server", "SELECT '1'::text")]) == {"server": 1}
    with pytest.raises(TransportError, match="no row for state"):
        transport.read([Query("server", "SELECT '1'::text"), Query("state", "SELECT '2'::text")])
    assert len(runner.calls) == 2


def test_empty_write_runs_nothing():
    runner = RecordingRunner(ExecResult(rc=0, stdout="", stderr=""))
    PsqlTransport(runner, "postgres", "postgres").write([])
    assert runner.calls == []
