"""Catalog queries: what is read, in which order, and how the JSON becomes CatalogState."""

from __future__ import annotations

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.catalog import (
    GUARD_SQLSTATE,
    build_queries,
    guard_sql,
    parse_catalog,
    state_expression,
    text_array,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import Options

from .fakes import database, results, role, specs

SERVICES = specs(
    {"database": "userdb", "owner": "usersvc", "password": "pw", "extensions": ["uuid-ossp", "pg_trgm"]},
    {"database": "paydb", "owner": "paysvc"},
    {"database": "olddb", "owner": "oldsvc", "state": "absent", "extensions": ["citext"]},
)


def test_text_array_quotes_every_element_and_allows_empty():
    assert text_array([]) == "ARRAY[]::text[]"
    assert text_array(["a", "it's"]) == "ARRAY['a', 'it''s']::text[]"


def test_fixed_queries_then_one_pair_per_database_with_extensions():
    queries = build_queries(SERVICES, Options())
    assert [q.name for q in queries] == [
        "server", "parameter_privileges", "logging_grants", "state", "can_read_authid", "verifiers", "connections",
        "dependencies", "available_extensions", "db_ready:userdb", "extensions:userdb",
    ]
    by_name = {q.name: q for q in queries}
    assert by_name["logging_grants"].when == "parameter_privileges"
    assert by_name["verifiers"].when == "can_read_authid"
    assert by_name["extensions:userdb"].database == "userdb"
    assert by_name["extensions:userdb"].when == "db_ready:userdb"
    assert all(q.database is None for q in queries if q.name != "extensions:userdb")


def test_queries_filter_on_the_named_objects_only():
    by_name = {q.name: q.sql for q in build_queries(SERVICES, Options())}
    assert "ARRAY['usersvc', 'paysvc', 'oldsvc']::text[]" in by_name["state"]
    assert "ARRAY['userdb', 'paydb', 'olddb']::text[]" in by_name["state"]
    assert "ARRAY['usersvc']::text[]" in by_name["verifiers"]          # only roles whose password is checked
    assert "ARRAY['olddb']::text[]" in by_name["connections"]           # only databases being dropped
    assert "ARRAY['oldsvc']::text[], ARRAY['olddb']::text[]" in by_name["dependencies"]
    assert "ARRAY['pg_trgm', 'uuid-ossp']::text[]" in by_name["available_extensions"]
    assert all(sql.startswith("SELECT (") and sql.endswith(")::text") for sql in by_name.values())


def test_on_create_reads_no_verifier():
    by_name = {q.name: q.sql for q in build_queries(SERVICES, Options(password_update="on_create"))}
    assert "ARRAY[]::text[]" in by_name["verifiers"]


def test_guard_recomputes_exactly_the_fingerprinted_expression():
    expression = state_expression(["usersvc", "paysvc", "oldsvc"], ["userdb", "paydb", "olddb"])
    state_sql = {q.name: q.sql for q in build_queries(SERVICES, Options())}["state"]
    guard = guard_sql(SERVICES, "0123abc")
    assert "pg_catalog.md5(x.j::text)" in state_sql and f"SELECT {expression} AS j" in state_sql
    assert f"pg_catalog.md5(({expression})::text) IS DISTINCT FROM '0123abc'" in guard
    assert f"ERRCODE = '{GUARD_SQLSTATE}'" in guard
    assert guard.startswith("DO $guard$") and guard.endswith("$guard$")


def test_parse_catalog():
    raw = results(
        roles=[role("usersvc"), role("oldsvc", login=False)],
        databases=[database("userdb", "usersvc", connection_limit=5, public_connect=True, owner_connect=False)],
        verifiers={"usersvc": "SCRAM-SHA-256$..."}, connections={"olddb": 2}, dependencies={"oldsvc": ["paydb"]},
        available=["uuid-ossp"], installed={"userdb": ["uuid-ossp"]}, version=180001, fingerprint="f",
    )
    raw.pop("db_ready:userdb")
    catalog = parse_catalog(SERVICES, raw)
    assert catalog.server_version == 180001 and catalog.fingerprint == "f" and catalog.can_read_authid
    assert catalog.roles["oldsvc"].login is False and catalog.roles["usersvc"].superuser is False
    db = catalog.databases["userdb"]
    assert (db.owner, db.connection_limit, db.public_connect, db.owner_connect) == ("usersvc", 5, True, False)
    assert catalog.verifiers == {"usersvc": "SCRAM-SHA-256$..."}
    assert catalog.connections == {"olddb": 2}
    assert catalog.foreign_dependencies == {"oldsvc": ["paydb"]}
    assert catalog.available_extensions == frozenset({"uuid-ossp"})
    assert catalog.installed_extensions == {"userdb": frozenset({"uuid-ossp"})}


def test_skipped_queries_mean_unknown():
    raw = results()
    del raw["verifiers"]
    raw["can_read_authid"] = False
    catalog = parse_catalog(SERVICES, raw)
    assert catalog.can_read_authid is False and catalog.verifiers is None
    assert catalog.installed_extensions == {}
