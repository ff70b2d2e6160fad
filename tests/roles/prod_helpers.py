"""Running the prod deployment (inventories/prod) against kubesim from the role tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from .helpers import DEPLOY, REPO_ROOT, VENV_BIN, base_env

PROD_INVENTORY = REPO_ROOT / "inventories" / "prod"
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "zalando-postgres-operator-v2.0.1"
SERVICES = {"userdb": "userservice", "paymentdb": "paymentservice", "settlementdb": "settlementservice",
            "partnerdb": "partnerservice", "accountingdb": "accountingservice"}
# Short waits: the test bed settles in seconds; failures must not take the default minutes.
FAST = {"postgres_prod_wait_delay": 2, "postgres_prod_cluster_wait_timeout": 300}


def run_prod(*args: str, kubeconfig: str | Path | None = None, extra_vars: dict[str, Any] | None = None,
             manifests_dir: str | Path = FIXTURES, timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    """`ansible-playbook playbooks/deploy.yml -i inventories/prod ARGS -e EXTRA_VARS`."""
    env: dict[str, str] = {"POSTGRES_OPERATOR_MANIFESTS_DIR": str(manifests_dir)}
    if kubeconfig is not None:
        env["K8S_AUTH_KUBECONFIG"] = str(kubeconfig)
    argv = [str(VENV_BIN / "ansible-playbook"), str(DEPLOY), "-i", str(PROD_INVENTORY), *args]
    argv += ["-e", json.dumps({**FAST, **(extra_vars or {})})]
    return subprocess.run(argv, cwd=REPO_ROOT, env=base_env(**env), capture_output=True, text=True,
                          timeout=timeout, check=False)
