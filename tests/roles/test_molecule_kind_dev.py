"""molecule/kind-dev where Docker or kind is missing: it must stop at create with a clear message."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from .test_molecule_default import molecule

pytestmark = pytest.mark.slow


def _docker_and_kind_usable() -> bool:
    if not shutil.which("kind") or not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=60).returncode == 0


@pytest.mark.skipif(_docker_and_kind_usable(),
                    reason="docker and kind are usable here: run `molecule test -s kind-dev` by hand (it creates a real kind cluster)")
def test_kind_dev_stops_with_a_clear_message_without_docker_or_kind():
    rc, text = molecule("test", "-s", "kind-dev", timeout=900)
    assert rc != 0
    assert "kind-dev needs docker and kind:" in text, text[-6000:]
    assert "molecule test -s default" in text
    assert not re.search(r"kind-dev\s*(?:➜|>)\s*converge\]?:?\s+Executing", text)  # stopped at create
    assert "Traceback" not in text
