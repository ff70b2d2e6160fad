"""Refusals: bad input, immutable mismatches, unreachable servers, wrong credentials.

Each refusal must fail the task with a message naming the offending input and the rule, and leave
the server exactly as it was (whole-catalog snapshot before == after); the statement log shows
that the module ran no DDL (and, for input validation, did not even connect).
"""

from __future__ import annotations

import re

import pytest

from tests.integration.helpers import (
    LogWindow,
    assert_absent,
    catalog_snapshot,
    database_facts,
    ident,
    random_ascii_password,
)
from tests.support.pgserver import free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["encoding", "locale"])
def test_encoding_or_locale_mismatch_fails_and_changes_nothing(pg, runner, names, kind):
    """An existing database whose encoding (SQL_ASCII vs UTF8) or requested locale (C vs C.UTF-8)
    differs: the task fails naming the database and the mismatch; nothing is created, not even
    the other services of the same call, and the database is left as it was."""
    target = names.db("legacy")
    if kind == "encoding":
        pg.psql(f"CREATE DATABASE {ident(target)} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        wanted = {"database": target, "owner": names.role("legacy")}
        expected = ["sql_ascii", "utf8"]
    else:
        pg.psql(f"CREATE DATABASE {ident(target)} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        wanted = {"database": target, "owner": names.role("legacy"), "locale": "C.UTF-8"}
        expected = ["c.utf-8"]
    before_db = names.service("before")
    after_db = names.service("after")
    snapshot = catalog_snapshot(pg)
    with LogWindow(pg) as window:
        r = runner.run([before_db, wanted, after_db])
    assert r.failed, r.describe()
    msg = r.msg.lower()
    assert target in r.msg, r.msg
    assert kind in msg or (kind == "locale" and ("collat" in msg or "ctype" in msg)), r.msg
    for word in expected:
        assert word in msg, r.msg
    assert window.ddl == [] and window.writes == [], window.text()
    assert catalog_snapshot(pg) == snapshot
    assert database_facts(pg, [before_db["database"], after_db["database"]]) == {}


RESERVED = ("reserved", "not allowed", "cannot be used", "system")


def _bad_cases(names):
    """case -> (services, module options, expected parts of the message).

    Each expected part is a string or a tuple of alternatives (any one must appear, case-insensitive):
    one part names the offending value, the other the rule that it breaks."""
    ok = names.service("ok")
    p = names.prefix
    long_name = p + "x" * (64 - len(p))  # 64 bytes
    other = names.role("a")
    return {
        "invalid-character": ([ok, {"database": f"{p}user-db", "owner": other}], {}, [f"{p}user-db"]),
        "over-63-bytes": ([ok, {"database": long_name, "owner": other}], {}, [long_name[:20], "63"]),
        "double-quote": ([ok, {"database": f'{p}us"er', "owner": other}], {}, ['us"er']),
        "single-quote": ([ok, {"database": names.db("a"), "owner": f"{p}o'wner"}], {}, ["o'wner"]),
        "semicolon": ([ok, {"database": f"{p}db; DROP DATABASE postgres", "owner": other}], {}, ["drop database"]),
        "uppercase": ([ok, {"database": f"{p}UserDb", "owner": other}], {}, [f"{p}userdb", ("case", "lower")]),
        "space": ([ok, {"database": names.db("a"), "owner": f"{p}a b"}], {}, [f"{p}a b"]),
        "reserved-template1": ([ok, {"database": "template1", "owner": other}], {}, ["template1", RESERVED]),
        "reserved-postgres-db": ([ok, {"database": "postgres", "owner": other}], {}, ["postgres", RESERVED]),
        "reserved-pg-prefix": ([ok, {"database": names.db("a"), "owner": "pg_foo"}], {}, ["pg_foo", RESERVED]),
        "reserved-postgres-owner": (
            [ok, {"database": names.db("a"), "owner": "postgres"}], {}, ["postgres", RESERVED]),
        "reserved-public-owner": ([ok, {"database": names.db("a"), "owner": "public"}], {}, ["public", RESERVED]),
        "duplicate-database": (
            [ok, {"database": ok["database"], "owner": names.role("other")}], {},
            [ok["database"], ("duplicate", "twice", "more than once", "unique", "already declared")]),
        "one-owner-two-databases": (
            [ok, {"database": names.db("second"), "owner": ok["owner"]}], {},
            [ok["owner"], ("already", "more than one", "two databases", "each", "twice", "duplicate", "unique")]),
        "connection-limit-below-minus-one": (
            [ok, {"database": names.db("a"), "owner": other, "connection_limit": -2}], {},
            ["connection_limit", "-2"]),
        "bad-extension-name": (
            [ok, {"database": names.db("a"), "owner": other, "extensions": ["pg_trgm; DROP"]}], {},
            ["pg_trgm; drop"]),
    }


def test_bad_input_is_refused_before_connecting(pg, runner, names):
    """Each invalid input (bad characters, over 63 bytes, quotes, semicolon, uppercase, spaces,
    reserved names, duplicate database, one owner for two databases, connection_limit below -1,
    bad extension name) is rejected by validation before any connection: the task fails with a
    message naming the offending value and the rule, the server log shows no session and no
    statement from that call, and nothing changed (not even the valid service listed first).

    All cases run as separate module tasks of ONE playbook (psql markers between them attribute
    the server log to each case); every failing case is reported, not just the first."""
    cases = _bad_cases(names)
    snapshot = catalog_snapshot(pg)
    outcome = runner.run_batch(pg, [(name, services, options) for name, (services, options, _expected) in cases.items()])
    problems = []
    for name, (services, _options, expected) in cases.items():
        case = outcome[name]
        r = case.result
        if not r.result.get("failed"):
            problems.append(f"{name}: not failed: {r.describe()}")
            continue
        msg = r.msg.lower()
        for part in expected:
            alternatives = part if isinstance(part, tuple) else (part,)
            if not any(a.lower() in msg for a in alternatives):
                problems.append(f"{name}: none of {alternatives!r} in message: {r.msg}")
        if case.connections or case.statements:
            problems.append(f"{name}: module touched the server: {case.entries}")
    assert not problems, "\n".join(problems)
    assert catalog_snapshot(pg) == snapshot
    all_output = next(iter(outcome.values())).result.all_output
    for services, _options, _expected in cases.values():
        for service in services:
            if service.get("password"):
                assert_absent(all_output, service["password"], "ansible output")


def test_unknown_extension_is_a_plan_time_error(pg, runner, names):
    """An extension the server does not have fails the task after the catalog read but before any
    write: the message names the extension and the database, no DDL runs, nothing changed."""
    ok = names.service("ok")
    bad = names.service("ext", extensions=["no_such_extension_xyz"])
    snapshot = catalog_snapshot(pg)
    with LogWindow(pg) as window:
        r = runner.run([ok, bad])
    assert r.failed, r.describe()
    assert "no_such_extension_xyz" in r.msg and bad["database"] in r.msg, r.msg
    assert window.writes == [], window.text()
    assert catalog_snapshot(pg) == snapshot


def test_superuser_owner_is_refused(pg, runner, names):
    """A service owner that exists as a superuser is refused at plan time (service owners must be
    ordinary roles): message names the role, no DDL, nothing changed."""
    ok = names.service("ok")
    boss = names.service("boss")
    pg.psql(f"CREATE ROLE {ident(boss['owner'])} SUPERUSER LOGIN")
    snapshot = catalog_snapshot(pg)
    with LogWindow(pg) as window:
        r = runner.run([ok, boss])
    assert r.failed, r.describe()
    assert boss["owner"] in r.msg and "superuser" in r.msg.lower(), r.msg
    assert window.writes == []
    assert catalog_snapshot(pg) == snapshot


def test_unreachable_server_fails_cleanly(pg, runner, names):
    """A closed port: the task fails with a connection error naming the port it tried, without
    hanging, and nothing is created on the real server."""
    closed = free_port()
    login = {**runner.login_args(), "login_port": closed, "connect_timeout": 5}
    snapshot = catalog_snapshot(pg)
    r = runner.run(names.services(1), login=login)
    assert r.failed, r.describe()
    msg = r.msg.lower()
    assert str(closed) in r.msg and "connect" in msg, r.msg
    assert_absent(r.all_output, pg.info.password, "ansible output")
    assert catalog_snapshot(pg) == snapshot


def test_wrong_credentials_fail_without_echoing_the_password(pg, runner, names):
    """A wrong login_password: the task fails with an authentication error; the message (and the
    whole -vvvv output) never contains the password that was tried; no statement ran."""
    wrong = random_ascii_password()
    login = {**runner.login_args(), "login_password": wrong}
    snapshot = catalog_snapshot(pg)
    with LogWindow(pg) as window:
        r = runner.run(names.services(1), login=login, verbosity=4)
    assert r.failed, r.describe()
    assert re.search(r"authentication|password", r.msg, re.I), r.msg
    assert_absent(r.msg, wrong, "failure message")
    assert_absent(r.all_output, wrong, "ansible -vvvv output")
    assert window.statements == [], window.text()
    assert catalog_snapshot(pg) == snapshot
