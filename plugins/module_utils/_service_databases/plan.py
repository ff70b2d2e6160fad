# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""From desired state and catalog state to an ordered list of statements, results and diffs.

Pure: no I/O, so check mode and a real run compute the very same plan. Ordering is what
makes the batch valid in one pass: roles first (databases need their owners), then
databases, then per-database extensions, and drops last (a role cannot be dropped while it
owns a database). Anything that cannot be repaired is a PlanError raised before any write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.catalog import (
    CatalogState,
    DatabaseState,
    RoleState,
    guard_sql,
    lock_sql,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import (
    ABSENT,
    Options,
    ServiceSpec,
    encoding_key,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.identifiers import (
    quote_ident,
    quote_literal,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.quiet_logging import (
    REQUIRED,
    leak_message,
    quiet_statements_sql,
    restore_statements_sql,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.scram import (
    make_verifier,
    verifier_matches,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    REDACTED,
    Statement,
)

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
REMOVED = "removed"

PASSWORD_SET = "<set>"
PASSWORD_NOT_SET = "<not set>"
PASSWORD_CHANGED = "<changed>"
PASSWORD_UNCHANGED = "<unchanged>"
PASSWORD_NOT_MANAGED = "<not managed>"

FORCE_MIN_SERVER_VERSION = 130000
SET_OPTION_MIN_SERVER_VERSION = 160000


class PlanError(Exception):
    """The catalog makes the desired state impossible or unsafe; nothing was changed."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass
class ServiceResult:
    """What happens (or happened) to one service, as reported to the user."""

    database: str
    owner: str
    state: str
    status: str = UNCHANGED
    changes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "owner": self.owner,
            "state": self.state,
            "status": self.status,
            "changes": list(self.changes),
        }


@dataclass(frozen=True)
class Plan:
    """The write batch (lock and guard included; empty when nothing is to be done) and its report."""

    statements: tuple[Statement, ...]
    services: tuple[ServiceResult, ...]
    diffs: tuple[dict[str, Any], ...]
    server_version: int
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.statements)

    @property
    def reported(self) -> list[str]:
        """Redacted text of the statements the user is told about (plumbing excluded)."""
        return [statement.display for statement in self.statements if statement.reported]


@dataclass
class _Draft:
    """Per-service working state while planning."""

    spec: ServiceSpec
    result: ServiceResult
    roles: list[Statement] = field(default_factory=list)
    databases: list[Statement] = field(default_factory=list)
    extensions: list[Statement] = field(default_factory=list)
    drop_databases: list[Statement] = field(default_factory=list)
    drop_roles: list[Statement] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    secret_ids: set[int] = field(default_factory=set)
    """id() of the statements that carry a verifier (kept out of the server log by _assemble)."""

    def add(self, bucket: list[Statement], sql: str, change: str, display: str | None = None,
            database: str | None = None, secret: bool = False) -> None:
        statement = Statement(sql=sql, display=display or sql, service=self.spec.database, database=database)
        bucket.append(statement)
        self.result.changes.append(change)
        if secret:
            self.secret_ids.add(id(statement))

    @property
    def sends_password(self) -> bool:
        return bool(self.secret_ids)

    def error(self, message: str) -> None:
        self.errors.append(f"{self.spec.label}: {message}")

    @property
    def statement_count(self) -> int:
        return sum(len(b) for b in (self.roles, self.databases, self.extensions, self.drop_databases, self.drop_roles))


def _locale_key(name: str) -> str:
    """glibc treats ``en_US.UTF-8`` and ``en_US.utf8`` alike; compare them alike too."""
    return re.sub(r"[-_]", "", name.lower())


def _snapshot(database: str, exists: bool, **values: Any) -> dict[str, Any]:
    """A diff side: the same keys always, None where the object does not exist."""
    keys = ("owner", "owner_login", "connection_limit", "extensions", "public_connect", "owner_connect", "connect_roles",
            "password")
    return {"database": database, "exists": exists, **{key: values.get(key) for key in keys}}


def _password_step(draft: _Draft, role: RoleState | None, catalog: CatalogState,
                   options: Options) -> tuple[str | None, str | None, str]:
    """Decide whether a verifier must be sent: returns (verifier or None, before marker, after marker)."""
    spec = draft.spec
    before = PASSWORD_NOT_MANAGED if role else None
    if spec.password is None:
        return None, before, PASSWORD_NOT_MANAGED
    if role is None:
        return make_verifier(spec.password), None, PASSWORD_SET
    if options.password_update == "on_create":
        return None, PASSWORD_NOT_MANAGED, PASSWORD_NOT_MANAGED
    if not catalog.can_read_authid or catalog.verifiers is None:
        draft.error(
            f"password_update=always needs to read role {spec.owner!r}'s stored verifier from pg_authid, "
            "but the login user has no SELECT on pg_authid; log in as a superuser or use password_update=on_create"
        )
        return None, PASSWORD_NOT_MANAGED, PASSWORD_NOT_MANAGED
    stored = catalog.verifiers.get(spec.owner)
    if verifier_matches(stored, spec.password):
        return None, PASSWORD_UNCHANGED, PASSWORD_UNCHANGED
    return make_verifier(spec.password), (PASSWORD_SET if stored else PASSWORD_NOT_SET), PASSWORD_CHANGED


def _password_clause(verifier: str) -> tuple[str, str]:
    """(executable, displayed) PASSWORD clause: the verifier never appears in the displayed one."""
    return f" PASSWORD {quote_literal(verifier)}", f" PASSWORD '{REDACTED}'"


def _plan_role(draft: _Draft, role: RoleState | None, catalog: CatalogState, options: Options) -> tuple[str | None, str]:
    """Role statements; returns the (before, after) password markers for the diff."""
    spec = draft.spec
    name = quote_ident(spec.owner)
    if role is not None and role.superuser:
        draft.error(f"owner role {spec.owner!r} is a superuser; service owners must be ordinary roles, refusing to manage it")
        return PASSWORD_NOT_MANAGED, PASSWORD_NOT_MANAGED
    verifier, before, after = _password_step(draft, role, catalog, options)
    sql, display = f"CREATE ROLE {name} LOGIN", f"CREATE ROLE {name} LOGIN"
    if role is None:
        if verifier:
            clause_sql, clause_display = _password_clause(verifier)
            sql, display = sql + clause_sql, display + clause_display
        draft.add(draft.roles, sql, f"role {spec.owner} created", display, secret=verifier is not None)
        return before, after
    if not role.login:
        draft.add(draft.roles, f"ALTER ROLE {name} LOGIN", f"role {spec.owner} granted LOGIN")
    if verifier:
        clause_sql, clause_display = _password_clause(verifier)
        draft.add(draft.roles, f"ALTER ROLE {name}{clause_sql}", f"role {spec.owner} password changed",
                  f"ALTER ROLE {name}{clause_display}", secret=True)
    return before, after


def _plan_membership(draft: _Draft, role: RoleState | None, catalog: CatalogState) -> None:
    """Let a non-superuser login act as the owner role before it gives, changes or takes its database.

    Called once the database work is known, so that a converged service needs no grant; the
    roles bucket still runs before the databases bucket, so the grant comes first in the batch.

    CREATE DATABASE ... OWNER, ALTER DATABASE ... OWNER TO and DROP DATABASE need the login to
    be able to SET ROLE to the owner (PostgreSQL 16+; membership on 15), and grants made on the
    owner's behalf need its privileges. A CREATEROLE login may grant itself that membership;
    a superuser never needs it.
    """
    if catalog.login_is_superuser or (role is not None and role.usable):
        return
    options = " WITH INHERIT TRUE, SET TRUE" if catalog.server_version >= SET_OPTION_MIN_SERVER_VERSION else ""
    draft.add(draft.roles, f"GRANT {quote_ident(draft.spec.owner)} TO CURRENT_USER{options}",
              f"login role granted membership in {draft.spec.owner} (needed to act as the owner)")


def _create_database_sql(spec: ServiceSpec) -> str:
    sql = (f"CREATE DATABASE {quote_ident(spec.database)} OWNER {quote_ident(spec.owner)} "
           f"TEMPLATE {quote_ident('template0')} ENCODING {quote_literal(spec.encoding)}")
    if spec.locale is not None:
        sql += f" LC_COLLATE {quote_literal(spec.locale)} LC_CTYPE {quote_literal(spec.locale)}"
    if spec.connection_limit != -1:
        sql += f" CONNECTION LIMIT {int(spec.connection_limit)}"
    return sql


def _check_immutable(draft: _Draft, database: DatabaseState) -> None:
    """Encoding and locale are fixed at creation: a difference is an error, never a rebuild."""
    spec = draft.spec
    if encoding_key(database.encoding) != encoding_key(spec.encoding):
        draft.error(f"database {spec.database!r} exists with encoding {database.encoding} but {spec.encoding} is wanted; "
                    "encoding cannot be changed after creation (dump and restore into a new database)")
    if spec.locale is not None:
        actual = {database.collate, database.ctype}
        if any(_locale_key(value) != _locale_key(spec.locale) for value in actual):
            draft.error(f"database {spec.database!r} exists with LC_COLLATE {database.collate!r} and LC_CTYPE "
                        f"{database.ctype!r} but locale {spec.locale!r} is wanted; locale cannot be changed after creation")


def _plan_connect_roles(draft: _Draft, database: DatabaseState | None, catalog: CatalogState) -> None:
    """CONNECT for the extra roles a service names; grants held by roles it does not name are left alone."""
    spec = draft.spec
    held = database.connect_grantees if database else frozenset()
    for grantee in spec.connect_roles:
        if grantee not in catalog.roles:
            draft.error(f"connect_roles: role {grantee!r} does not exist; create it first or remove it from connect_roles")
        elif grantee not in held:
            draft.add(draft.databases, f"GRANT CONNECT ON DATABASE {quote_ident(spec.database)} TO {quote_ident(grantee)}",
                      f"CONNECT granted to {grantee}")


def _plan_database(draft: _Draft, database: DatabaseState | None, options: Options) -> None:
    spec = draft.spec
    name, owner = quote_ident(spec.database), quote_ident(spec.owner)
    if database is None:
        draft.add(draft.databases, _create_database_sql(spec), f"database {spec.database} created")
        if options.revoke_public_connect:
            draft.add(draft.databases, f"REVOKE CONNECT ON DATABASE {name} FROM PUBLIC", "CONNECT revoked from PUBLIC")
        return
    _check_immutable(draft, database)
    if database.owner != spec.owner:
        draft.add(draft.databases, f"ALTER DATABASE {name} OWNER TO {owner}",
                  f"owner changed from {database.owner} to {spec.owner}")
    if database.connection_limit != spec.connection_limit:
        draft.add(draft.databases, f"ALTER DATABASE {name} CONNECTION LIMIT {int(spec.connection_limit)}",
                  f"connection limit changed from {database.connection_limit} to {spec.connection_limit}")
    if options.revoke_public_connect and database.public_connect:
        draft.add(draft.databases, f"REVOKE CONNECT ON DATABASE {name} FROM PUBLIC", "CONNECT revoked from PUBLIC")
    if options.revoke_public_connect and not database.owner_connect:
        draft.add(draft.databases, f"GRANT CONNECT ON DATABASE {name} TO {owner}", f"CONNECT granted to {spec.owner}")


def _plan_extensions(draft: _Draft, database: DatabaseState | None, catalog: CatalogState) -> frozenset[str]:
    """Extension statements (run connected to the service database); returns those installed now."""
    spec = draft.spec
    if not spec.extensions:
        return frozenset()
    unavailable = [name for name in spec.extensions if name not in catalog.available_extensions]
    if unavailable:
        draft.error(f"extension(s) {', '.join(unavailable)} not available on the server (pg_available_extensions); "
                    "install the package that provides them")
        return frozenset()
    installed = catalog.installed_extensions.get(spec.database, frozenset())
    if database is not None and spec.database not in catalog.installed_extensions:
        draft.error(f"database {spec.database!r} does not allow connections (datallowconn is false), "
                    "so its extensions cannot be managed")
        return installed
    for extension in spec.extensions:
        if extension not in installed:
            draft.add(draft.extensions, f"CREATE EXTENSION IF NOT EXISTS {quote_ident(extension)}",
                      f"extension {extension} created", database=spec.database)
    return installed


def _plan_present(draft: _Draft, catalog: CatalogState, options: Options) -> None:
    spec = draft.spec
    role = catalog.roles.get(spec.owner)
    database = catalog.databases.get(spec.database)
    password_before, password_after = _plan_role(draft, role, catalog, options)
    _plan_database(draft, database, options)
    _plan_connect_roles(draft, database, catalog)
    installed = _plan_extensions(draft, database, catalog)
    if draft.databases or draft.extensions:
        _plan_membership(draft, role, catalog)
    requested = set(spec.extensions)
    draft.before = _snapshot(
        spec.database, database is not None,
        owner=database.owner if database else None,
        owner_login=role.login if role else None,
        connection_limit=database.connection_limit if database else None,
        extensions=sorted(installed & requested) if database else None,
        public_connect=database.public_connect if database else None,
        owner_connect=database.owner_connect if database else None,
        connect_roles=sorted(database.connect_grantees & set(spec.connect_roles)) if database else None,
        password=password_before,
    )
    public_after = False if options.revoke_public_connect else (database.public_connect if database else True)
    owner_connect_after = True if options.revoke_public_connect or database is None else database.owner_connect
    draft.after = _snapshot(
        spec.database, True, owner=spec.owner, owner_login=True, connection_limit=spec.connection_limit,
        extensions=sorted(requested), public_connect=public_after, owner_connect=owner_connect_after,
        connect_roles=sorted(spec.connect_roles), password=password_after,
    )
    if database is None:
        draft.result.status = CREATED
    elif draft.statement_count:
        draft.result.status = UPDATED


def _plan_absent(draft: _Draft, catalog: CatalogState) -> None:
    spec = draft.spec
    role = catalog.roles.get(spec.owner)
    database = catalog.databases.get(spec.database)
    if database is not None and role is not None and database.owner == spec.owner:
        _plan_membership(draft, role, catalog)
    if database is not None:
        _plan_drop_database(draft, catalog)
    if role is not None:
        _plan_drop_role(draft, role, catalog)
    draft.before = _snapshot(
        spec.database, database is not None,
        owner=database.owner if database else None,
        owner_login=role.login if role else None,
        connection_limit=database.connection_limit if database else None,
        public_connect=database.public_connect if database else None,
        owner_connect=database.owner_connect if database else None,
    )
    draft.after = _snapshot(spec.database, False)
    if draft.statement_count:
        draft.result.status = REMOVED


def _plan_drop_database(draft: _Draft, catalog: CatalogState) -> None:
    spec = draft.spec
    connections = catalog.connections.get(spec.database, 0)
    if connections and not spec.force:
        draft.error(f"database {spec.database!r} has {connections} live connection(s); "
                    "stop the clients or set force: true to terminate them")
        return
    if spec.force and catalog.server_version < FORCE_MIN_SERVER_VERSION:
        draft.error("force: true needs PostgreSQL 13 or later (DROP DATABASE ... WITH (FORCE))")
        return
    suffix = " WITH (FORCE)" if spec.force else ""
    draft.add(draft.drop_databases, f"DROP DATABASE {quote_ident(spec.database)}{suffix}",
              f"database {spec.database} dropped" + (" (connections terminated)" if spec.force and connections else ""))


def _plan_drop_role(draft: _Draft, role: RoleState, catalog: CatalogState) -> None:
    spec = draft.spec
    if role.superuser:
        draft.error(f"owner role {spec.owner!r} is a superuser; service owners must be ordinary roles, refusing to drop it")
        return
    elsewhere = catalog.foreign_dependencies.get(spec.owner)
    if elsewhere:
        draft.error(f"role {spec.owner!r} still owns objects or holds privileges in {', '.join(elsewhere)}; "
                    "reassign or drop them there first (REASSIGN OWNED / DROP OWNED)")
        return
    draft.add(draft.drop_roles, f"DROP ROLE {quote_ident(spec.owner)}", f"role {spec.owner} dropped")


def _assemble(drafts: Sequence[_Draft], specs: Sequence[ServiceSpec], catalog: CatalogState) -> tuple[Statement, ...]:
    """Order the batch and wrap it in the advisory lock and the guard; nothing at all when idle."""
    body: list[Statement] = []
    for bucket in ("roles", "databases"):
        for draft in drafts:
            body.extend(getattr(draft, bucket))
    for draft in drafts:
        if draft.extensions:
            body.append(Statement(sql=lock_sql(), display=lock_sql(), service=None,
                                  database=draft.spec.database, reported=False))
            body.extend(draft.extensions)
    for bucket in ("drop_databases", "drop_roles"):
        for draft in drafts:
            body.extend(getattr(draft, bucket))
    if not body:
        return ()
    guard = guard_sql(specs, catalog.fingerprint)
    plumbing = [
        Statement(sql=lock_sql(), display=lock_sql(), service=None, reported=False),
        Statement(sql=guard, display=guard, service=None, reported=False),
    ]
    secret_ids = set().union(*(draft.secret_ids for draft in drafts))
    return tuple(plumbing + _quiet_around_secrets(body, secret_ids, catalog))


def _quiet_around_secrets(body: Sequence[Statement], secret_ids: set[int], catalog: CatalogState) -> list[Statement]:
    """Wrap each run of verifier-carrying statements in SETs that turn logging off and RESETs after it.

    Only those statements go unlogged: the rest of the batch stays in the server's audit trail as
    the server is configured. RESET restores the session's own default (server, database or role
    setting). All password statements run in the login database's session (role statements have
    no database), so the SETs apply where they are needed.
    """
    quiet = [Statement(sql=sql, display=sql, service=None, reported=False)
             for sql in quiet_statements_sql(catalog.logging)]
    restore = [Statement(sql=sql, display=sql, service=None, reported=False)
               for sql in restore_statements_sql(catalog.logging)]
    if not quiet:
        return list(body)
    wrapped: list[Statement] = []
    inside = False
    for statement in body:
        secret = id(statement) in secret_ids
        if secret and not inside:
            wrapped.extend(quiet)
        elif not secret and inside:
            wrapped.extend(restore)
        inside = secret
        wrapped.append(statement)
    if inside:
        wrapped.extend(restore)
    return wrapped


def _password_log_check(drafts: Sequence[_Draft], catalog: CatalogState, options: Options) -> tuple[list[str], list[str]]:
    """(errors, warnings) about password statements the server would log and the login cannot keep out."""
    if not any(draft.sends_password for draft in drafts) or not catalog.logging.leaking_names():
        return [], []
    message = leak_message(catalog.logging, catalog.server_version)
    if options.password_log_guard == REQUIRED:
        return [message + ", or set password_log_guard=best_effort to accept that risk"], []
    return [], [message + "; going on because password_log_guard=best_effort"]


def build_plan(specs: Sequence[ServiceSpec], catalog: CatalogState, options: Options) -> Plan:
    """Plan every service; raise PlanError listing every problem if any service cannot be planned."""
    drafts = []
    for spec in specs:
        draft = _Draft(spec=spec, result=ServiceResult(database=spec.database, owner=spec.owner, state=spec.state))
        if spec.state == ABSENT:
            _plan_absent(draft, catalog)
        else:
            _plan_present(draft, catalog, options)
        drafts.append(draft)
    errors = [message for draft in drafts for message in draft.errors]
    log_errors, warnings = _password_log_check(drafts, catalog, options)
    errors += log_errors
    if errors:
        raise PlanError(errors)
    diffs = tuple(
        {
            "before_header": f"service {draft.spec.database} (before)",
            "after_header": f"service {draft.spec.database} (after)",
            "before": draft.before,
            "after": draft.after,
        }
        for draft in drafts
        if draft.result.status != UNCHANGED
    )
    return Plan(
        statements=_assemble(drafts, specs, catalog),
        services=tuple(draft.result for draft in drafts),
        diffs=diffs,
        server_version=catalog.server_version,
        warnings=tuple(warnings),
    )
