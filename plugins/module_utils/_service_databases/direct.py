# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``direct`` transport: psycopg 3 connections from the controller to the server."""

from __future__ import annotations

import ipaddress
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
REMOTE_SSL_MODE = "verify-full"
LOCAL_SSL_MODE = "prefer"
_VERIFYING_MODES = ("verify-ca", "verify-full")


def is_local_host(host: str) -> bool:
    """Whether every host of a libpq host list stays on this machine (socket or loopback).

    Traffic to a Unix socket or a loopback address never crosses a network, so it is the one
    place where an unverified connection is the sensible default; anything else gets verify-full.
    """
    for name in (host or "").split(","):
        name = name.strip()
        if not name or name.startswith(("/", "@")) or name.lower() == "localhost":
            continue
        try:
            if ipaddress.ip_address(name.strip("[]")).is_loopback:
                continue
        except ValueError:
            return False
        return False
    return True


def default_ssl_mode(host: str) -> str:
    """libpq sslmode when none is given: verify-full for remote hosts, prefer for local ones."""
    return LOCAL_SSL_MODE if is_local_host(host) else REMOTE_SSL_MODE


@dataclass(frozen=True)
class ConnectionParams:
    """libpq connection settings; an empty host means libpq's default (the local socket).

    ``ssl_mode`` None means :func:`default_ssl_mode` of the host; ``ssl_rootcert`` None leaves
    libpq's own default (``~/.postgresql/root.crt``).
    """

    host: str = ""
    port: int = 5432
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    login_db: str = "postgres"
    ssl_mode: str | None = None
    connect_timeout: int = 10
    ssl_rootcert: str | None = None

    @property
    def effective_ssl_mode(self) -> str:
        """The sslmode actually used: the one given, else the host's default."""
        return self.ssl_mode or default_ssl_mode(self.host)

    def kwargs(self, database: str) -> dict[str, Any]:
        """Keyword arguments for psycopg.connect, leaving unset values to libpq's own defaults."""
        params: dict[str, Any] = {
            "port": self.port,
            "user": self.user,
            "dbname": database,
            "sslmode": self.effective_ssl_mode,
            "connect_timeout": self.connect_timeout,
            "application_name": APPLICATION_NAME,
        }
        if self.host:
            params["host"] = self.host
        if self.password is not None:
            params["password"] = self.password
        if self.ssl_rootcert:
            params["sslrootcert"] = self.ssl_rootcert
        return params


def tls_advice(message: str, params: ConnectionParams) -> str | None:
    """What to change when a connection failed because of TLS, or None when TLS was not the cause.

    libpq's own words say what went wrong but not which module option fixes it; this names the
    host, the sslmode in force and the option to set.
    """
    lowered = message.lower()
    host = params.host or "the default socket"
    mode = params.effective_ssl_mode
    if "does not match host name" in lowered:
        return (f"the TLS certificate of {host} does not name {host!r} (ssl_mode={mode}): connect by a name the "
                "certificate holds (its DNS names or IP addresses, e.g. the Service name rather than an IP), "
                "or have the server's certificate issued for this name")
    if "root certificate file" in lowered:
        return (f"ssl_mode={mode} verifies the certificate of {host}, but no CA file was given: set ssl_rootcert "
                "(or PGSSLROOTCERT) to the CA that signed the server's certificate (the ca.crt of the "
                "connection Secret)")
    if "certificate verify failed" in lowered or ("certificate" in lowered and mode in _VERIFYING_MODES):
        where = f"CA {params.ssl_rootcert}" if params.ssl_rootcert else "the default CA file (~/.postgresql/root.crt)"
        return (f"the TLS certificate of {host} is not signed by {where} (ssl_mode={mode}): set ssl_rootcert "
                "to the CA that signed the server's certificate (the ca.crt of the connection Secret)")
    if "server does not support ssl" in lowered:
        return (f"{host} does not serve TLS but ssl_mode={mode} requires it: turn TLS on in the server, or for a "
                "server on this machine only, set ssl_mode=prefer")
    if "no encryption" in lowered and "pg_hba.conf" in lowered:
        return (f"{host} accepts only TLS connections (hostssl) and ssl_mode={mode} did not use TLS: set ssl_mode "
                "to verify-full with ssl_rootcert")
    return None


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
                advice = tls_advice(message, self._params)
                raise TransportError(
                    f"cannot connect to database {name!r} on {where} port {self._params.port} as "
                    f"{self._params.user!r}: {message}" + (f"; {advice}" if advice else ""),
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
