"""Two runs started at the same moment against the same server both end well."""

from __future__ import annotations

import pytest

from tests.integration.helpers import (
    LogWindow,
    count_matching,
    database_facts,
    logged_statements,
    public_can_connect,
    role_facts,
    try_login,
)

pytestmark = pytest.mark.integration


def test_two_simultaneous_runs_both_succeed(pg, runner, names):
    """Two ansible-playbook processes started together with the same five services on a fresh
    slate: both exit 0; every database/role is created exactly once (the server log shows each
    CREATE once), the creations reported by the two runs are disjoint and together cover all five,
    no statement is reported by both, and the final state is complete and correct."""
    services = names.services(5)
    dbs = [s["database"] for s in services]
    with LogWindow(pg) as window:
        first = runner.start(services)
        second = runner.start(services)
        a, b = first.wait(), second.wait()
    assert a.rc == 0 and a.ok, a.describe()
    assert b.rc == 0 and b.ok, b.describe()

    created_a = {db for db, st in a.status.items() if st == "created"}
    created_b = {db for db, st in b.status.items() if st == "created"}
    assert not created_a & created_b, (a.status, b.status)
    assert created_a | created_b == set(dbs), (a.status, b.status)
    for result in (a, b):
        assert set(result.status) == set(dbs)
        assert set(result.status.values()) <= {"created", "unchanged"}, result.status
    assert not set(a.statements) & set(b.statements), "a statement was reported by both runs"

    executed = window.ddl_redacted()
    for s in services:
        assert count_matching(executed, r"^CREATE DATABASE {0}", s["database"]) == 1, executed
        assert count_matching(a.statements + b.statements, r"^CREATE ROLE {0}", s["owner"]) == 1
    assert sorted(executed) == sorted(logged_statements(a.statements + b.statements))

    facts = database_facts(pg, dbs)
    roles = role_facts(pg, [s["owner"] for s in services])
    for s in services:
        assert facts[s["database"]]["owner"] == s["owner"]
        assert not public_can_connect(facts[s["database"]])
        assert roles[s["owner"]]["password"].startswith("SCRAM-SHA-256$4096:")
        assert try_login(pg.info, s["owner"], s["password"], s["database"])[0]

    again = runner.run(services)
    assert again.ok and again.changed is False, again.describe()
