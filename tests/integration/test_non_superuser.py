"""Running the module as a non-superuser with CREATEDB CREATEROLE (no read access to pg_authid)."""

from __future__ import annotations

import pytest

from tests.integration.helpers import (
    LogWindow,
    assert_absent,
    catalog_snapshot,
    database_facts,
    ident,
    lit,
    public_can_connect,
    random_ascii_password,
    role_facts,
    try_login,
)

from tests.integration.logging_grants import grant_quiet_logging

pytestmark = pytest.mark.integration


def _admin_login(pg, runner, names, request) -> dict:
    """A CREATEDB CREATEROLE login that may turn statement logging off for its session (the test
    servers log every statement, and the module will not set a password the server would log)."""
    admin = names.role("admin")
    admin_password = random_ascii_password()
    pg.psql(f"CREATE ROLE {ident(admin)} LOGIN CREATEDB CREATEROLE PASSWORD {lit(admin_password)}")
    grant_quiet_logging(pg, request, admin)
    return {**runner.login_args(), "login_user": admin, "login_password": admin_password}


def test_non_superuser_password_update_always_is_refused_clearly(pg, runner, names, request):
    """Services that exist with passwords; logged in as a CREATEDB CREATEROLE role, the default
    password_update=always cannot check the stored verifiers: the task fails with the documented
    error telling to use on_create, runs no DDL and changes nothing; with on_create the same
    input is a no-op."""
    services = names.services(2)
    assert runner.run(services).ok
    login = _admin_login(pg, runner, names, request)
    snapshot = catalog_snapshot(pg)
    with LogWindow(pg) as window:
        refused = runner.run(services, login=login, password_update="always")
    assert refused.failed, refused.describe()
    assert "on_create" in refused.msg, refused.msg
    assert window.ddl == [] and window.writes == [], window.text()
    assert catalog_snapshot(pg) == snapshot
    for secret in [login["login_password"]] + [s["password"] for s in services]:
        assert_absent(refused.all_output, secret, "ansible output")

    with LogWindow(pg) as window:
        quiet = runner.run(services, login=login, password_update="on_create")
    assert quiet.ok and quiet.changed is False and quiet.statements == [], quiet.describe()
    assert window.writes == []


def test_non_superuser_on_create_creates_services(pg, runner, names, request):
    """Logged in as a CREATEDB CREATEROLE role, password_update=on_create creates fresh services
    correctly (database owned by its role, CONNECT revoked from PUBLIC, owner logs in, the owner
    is no superuser) and a re-run is a no-op."""
    login = _admin_login(pg, runner, names, request)
    services = names.services(2)
    created = runner.run(services, login=login, password_update="on_create")
    assert created.ok, created.describe()
    assert created.status == {s["database"]: "created" for s in services}
    facts = database_facts(pg, [s["database"] for s in services])
    roles = role_facts(pg, [s["owner"] for s in services])
    for s in services:
        assert facts[s["database"]]["owner"] == s["owner"]
        assert not public_can_connect(facts[s["database"]])
        assert roles[s["owner"]]["password"].startswith("SCRAM-SHA-256$4096:")
        assert roles[s["owner"]]["super"] is False
        assert try_login(pg.info, s["owner"], s["password"], s["database"])[0]

    again = runner.run(services, login=login, password_update="on_create")
    assert again.ok and again.changed is False and again.statements == [], again.describe()


def test_failure_mid_batch_reports_what_was_applied(pg, runner, names, request):
    """A login without CREATEDB makes the write batch fail at the first CREATE DATABASE. The task
    fails naming the service, the failed statement and the server's reason, and lists the
    statements already applied; that list is exactly what the server log shows executed before
    the failure (nothing ran after it; the password statements are kept out of the log), it
    carries no secret, and a later run as superuser
    completes the convergence."""
    admin = names.role("nocreatedb")
    admin_password = random_ascii_password()
    pg.psql(f"CREATE ROLE {ident(admin)} LOGIN CREATEROLE PASSWORD {lit(admin_password)}")
    grant_quiet_logging(pg, request, admin)
    login = {**runner.login_args(), "login_user": admin, "login_password": admin_password}
    services = names.services(2)
    with LogWindow(pg) as window:
        r = runner.run(services, login=login, password_update="on_create")
    assert r.failed, r.describe()
    first_db = services[0]["database"]
    assert first_db in r.msg and "permission denied" in r.msg.lower(), r.msg
    applied = r.result.get("applied_statements")
    assert isinstance(applied, list) and applied, r.describe()
    executed = window.ddl_redacted()
    failed = r.result.get("failed_statement", "")
    assert failed.upper().startswith("CREATE DATABASE") and first_db in failed, r.describe()
    # Statements carrying a verifier run with logging turned off for them (password_log_guard):
    # everything else the module applied is in the log, in order, and nothing after the failure.
    logged = [statement for statement in applied if "PASSWORD" not in statement]
    assert len(logged) < len(applied)
    assert executed == logged + [failed], (executed, applied, failed)
    for statement in applied:
        assert statement in r.msg, f"applied statement missing from the message: {statement}"
    assert database_facts(pg, [s["database"] for s in services]) == {}
    assert set(role_facts(pg, [s["owner"] for s in services])) == {s["owner"] for s in services}
    for secret in [admin_password] + [s["password"] for s in services]:
        assert_absent(r.all_output, secret, "ansible output")
    assert "SCRAM-SHA-256$" not in r.all_output

    done = runner.run(services, password_update="on_create")
    assert done.ok, done.describe()
    facts = database_facts(pg, [s["database"] for s in services])
    for s in services:
        assert facts[s["database"]]["owner"] == s["owner"]
        assert try_login(pg.info, s["owner"], s["password"], s["database"])[0]
