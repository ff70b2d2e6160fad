# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run: read the catalog once, plan, write once; retry when a concurrent run got there first."""

from __future__ import annotations

from typing import Any, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.catalog import (
    GUARD_SQLSTATE,
    read_catalog,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import (
    Options,
    ServiceSpec,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.plan import (
    Plan,
    build_plan,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    Statement,
    Transport,
    TransportError,
)

MAX_ATTEMPTS = 3


class ConvergeError(Exception):
    """A run failed after planning; says what failed, for which service, and what was applied."""

    def __init__(self, message: str, applied: Sequence[str] = (), service: str | None = None,
                 statement: str | None = None) -> None:
        self.message = message
        self.applied = list(applied)
        self.service = service
        self.statement = statement
        super().__init__(message)


def _result(plan: Plan, statements: list[str]) -> dict[str, Any]:
    return {
        "changed": plan.changed,
        "services": [service.as_dict() for service in plan.services],
        "statements": statements,
        "server_version": plan.server_version,
        "diff": [dict(entry) for entry in plan.diffs],
        "warnings": list(plan.warnings),
    }


def _write_failure(batch: Sequence[Statement], exc: TransportError) -> ConvergeError:
    """Describe a failed write with the reported statements that had already been applied."""
    index = exc.index if exc.index is not None else 0
    applied = [statement.display for statement in batch[:index] if statement.reported]
    failed = batch[index]
    if not failed.reported:
        where = "while taking the advisory lock or checking the guard"
        if failed.database:
            where = f"while taking the advisory lock in database {failed.database!r}"
        message = f"{where}: {exc.message}"
        return ConvergeError(message, applied=applied, service=failed.service)
    message = f"service {failed.service!r}: statement failed: {failed.display}: {exc.message}"
    return ConvergeError(message, applied=applied, service=failed.service, statement=failed.display)


def converge(specs: Sequence[ServiceSpec], transport: Transport, options: Options, check_mode: bool) -> dict[str, Any]:
    """Converge the services and return the module result (``diff`` included; drop it outside diff mode;
    ``warnings`` are for the module to pass to ``AnsibleModule.warn``).

    Check mode stops after the read and reports the statements a real run would execute.
    A guard failure (SQLSTATE MSP01) means another run changed the named objects between our
    read and our lock: start over from a fresh read, up to MAX_ATTEMPTS runs in all.
    Raises PlanError (nothing changed) or ConvergeError (saying what was applied).
    """
    attempt = 1
    while True:
        try:
            catalog = read_catalog(transport, specs, options)
        except TransportError as exc:
            raise ConvergeError(f"reading the catalog failed, nothing was changed: {exc.message}") from None
        plan = build_plan(specs, catalog, options)
        if check_mode or not plan.statements:
            return _result(plan, plan.reported)
        try:
            transport.write(plan.statements)
        except TransportError as exc:
            if exc.sqlstate != GUARD_SQLSTATE:
                raise _write_failure(plan.statements, exc) from None
            if attempt >= MAX_ATTEMPTS:
                raise ConvergeError(f"the catalog kept changing under concurrent runs; gave up after {MAX_ATTEMPTS} "
                                    "attempts, nothing was changed") from None
            attempt += 1
            continue
        return _result(plan, plan.reported)
