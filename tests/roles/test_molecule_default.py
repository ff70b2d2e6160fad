"""molecule/default, run the way a developer runs it (`molecule test -s default`): kubesim + inventories/dev."""

from __future__ import annotations

import re
import subprocess

import pytest

from .helpers import ANSI, REPO_ROOT, VENV_BIN, base_env

pytestmark = pytest.mark.slow


def molecule(*args: str, timeout: int = 2400) -> tuple[int, str]:
    if not (VENV_BIN / "molecule").exists():
        pytest.skip("molecule is not installed in the virtualenv")
    env = base_env()
    for key in ("ANSIBLE_CONFIG", "ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACK_RESULT_FORMAT"):
        env.pop(key, None)  # molecule writes its own ansible.cfg for the scenario
    proc = subprocess.run([str(VENV_BIN / "molecule"), *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    return proc.returncode, ANSI.sub("", proc.stdout + proc.stderr)


def test_default_scenario_against_kubesim():
    """create (kubesim) -> converge (deploy.yml -i inventories/dev) -> idempotence -> verify -> destroy."""
    rc, text = molecule("test", "-s", "default")
    tail = text[-8000:]
    assert rc == 0, tail
    # "default ➜ step: Executed: Successful" on a terminal, "[default > step] Executed: Successful" otherwise.
    for step in ("create", "converge", "idempotence", "verify", "destroy"):
        assert re.search(rf"default\s*(?:➜|>)\s*{step}\]?:?\s+Executed: Successful", text), \
            f"{step} did not succeed:\n{tail}"
    assert "Molecule executed 1 scenario (1 successful)" in text, tail
