"""The dev restore's phases for real on PostgreSQL 15, psql and pg_dumpall run locally (tests/integration/local_stream.py):
a round trip row for row, live roles and passwords untouched, and a copy that does not verify never swapped in."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.dump import take_backup
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import backup_name
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.restore import (
    RestoreError,
    restore_backup,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.staging import stamp
from tests.support.pgserver import PgServer

from .local_stream import LocalStream

FINGERPRINT = "SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM orders t"


@pytest.fixture
def server() -> Iterator[PgServer]:
    with PgServer(15, log_statements=False) as pg:
        pg.psql("CREATE ROLE userservice LOGIN PASSWORD 'at-backup-time'")
        pg.psql("CREATE DATABASE userdb OWNER userservice")
        pg.psql("REVOKE CONNECT ON DATABASE userdb FROM PUBLIC; GRANT CONNECT ON DATABASE userdb TO userservice")
        pg.psql("CREATE TABLE orders (id int PRIMARY KEY, note text); ALTER TABLE orders OWNER TO userservice;"
                "INSERT INTO orders SELECT g, E'row\\t' || g || E'\\n\\\\.' FROM generate_series(1, 20000) g", dbname="userdb")
        yield pg


def _backup(pg: PgServer, directory: Path) -> Path:
    return take_backup(LocalStream(pg.info), directory / backup_name("dev", datetime.now(timezone.utc)), pg.info.user).path


def test_round_trip_row_for_row_keeping_the_live_roles_and_the_old_database(server: PgServer, tmp_path: Path) -> None:
    before = server.psql(FINGERPRINT, dbname="userdb")
    backup = _backup(server, tmp_path)
    server.psql("DELETE FROM orders WHERE id % 3 = 0", dbname="userdb")
    server.psql("ALTER ROLE userservice PASSWORD 'rotated-after'")
    verifier = server.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'userservice'")
    when = stamp(datetime.now(timezone.utc))
    result = restore_backup(LocalStream(server.info), backup, server.info.user, when, tmp_path / "pre.sql.gz")
    assert server.psql(FINGERPRINT, dbname="userdb") == before
    assert server.psql(FINGERPRINT, dbname=f"userdb__replaced_{when}").startswith("13334 ")
    assert result.kept == [f"userdb__replaced_{when}"] and result.row_counts == {"userdb": {"public.orders": 20000}}
    assert server.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'userservice'") == verifier
    acl = "SELECT string_agg(a::text, ',' ORDER BY a::text) FROM pg_database, unnest(datacl) a WHERE datname = '{}'"
    assert server.psql(acl.format("userdb")).strip() == server.psql(acl.format(f"userdb__replaced_{when}")).strip() == (
        "=T/userservice,userservice=CTc/userservice")
    assert server.psql("SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'userdb'").strip() == "userservice"
    assert result.safety_dump.path.is_file()


def test_a_copy_that_does_not_verify_is_never_swapped_in(server: PgServer, tmp_path: Path) -> None:
    backup = _backup(server, tmp_path)
    server.psql("DELETE FROM orders WHERE id > 100", dbname="userdb")
    live = server.psql(FINGERPRINT, dbname="userdb")
    when = stamp(datetime.now(timezone.utc))

    def damage_the_copy(argv) -> None:
        if any("restore verify" in arg for arg in argv):
            server.psql("DELETE FROM orders WHERE id = 7", dbname=f"userdb__restoring_{when}")

    with pytest.raises(RestoreError) as info:
        restore_backup(LocalStream(server.info, before=damage_the_copy), backup, server.info.user, when,
                       tmp_path / "pre.sql.gz")
    assert info.value.phase == "verify" and "userdb: table public.orders has 19999 rows, the backup 20000" in str(info.value)
    assert info.value.leftovers == [f"userdb__restoring_{when}"]
    assert server.psql(FINGERPRINT, dbname="userdb") == live
