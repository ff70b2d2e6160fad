"""Compatibility proofs against a real PostgreSQL 15: its verifiers, our verifiers, our quoting.

About 3 s (one initdb), hence the ``integration`` marker; it is never skipped.
"""

from __future__ import annotations

import psycopg
import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.identifiers import (
    quote_ident,
    quote_literal,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.scram import (
    make_verifier,
    verifier_matches,
)
from tests.support.pgserver import PgServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    pg = PgServer(15, log_statements=False)
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="module")
def conn(server):
    with psycopg.connect(server.info.dsn(), autocommit=True) as connection:
        yield connection


def _stored(conn, role):
    return conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()[0]


@pytest.mark.parametrize("role,password", [("x", "secret"), ("y", "p\u00e4ss\u00a0w\u00f6rd\u00ad"), ("z", "\u0627\u0031")])
def test_postgresql_verifier_matches(conn, role, password):
    conn.execute("SET password_encryption = 'scram-sha-256'")
    conn.execute(f"CREATE ROLE {quote_ident(role)} PASSWORD {quote_literal(password)}")
    stored = _stored(conn, role)
    assert stored.startswith("SCRAM-SHA-256$4096:")
    assert verifier_matches(stored, password)
    assert not verifier_matches(stored, password.upper() + "!")


def test_our_verifier_is_stored_verbatim_and_logs_in(server, conn):
    verifier = make_verifier("I\u00adX-correct horse")
    conn.execute(f"CREATE ROLE {quote_ident('ours')} LOGIN PASSWORD {quote_literal(verifier)}")
    assert _stored(conn, "ours") == verifier
    with psycopg.connect(server.info.dsn(user="ours", password="IX-correct horse")) as login:
        assert login.execute("SELECT current_user").fetchone()[0] == "ours"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(server.info.dsn(user="ours", password="wrong"))


@pytest.mark.parametrize("text", ["plain", "it's", "back\\slash", "'\\'\\\\''", "$$dollar$$", "\u00e9\u00e8 \u2603"])
def test_quote_literal_round_trips(conn, text):
    assert conn.execute(f"SELECT {quote_literal(text)}::text").fetchone()[0] == text
    assert conn.execute(f"SELECT quote_literal({quote_literal(text)}::text)").fetchone()[0] == quote_literal(text)


@pytest.mark.parametrize("name", ["plain", 'we"ird', "Mixed Case", "select", "uuid-ossp"])
def test_quote_ident_round_trips(conn, name):
    cursor = conn.execute(f"SELECT 1 AS {quote_ident(name)}")
    assert cursor.description[0].name == name
