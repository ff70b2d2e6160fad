"""Planning: statements, their order, per-service results, diffs and plan-time errors."""

from __future__ import annotations

import re

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.catalog import (
    parse_catalog,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import Options
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.plan import (
    PlanError,
    build_plan,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.scram import (
    make_verifier,
    verifier_matches,
)

from .fakes import database, results, role, specs

USER = {"database": "userdb", "owner": "usersvc", "password": "pw-user", "extensions": ["uuid-ossp"]}
PAY = {"database": "paydb", "owner": "paysvc", "password": "pw-pay", "connection_limit": 20}
STORED = {"usersvc": make_verifier("pw-user"), "paysvc": make_verifier("pw-pay")}


def plan_for(services, options=None, **catalog):
    options = options or Options()
    parsed = specs(*services, options=options)
    raw = results(**catalog)
    return build_plan(parsed, parse_catalog(parsed, raw), options)


def converged(**overrides):
    """Catalog of a server where USER and PAY are exactly as declared."""
    catalog = dict(
        roles=[role("usersvc"), role("paysvc")],
        databases=[database("userdb", "usersvc"), database("paydb", "paysvc", connection_limit=20)],
        verifiers=dict(STORED), available=["uuid-ossp"], installed={"userdb": ["uuid-ossp"]},
    )
    catalog.update(overrides)
    return catalog


def plan_errors(services, options=None, **catalog):
    with pytest.raises(PlanError) as info:
        plan_for(services, options, **catalog)
    return info.value.errors


def test_fresh_server_full_ordered_batch():
    plan = plan_for([USER, PAY], available=["uuid-ossp"])
    assert plan.reported == [
        "CREATE ROLE \"usersvc\" LOGIN PASSWORD '<redacted>'",
        "CREATE ROLE \"paysvc\" LOGIN PASSWORD '<redacted>'",
        "CREATE DATABASE \"userdb\" OWNER \"usersvc\" TEMPLATE \"template0\" ENCODING 'UTF8'",
        "REVOKE CONNECT ON DATABASE \"userdb\" FROM PUBLIC",
        "CREATE DATABASE \"paydb\" OWNER \"paysvc\" TEMPLATE \"template0\" ENCODING 'UTF8' CONNECTION LIMIT 20",
        "REVOKE CONNECT ON DATABASE \"paydb\" FROM PUBLIC",
        "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\"",
    ]
    lock, guard = plan.statements[:2]
    assert not lock.reported and lock.sql.startswith("SELECT pg_catalog.pg_advisory_lock(") and lock.database is None
    assert not guard.reported and guard.sql.startswith("DO $guard$") and "'fp-1'" in guard.sql
    ext_lock, ext = plan.statements[-2:]
    assert (ext_lock.sql, ext_lock.database, ext_lock.reported) == (lock.sql, "userdb", False)
    assert (ext.database, ext.service) == ("userdb", "userdb")
    assert [s.status for s in plan.services] == ["created", "created"]
    assert plan.changed


def test_created_role_gets_a_verifier_of_the_password_never_the_password():
    plan = plan_for([USER], available=["uuid-ossp"])
    create = plan.statements[2]
    verifier = re.search(r"PASSWORD '([^']+)'", create.sql).group(1)
    assert verifier_matches(verifier, "pw-user")
    assert all("pw-user" not in s.sql and "pw-user" not in s.display for s in plan.statements)
    assert all("SCRAM" not in s.display for s in plan.statements)


def test_locale_goes_into_create_database():
    plan = plan_for([{"database": "a", "owner": "b", "locale": "C.UTF-8"}])
    assert "ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'" in plan.reported[1]


def test_no_op_has_no_statements_at_all():
    plan = plan_for([USER, PAY], **converged())
    assert plan.statements == () and not plan.changed and plan.diffs == ()
    assert [(s.status, s.changes) for s in plan.services] == [("unchanged", []), ("unchanged", [])]


@pytest.mark.parametrize("catalog_change,statement,change", [
    (dict(databases=[database("userdb", "paysvc"), database("paydb", "paysvc", connection_limit=20)]),
     'ALTER DATABASE "userdb" OWNER TO "usersvc"', "owner changed from paysvc to usersvc"),
    (dict(databases=[database("userdb", "usersvc"), database("paydb", "paysvc", connection_limit=5)]),
     'ALTER DATABASE "paydb" CONNECTION LIMIT 20', "connection limit changed from 5 to 20"),
    (dict(databases=[database("userdb", "usersvc", public_connect=True), database("paydb", "paysvc", connection_limit=20)]),
     'REVOKE CONNECT ON DATABASE "userdb" FROM PUBLIC', "CONNECT revoked from PUBLIC"),
    (dict(databases=[database("userdb", "usersvc", owner_connect=False), database("paydb", "paysvc", connection_limit=20)]),
     'GRANT CONNECT ON DATABASE "userdb" TO "usersvc"', "CONNECT granted to usersvc"),
    (dict(roles=[role("usersvc", login=False), role("paysvc")]), 'ALTER ROLE "usersvc" LOGIN', "role usersvc granted LOGIN"),
    (dict(verifiers={"usersvc": make_verifier("old"), "paysvc": STORED["paysvc"]}),
     "ALTER ROLE \"usersvc\" PASSWORD '<redacted>'", "role usersvc password changed"),
    (dict(verifiers={"usersvc": "md5abcdef", "paysvc": STORED["paysvc"]}),
     "ALTER ROLE \"usersvc\" PASSWORD '<redacted>'", "role usersvc password changed"),
    (dict(verifiers={"usersvc": None, "paysvc": STORED["paysvc"]}),
     "ALTER ROLE \"usersvc\" PASSWORD '<redacted>'", "role usersvc password changed"),
    (dict(installed={"userdb": []}), 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp"', "extension uuid-ossp created"),
])
def test_each_drift_is_repaired_with_one_statement(catalog_change, statement, change):
    plan = plan_for([USER, PAY], **converged(**catalog_change))
    assert plan.reported == [statement]
    changed = [s for s in plan.services if s.changes]
    assert len(changed) == 1 and changed[0].changes == [change] and changed[0].status == "updated"
    assert len(plan.diffs) == 1 and plan.diffs[0]["before"] != plan.diffs[0]["after"]


def test_new_password_is_a_fresh_verifier_and_diff_shows_only_markers():
    plan = plan_for([USER, PAY], **converged(verifiers={"usersvc": make_verifier("old"), "paysvc": STORED["paysvc"]}))
    verifier = re.search(r"PASSWORD '([^']+)'", plan.statements[2].sql).group(1)
    assert verifier_matches(verifier, "pw-user") and verifier != STORED["usersvc"]
    [diff] = plan.diffs
    assert (diff["before"]["password"], diff["after"]["password"]) == ("<set>", "<changed>")
    assert "pw-user" not in repr(diff)


def test_revoke_public_connect_false_leaves_public_alone():
    options = Options(revoke_public_connect=False)
    catalog = converged(databases=[database("userdb", "usersvc", public_connect=True, owner_connect=False),
                                   database("paydb", "paysvc", connection_limit=20)])
    assert plan_for([USER, PAY], options, **catalog).statements == ()
    assert "REVOKE" not in " ".join(plan_for([USER], options, available=["uuid-ossp"]).reported)


def test_on_create_does_not_touch_an_existing_password_nor_need_pg_authid():
    options = Options(password_update="on_create")
    plan = plan_for([USER, PAY], options, **converged(verifiers={"usersvc": "md5x"}, can_read_authid=False))
    assert plan.statements == ()
    assert plan.services[0].status == "unchanged"


def test_absent_drops_database_then_role_after_everything_else():
    old = {"database": "olddb", "owner": "oldsvc", "state": "absent"}
    plan = plan_for([old, USER], available=["uuid-ossp"],
                    roles=[role("oldsvc")], databases=[database("olddb", "oldsvc")])
    assert plan.reported[-2:] == ['DROP DATABASE "olddb"', 'DROP ROLE "oldsvc"']
    assert plan.reported[-3] == 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp"'
    assert plan.services[0].status == "removed"
    assert plan.services[0].changes == ["database olddb dropped", "role oldsvc dropped"]
    assert plan.diffs[0]["before"]["exists"] is True and plan.diffs[0]["after"]["exists"] is False


def test_absent_with_force_terminates_connections():
    old = {"database": "olddb", "owner": "oldsvc", "state": "absent", "force": True}
    plan = plan_for([old], roles=[role("oldsvc")], databases=[database("olddb", "oldsvc")], connections={"olddb": 3})
    assert plan.reported == ['DROP DATABASE "olddb" WITH (FORCE)', 'DROP ROLE "oldsvc"']


def test_absent_of_nothing_is_unchanged():
    plan = plan_for([{"database": "olddb", "owner": "oldsvc", "state": "absent"}])
    assert plan.statements == () and plan.services[0].status == "unchanged"


def test_absent_role_only():
    plan = plan_for([{"database": "olddb", "owner": "oldsvc", "state": "absent"}], roles=[role("oldsvc")])
    assert plan.reported == ['DROP ROLE "oldsvc"'] and plan.services[0].status == "removed"


def test_plan_errors_are_collected_and_name_database_and_values():
    services = [
        {"database": "userdb", "owner": "usersvc", "encoding": "LATIN1", "locale": "en_US.UTF-8", "extensions": ["postgis"]},
        {"database": "olddb", "owner": "oldsvc", "state": "absent"},
        {"database": "rootdb", "owner": "rootsvc"},
    ]
    errors = plan_errors(
        services,
        roles=[role("usersvc"), role("oldsvc"), role("rootsvc", superuser=True)],
        databases=[database("userdb", "usersvc", collate="C.UTF-8", ctype="C.UTF-8"), database("olddb", "oldsvc")],
        connections={"olddb": 2}, dependencies={"oldsvc": ["paydb", "(shared objects)"]}, available=["uuid-ossp"],
        installed={"userdb": []},
    )
    assert errors == [
        "services[0] (database 'userdb'): database 'userdb' exists with encoding UTF8 but LATIN1 is wanted; "
        "encoding cannot be changed after creation (dump and restore into a new database)",
        "services[0] (database 'userdb'): database 'userdb' exists with LC_COLLATE 'C.UTF-8' and LC_CTYPE 'C.UTF-8' "
        "but locale 'en_US.UTF-8' is wanted; locale cannot be changed after creation",
        "services[0] (database 'userdb'): extension(s) postgis not available on the server (pg_available_extensions); "
        "install the package that provides them",
        "services[1] (database 'olddb'): database 'olddb' has 2 live connection(s); "
        "stop the clients or set force: true to terminate them",
        "services[1] (database 'olddb'): role 'oldsvc' still owns objects or holds privileges in paydb, "
        "(shared objects); reassign or drop them there first (REASSIGN OWNED / DROP OWNED)",
        "services[2] (database 'rootdb'): owner role 'rootsvc' is a superuser; service owners must be ordinary roles, "
        "refusing to manage it",
    ]


def test_locale_spelling_variants_are_equal():
    plan = plan_for([{"database": "a", "owner": "b", "locale": "en_US.utf8"}],
                    roles=[role("b")], databases=[database("a", "b", collate="en_US.UTF-8", ctype="en_US.UTF-8")])
    assert plan.statements == ()


def test_always_without_pg_authid_says_what_to_do():
    [error] = plan_errors([USER], **converged(can_read_authid=False))
    assert "no SELECT on pg_authid" in error and "password_update=on_create" in error


def test_database_refusing_connections_cannot_get_extensions():
    [error] = plan_errors([USER], **converged(installed={}))
    assert "does not allow connections" in error


def test_absent_superuser_role_is_refused():
    [error] = plan_errors([{"database": "x", "owner": "rootsvc", "state": "absent"}],
                          roles=[role("rootsvc", superuser=True)])
    assert "superuser" in error and "refusing to drop" in error


def test_force_needs_postgresql_13():
    [error] = plan_errors([{"database": "x", "owner": "y", "state": "absent", "force": True}],
                          databases=[database("x", "y")], version=120010)
    assert "PostgreSQL 13" in error


@pytest.mark.parametrize("version, grant", [
    (150018, 'GRANT "paysvc" TO CURRENT_USER'),
    (180001, 'GRANT "paysvc" TO CURRENT_USER WITH INHERIT TRUE, SET TRUE'),
])
def test_non_superuser_login_gets_membership_in_a_new_owner_before_giving_it_a_database(version, grant):
    plan = plan_for([PAY], Options(password_update="on_create"), login_superuser=False, version=version)
    assert plan.reported[:3] == [
        "CREATE ROLE \"paysvc\" LOGIN PASSWORD '<redacted>'",
        grant,
        "CREATE DATABASE \"paydb\" OWNER \"paysvc\" TEMPLATE \"template0\" ENCODING 'UTF8' CONNECTION LIMIT 20",
    ]


def test_non_superuser_login_is_granted_membership_only_when_the_database_needs_work():
    catalog = converged(login_superuser=False, can_read_authid=False, roles=[role("paysvc", usable=False)])
    assert plan_for([PAY], Options(password_update="on_create"), **catalog).statements == ()
    catalog["databases"] = [database("paydb", "someoneelse", connection_limit=20)]
    plan = plan_for([PAY], Options(password_update="on_create"), **catalog)
    assert plan.reported == ['GRANT "paysvc" TO CURRENT_USER', 'ALTER DATABASE "paydb" OWNER TO "paysvc"']


def test_superuser_login_never_grants_itself_membership():
    catalog = converged(roles=[role("usersvc", usable=False), role("paysvc", usable=False)])
    assert plan_for([USER, PAY], **catalog).statements == ()


def test_connect_roles_are_granted_on_a_new_database_after_public_is_revoked():
    service = dict(PAY, connect_roles=["pooler", "paysvc"])
    plan = plan_for([service], roles=[role("pooler")])
    assert plan.reported[-2:] == ['REVOKE CONNECT ON DATABASE "paydb" FROM PUBLIC', 'GRANT CONNECT ON DATABASE "paydb" TO "pooler"']
    assert plan.diffs[0]["after"]["connect_roles"] == ["pooler"], "the owner is not repeated as an extra grantee"


def test_connect_roles_missing_grant_is_repaired_and_a_held_one_is_left_alone():
    service = dict(PAY, connect_roles=["pooler", "auditor"])
    catalog = converged(roles=[role("usersvc"), role("paysvc"), role("pooler"), role("auditor")])
    catalog["databases"] = [dict(database("paydb", "paysvc", connection_limit=20), connect_grantees=["paysvc", "auditor"])]
    plan = plan_for([service], **catalog)
    assert plan.reported == ['GRANT CONNECT ON DATABASE "paydb" TO "pooler"']
    catalog["databases"][0]["connect_grantees"] = ["paysvc", "auditor", "pooler", "someoneelse"]
    assert plan_for([service], **catalog).statements == ()


def test_connect_role_that_does_not_exist_is_a_plan_error():
    errors = plan_errors([dict(PAY, connect_roles=["pooler"])])
    assert errors == ["services[0] (database 'paydb'): connect_roles: role 'pooler' does not exist; "
                      "create it first or remove it from connect_roles"]
