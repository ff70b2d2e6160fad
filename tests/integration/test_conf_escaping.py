"""postgresql.conf lines from the postgresql_conf filter, read back by a real PostgreSQL 15.

pg_file_settings parses the configuration files on demand (without applying them), so it shows
exactly what the server would take from each line: a hostile value stays one value, and no
line the input tried to add (an hba_file) appears.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.microservices.postgres.plugins.filter.role_inputs import postgresql_conf
from tests.support.pgserver import PgServer

pytestmark = pytest.mark.integration

HOSTILE = {
    "msp_test.quote": "x' \nhba_file = '/tmp/evil_hba.conf",
    "msp_test.backslash": "C:\\new\\table\t\x01end",
    "msp_test.plain": "128MB",
}


def test_the_server_reads_each_value_back_unchanged():
    with PgServer(15, log_statements=False) as server:
        conf = server.data_dir / "postgresql.conf"
        with open(conf, "a", encoding="utf-8") as handle:
            handle.write(postgresql_conf(HOSTILE, "postgres_dev_server_settings"))
        rows = server.psql("SELECT pg_catalog.json_agg(pg_catalog.json_build_array(name, setting, error)) "
                           f"FROM pg_catalog.pg_file_settings WHERE sourcefile = '{conf}'")
    parsed = {name: (setting, error) for name, setting, error in json.loads(rows)}
    assert "hba_file" not in parsed
    for name, value in HOSTILE.items():
        assert parsed[name] == (value, None), name
