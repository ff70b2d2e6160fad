"""The psql-script transport against real PostgreSQL 15 and 18.

The ``kubernetes`` transport is this transport with a runner that execs into a pod; here the
runner starts the same psql command locally, pointed at the server's socket, so the scripts
themselves are proved on both server versions without a cluster. Exec through the Kubernetes
API is proved against the test bed in tests/roles.
"""

from __future__ import annotations

import os
import subprocess
from typing import Sequence

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.catalog import (
    GUARD_SQLSTATE,
    lock_sql,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.converge import (
    ConvergeError,
    converge,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import (
    Options,
    parse_services,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.direct import (
    ConnectionParams,
    DirectTransport,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.psql import (
    ExecResult,
    PsqlTransport,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import (
    Statement,
    TransportError,
)
from tests.support.pgserver import PgServer

pytestmark = pytest.mark.integration


class LocalPsql:
    """Runs psql on this machine against the server's socket, counting runs (one per exec in a pod)."""

    def __init__(self, server: PgServer) -> None:
        info = server.info
        self.env = {**os.environ, "PGHOST": info.socket_dir, "PGPORT": str(info.port),
                    "PATH": f"{info.bindir}:{os.environ['PATH']}"}
        self.runs = 0
        self.before_run = None

    def __call__(self, argv: Sequence[str], stdin: str) -> ExecResult:
        self.runs += 1
        if self.before_run:
            self.before_run(self.runs)
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, env=self.env, check=False)
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module", params=[15, 18], ids=["pg15", "pg18"])
def server(request):
    with PgServer(request.param) as pg:
        yield pg


def _services(prefix: str, count: int, extensions: Sequence[str] = ()) -> list[dict]:
    return [
        {"database": f"{prefix}db{i}", "owner": f"{prefix}svc{i}", "password": f"{prefix}-pw-{i}",
         "extensions": list(extensions) if i == 0 else []}
        for i in range(count)
    ]


def _direct(server: PgServer) -> DirectTransport:
    info = server.info
    return DirectTransport(ConnectionParams(host=info.host, port=info.port, user=info.user, password=info.password))


def test_one_run_per_read_and_write_and_same_result_as_direct(server):
    options = Options()
    specs = parse_services(_services("pt", 5, ["pg_trgm"]), options)
    runner = LocalPsql(server)
    transport = PsqlTransport(runner, "postgres", "postgres")

    created = converge(specs, transport, options, check_mode=False)
    assert runner.runs == 2, "one psql run for the read, one for the whole write batch"
    assert [s["status"] for s in created["services"]] == ["created"] * 5

    again = converge(specs, transport, options, check_mode=False)
    assert runner.runs == 3, "a no-op run is the read alone"
    assert again["changed"] is False and again["statements"] == []

    direct = _direct(server)
    try:
        assert converge(specs, direct, options, check_mode=False)["changed"] is False
    finally:
        direct.close()
    owners = server.psql("SELECT string_agg(datname || '=' || pg_get_userbyid(datdba), ',' ORDER BY datname) "
                         "FROM pg_database WHERE datname LIKE 'ptdb%'").strip()
    assert owners == ",".join(f"ptdb{i}=ptsvc{i}" for i in range(5))
    assert server.psql("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'", dbname="ptdb0").strip() == "pg_trgm"


def test_check_mode_runs_only_the_read_and_lists_what_the_write_runs(server):
    options = Options()
    specs = parse_services(_services("pc", 2), options)
    runner = LocalPsql(server)
    transport = PsqlTransport(runner, "postgres", "postgres")
    planned = converge(specs, transport, options, check_mode=True)
    assert runner.runs == 1
    assert server.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'pcdb%'").strip() == "0"
    applied = converge(specs, transport, options, check_mode=False)
    assert planned["statements"] == applied["statements"] and applied["statements"]


def test_drift_repaired_through_psql(server):
    options = Options()
    specs = parse_services(_services("pd", 2, ["pg_trgm"]), options)
    transport = PsqlTransport(LocalPsql(server), "postgres", "postgres")
    converge(specs, transport, options, check_mode=False)
    server.psql("ALTER DATABASE pddb1 OWNER TO pdsvc0; GRANT CONNECT ON DATABASE pddb1 TO PUBLIC; "
                "ALTER ROLE pdsvc1 PASSWORD 'changed-by-hand'")
    server.psql("DROP EXTENSION pg_trgm", dbname="pddb0")
    repaired = converge(specs, transport, options, check_mode=False)
    assert sorted(repaired["statements"]) == sorted([
        'ALTER DATABASE "pddb1" OWNER TO "pdsvc1"',
        'REVOKE CONNECT ON DATABASE "pddb1" FROM PUBLIC',
        "ALTER ROLE \"pdsvc1\" PASSWORD '<redacted>'",
        'CREATE EXTENSION IF NOT EXISTS "pg_trgm"',
    ])
    assert converge(specs, transport, options, check_mode=False)["changed"] is False


def test_write_stops_at_the_first_error_and_names_its_index(server):
    transport = PsqlTransport(LocalPsql(server), "postgres", "postgres")
    statements = [
        Statement(lock_sql(), lock_sql(), None, reported=False),
        Statement('CREATE ROLE "pe_first"', 'CREATE ROLE "pe_first"', "x"),
        Statement('CREATE ROLE "pe_first"', 'CREATE ROLE "pe_first"', "x"),
        Statement('CREATE ROLE "pe_never"', 'CREATE ROLE "pe_never"', "x"),
    ]
    with pytest.raises(TransportError) as caught:
        transport.write(statements)
    assert caught.value.index == 2
    assert caught.value.sqlstate == "42710"
    assert "already exists" in caught.value.message
    roles = server.psql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'pe_%'")
    assert roles.strip() == "pe_first"


def test_a_change_between_read_and_write_trips_the_guard_and_the_run_starts_over(server):
    options = Options()
    specs = parse_services(_services("pg", 2), options)
    runner = LocalPsql(server)

    def concurrent_change(run: int) -> None:
        if run == 2:
            server.psql('CREATE ROLE "pgsvc0" LOGIN')

    runner.before_run = concurrent_change
    result = converge(specs, PsqlTransport(runner, "postgres", "postgres"), options, check_mode=False)
    assert runner.runs == 4, "read, write (guard trips), read again, write"
    assert 'CREATE ROLE "pgsvc0" LOGIN' not in " ".join(result["statements"])
    assert server.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'pgdb%'").strip() == "2"


def test_runs_that_keep_losing_the_race_give_up_with_nothing_changed(server):
    options = Options()
    specs = parse_services(_services("pq", 1), options)
    runner = LocalPsql(server)
    toggles = {2: 'CREATE ROLE "pqsvc0" NOLOGIN', 4: 'ALTER ROLE "pqsvc0" LOGIN', 6: 'ALTER ROLE "pqsvc0" NOLOGIN'}
    runner.before_run = lambda run: run in toggles and server.psql(toggles[run])
    with pytest.raises(ConvergeError, match="kept changing") as caught:
        converge(specs, PsqlTransport(runner, "postgres", "postgres"), options, check_mode=False)
    assert caught.value.applied == []
    assert runner.runs == 6, f"three attempts of read + write, each write refused by the guard ({GUARD_SQLSTATE})"
    assert server.psql("SELECT count(*) FROM pg_database WHERE datname = 'pqdb0'").strip() == "0"


def test_connect_roles_keep_connect_while_public_loses_it(server):
    options = Options()
    server.psql("CREATE ROLE pk_pooler LOGIN PASSWORD 'pooler-pw'; CREATE ROLE pk_other LOGIN PASSWORD 'other-pw'")
    services = [dict(_services("pk", 1)[0], connect_roles=["pk_pooler"])]
    specs = parse_services(services, options)
    transport = PsqlTransport(LocalPsql(server), "postgres", "postgres")
    first = converge(specs, transport, options, check_mode=False)
    assert 'GRANT CONNECT ON DATABASE "pkdb0" TO "pk_pooler"' in first["statements"]
    server.psql('REVOKE CONNECT ON DATABASE pkdb0 FROM pk_pooler')
    repaired = converge(specs, transport, options, check_mode=False)
    assert repaired["statements"] == ['GRANT CONNECT ON DATABASE "pkdb0" TO "pk_pooler"']
    assert converge(specs, transport, options, check_mode=False)["changed"] is False
    grantees = server.psql("SELECT string_agg(pg_get_userbyid(a.grantee), ',' ORDER BY 1) FROM pg_database d, "
                           "aclexplode(d.datacl) a WHERE d.datname = 'pkdb0' AND a.privilege_type = 'CONNECT'")
    assert sorted(grantees.strip().split(",")) == ["pk_pooler", "pksvc0"]
