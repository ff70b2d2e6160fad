# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The actual state, read in one transport call and parsed into CatalogState.

Every query filters on the named roles and databases only, so the cost of a run does not
grow with the size of the cluster. Each query returns one row with one JSON text column,
which any transport (psycopg, or psql in a pod) can carry. The ``state`` query is also the
fingerprint the write batch's guard recomputes to detect a concurrent change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import (
    ABSENT,
    Options,
    ServiceSpec,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.identifiers import (
    quote_literal,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.quiet_logging import (
    LoggingState,
    grants_select,
    parse_logging,
    privileges_supported_select,
    settings_select,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    Query,
    Transport,
)

GUARD_SQLSTATE = "MSP01"
ADVISORY_LOCK_KEY = 7886770996436559730
"""Constant session advisory lock key ("mspostgr" as a big-endian int64) shared by every run."""

SHARED_OBJECTS = "(shared objects)"


@dataclass(frozen=True)
class RoleState:
    """A named role as it exists now."""

    name: str
    login: bool
    superuser: bool
    usable: bool = True
    """Whether the login user may act as this role (SET ROLE and its privileges), which it
    needs to give the role a database and to grant or revoke on the role's behalf."""


@dataclass(frozen=True)
class DatabaseState:
    """A named database as it exists now; CONNECT flags are computed from its effective ACL."""

    name: str
    owner: str
    encoding: str
    collate: str
    ctype: str
    connection_limit: int
    allow_connections: bool
    public_connect: bool
    owner_connect: bool
    connect_grantees: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CatalogState:
    """Everything the planner needs, for the named objects only."""

    server_version: int
    fingerprint: str
    can_read_authid: bool
    login_is_superuser: bool = True
    roles: Mapping[str, RoleState] = field(default_factory=dict)
    databases: Mapping[str, DatabaseState] = field(default_factory=dict)
    verifiers: Mapping[str, str | None] | None = None
    connections: Mapping[str, int] = field(default_factory=dict)
    foreign_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    available_extensions: frozenset[str] = frozenset()
    installed_extensions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    logging: LoggingState = field(default_factory=LoggingState)


def text_array(values: Sequence[str]) -> str:
    """A text[] literal made only of quoted literals (empty arrays stay valid SQL)."""
    return "ARRAY[" + ", ".join(quote_literal(value) for value in values) + "]::text[]"


def state_expression(roles: Sequence[str], databases: Sequence[str]) -> str:
    """The jsonb expression describing the named roles and databases.

    It is both read and recomputed by the write guard, and its md5 is the fingerprint; the
    ACL text is included so that a concurrent GRANT/REVOKE also changes the fingerprint.
    """
    return (
        "pg_catalog.jsonb_build_object("
        "'roles', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
        "'name', r.rolname, 'login', r.rolcanlogin, 'superuser', r.rolsuper, "
        "'usable', pg_catalog.pg_has_role(current_user, r.oid, 'USAGE') AND "
        "pg_catalog.pg_has_role(current_user, r.oid, CASE WHEN pg_catalog.current_setting('server_version_num')::int "
        ">= 160000 THEN 'SET' ELSE 'MEMBER' END)) ORDER BY r.rolname), '[]'::jsonb) "
        f"FROM pg_catalog.pg_roles r WHERE r.rolname = ANY ({text_array(roles)})), "
        "'databases', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
        "'name', d.datname, 'owner', pg_catalog.pg_get_userbyid(d.datdba), "
        "'encoding', pg_catalog.pg_encoding_to_char(d.encoding), 'collate', d.datcollate, 'ctype', d.datctype, "
        "'connection_limit', d.datconnlimit, 'allow_connections', d.datallowconn, "
        "'acl', d.datacl::text[], "
        "'public_connect', EXISTS (SELECT 1 FROM pg_catalog.aclexplode("
        "coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a "
        "WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'), "
        "'owner_connect', EXISTS (SELECT 1 FROM pg_catalog.aclexplode("
        "coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a "
        "WHERE a.grantee = d.datdba AND a.privilege_type = 'CONNECT'), "
        "'connect_grantees', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.pg_get_userbyid(a.grantee) "
        "ORDER BY a.grantee), '[]'::jsonb) FROM pg_catalog.aclexplode("
        "coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a "
        "WHERE a.grantee <> 0 AND a.privilege_type = 'CONNECT')"
        ") ORDER BY d.datname), '[]'::jsonb) "
        f"FROM pg_catalog.pg_database d WHERE d.datname = ANY ({text_array(databases)})))"
    )


def _names(specs: Sequence[ServiceSpec]) -> tuple[list[str], list[str]]:
    """Roles (owners, then the extra CONNECT grantees) and databases a run looks at."""
    owners = [spec.owner for spec in specs]
    grantees = sorted({name for spec in specs for name in spec.connect_roles} - set(owners))
    return owners + grantees, [spec.database for spec in specs]


def guard_sql(specs: Sequence[ServiceSpec], fingerprint: str) -> str:
    """A DO block that fails with SQLSTATE MSP01 when the named objects changed since the read.

    Run right after taking the advisory lock: a concurrent run that got the lock first and
    changed things makes this one start over from a fresh read instead of replaying a stale plan.
    """
    roles, databases = _names(specs)
    return (
        "DO $guard$ BEGIN "
        f"IF pg_catalog.md5(({state_expression(roles, databases)})::text) IS DISTINCT FROM {quote_literal(fingerprint)} "
        f"THEN RAISE EXCEPTION USING ERRCODE = {quote_literal(GUARD_SQLSTATE)}, "
        "MESSAGE = 'microservices.postgres: the catalog changed since it was read'; "
        "END IF; END $guard$"
    )


def lock_sql() -> str:
    """Take the collection-wide session advisory lock (released when the session ends)."""
    return f"SELECT pg_catalog.pg_advisory_lock({ADVISORY_LOCK_KEY})"


def _json_query(name: str, select: str, database: str | None = None, when: str | None = None) -> Query:
    return Query(name=name, sql=f"SELECT ({select})::text", database=database, when=when)


def ready_query_name(database: str) -> str:
    return f"db_ready:{database}"


def extensions_query_name(database: str) -> str:
    return f"extensions:{database}"


def _dependencies_select(absent: Sequence[ServiceSpec]) -> str:
    """Per absent role: places other than its own database where it owns objects or holds privileges.

    pg_shdepend records ownership, ACL and policy references across all databases; rows for
    the service's own database (dropped in the same run) do not count.
    """
    roles = text_array([spec.owner for spec in absent])
    own = text_array([spec.database for spec in absent])
    return (
        "SELECT coalesce(pg_catalog.json_object_agg(s.rolname, deps.places), '{}'::json) "
        f"FROM unnest({roles}, {own}) AS s(rolname, own_db) "
        "JOIN pg_catalog.pg_roles r ON r.rolname = s.rolname "
        "CROSS JOIN LATERAL (SELECT coalesce(pg_catalog.json_agg(DISTINCT p.place ORDER BY p.place), '[]'::json) AS places "
        "FROM (SELECT CASE WHEN sd.classid = 'pg_catalog.pg_database'::pg_catalog.regclass "
        "THEN (SELECT db.datname::text FROM pg_catalog.pg_database db WHERE db.oid = sd.objid) "
        f"WHEN sd.dbid = 0 THEN {quote_literal(SHARED_OBJECTS)} "
        "ELSE (SELECT db.datname::text FROM pg_catalog.pg_database db WHERE db.oid = sd.dbid) END AS place "
        "FROM pg_catalog.pg_shdepend sd "
        "WHERE sd.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND sd.refobjid = r.oid) p "
        "WHERE p.place IS DISTINCT FROM s.own_db) deps "
        "WHERE deps.places::text <> '[]'"
    )


def build_queries(specs: Sequence[ServiceSpec], options: Options) -> list[Query]:
    """All reads of one run, in the order a transport must run them (``when`` refers backwards).

    Verifiers are read only for roles whose password is checked (``password_update: always``).
    """
    roles, databases = _names(specs)
    absent = [spec for spec in specs if spec.state == ABSENT]
    verifier_roles = [
        spec.owner for spec in specs
        if spec.password is not None and spec.state != ABSENT and options.password_update == "always"
    ]
    extensions = sorted({name for spec in specs if spec.state != ABSENT for name in spec.extensions})
    state = state_expression(roles, databases)
    queries = [
        _json_query("server", "SELECT pg_catalog.json_build_object('server_version_num', "
                    "current_setting('server_version_num')::int, 'current_user', current_user, "
                    "'superuser', (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), "
                    f"'logging', ({settings_select(text_array)}))"),
        _json_query("parameter_privileges", privileges_supported_select()),
        _json_query("logging_grants", grants_select(text_array), when="parameter_privileges"),
        _json_query("state", f"SELECT pg_catalog.jsonb_build_object('fingerprint', pg_catalog.md5(x.j::text), 'state', x.j) "
                    f"FROM (SELECT {state} AS j) x"),
        _json_query("can_read_authid", "SELECT pg_catalog.to_json("
                    "pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT'))"),
        _json_query("verifiers", "SELECT coalesce(pg_catalog.json_object_agg(a.rolname, a.rolpassword), '{}'::json) "
                    f"FROM pg_catalog.pg_authid a WHERE a.rolname = ANY ({text_array(verifier_roles)})",
                    when="can_read_authid"),
        _json_query("connections", "SELECT coalesce(pg_catalog.json_object_agg(d.datname, "
                    "(SELECT count(*) FROM pg_catalog.pg_stat_activity sa WHERE sa.datid = d.oid "
                    "AND sa.pid <> pg_catalog.pg_backend_pid())), '{}'::json) "
                    f"FROM pg_catalog.pg_database d WHERE d.datname = ANY ({text_array([s.database for s in absent])})"),
        _json_query("dependencies", _dependencies_select(absent)),
        _json_query("available_extensions", "SELECT coalesce(pg_catalog.json_agg(e.name ORDER BY e.name), '[]'::json) "
                    f"FROM pg_catalog.pg_available_extensions e WHERE e.name = ANY ({text_array(extensions)})"),
    ]
    for spec in specs:
        if spec.state == ABSENT or not spec.extensions:
            continue
        ready = ready_query_name(spec.database)
        queries.append(_json_query(ready, "SELECT pg_catalog.to_json(EXISTS (SELECT 1 FROM pg_catalog.pg_database d "
                                   f"WHERE d.datname = {quote_literal(spec.database)} AND d.datallowconn))"))
        queries.append(_json_query(extensions_query_name(spec.database),
                                   "SELECT coalesce(pg_catalog.json_agg(e.extname ORDER BY e.extname), '[]'::json) "
                                   f"FROM pg_catalog.pg_extension e WHERE e.extname = ANY ({text_array(list(spec.extensions))})",
                                   database=spec.database, when=ready))
    return queries


def _role(row: Mapping[str, Any]) -> RoleState:
    return RoleState(name=row["name"], login=bool(row["login"]), superuser=bool(row["superuser"]),
                     usable=bool(row.get("usable", True)))


def _database(row: Mapping[str, Any]) -> DatabaseState:
    return DatabaseState(
        name=row["name"],
        owner=row["owner"],
        encoding=row["encoding"],
        collate=row["collate"],
        ctype=row["ctype"],
        connection_limit=int(row["connection_limit"]),
        allow_connections=bool(row["allow_connections"]),
        public_connect=bool(row["public_connect"]),
        owner_connect=bool(row["owner_connect"]),
        connect_grantees=frozenset(row.get("connect_grantees") or ()),
    )


def parse_catalog(specs: Sequence[ServiceSpec], results: Mapping[str, Any]) -> CatalogState:
    """Turn the transport's name -> JSON map into CatalogState (skipped queries mean 'unknown')."""
    state = results["state"]
    installed = {
        spec.database: frozenset(results[extensions_query_name(spec.database)])
        for spec in specs
        if extensions_query_name(spec.database) in results
    }
    return CatalogState(
        server_version=int(results["server"]["server_version_num"]),
        fingerprint=state["fingerprint"],
        can_read_authid=results.get("can_read_authid") is True,
        login_is_superuser=results["server"].get("superuser") is True,
        roles={row["name"]: _role(row) for row in state["state"]["roles"]},
        databases={row["name"]: _database(row) for row in state["state"]["databases"]},
        verifiers=results.get("verifiers"),
        connections={name: int(count) for name, count in results["connections"].items()},
        foreign_dependencies={name: list(places) for name, places in results["dependencies"].items()},
        available_extensions=frozenset(results["available_extensions"]),
        installed_extensions=installed,
        logging=parse_logging(results["server"].get("logging"), results.get("logging_grants"),
                              results["server"].get("superuser") is True, results["server"].get("current_user", "")),
    )


def read_catalog(transport: Transport, specs: Sequence[ServiceSpec], options: Options) -> CatalogState:
    """The single catalog read of a run: one transport.read call."""
    return parse_catalog(specs, transport.read(build_queries(specs, options)))
