"""Password statements kept out of the server log: the SETs the plan prepends, and when it refuses."""

from __future__ import annotations

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.catalog import parse_catalog
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import Options
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.plan import PlanError, build_plan
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.quiet_logging import (
    LoggingState,
    parse_logging,
    quiet_statements_sql,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.scram import make_verifier

from .fakes import database, results, role, specs

NEW = {"database": "userdb", "owner": "usersvc", "password": "pw-user"}
LOGGING_ALL = {"log_statement": "all", "log_min_duration_statement": "-1", "log_min_duration_sample": "-1",
               "log_transaction_sample_rate": "0", "log_min_error_statement": "error"}
QUIET_SETS = ["SET \"log_statement\" = 'none'", "SET \"log_min_duration_statement\" = '-1'",
              "SET \"log_min_duration_sample\" = '-1'", "SET \"log_transaction_sample_rate\" = '0'",
              "SET \"log_min_error_statement\" = 'panic'"]


def plan_for(services, logging, grants=None, superuser=True, version=150018, options=None, **catalog):
    options = options or Options()
    parsed = specs(*services, options=options)
    raw = results(login_superuser=superuser, version=version, **catalog)
    raw["server"]["logging"] = logging
    raw["logging_grants"] = grants or {}
    return build_plan(parsed, parse_catalog(parsed, raw), options)


def test_a_superuser_turns_logging_off_around_the_password_statements_only():
    two = [NEW, {"database": "paydb", "owner": "paysvc", "password": "pw-pay"}]
    sql = [statement.sql for statement in plan_for(two, LOGGING_ALL).statements]
    assert "pg_advisory_lock" in sql[0] and sql[1].startswith("DO $guard$")
    assert sql[2:7] == QUIET_SETS
    assert sql[7].startswith('CREATE ROLE "usersvc" LOGIN PASSWORD') and sql[8].startswith('CREATE ROLE "paysvc"')
    assert sql[9:14] == [s.replace("SET", "RESET").split(" =", maxsplit=1)[0] for s in QUIET_SETS]
    assert sql[14].startswith('CREATE DATABASE "userdb"')
    plan = plan_for(two, LOGGING_ALL)
    assert not any(s.startswith(("SET", "RESET")) for s in plan.reported)
    assert all(not s.reported for s in plan.statements if s.sql.startswith(("SET", "RESET")))
    assert plan.warnings == ()


def test_each_run_of_password_statements_is_wrapped():
    grants = {name: True for name in LOGGING_ALL}
    two = [NEW, {"database": "paydb", "owner": "paysvc", "password": "pw-pay"}]
    sql = [s.sql for s in plan_for(two, LOGGING_ALL, grants=grants, superuser=False).statements]
    creates = [i for i, text in enumerate(sql) if text.startswith("CREATE ROLE")]
    for index in creates:
        assert sql[index - 5:index] == QUIET_SETS and sql[index + 1].startswith("RESET")
    assert sql.count(QUIET_SETS[0]) == 2, "a GRANT of membership between the two roles ends the first run"


def test_no_password_means_no_set():
    plan = plan_for([{"database": "userdb", "owner": "usersvc"}], LOGGING_ALL)
    assert plan.statements and not any(s.sql.startswith("SET ") for s in plan.statements)


def test_loaded_pgaudit_and_pg_stat_statements_are_silenced_too():
    logging = {**LOGGING_ALL, "pgaudit.log": "role,ddl", "pg_stat_statements.track_utility": "on"}
    sql = [statement.sql for statement in plan_for([NEW], logging).statements]
    assert "SET \"pgaudit\".\"log\" = 'none'" in sql and "SET \"pg_stat_statements\".\"track_utility\" = 'off'" in sql


def test_a_login_without_the_privilege_is_refused_naming_the_grant():
    with pytest.raises(PlanError) as refused:
        plan_for([NEW], LOGGING_ALL, superuser=False, roles=[], databases=[])
    message = str(refused.value)
    assert "log_statement='all'" in message and "log_min_error_statement='error'" in message
    assert "GRANT SET ON PARAMETER log_statement, log_min_error_statement TO \"postgres\"" in message
    assert "password_log_guard=best_effort" in message


def test_a_granted_login_sets_what_it_may_and_needs_nothing_else():
    grants = {name: True for name in LOGGING_ALL}
    plan = plan_for([NEW], LOGGING_ALL, grants=grants, superuser=False)
    assert [s.sql for s in plan.statements][2:7] == QUIET_SETS


def test_settings_already_quiet_need_no_privilege():
    quiet = {**LOGGING_ALL, "log_statement": "none", "log_min_error_statement": "panic"}
    plan = plan_for([NEW], quiet, superuser=False)
    assert not any(s.sql.startswith("SET ") for s in plan.statements)


def test_best_effort_goes_on_with_a_warning_and_the_sets_it_may_run():
    options = Options(password_log_guard="best_effort")
    plan = plan_for([NEW], LOGGING_ALL, grants={"log_min_error_statement": True}, superuser=False, options=options)
    sql = [s.sql for s in plan.statements]
    assert sql[2:5] == ["SET \"log_min_error_statement\" = 'panic'", sql[3], "RESET \"log_min_error_statement\""]
    assert sql[3].startswith("CREATE ROLE")
    assert len(plan.warnings) == 1 and "log_statement='all'" in plan.warnings[0]
    assert "password_log_guard=best_effort" in plan.warnings[0]


def test_before_postgresql_15_only_a_superuser_helps():
    with pytest.raises(PlanError) as refused:
        plan_for([NEW], LOGGING_ALL, superuser=False, version=140010)
    assert "log in as a superuser (PostgreSQL before 15 has no GRANT SET ON PARAMETER)" in str(refused.value)


def test_an_unchanged_password_sends_nothing_and_checks_nothing():
    plan = plan_for([NEW], LOGGING_ALL, superuser=False, roles=[role("usersvc")],
                    databases=[database("userdb", "usersvc")], verifiers={"usersvc": make_verifier("pw-user")})
    assert plan.statements == ()


def test_unknown_logging_state_changes_nothing():
    assert quiet_statements_sql(LoggingState()) == [] and LoggingState().leaking_names() == []
    state = parse_logging({"log_statement": "ddl"}, None, superuser=False, login="deployer")
    assert state.leaking_names() == ["log_statement"] and state.settable == {"log_statement": False}
