# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``direct`` transport: psycopg 3 connections from the controller to the server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    Query,
    Statement,
    Transport,
    TransportError,
)

APPLICATION_NAME = "microservices.postgres"


@dataclass(frozen=True)
class ConnectionParams:
    """libpq connection settings; an empty host means libpq's default (the local socket)."""

    host: str = ""
    port: int = 5432
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    login_db: str = "postgres"
    ssl_mode: str = "prefer"
    connect_timeout: int = 10

    def kwargs(self, database: str) -> dict[str, Any]:
        """Keyword arguments for psycopg.connect, leaving unset values to libpq's own defaults."""
        params: dict[str, Any] = {
            "port": self.port,
            "user": self.user,
            "dbname": database,
            "sslmode": self.ssl_mode,
            "connect_timeout": self.connect_timeout,
            "application_name": APPLICATION_NAME,
        }
        if self.host:
            params["host"] = self.host
        if self.password is not None:
            params["password"] = self.password
        return params


def _load_psycopg() -> Any:
    """Import psycopg only when a connection is needed, so the rest stays importable without it."""
    import psycopg  # pylint: disable=import-outside-toplevel

    return psycopg


def psycopg_import_error() -> str | None:
    """The import failure (as text) when psycopg cannot be loaded, else None; for missing_required_lib."""
    try:
        _load_psycopg()
    except ImportError as exc:
        return str(exc)
    return None


def _describe(exc: Exception) -> tuple[str, str | None]:
    """Server message without the statement text psycopg may append (it could hold a verifier)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        detail = getattr(diag, "message_detail", None)
        return (f"{primary} ({detail})" if detail else primary), getattr(diag, "sqlstate", None)
    return str(exc).strip(), getattr(exc, "sqlstate", None)


class DirectTransport(Transport):
    """One autocommit connection per database, kept for the whole run.

    Keeping them matters: session advisory locks taken at the start of a write batch only
    serialise concurrent runs while the session that took them stays open.
    """

    def __init__(self, params: ConnectionParams) -> None:
        self._params = params
        self._connections: dict[str, Any] = {}

    def _connection(self, database: str | None) -> Any:
        name = database or self._params.login_db
        if name not in self._connections:
            psycopg = _load_psycopg()
            try:
                self._connections[name] = psycopg.connect(autocommit=True, **self._params.kwargs(name))
            except psycopg.Error as exc:
                message, sqlstate = _describe(exc)
                where = self._params.host or "the default socket"
                raise TransportError(
                    f"cannot connect to database {name!r} on {where} port {self._params.port} as "
                    f"{self._params.user!r}: {message}",
                    sqlstate=sqlstate,
                ) from None
        return self._connections[name]

    def read(self, queries: Sequence[Query]) -> dict[str, Any]:
        psycopg = _load_psycopg()
        results: dict[str, Any] = {}
        for query in queries:
            if query.when is not None and results.get(query.when) is not True:
                continue
            connection = self._connection(query.database)
            try:
                row = connection.execute(query.sql).fetchone()
            except psycopg.Error as exc:
                message, sqlstate = _describe(exc)
                raise TransportError(f"catalog query {query.name!r} failed: {message}", sqlstate=sqlstate) from None
            results[query.name] = json.loads(row[0])
        return results

    def write(self, statements: Sequence[Statement]) -> None:
        psycopg = _load_psycopg()
        for index, statement in enumerate(statements):
            try:
                self._connection(statement.database).execute(statement.sql)
            except TransportError as exc:
                raise TransportError(exc.message, index=index, sqlstate=exc.sqlstate) from None
            except psycopg.Error as exc:
                message, sqlstate = _describe(exc)
                raise TransportError(message, index=index, sqlstate=sqlstate) from None

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
