"""Running the day-2 playbooks (playbooks/<name>.yml) against a deployed environment in kubesim."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.roles.helpers import REPO_ROOT, VENV_BIN, base_env, kubectl, kubectl_json, kubectl_path, output, recap
from tests.roles.prod_helpers import FAST, FIXTURES

PLAYBOOKS = REPO_ROOT / "playbooks"
INVENTORIES = {"dev": REPO_ROOT / "inventories" / "dev", "prod": REPO_ROOT / "inventories" / "prod"}
HOSTS = {"dev": "dev-postgres", "prod": "prod-postgres"}
NAMESPACE = "microservices"
# Marks of the tests that use dev_deployment / prod_deployment, to run one environment's day-2
# tests alone: `pytest -m day2_dev tests/day2` (markers registered in pytest.ini).
DEV = pytest.mark.day2_dev
PROD = pytest.mark.day2_prod

__all__ = ["DEV", "PROD", "Deployment", "FIXTURES", "HOSTS", "NAMESPACE", "PLAYBOOKS", "SleepingSession", "flat", "kubectl",
           "kubectl_json", "output", "psql", "recap", "run_playbook"]


@dataclass
class Deployment:
    """One environment deployed by playbooks/deploy.yml into its own kubesim, shared by a test session's worker."""

    environment: str
    kubeconfig: Path
    work_dir: Path

    @property
    def host(self) -> str:
        return HOSTS[self.environment]

    def run(self, playbook: str, *args: str, extra_vars: dict[str, Any] | None = None,
            timeout: int = 1200) -> subprocess.CompletedProcess[str]:
        return run_playbook(playbook, self.environment, self.kubeconfig, *args, extra_vars=extra_vars,
                            timeout=timeout)

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return kubectl(self.kubeconfig, *args, check=check, stdin=stdin)

    def kubectl_json(self, *args: str) -> Any:
        return kubectl_json(self.kubeconfig, *args)


def run_playbook(playbook: str, environment: str, kubeconfig: Path, *args: str,
                 extra_vars: dict[str, Any] | None = None, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    """`ansible-playbook playbooks/<playbook>.yml -i inventories/<environment> ARGS -e EXTRA_VARS`.

    The kubeconfig goes in through the environment, as AWX's credential injects it, so the
    inventories are used exactly as committed. Prod runs get the short waits of the role tests.
    """
    env = {"K8S_AUTH_KUBECONFIG": str(kubeconfig), "KUBECONFIG": str(kubeconfig),
           "POSTGRES_OPERATOR_MANIFESTS_DIR": str(FIXTURES)}
    argv = [str(VENV_BIN / "ansible-playbook"), str(PLAYBOOKS / f"{playbook}.yml"), "-i",
            str(INVENTORIES[environment]), *args]
    variables = {**(FAST if environment == "prod" else {}), **(extra_vars or {})}
    if variables:
        argv += ["-e", json.dumps(variables)]
    return subprocess.run(argv, cwd=REPO_ROOT, env=base_env(**env), capture_output=True, text=True,
                          timeout=timeout, check=False)


def flat(proc: subprocess.CompletedProcess[str]) -> str:
    """The run's output on one line: the YAML callback's line folding and quote doubling undone."""
    return " ".join(output(proc).split()).replace("''", "'")


def psql(deployment: Deployment, pod: str, container: str, database: str, sql: str, user: str = "postgres") -> str:
    """`sql` (on stdin, stopping at the first error) as `user` over the pod's socket; its unaligned, tuples-only output."""
    proc = deployment.kubectl("exec", "-i", "-n", NAMESPACE, pod, "-c", container, "--",
                              "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", database, stdin=sql)
    return proc.stdout.strip()


class SleepingSession:
    """A psql session in a pod, as `user` in `database`, busy in pg_sleep() for the duration of the `with` block.

    Entering returns only once pg_stat_activity shows the session active (found by an application_name of its
    own), so the block never races its start. Leaving terminates it if it is still there. `finish()` is for a
    block that expects something else to end the session: psql's exit code and stderr.
    """

    def __init__(self, deployment: Deployment, pod: str, container: str, database: str, user: str = "postgres",
                 seconds: int = 600) -> None:
        self.deployment, self.pod, self.container, self.database, self.user = deployment, pod, container, database, user
        self.seconds = seconds
        self.application_name = f"day2-sleeper-{uuid.uuid4().hex[:12]}"
        self.proc: subprocess.Popen[str] | None = None
        self.result: tuple[int, str] | None = None

    def __enter__(self) -> "SleepingSession":
        argv = [kubectl_path(), "--kubeconfig", str(self.deployment.kubeconfig), "exec", "-n", NAMESPACE, self.pod,
                "-c", self.container, "--", "psql", "-X", "-U", self.user,
                "-d", f"dbname={self.database} application_name={self.application_name}",
                "-c", f"SELECT pg_sleep({self.seconds})"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while self.sessions() != 1:
                if self.proc.poll() is not None:
                    code, stderr = self.finish(timeout=30)
                    raise AssertionError(f"the sleeping session in {self.database} ended before it was seen (exit {code}): {stderr}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"the sleeping session in {self.database} never showed up in pg_stat_activity")
                time.sleep(0.5)
        except BaseException:
            self.__exit__()
            raise
        return self

    def sessions(self) -> int:
        """How many backends of this session are running its pg_sleep() now (0 or 1)."""
        return int(psql(self.deployment, self.pod, self.container, "postgres",
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        f"'{self.application_name}' AND datname = '{self.database}' AND state = 'active' "
                        "AND query LIKE 'SELECT pg_sleep(%'"))

    def finish(self, timeout: float) -> tuple[int, str]:
        """Waits for psql to end (raises subprocess.TimeoutExpired after `timeout` seconds): its exit code and stderr."""
        if self.result is None:
            assert self.proc is not None
            _stdout, stderr = self.proc.communicate(timeout=timeout)
            self.result = (self.proc.returncode, stderr)
        return self.result

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        try:
            # Also when psql has ended: a backend whose client went away may still be sleeping.
            self.deployment.kubectl("exec", "-i", "-n", NAMESPACE, self.pod, "-c", self.container, "--",
                                    "psql", "-X", "-At", "-U", "postgres", "-d", "postgres", check=False,
                                    stdin="SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                          f"WHERE application_name = '{self.application_name}'")
        finally:
            if self.proc.poll() is None:
                try:
                    self.finish(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            if self.result is None:
                self.finish(timeout=30)
