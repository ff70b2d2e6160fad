"""playbooks/status.yml when the database pod cannot be read: the report says why, the run succeeds.

The shared deployments are left alone: the play is pointed at a namespace that has no database pod
(`-e postgres_<env>_namespace=...`), which is what a deleted or not yet scheduled pod looks like to
the report. Nothing is created, so there is nothing to put back.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .helpers import DEV, PROD, Deployment, flat, output, recap

EMPTY_NAMESPACE = "day2-status-no-pod"


def unreadable_report(deployment: Deployment, tmp_path: Path, *args: str) -> tuple[str, str]:
    """The run's output on one line (helpers.flat) and the report file's text ("" when none was written)."""
    report_file = tmp_path / "status.txt"
    proc = deployment.run("status", *args, extra_vars={
        f"postgres_{deployment.environment}_namespace": EMPTY_NAMESPACE,
        "status_report_file": str(report_file),
    })
    text = output(proc)
    assert proc.returncode == 0, text[-6000:]
    counters = recap(proc)[deployment.host]
    assert counters["changed"] == 0 and counters["failed"] == 0, text[-3000:]
    return flat(proc), report_file.read_text() if report_file.exists() else ""


def assert_unreadable(report: str) -> None:
    match = re.search(r"^Databases: could not be read: (\S.*)$", report, re.MULTILINE)
    assert match, report
    assert "Server: PostgreSQL" not in report, report
    # The reason is the module's own message, in one line, naming what it looked for.
    assert len(match.group(1)) > 10, match.group(1)
    # The rest of the report is still there.
    assert "Volumes (claims of the pods" in report and "Last backup:" in report, report


@DEV
def test_dev_report_when_the_pod_cannot_be_read(dev_deployment: Deployment, tmp_path: Path):
    _output, report = unreadable_report(dev_deployment, tmp_path)
    assert report.startswith(f"PostgreSQL status of dev-postgres (dev), {EMPTY_NAMESPACE}/postgresql, at "), report
    assert_unreadable(report)
    assert re.search(r"postgresql-0", report.split("Databases: could not be read: ")[1].splitlines()[0]), report
    assert "StatefulSet postgresql: 0/0 ready" in report, report


@DEV
def test_dev_report_when_the_pod_cannot_be_read_in_check_mode(dev_deployment: Deployment, tmp_path: Path):
    text, report = unreadable_report(dev_deployment, tmp_path, "--check")
    # Check mode writes no file; the printed report says the same.
    assert not report
    assert "Databases: could not be read: " in text, text[-4000:]


@PROD
def test_prod_report_when_the_master_cannot_be_read(prod_deployment: Deployment, tmp_path: Path):
    _output, report = unreadable_report(prod_deployment, tmp_path)
    if not report:
        pytest.fail("no report file written")
    assert "Cluster: postgresql postgres-cluster status not found" in report, report
    assert_unreadable(report)
