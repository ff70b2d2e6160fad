"""converge(): one read, at most one write, retry on the guard, and errors that say what was applied."""

from __future__ import annotations

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.catalog import GUARD_SQLSTATE
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.converge import (
    MAX_ATTEMPTS,
    ConvergeError,
    converge,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import Options
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.plan import PlanError
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.scram import make_verifier
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    TransportError,
)

from .fakes import FakeTransport, database, results, role, specs

SERVICES = specs({"database": "userdb", "owner": "usersvc", "password": "pw"},
                 {"database": "paydb", "owner": "paysvc"})
FRESH = results()
DONE = results(roles=[role("usersvc"), role("paysvc")],
               databases=[database("userdb", "usersvc"), database("paydb", "paysvc")],
               verifiers={"usersvc": make_verifier("pw")}, fingerprint="fp-2")
EXPECTED = [
    "CREATE ROLE \"usersvc\" LOGIN PASSWORD '<redacted>'",
    'CREATE ROLE "paysvc" LOGIN',
    'CREATE DATABASE "userdb" OWNER "usersvc" TEMPLATE "template0" ENCODING \'UTF8\'',
    'REVOKE CONNECT ON DATABASE "userdb" FROM PUBLIC',
    'CREATE DATABASE "paydb" OWNER "paysvc" TEMPLATE "template0" ENCODING \'UTF8\'',
    'REVOKE CONNECT ON DATABASE "paydb" FROM PUBLIC',
]


def guard_error():
    return TransportError("microservices.postgres: the catalog changed since it was read", index=1,
                          sqlstate=GUARD_SQLSTATE)


def test_no_op_is_one_read_and_no_write():
    transport = FakeTransport(DONE)
    result = converge(SERVICES, transport, Options(), check_mode=False)
    assert (len(transport.read_calls), len(transport.write_calls)) == (1, 0)
    assert result["changed"] is False and result["statements"] == [] and result["diff"] == []
    assert [s["status"] for s in result["services"]] == ["unchanged", "unchanged"]
    assert result["server_version"] == 150018


def test_change_is_one_read_and_one_write_of_the_whole_batch():
    transport = FakeTransport(FRESH)
    result = converge(SERVICES, transport, Options(), check_mode=False)
    assert (len(transport.read_calls), len(transport.write_calls)) == (1, 1)
    [batch] = transport.write_calls
    assert [s.display for s in batch if s.reported] == EXPECTED == result["statements"]
    assert [s.reported for s in batch[:2]] == [False, False]
    assert result["changed"] is True
    assert [s["status"] for s in result["services"]] == ["created", "created"]
    assert [d["before_header"] for d in result["diff"]] == ["service userdb (before)", "service paydb (before)"]


def test_check_mode_reads_only_and_reports_what_a_real_run_executes():
    transport = FakeTransport(FRESH)
    result = converge(SERVICES, transport, Options(), check_mode=True)
    assert (len(transport.read_calls), len(transport.write_calls)) == (1, 0)
    assert result["statements"] == EXPECTED and result["changed"] is True


def test_guard_conflict_starts_over_from_a_fresh_read():
    """Another run created everything between our read and our lock: the retry finds nothing to do."""
    transport = FakeTransport(FRESH, DONE, write_errors=[guard_error()])
    result = converge(SERVICES, transport, Options(), check_mode=False)
    assert (len(transport.read_calls), len(transport.write_calls)) == (2, 1)
    assert result["changed"] is False and result["statements"] == []


def test_guard_conflict_then_partial_work_left_writes_again():
    half_done = results(roles=[role("usersvc"), role("paysvc")], databases=[database("userdb", "usersvc")],
                        verifiers={"usersvc": make_verifier("pw")})
    transport = FakeTransport(FRESH, half_done, write_errors=[guard_error()])
    result = converge(SERVICES, transport, Options(), check_mode=False)
    assert (len(transport.read_calls), len(transport.write_calls)) == (2, 2)
    assert result["statements"] == EXPECTED[4:]


def test_gives_up_after_max_attempts():
    transport = FakeTransport(FRESH, write_errors=[guard_error()] * MAX_ATTEMPTS)
    with pytest.raises(ConvergeError, match="kept changing") as info:
        converge(SERVICES, transport, Options(), check_mode=False)
    assert len(transport.write_calls) == MAX_ATTEMPTS and info.value.applied == []


def test_failed_statement_reports_service_and_applied_statements_without_secrets():
    failing = TransportError("role \"paysvc\" already exists near SCRAM-SHA-256$4096:abc$def:ghi", index=3,
                             sqlstate="42710")
    transport = FakeTransport(FRESH, write_errors=[failing])
    with pytest.raises(ConvergeError) as info:
        converge(SERVICES, transport, Options(), check_mode=False)
    error = info.value
    assert error.applied == [EXPECTED[0]]
    assert error.service == "paydb" and error.statement == 'CREATE ROLE "paysvc" LOGIN'
    assert error.message.startswith("service 'paydb': statement failed: CREATE ROLE \"paysvc\" LOGIN: ")
    assert "SCRAM-SHA-256$" not in error.message and "<redacted>" in error.message


def test_failure_while_locking_is_named_as_such():
    transport = FakeTransport(FRESH, write_errors=[TransportError("lock timeout", index=0, sqlstate="55P03")])
    with pytest.raises(ConvergeError, match="advisory lock") as info:
        converge(SERVICES, transport, Options(), check_mode=False)
    assert info.value.applied == [] and info.value.statement is None


def test_read_failure_changes_nothing():
    transport = FakeTransport(TransportError("connection refused"))
    with pytest.raises(ConvergeError, match="reading the catalog failed, nothing was changed: connection refused"):
        converge(SERVICES, transport, Options(), check_mode=False)
    assert transport.write_calls == []


def test_plan_error_means_no_write():
    transport = FakeTransport(results(roles=[role("usersvc", superuser=True)]))
    with pytest.raises(PlanError):
        converge(SERVICES, transport, Options(), check_mode=False)
    assert transport.write_calls == []
