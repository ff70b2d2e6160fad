"""No password and no SCRAM verifier in the server log, on servers that log every statement.

The integration servers run with ``log_statement = all``. The module turns statement logging off
for its own session around the statements that carry a verifier (and only those), through both
transports; a login that may not do that is refused with the GRANT that fixes it, or, with
``password_log_guard: best_effort``, goes on with a warning (and then the verifier IS logged,
which is what the refusal prevents).
"""

from __future__ import annotations

import os
import subprocess
from typing import Sequence

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.converge import converge
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import (
    Options,
    parse_services,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.psql import (
    ExecResult,
    PsqlTransport,
)
from tests.integration.helpers import (
    VERIFIER_RE,
    LogWindow,
    assert_absent,
    catalog_snapshot,
    ident,
    lit,
    random_ascii_password,
    role_facts,
    try_login,
)
from tests.integration.logging_grants import grant_quiet_logging

pytestmark = pytest.mark.integration


def raw_log(window: LogWindow) -> str:
    """The window's log lines as the server wrote them (LogEntry's repr would redact verifiers)."""
    return "\n".join(entry.message for entry in window.entries)


def assert_no_secret_logged(pg, window: LogWindow, services: Sequence[dict]) -> None:
    text = raw_log(window)
    assert VERIFIER_RE.search(text) is None, "a SCRAM verifier reached the server log"
    stored = role_facts(pg, [s["owner"] for s in services])
    for service in services:
        assert_absent(text, service["password"], "the server log")
        assert_absent(text, stored[service["owner"]]["password"], "the server log")


def test_passwords_set_and_changed_leave_no_verifier_in_the_log(pg, runner, names):
    services = names.services(3)
    renewed = [{**s, "password": random_ascii_password()} for s in services]
    with LogWindow(pg) as window:
        created = runner.run(services)
        changed = runner.run(renewed)
    assert created.ok and changed.ok and changed.changed, changed.describe()
    statements = raw_log(window)
    assert "CREATE DATABASE" in statements, "the rest of the batch is still logged"
    assert 'SET "log_statement"' in statements and 'RESET "log_statement"' not in statements
    assert "PASSWORD" not in statements
    assert_no_secret_logged(pg, window, renewed)
    for service in services:
        assert_absent(statements, service["password"], "the server log")


def _local_psql(pg):
    env = {**os.environ, "PGHOST": pg.info.socket_dir, "PGPORT": str(pg.info.port),
           "PATH": f"{pg.info.bindir}:{os.environ['PATH']}"}

    def run(argv: Sequence[str], stdin: str) -> ExecResult:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, env=env, check=False)
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)

    return run


def test_the_psql_transport_keeps_verifiers_out_of_the_log_too(pg, names):
    """The kubernetes transport's script (psql in the pod), run here with a local psql."""
    services = names.services(2)
    options = Options()
    with LogWindow(pg) as window:
        result = converge(parse_services(services, options), PsqlTransport(_local_psql(pg), "postgres", "postgres"),
                          options, check_mode=False)
    assert [s["status"] for s in result["services"]] == ["created", "created"]
    assert "CREATE DATABASE" in raw_log(window)
    assert_no_secret_logged(pg, window, services)
    for service in services:
        assert try_login(pg.info, service["owner"], service["password"], service["database"])[0]


def _login(pg, runner, names, base: str) -> dict:
    user = names.role(base)
    password = random_ascii_password()
    pg.psql(f"CREATE ROLE {ident(user)} LOGIN CREATEDB CREATEROLE PASSWORD {lit(password)}")
    return {**runner.login_args(), "login_user": user, "login_password": password}


def test_a_login_that_cannot_quiet_the_log_is_refused_with_the_grant(pg, runner, names, request):
    login = _login(pg, runner, names, "plain")
    services = names.services(2)
    snapshot = catalog_snapshot(pg)
    with LogWindow(pg) as window:
        refused = runner.run(services, login=login)
    assert refused.failed and "nothing was changed" in refused.msg, refused.describe()
    assert "log_statement='all'" in refused.msg, refused.msg
    assert f"GRANT SET ON PARAMETER log_statement, log_min_error_statement TO {ident(login['login_user'])}" in refused.msg
    assert "password_log_guard=best_effort" in refused.msg
    assert window.ddl == [] and catalog_snapshot(pg) == snapshot

    grant_quiet_logging(pg, request, login["login_user"])
    with LogWindow(pg) as window:
        granted = runner.run(services, login=login)
    assert granted.ok and granted.status == {s["database"]: "created" for s in services}, granted.describe()
    assert_no_secret_logged(pg, window, services)


def test_best_effort_goes_on_with_a_warning_and_the_log_shows_why_it_is_not_the_default(pg, runner, names):
    login = _login(pg, runner, names, "effort")
    services = names.services(1)
    with LogWindow(pg) as window:
        done = runner.run(services, login=login, password_log_guard="best_effort")
    assert done.ok and done.changed, done.describe()
    warnings = " ".join(done.result.get("warnings") or [])
    assert "log_statement='all'" in warnings and "password_log_guard=best_effort" in warnings, warnings
    assert VERIFIER_RE.search(raw_log(window)), "without the privilege the server logs the verifier"
    assert_absent(raw_log(window), services[0]["password"], "the server log")
