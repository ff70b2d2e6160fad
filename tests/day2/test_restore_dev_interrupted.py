"""playbooks/restore.yml -i inventories/dev stopped in each phase: the live databases stay exactly as they were.

Each phase of a restore takes an advisory lock of its own first (restore.LOCK_CLASS, phase number). A test
holds one of them from a session of its own, so the restore waits at the start of that phase, seen in
pg_stat_activity by its application_name; then it is stopped there: psql's backend killed (the exec ends with
an error), restore_timeout run out, or the whole playbook killed. Afterwards the live data must have the
fingerprint it had before, the message must name the phase and what is left, and cleanup=true must remove it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.restore import LOCK_CLASS, PHASES

from .helpers import DEV, NAMESPACE, Deployment, flat, kubectl_path, output, psql, recap
from .test_restore_dev import TABLES, _count, _fingerprint, _sql_as_owner, probe_data  # noqa: F401  pylint: disable=unused-import
from tests.roles.helpers import VENV_BIN, base_env
from tests.day2.helpers import INVENTORIES, PLAYBOOKS


class PhaseLock:
    """A session of the test holding the advisory lock of one restore phase until the `with` block ends."""

    def __init__(self, deployment: Deployment, phase: str) -> None:
        self.deployment = deployment
        self.key = PHASES.index(phase) + 1
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> "PhaseLock":
        argv = [kubectl_path(), "--kubeconfig", str(self.deployment.kubeconfig), "exec", "-i", "-n", NAMESPACE,
                "postgresql-0", "-c", "postgresql", "--", "psql", "-X", "-At", "-U", "postgres", "-d", "postgres"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                                     stderr=subprocess.PIPE, text=True)
        self.proc.stdin.write(f"SELECT pg_advisory_lock({LOCK_CLASS}, {self.key}), 'locked';\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "|locked"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _waiting(dev: Deployment, phase: str) -> str:
    """The pid of the restore's session of ``phase`` once it waits for its lock ('' until then)."""
    return psql(dev, "postgresql-0", "postgresql", "postgres",
                "SELECT pid FROM pg_stat_activity WHERE application_name LIKE "
                f"'microservices.postgres restore {phase} %' AND wait_event_type = 'Lock'")


def _start_restore(dev: Deployment, backup: Path, **extra: object) -> subprocess.Popen[str]:
    env = base_env(K8S_AUTH_KUBECONFIG=str(dev.kubeconfig), KUBECONFIG=str(dev.kubeconfig))
    given = {"backup_file": backup, "confirm_restore": "true", **extra}
    variables = " ".join(f"{key}={value}" for key, value in given.items())
    return subprocess.Popen([str(VENV_BIN / "ansible-playbook"), str(PLAYBOOKS / "restore.yml"), "-i",  # pylint: disable=consider-using-with
                             str(INVENTORIES["dev"]), "-e", variables], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for(dev: Deployment, phase: str, run: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 300
    while not (pid := _waiting(dev, phase)):
        assert run.poll() is None, f"the restore ended before it reached {phase}: {run.stdout.read()[-4000:]}"
        assert time.monotonic() < deadline, f"the restore never waited in {phase}"
        time.sleep(0.5)
    return pid


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every process it started (ansible's workers and the module may leave its group)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, changed = {pid}, True
    while changed:
        grown = tree | {child for child, parent in parents.items() if parent in tree}
        changed, tree = grown != tree, grown
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def cleaned(dev_deployment: Deployment) -> Iterator[None]:
    """Whatever a test leaves (it may fail half-way), the next one starts without restore leftovers."""
    yield
    dev_deployment.run("restore", extra_vars={"cleanup": True, "confirm_restore": True})


def _leftovers(dev: Deployment) -> list[str]:
    return psql(dev, "postgresql-0", "postgresql", "postgres",
                "SELECT datname FROM pg_database WHERE datname ~ '__(restoring|replaced)_' ORDER BY 1").split()


def _backup_and_damage(dev: Deployment, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    backup_dir = tmp_path / "backups"
    proc = dev.run("backup", extra_vars={"backup_dir": str(backup_dir)})
    assert proc.returncode == 0, output(proc)[-6000:]
    (backup,) = backup_dir.glob("dev-postgres-2*.sql.gz")
    _sql_as_owner(dev, "userdb", "DELETE FROM restore_probe_orders WHERE id % 2 = 0")
    return backup, {database: _fingerprint(dev, database) for database in TABLES}


def _cleanup(dev: Deployment) -> str:
    proc = dev.run("restore", extra_vars={"cleanup": True, "confirm_restore": True})
    assert proc.returncode == 0, output(proc)[-6000:]
    assert _leftovers(dev) == []
    return flat(proc)


@DEV
@pytest.mark.parametrize("phase", PHASES)
def test_a_restore_whose_psql_is_killed_in_any_phase_changes_nothing_live(dev_deployment: Deployment, probe_data, cleaned,
                                                                          tmp_path: Path, phase: str) -> None:
    backup, live = _backup_and_damage(dev_deployment, tmp_path)
    with PhaseLock(dev_deployment, phase):
        run = _start_restore(dev_deployment, backup)
        pid = _wait_for(dev_deployment, phase, run)
        psql(dev_deployment, "postgresql-0", "postgresql", "postgres", f"SELECT pg_terminate_backend({pid})")
        text = " ".join(run.communicate(timeout=600)[0].split())
    assert run.returncode != 0, text[-4000:]
    assert f"restore failed in phase {phase}: {phase}: psql in pod 'postgresql-0' stopped with exit code" in text, text[-4000:]
    assert "The databases the services use are unchanged." in text, text[-4000:]
    left = re.search(r"Left to clean up: ([a-z0-9_, ]+) \(run again with cleanup=true\)", text)
    assert left and "__restoring_" in left.group(1), text[-4000:]
    assert left.group(1).split(", ") == _leftovers(dev_deployment)
    assert {database: _fingerprint(dev_deployment, database) for database in TABLES} == live
    cleaned = _cleanup(dev_deployment)
    assert f"Dropped {left.group(1)}" in cleaned, cleaned[-3000:]


@DEV
def test_a_restore_out_of_time_in_the_swap_names_restore_timeout_and_never_swaps_later(
        dev_deployment: Deployment, probe_data, cleaned, tmp_path: Path) -> None:
    backup, live = _backup_and_damage(dev_deployment, tmp_path)
    with PhaseLock(dev_deployment, "swap"):
        run = _start_restore(dev_deployment, backup, restore_timeout=60)
        _wait_for(dev_deployment, "swap", run)
        text = " ".join(run.communicate(timeout=600)[0].split())
    assert run.returncode != 0
    assert re.search(r"restore failed in phase swap: swap: psql in pod 'postgresql-0' did not finish within 60 s "
                     r"\(restore_timeout\); it was stopped\. The databases the services use are unchanged\.", text), text[-4000:]
    time.sleep(3)
    assert _waiting(dev_deployment, "swap") == ""
    assert {database: _fingerprint(dev_deployment, database) for database in TABLES} == live
    _cleanup(dev_deployment)


@DEV
def test_a_playbook_killed_while_the_swap_waits_never_swaps(dev_deployment: Deployment, probe_data, cleaned,
                                                            tmp_path: Path) -> None:
    backup, live = _backup_and_damage(dev_deployment, tmp_path)
    with PhaseLock(dev_deployment, "swap"):
        run = _start_restore(dev_deployment, backup)
        _wait_for(dev_deployment, "swap", run)
        _kill_tree(run.pid)
        run.communicate(timeout=60)
    deadline = time.monotonic() + 60
    while _waiting(dev_deployment, "swap") or psql(
            dev_deployment, "postgresql-0", "postgresql", "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'microservices.postgres restore swap %'") != "0":
        assert time.monotonic() < deadline, "the swap's session outlived its killed playbook"
        time.sleep(0.5)
    assert {database: _fingerprint(dev_deployment, database) for database in TABLES} == live
    assert not [name for name in _leftovers(dev_deployment) if "__replaced_" in name]
    _cleanup(dev_deployment)


@DEV
def test_a_password_rotated_after_the_backup_survives_the_restore(dev_deployment: Deployment, probe_data, cleaned,
                                                                  tmp_path: Path) -> None:
    backup, _live = _backup_and_damage(dev_deployment, tmp_path)
    rotated = dev_deployment.run("rotate_password", extra_vars={"service": "userdb"})
    assert rotated.returncode == 0, output(rotated)[-6000:]
    proc = dev_deployment.run("restore", extra_vars={"backup_file": str(backup), "confirm_restore": True})
    assert proc.returncode == 0, output(proc)[-6000:]
    assert recap(proc)[dev_deployment.host]["failed"] == 0
    # Logs in as userservice with the password now in its Secret (the rotated one, not the backup's).
    assert _count(dev_deployment, "userdb") == "5000"
    assert "Owner passwords are those of Secret postgresql-credentials" in flat(proc)
    _cleanup(dev_deployment)
