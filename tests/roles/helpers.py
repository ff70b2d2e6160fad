"""Running ansible-playbook, kubectl and molecule from the role tests."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DEV_INVENTORY = REPO_ROOT / "inventories" / "dev"
DEPLOY = REPO_ROOT / "playbooks" / "deploy.yml"
KUBECTL_CANDIDATES = ("/usr/lib/google-cloud-sdk/bin/kubectl.1.33", "/usr/lib/google-cloud-sdk/bin/kubectl")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\]8;;[^\x1b]*\x1b\\")
RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                   r"\s+failed=(?P<failed>\d+)(?:\s+skipped=(?P<skipped>\d+))?(?:\s+rescued=(?P<rescued>\d+))?"
                   r"(?:\s+ignored=(?P<ignored>\d+))?", re.M)


def base_env(**extra: str) -> dict[str, str]:
    """The environment of `make test`, without any kubeconfig the caller did not ask for."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("KUBECONFIG", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_CALLBACK_RESULT_FORMAT="yaml",
        PY_COLORS="0",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def run_deploy(*args: str, kubeconfig: str | Path | None = None, timeout: int = 900,
               **env: str) -> subprocess.CompletedProcess[str]:
    """`ansible-playbook playbooks/deploy.yml -i inventories/dev ARGS` with KUBECONFIG set (or not)."""
    extra = dict(env)
    if kubeconfig is not None:
        extra["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), str(DEPLOY), "-i", str(DEV_INVENTORY), *args],
        cwd=REPO_ROOT, env=base_env(**extra), capture_output=True, text=True, timeout=timeout, check=False)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return ANSI.sub("", proc.stdout + proc.stderr)


def recap(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host."""
    return {m["host"]: {key: int(value) for key, value in m.groupdict().items() if key != "host" and value is not None}
            for m in RECAP.finditer(output(proc))}


def kubectl_path() -> str:
    for candidate in KUBECTL_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl is not installed")
    return found


def kubectl(kubeconfig: str | Path, *args: str, check: bool = True, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """kubectl against ``kubeconfig``: the real test bed's pinned kubectl sits next to its kubeconfig."""
    pinned = Path(kubeconfig).with_name("kubectl")
    binary = str(pinned) if pinned.exists() else kubectl_path()
    proc = subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          input=stdin, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def kubectl_json(kubeconfig: str | Path, *args: str) -> Any:
    return json.loads(kubectl(kubeconfig, *args, "-o", "json").stdout)
