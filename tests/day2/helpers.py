"""Running the day-2 playbooks (playbooks/<name>.yml) against a deployed environment in kubesim."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.roles.helpers import REPO_ROOT, VENV_BIN, base_env, kubectl, kubectl_json, output, recap
from tests.roles.prod_helpers import FAST, FIXTURES

PLAYBOOKS = REPO_ROOT / "playbooks"
INVENTORIES = {"dev": REPO_ROOT / "inventories" / "dev", "prod": REPO_ROOT / "inventories" / "prod"}
HOSTS = {"dev": "dev-postgres", "prod": "prod-postgres"}
NAMESPACE = "microservices"
# Marks of the tests that use dev_deployment / prod_deployment, to run one environment's day-2
# tests alone: `pytest -m day2_dev tests/day2` (markers registered in pytest.ini).
DEV = pytest.mark.day2_dev
PROD = pytest.mark.day2_prod

__all__ = ["DEV", "PROD", "Deployment", "FIXTURES", "HOSTS", "NAMESPACE", "PLAYBOOKS", "kubectl", "kubectl_json", "output", "recap",
           "run_playbook"]


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
