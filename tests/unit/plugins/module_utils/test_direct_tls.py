"""The direct transport's TLS defaults and the advice it gives when TLS is why a connection failed."""

from __future__ import annotations

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.direct import (
    ConnectionParams,
    default_ssl_mode,
    is_local_host,
    tls_advice,
)


@pytest.mark.parametrize("host", ["", "/var/run/postgresql", "@abstract", "localhost", "LOCALHOST", "127.0.0.1",
                                  "127.8.9.10", "::1", "[::1]", "localhost,127.0.0.1"])
def test_local_hosts_default_to_prefer(host):
    assert is_local_host(host)
    assert default_ssl_mode(host) == "prefer"


@pytest.mark.parametrize("host", ["db.internal", "10.0.0.5", "192.0.2.2", "localhost.example.com", "2001:db8::1",
                                  "localhost,db.internal"])
def test_remote_hosts_default_to_verify_full(host):
    assert not is_local_host(host)
    assert default_ssl_mode(host) == "verify-full"
    assert ConnectionParams(host=host).kwargs("postgres")["sslmode"] == "verify-full"


def test_an_explicit_mode_and_rootcert_are_passed_on():
    kwargs = ConnectionParams(host="db.internal", ssl_mode="require", ssl_rootcert="/etc/ca.crt").kwargs("x")
    assert kwargs["sslmode"] == "require" and kwargs["sslrootcert"] == "/etc/ca.crt"
    assert "sslrootcert" not in ConnectionParams(host="db.internal").kwargs("x")


def test_advice_for_a_name_the_certificate_does_not_hold():
    advice = tls_advice('server certificate for "db.internal" does not match host name "10.0.0.5"',
                        ConnectionParams(host="10.0.0.5"))
    assert advice and "10.0.0.5" in advice and "connect by a name the certificate holds" in advice


def test_advice_for_a_missing_ca_file():
    advice = tls_advice('root certificate file "/root/.postgresql/root.crt" does not exist',
                        ConnectionParams(host="db.internal"))
    assert advice and "ssl_mode=verify-full" in advice and "set ssl_rootcert" in advice


def test_advice_for_a_foreign_ca_names_the_ca_file():
    advice = tls_advice("SSL error: certificate verify failed",
                        ConnectionParams(host="db.internal", ssl_rootcert="/tmp/other.crt"))
    assert advice and "not signed by CA /tmp/other.crt" in advice


def test_advice_for_a_server_without_tls_and_a_hostssl_only_server():
    assert "does not serve TLS" in tls_advice("server does not support SSL, but SSL was required",
                                              ConnectionParams(host="db.internal"))
    refused = 'no pg_hba.conf entry for host "10.0.0.9", user "u", database "d", no encryption'
    assert "accepts only TLS" in tls_advice(refused, ConnectionParams(host="db.internal", ssl_mode="disable"))


def test_no_advice_when_tls_is_not_the_cause():
    assert tls_advice('password authentication failed for user "postgres"', ConnectionParams(host="db")) is None
