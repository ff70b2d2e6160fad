#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_databases
short_description: Converge the databases and owner roles of a list of services in one round trip
version_added: 1.0.0
description:
  - Creates and keeps, for every service, a database and a dedicated LOGIN role that owns it.
  - Reads the catalog once (only the named roles and databases), plans the statements, and runs them as one batch,
    so the cost does not grow with round trips per service. A second run with the same input runs no statement.
  - Repairs drift of owner, LOGIN, password, connection limit, CONNECT hardening and missing extensions.
    Encoding or locale that differ on an existing database are an error naming the database; nothing is changed.
  - Passwords are sent only as SCRAM-SHA-256 verifiers computed on the managed host (fresh salt on every change),
    so the plaintext never reaches the server or its logs; the session that sends them first turns the server's
    statement logging off for itself, so the verifier does not reach the log either (see O(password_log_guard)).
  - Concurrent runs against one server serialise on an advisory lock; a run whose read went stale starts over.
  - Check mode only reads, and returns exactly the statements a real run would execute.
author:
  - microservices.postgres contributors (@microservices)
extends_documentation_fragment:
  - microservices.postgres.connection
attributes:
  check_mode:
    support: full
    description: Only the catalog is read; RV(statements) lists what a real run would execute.
  diff_mode:
    support: full
    description: Before and after per changed service; passwords are shown only as markers such as C(<changed>).
requirements:
  - psycopg >= 3.1 (for O(transport=direct))
  - kubernetes >= 24.2.0 (for O(transport=kubernetes))
options:
  services:
    description:
      - The services to converge, each one database owned by its own role.
      - Databases must be unique, and an owner may own only one database.
    type: list
    elements: dict
    required: true
    suboptions:
      database:
        description:
          - Database name. Lowercase letters, digits and underscores, starting with a letter or underscore,
            at most 63 bytes. V(postgres), V(template0) and V(template1) are reserved.
        type: str
        required: true
      owner:
        description:
          - Owner role of the database, created with LOGIN when missing. Same naming rules as O(services[].database);
            V(postgres), V(public), V(none), V(current_user), V(session_user), V(current_role) and C(pg_*) are reserved.
          - A role that exists and is a superuser is refused.
        type: str
        required: true
      password:
        description:
          - Password of O(services[].owner), sent only as a SCRAM-SHA-256 verifier.
          - When omitted the role's password is not managed.
        type: str
      connection_limit:
        description:
          - Connection limit of the database; V(-1) means no limit.
        type: int
        default: -1
      extensions:
        description:
          - Extensions ensured present in the database. Extensions not listed are never dropped.
        type: list
        elements: str
        default: []
      connect_roles:
        description:
          - Roles besides the owner that must keep CONNECT on the database, for example the C(pooler) role a
            connection pooler uses for its authentication lookup. They must exist.
          - CONNECT held by roles not listed here is left alone.
        type: list
        elements: str
        default: []
      encoding:
        description:
          - Encoding used when creating the database; an existing database with another encoding is an error.
        type: str
        default: UTF8
      locale:
        description:
          - LC_COLLATE and LC_CTYPE used when creating the database, and compared on an existing one.
          - When omitted the server default is used and not compared.
        type: str
      state:
        description:
          - V(absent) drops the database and then the role. The role is kept, with an error, while it still owns
            objects or holds privileges in other databases.
        type: str
        choices: [present, absent]
        default: present
      force:
        description:
          - With O(services[].state=absent), drop the database even with live connections (C(DROP DATABASE ... WITH (FORCE))).
            Without it a database with connections is an error naming the count.
        type: bool
        default: false
  password_update:
    description:
      - V(always) checks an existing role's password by re-deriving the stored verifier with its own salt and
        iterations, and changes it only when different. This reads C(pg_authid), so O(login_user) must be a superuser.
      - V(on_create) sets the password only when the role is created (for example when another system, such as
        the Zalando operator, owns the password).
    type: str
    choices: [always, on_create]
    default: always
  revoke_public_connect:
    description:
      - Ensure PUBLIC has no CONNECT privilege on each service database, and that the owner has it.
      - V(false) leaves PUBLIC's CONNECT unmanaged.
    type: bool
    default: true
  password_log_guard:
    description:
      - Before a password is set, the write session turns off, for itself only, every setting that would write the
        statement (and so the SCRAM verifier) to the server log or statistics, that is C(log_statement),
        C(log_min_duration_statement), C(log_min_duration_sample), C(log_transaction_sample_rate),
        C(log_min_error_statement), and C(pgaudit.log) and C(pg_stat_statements.track_utility) where those are
        loaded. Only a superuser may SET them, or on PostgreSQL 15 and later a login granted
        C(GRANT SET ON PARAMETER log_statement, log_min_duration_statement, ... TO <login>).
      - V(required) fails before anything is changed when a setting that would record the statement cannot be
        turned off (the message names the settings and the C(GRANT) that fixes it). Settings already quiet on the
        server (the defaults, apart from C(log_min_error_statement), which records failing statements) need no
        privilege.
      - V(best_effort) turns off what the login may, and goes on with a warning naming what it could not.
      - Runs that set no password are not affected.
    type: str
    choices: [required, best_effort]
    default: required
notes:
  - Statements run in autocommit mode (CREATE DATABASE cannot run in a transaction) and stop at the first error;
    the error lists the statements already applied.
seealso:
  - name: SCRAM-SHA-256 in PostgreSQL
    description: How PostgreSQL stores and checks SCRAM verifiers.
    link: https://www.postgresql.org/docs/current/auth-password.html
"""

EXAMPLES = r"""
- name: Converge the platform's service databases
  microservices.postgres.service_databases:
    login_host: db.internal
    login_password: "{{ postgres_superuser_password }}"
    services:
      - database: userdb
        owner: userservice
        password: "{{ userservice_password }}"
        extensions: [uuid-ossp]
      - database: paymentdb
        owner: paymentservice
        password: "{{ paymentservice_password }}"
        connection_limit: 50

- name: Keep ownership and hardening only; passwords belong to the operator
  microservices.postgres.service_databases:
    password_update: on_create
    services:
      - database: accountingdb
        owner: accountingservice

- name: Remove a retired service, terminating its connections
  microservices.postgres.service_databases:
    services:
      - database: legacydb
        owner: legacyservice
        state: absent
        force: true
"""

RETURN = r"""
services:
  description: Per service, in input order, what happened (or would happen in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    database:
      description: Database name.
      type: str
      sample: userdb
    owner:
      description: Owner role name.
      type: str
      sample: userservice
    state:
      description: The requested state.
      type: str
      sample: present
    status:
      description: One of V(created), V(updated), V(unchanged), V(removed).
      type: str
      sample: created
    changes:
      description: Short human-readable descriptions of each change.
      type: list
      elements: str
      sample: ["role userservice created", "database userdb created", "CONNECT revoked from PUBLIC"]
statements:
  description:
    - The statements executed (in check mode, those a real run would execute), in order.
    - Verifiers are replaced by C('<redacted>'). Lock and guard plumbing is not listed.
  returned: always
  type: list
  elements: str
  sample: ["CREATE ROLE \"userservice\" LOGIN PASSWORD '<redacted>'"]
server_version:
  description: The server's C(server_version_num).
  returned: always
  type: int
  sample: 150018
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.microservices.postgres.plugins.module_utils._postgres_connection import (
    CONNECTION_ARGUMENT_SPEC,
    CONNECTION_MUTUALLY_EXCLUSIVE,
    CONNECTION_REQUIRED_IF,
    missing_library,
    open_transport,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.converge import (
    ConvergeError,
    converge,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import (
    Options,
    ValidationError,
    parse_services,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.plan import (
    PlanError,
)

SERVICE_SPEC = dict(
    database=dict(type="str", required=True),
    owner=dict(type="str", required=True),
    password=dict(type="str", no_log=True),
    connection_limit=dict(type="int", default=-1),
    extensions=dict(type="list", elements="str", default=[]),
    connect_roles=dict(type="list", elements="str", default=[]),
    encoding=dict(type="str", default="UTF8"),
    locale=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    force=dict(type="bool", default=False),
)

ARGUMENT_SPEC = dict(
    services=dict(type="list", elements="dict", required=True, options=SERVICE_SPEC),
    password_update=dict(type="str", choices=["always", "on_create"], default="always", no_log=False),
    revoke_public_connect=dict(type="bool", default=True),
    password_log_guard=dict(type="str", choices=["required", "best_effort"], default="required", no_log=False),
    **CONNECTION_ARGUMENT_SPEC,
)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_if=CONNECTION_REQUIRED_IF,
        mutually_exclusive=CONNECTION_MUTUALLY_EXCLUSIVE,
    )
    params = module.params
    options = Options(
        password_update=params["password_update"],
        revoke_public_connect=params["revoke_public_connect"],
        login_db=params["login_db"],
        password_log_guard=params["password_log_guard"],
    )
    try:
        specs = parse_services(params["services"], options)
    except ValidationError as exc:
        module.fail_json(msg=f"invalid services input, nothing was changed: {exc}", errors=exc.errors, applied_statements=[])

    library, import_error = missing_library(params)
    if import_error:
        module.fail_json(msg=missing_required_lib(library), exception=import_error)

    transport = open_transport(params)
    try:
        result = converge(specs, transport, options, module.check_mode)
    except PlanError as exc:
        module.fail_json(msg=f"cannot converge, nothing was changed: {exc}", errors=exc.errors, applied_statements=[])
    except ConvergeError as exc:
        applied = "; ".join(exc.applied) if exc.applied else "nothing"
        module.fail_json(msg=f"{exc.message}; already applied: {applied}", changed=bool(exc.applied), service=exc.service,
                         failed_statement=exc.statement, applied_statements=exc.applied)
    finally:
        transport.close()

    for warning in result.pop("warnings"):
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
