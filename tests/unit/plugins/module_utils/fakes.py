"""Test doubles: catalog rows shaped like the real queries' JSON, and an in-memory Transport."""

from __future__ import annotations

from typing import Any, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import (
    Options,
    parse_services,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    Query,
    Statement,
    Transport,
    TransportError,
)


def role(name: str, login: bool = True, superuser: bool = False, usable: bool = True) -> dict[str, Any]:
    return {"name": name, "login": login, "superuser": superuser, "usable": usable}


def database(name: str, owner: str, encoding: str = "UTF8", collate: str = "C.UTF-8", ctype: str = "C.UTF-8",
             connection_limit: int = -1, allow_connections: bool = True, public_connect: bool = False,
             owner_connect: bool = True) -> dict[str, Any]:
    return {
        "name": name, "owner": owner, "encoding": encoding, "collate": collate, "ctype": ctype,
        "connection_limit": connection_limit, "allow_connections": allow_connections,
        "public_connect": public_connect, "owner_connect": owner_connect, "acl": None,
    }


def results(roles: Sequence[dict[str, Any]] = (), databases: Sequence[dict[str, Any]] = (),
            verifiers: dict[str, str | None] | None = None, can_read_authid: bool = True,
            connections: dict[str, int] | None = None, dependencies: dict[str, list[str]] | None = None,
            available: Sequence[str] = (), installed: dict[str, list[str]] | None = None,
            version: int = 150018, fingerprint: str = "fp-1", login_superuser: bool = True) -> dict[str, Any]:
    """What a transport returns for build_queries(), keyed by query name (``when`` handled by FakeTransport)."""
    data: dict[str, Any] = {
        "server": {"server_version_num": version, "current_user": "postgres", "superuser": login_superuser},
        "state": {"fingerprint": fingerprint, "state": {"roles": list(roles), "databases": list(databases)}},
        "can_read_authid": can_read_authid,
        "verifiers": verifiers or {},
        "connections": connections or {},
        "dependencies": dependencies or {},
        "available_extensions": list(available),
        "parameter_privileges": version >= 150000,
        "logging_grants": {},
    }
    for name, extensions in (installed or {}).items():
        data[f"db_ready:{name}"] = True
        data[f"extensions:{name}"] = list(extensions)
    return data


def specs(*services: dict[str, Any], options: Options | None = None):
    return parse_services(list(services), options or Options())


class FakeTransport(Transport):
    """Answers queries from prepared results (one dict per read, the last one repeated) and records calls.

    Like a real transport it honours ``when`` and runs nothing else; a query whose result is
    missing raises KeyError so a renamed or unexpected query fails the test (``db_ready:*``
    answers false unless prepared, like a database that does not exist). A TransportError
    given in place of a read's results is raised by that read.
    """

    def __init__(self, *reads: dict[str, Any], write_errors: Sequence[TransportError | None] = ()) -> None:
        self._reads = list(reads)
        self._write_errors = list(write_errors)
        self.read_calls: list[list[Query]] = []
        self.write_calls: list[list[Statement]] = []
        self.closed = False

    def read(self, queries: Sequence[Query]) -> dict[str, Any]:
        source = self._reads[min(len(self.read_calls), len(self._reads) - 1)]
        self.read_calls.append(list(queries))
        if isinstance(source, TransportError):
            raise source
        answered: dict[str, Any] = {}
        for query in queries:
            if query.when is not None and answered.get(query.when) is not True:
                continue
            if query.name.startswith("db_ready:"):
                answered[query.name] = source.get(query.name, False)
            else:
                answered[query.name] = source[query.name]
        return answered

    def write(self, statements: Sequence[Statement]) -> None:
        self.write_calls.append(list(statements))
        error = self._write_errors[len(self.write_calls) - 1] if len(self.write_calls) <= len(self._write_errors) else None
        if error is not None:
            raise error

    def close(self) -> None:
        self.closed = True
