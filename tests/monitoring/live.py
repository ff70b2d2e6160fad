"""A real postgres_exporter scraping a real throwaway PostgreSQL, as the prod sidecar would.

The exporter logs in as a role of its own with only ``pg_monitor`` (no superuser), with the
flags the role needs beyond the exporter's defaults (roles/postgres_monitoring/vars/main.yml).
The server gets what makes the series exist: the service databases, archiving with a real
archive command and a switched segment, and a physical replication slot without a replica.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterable, NamedTuple

from tests.support.pgserver import PgServer, free_port

EXPORTER_ROLE = "metrics_exporter"
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: str


def parse_exposition(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition (comments and metadata lines skipped)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"not an exposition line: {line!r}")
        samples.append(Sample(match.group(1), dict(_LABEL.findall(match.group(2) or "")), match.group(3)))
    return samples


def prepare_server(server: PgServer, databases: Iterable[str], archive_dir: Path) -> str:
    """Create the exporter's role and the objects whose series the rules use; return the role's password."""
    password = secrets.token_urlsafe(18)
    server.psql(f"CREATE ROLE {EXPORTER_ROLE} LOGIN PASSWORD '{password}' IN ROLE pg_monitor")
    for database in databases:
        server.psql(f'CREATE DATABASE "{database}"')
    server.psql("SELECT pg_create_physical_replication_slot('postgres_cluster_1')")
    server.psql("CREATE TABLE archived_once AS SELECT 1 AS x")
    server.psql("SELECT pg_switch_wal()")
    deadline = time.monotonic() + 10
    while not any(archive_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return password


def archive_settings(archive_dir: Path) -> dict[str, str]:
    """Real WAL archiving into a local folder, so pg_stat_archiver counts a success."""
    return {"archive_mode": "on", "archive_command": f"cp %p {archive_dir}/%f", "wal_level": "replica"}


class Exporter:
    """postgres_exporter as a child process; ``scrape()`` reads /metrics once."""

    def __init__(self, binary: Path, server: PgServer, password: str, args: list[str]) -> None:
        assert server.info is not None
        self.port = free_port()
        env = {**os.environ,
               "DATA_SOURCE_URI": f"127.0.0.1:{server.info.port}/postgres?sslmode=disable",
               "DATA_SOURCE_USER": EXPORTER_ROLE, "DATA_SOURCE_PASS": password}
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [str(binary), f"--web.listen-address=127.0.0.1:{self.port}", *args],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def scrape(self, timeout: float = 20.0) -> str:
        """The exposition text, once the exporter answers and reached PostgreSQL (pg_up 1)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres_exporter exited: {self.process.stderr.read()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
                    last = response.read().decode()
                if re.search(r"^pg_up 1$", last, re.MULTILINE):
                    return last
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"postgres_exporter never reported pg_up 1 within {timeout} s; last scrape:\n{last[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stderr.close()
