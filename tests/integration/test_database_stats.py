"""database_stats_info against real PostgreSQL 15 and 18: sizes, connections by state, replication,
and what a pg_monitor member and a plain role see."""

from __future__ import annotations

import psycopg
import pytest

from tests.integration.helpers import ident, lit, random_ascii_password

pytestmark = pytest.mark.integration

FQCN = "microservices.postgres.database_stats_info"
ROWS = 20000


def stats(runner, check: bool = False, login: dict | None = None, **options):
    """One module run (JSON callback); the task's result."""
    args = {**(login or runner.login_args()), **options}
    return runner._launch([{"name": "read statistics", FQCN: args}], [str(args.get("login_password") or "")],
                          check=check).wait()


@pytest.fixture
def filled_db(pg, names):
    """A database holding a table of ROWS rows, so its size is well above an empty one's."""
    database = names.db("stats")
    pg.psql(f"CREATE DATABASE {ident(database)}")
    pg.psql(f"CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, {ROWS}) g",
            dbname=database)
    return database


def test_sizes_and_connections_by_state_are_the_servers_figures(pg, runner, filled_db):
    """Two idle sessions and one idle in transaction on the database: counted by state; the size is
    pg_database_size()'s; no replication on a lone server; a named replica is not streaming; check
    mode reads just the same and nothing is changed."""
    dsn = pg.info.dsn(filled_db)
    with psycopg.connect(dsn, autocommit=True) as idle1, psycopg.connect(dsn, autocommit=True) as idle2, \
            psycopg.connect(dsn) as in_tx:
        in_tx.execute("SELECT 1")
        result = stats(runner, check=True, databases=[filled_db], replicas=["ghost-1"])
        assert idle1.execute("SELECT 1").fetchone() == (1,) and idle2.closed is False
    assert result.ok and result.changed is False, result.describe()
    (database,) = result.result["databases"]
    expected_size = int(pg.psql(f"SELECT pg_database_size({lit(filled_db)})").strip())
    assert database["name"] == filled_db
    assert abs(database["size_bytes"] - expected_size) < 65536, (database, expected_size)
    assert database["size_bytes"] > 1_000_000
    assert database["size_pretty"].endswith(("kB", "MB"))
    assert database["connections"] == {"total": 3, "by_state": {"idle": 2, "idle in transaction": 1}}
    assert database["connection_limit"] == -1
    assert result.result["total_size_bytes"] == database["size_bytes"]
    server = result.result["server"]
    assert server["version_num"] // 10000 == pg.info.version
    assert server["in_recovery"] is False and server["read_all_stats"] is True
    assert result.result["replication"] == []
    assert result.result["replicas"] == [{"name": "ghost-1", "streaming": False, "state": "not streaming",
                                          "sync_state": None, "client_addr": None, "lag_bytes": None,
                                          "replay_lag_seconds": None}]


def test_all_databases_without_filter_and_missing_database_named(pg, runner, filled_db):
    everything = stats(runner)
    assert everything.ok, everything.describe()
    listed = [item["name"] for item in everything.result["databases"]]
    assert "postgres" in listed and filled_db in listed
    assert "template0" not in listed and "template1" not in listed
    missing = stats(runner, databases=[filled_db, "no_such_db"])
    assert missing.failed and "database(s) not found: no_such_db" in missing.msg, missing.describe()


def test_pg_monitor_sees_everything_a_plain_role_sees_less(pg, runner, names, filled_db):
    """A pg_monitor member gets every figure; a plain role gets no size for a database it may not
    connect to and sees other roles' sessions counted under 'unknown'."""
    pg.psql(f"REVOKE CONNECT ON DATABASE {ident(filled_db)} FROM PUBLIC")
    logins = {}
    for base, grant in (("monitor", "pg_monitor"), ("plain", None)):
        role, password = names.role(base), random_ascii_password()
        pg.psql(f"CREATE ROLE {ident(role)} LOGIN PASSWORD {lit(password)}")
        if grant:
            pg.psql(f"GRANT {grant} TO {ident(role)}")
        logins[base] = {**runner.login_args(), "login_user": role, "login_password": password}
    with psycopg.connect(pg.info.dsn(filled_db), autocommit=True):
        monitor = stats(runner, login=logins["monitor"], databases=[filled_db])
        plain = stats(runner, login=logins["plain"], databases=[filled_db])
    assert monitor.ok and plain.ok, monitor.describe() + plain.describe()
    (seen,) = monitor.result["databases"]
    assert monitor.result["server"]["read_all_stats"] is True
    assert seen["size_bytes"] > 1_000_000 and seen["connections"] == {"total": 1, "by_state": {"idle": 1}}
    (hidden,) = plain.result["databases"]
    assert plain.result["server"]["read_all_stats"] is False
    assert hidden["size_bytes"] is None and hidden["size_pretty"] is None
    assert hidden["connections"] == {"total": 1, "by_state": {"unknown": 1}}
