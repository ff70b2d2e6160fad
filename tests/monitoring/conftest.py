"""Fixtures of the monitoring tests: the role's rendered output, promtool, and a live exporter scrape.

* ``rendered``: roles/postgres_monitoring run in render-only mode by ansible-playbook, with the
  role's defaults and two service databases; the folder with the rules file and the dashboard.
* ``promtool``: the real promtool (Prometheus 3.16), built from the Go module proxy.
* ``scrape``: the samples of one scrape of the real postgres_exporter against PostgreSQL 15, with
  the labels the scrape configuration adds (namespace, cluster, pod, job, instance).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.monitoring.live import Exporter, Sample, archive_settings, parse_exposition, prepare_server
from tests.monitoring.tools import tool
from tests.support.pgserver import PgServer, PgServerError

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "postgres_monitoring"
DATABASES = ["userdb", "paymentdb"]
NAMESPACE = "microservices"
CLUSTER = "postgres-cluster"
TARGET = {"namespace": NAMESPACE, "cluster": CLUSTER, "pod": f"{CLUSTER}-0", "job": f"{CLUSTER}-metrics",
          "instance": "10.244.0.10:9187"}
"""What Prometheus adds to every series of the exporter target of pod -0 (ServiceMonitor + relabelling)."""


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The render-only output of the role with its defaults."""
    out = tmp_path_factory.mktemp("monitoring-render")
    playbook = out / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Render the monitoring", "hosts": "localhost", "gather_facts": False,
        "roles": [{"role": "microservices.postgres.postgres_monitoring"}]}]))
    extra = {"postgres_monitoring_render_only": True, "postgres_monitoring_render_dir": str(out / "files"),
             "postgres_monitoring_databases": DATABASES}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook), "-e", json.dumps(extra)],
        cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "files"


@pytest.fixture(scope="session")
def rules(rendered: Path) -> dict:
    return yaml.safe_load((rendered / "postgres-alerts.rules.yml").read_text())


@pytest.fixture(scope="session")
def dashboard(rendered: Path) -> dict:
    return json.loads((rendered / "postgres-dashboard.json").read_text())


@pytest.fixture(scope="session")
def promtool() -> Path:
    return tool("promtool", "promtool")


@pytest.fixture(scope="session")
def scrape() -> list[Sample]:
    """One scrape of the real exporter, each sample with the scrape configuration's target labels."""
    exporter_binary = tool("postgres_exporter", "postgres_exporter")
    exporter_args = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["postgres_monitoring__exporter_args"]
    archive_dir = Path(tempfile.mkdtemp(prefix="monitoring-archive-"))
    shutil.chown(archive_dir, "postgres")
    server = PgServer(15, settings=archive_settings(archive_dir))
    try:
        server.start()
    except PgServerError as exc:
        pytest.skip(f"SKIPPED LOUDLY: no PostgreSQL 15 for the live scrape: {exc}")
    exporter = None
    try:
        password = prepare_server(server, DATABASES, archive_dir)
        exporter = Exporter(exporter_binary, server, password, exporter_args)
        text = exporter.scrape()
    finally:
        if exporter is not None:
            exporter.stop()
        server.stop()
        shutil.rmtree(archive_dir, ignore_errors=True)
    return [Sample(s.name, {**s.labels, **TARGET}, s.value) for s in parse_exposition(text)]
