# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A transport that renders a whole read or write batch into ONE psql script.

Where the controller has no network path to the server (a database pod), the only thing
that can be relied on is the ``psql`` binary next to the server: the official postgres
image and Spilo both ship it, neither ships Python. So each batch becomes one script, fed on
stdin to one psql process (one exec into the pod per read and per write), and the results
come back as marked lines on stdout. Where the script runs is the runner's business.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.identifiers import (
    quote_ident,
    quote_literal,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    Query,
    Statement,
    Transport,
    TransportError,
)

ROW_MARKER = "@@msp-row"
STEP_MARKER = "@@msp-step"
_ERROR_RE = re.compile(r"(?:ERROR|FATAL):\s+([0-9A-Z]{5}):\s+(.*)")
_PSQL_ERROR_RE = re.compile(r"psql:[^:]*:\d+:\s+|psql: error: ")


@dataclass(frozen=True)
class ExecResult:
    """What one run of psql produced."""

    rc: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str], str], ExecResult]
"""Runs argv with the given stdin somewhere psql can reach the server (a pod, or locally)."""


def psql_command(user: str, database: str) -> list[str]:
    """psql reading the script from stdin: no psqlrc, quiet, unaligned tuples only.

    ON_ERROR_STOP makes the first failing statement end the script (exit code 3), which is
    what gives a write batch the same stop-at-first-error semantics as the direct transport.
    """
    return ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", database, "-f", "-"]


def _preamble() -> list[str]:
    return ["\\set VERBOSITY verbose", "\\pset fieldsep '|'", "\\pset null ''"]


def _connect(database: str) -> str:
    return f"\\connect {quote_ident(database)}"


def _flag_variable(index: int) -> str:
    return f"msp_when_{index}"


def render_read_script(queries: Sequence[Query], login_db: str) -> str:
    """Every query prints ``@@msp-row|name|json``; ``when`` becomes a psql ``\\if`` on a flag.

    A query referenced by ``when`` is evaluated a second time into a psql variable with
    ``\\gset``: cheaper and far more robust than echoing its printed value back into psql.
    JSON is normalised through jsonb so that it always fits on one output line.
    """
    flags = {query.when for query in queries if query.when}
    flag_of: dict[str, str] = {}
    lines = _preamble()
    current = login_db
    for index, query in enumerate(queries):
        database = query.database or login_db
        if query.when:
            lines.append(f"\\if :{flag_of[query.when]}")
        if database != current:
            lines.append(_connect(database))
        subquery = f"({query.sql}) AS q(j)"
        lines.append(f"SELECT {quote_literal(ROW_MARKER)}, {quote_literal(query.name)}, q.j::jsonb::text FROM {subquery};")
        if query.name in flags:
            flag_of[query.name] = _flag_variable(index)
            lines.append(f"SELECT coalesce(q.j::jsonb = 'true'::jsonb, false) AS {_flag_variable(index)} FROM {subquery} \\gset")
        if database != current:
            lines.append(_connect(current))
        if query.when:
            lines.append("\\endif")
    lines.append("\\q")
    return "\n".join(lines) + "\n"


def render_write_script(statements: Sequence[Statement], login_db: str) -> str:
    """Statements in order, each announced by ``@@msp-step <index>`` so a failure can be located.

    psql runs each statement as its own autocommit transaction, which CREATE/DROP DATABASE
    require. Switching database closes the previous session (and its advisory lock), so the
    planner opens every per-database group with its own lock.
    """
    lines = _preamble()
    current = login_db
    for index, statement in enumerate(statements):
        lines.append(f"\\echo {STEP_MARKER} {index}")
        database = statement.database or login_db
        if database != current:
            lines.append(_connect(database))
            current = database
        lines.append(statement.sql.rstrip().rstrip(";") + ";")
    lines.append("\\q")
    return "\n".join(lines) + "\n"


def parse_rows(stdout: str) -> dict[str, Any]:
    """name -> parsed JSON from the marked lines; everything else psql printed is ignored."""
    results: dict[str, Any] = {}
    prefix = ROW_MARKER + "|"
    for line in stdout.splitlines():
        if line.startswith(prefix):
            name, value = line[len(prefix):].split("|", 1)
            results[name] = json.loads(value)
    return results


def last_step(stdout: str) -> int | None:
    """Index of the last statement psql started, from its step markers."""
    steps = [line.split()[1] for line in stdout.splitlines() if line.startswith(STEP_MARKER + " ")]
    return int(steps[-1]) if steps else None


def describe_failure(stderr: str) -> tuple[str, str | None]:
    """The server's message and SQLSTATE (VERBOSITY verbose prints ``ERROR:  CODE: text``)."""
    for line in stderr.splitlines():
        match = _ERROR_RE.search(line)
        if match:
            return match.group(2).strip(), match.group(1)
    lines = [_PSQL_ERROR_RE.sub("", line).strip() for line in stderr.splitlines() if line.strip()]
    return ("; ".join(lines) or "psql failed without a message"), None


class PsqlTransport(Transport):
    """One psql process per read and per write; the runner decides where it runs."""

    def __init__(self, runner: Runner, user: str, login_db: str) -> None:
        self._runner = runner
        self._user = user
        self._login_db = login_db

    def _run(self, script: str) -> ExecResult:
        return self._runner(psql_command(self._user, self._login_db), script)

    def read(self, queries: Sequence[Query]) -> dict[str, Any]:
        result = self._run(render_read_script(queries, self._login_db))
        if result.rc != 0:
            message, sqlstate = describe_failure(result.stderr)
            raise TransportError(f"catalog read through psql failed (exit {result.rc}): {message}", sqlstate=sqlstate)
        rows = parse_rows(result.stdout)
        missing = [query.name for query in queries if query.when is None and query.name not in rows]
        if missing:
            raise TransportError(f"catalog read through psql returned no row for {', '.join(missing)}")
        return rows

    def write(self, statements: Sequence[Statement]) -> None:
        if not statements:
            return
        result = self._run(render_write_script(statements, self._login_db))
        if result.rc != 0:
            message, sqlstate = describe_failure(result.stderr)
            step = last_step(result.stdout)
            raise TransportError(message, index=step if step is not None else 0, sqlstate=sqlstate)

    def close(self) -> None:
        """Nothing stays open: each psql process ends with its script."""
