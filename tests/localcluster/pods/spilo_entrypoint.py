"""Spilo's environment contract, for a Zalando cluster pod run as a local process: real Patroni.

Reads what the operator puts in the pod's environment the way Spilo documents it (SCOPE, PGROOT,
PGVERSION, PGUSER_/PGPASSWORD_SUPERUSER and _STANDBY, POD_IP, POD_NAMESPACE, APIPORT,
KUBERNETES_SCOPE_LABEL/ROLE_LABEL/LABELS/USE_CONFIGMAPS, SPILO_CONFIGURATION, ALLOW_NOSSL),
writes a Patroni configuration with the Kubernetes DCS against the cluster's API server, a
self-signed server certificate as Spilo makes when none is given, and execs Patroni. Patroni then
does what it does in Spilo: elects the leader, labels the pods, keeps the Endpoints, bootstraps
the replicas with pg_basebackup and streams to them.

Not Spilo: no WAL-E/WAL-G archiving, no PAM (the ``+zalandos`` rules), no cron; post_init makes
only the roles the operator needs (``admin``, ``zalandos``), not Spilo's extensions and schemas.
Run by ``launch.py`` inside the pod's namespaces as the container user, with Patroni importable
from ``PYTHONPATH``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """SPILO_CONFIGURATION is merged into the generated configuration, nested keys included."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _certificate(folder: Path, address: str) -> tuple[Path, Path]:
    from cryptography import x509  # noqa: PLC0415 - only where a pod starts
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    cert_file, key_file = folder / "server.crt", folder / "server.key"
    if cert_file.exists() and key_file.exists():
        return cert_file, key_file
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spilo")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_file.touch(mode=0o600)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


# The roles Spilo's post_init makes on a new cluster: the operator grants its users the team admin
# role (``team_admin_role``, ``admin``) and cannot create them without it.
POST_INIT_SQL = "CREATE ROLE admin CREATEDB NOLOGIN; CREATE ROLE zalandos CREATEDB NOLOGIN;"


def _post_init(folder: Path) -> Path:
    """Patroni runs this once, on the new leader, with a connection string as its argument."""
    script = folder / "post_init.sh"
    script.write_text(f'#!/bin/sh\nexec psql -v ON_ERROR_STOP=1 -d "$1" -c "{POST_INIT_SQL}"\n')
    script.chmod(0o700)
    return script


def _hba(env: dict[str, str]) -> list[str]:
    standby = env.get("PGUSER_STANDBY", "standby")
    no_ssl = env.get("ALLOW_NOSSL", "").lower() in ("true", "1")
    rules = [
        "local all all trust",
        "host all all 127.0.0.1/32 md5",
        "host all all ::1/128 md5",
        f"local replication {standby} trust",
        f"hostssl replication {standby} all md5",
    ]
    if no_ssl:
        return [*rules, "host all all all md5"]
    return [*rules, "hostnossl all all all reject", "hostssl all all all md5"]


def configuration(env: dict[str, str]) -> dict[str, Any]:
    pgroot = Path(env.get("PGROOT", "/home/postgres/pgdata/pgroot"))
    address = env["POD_IP"]
    cert, key = _certificate(pgroot.parent / "certs", address)
    labels = json.loads(env.get("KUBERNETES_LABELS") or '{"application": "spilo"}')
    config: dict[str, Any] = {
        "scope": env["SCOPE"],
        "name": env.get("HOSTNAME", address),
        "restapi": {"listen": f"0.0.0.0:{env.get('APIPORT', '8008')}", "connect_address": f"{address}:{env.get('APIPORT', '8008')}"},
        "kubernetes": {
            "namespace": env.get("POD_NAMESPACE", "default"),
            "labels": labels,
            "scope_label": env.get("KUBERNETES_SCOPE_LABEL", "cluster-name"),
            "role_label": env.get("KUBERNETES_ROLE_LABEL", "spilo-role"),
            # Patroni 4 calls the leader "primary"; the operator selects spilo-role=master, which
            # is what Spilo configures.
            "leader_label_value": env.get("KUBERNETES_LEADER_LABEL_VALUE", "master"),
            "standby_leader_label_value": env.get("KUBERNETES_STANDBY_LEADER_LABEL_VALUE", "master"),
            "use_endpoints": env.get("KUBERNETES_USE_CONFIGMAPS", "").lower() != "true",
            "pod_ip": address,
            "ports": [{"name": "postgresql", "port": 5432}],
            "bypass_api_service": True,
        },
        "bootstrap": {
            "dcs": {
                "ttl": 30, "loop_wait": 10, "retry_timeout": 10, "maximum_lag_on_failover": 33554432,
                "postgresql": {
                    "use_pg_rewind": True, "use_slots": True,
                    "parameters": {"wal_level": "hot_standby", "hot_standby": "on", "wal_log_hints": "on"},
                },
            },
            "initdb": [{"auth-host": "md5"}, {"auth-local": "trust"}, {"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            "post_init": str(_post_init(pgroot.parent)),
        },
        "postgresql": {
            "listen": "*:5432",
            "connect_address": f"{address}:5432",
            "data_dir": str(pgroot / "data"),
            "bin_dir": env["PG_BINDIR"],
            "pgpass": str(pgroot.parent / "pgpass"),
            "authentication": {
                "superuser": {"username": env.get("PGUSER_SUPERUSER", "postgres"), "password": env.get("PGPASSWORD_SUPERUSER", "")},
                "replication": {"username": env.get("PGUSER_STANDBY", "standby"), "password": env.get("PGPASSWORD_STANDBY", "")},
            },
            "parameters": {"ssl": "on", "ssl_cert_file": str(cert), "ssl_key_file": str(key), "unix_socket_directories": "/var/run/postgresql"},
            "pg_hba": _hba(env),
        },
    }
    spilo = json.loads(env.get("SPILO_CONFIGURATION") or "{}")
    return _merge(config, spilo)


def main() -> None:
    env = dict(os.environ)
    config = configuration(env)
    target = Path(env.get("PGROOT", "/home/postgres/pgdata/pgroot")).parent / "postgres.yml"
    target.touch(mode=0o600)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    os.execv(sys.executable, [sys.executable, "-m", "patroni", str(target)])


if __name__ == "__main__":
    main()
