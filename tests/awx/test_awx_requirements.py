"""collections/requirements.yml and the execution environment: parseable, pinned to what the tests run with.

Galaxy is unreachable here, so the pins are checked against the collections the `ansible` 12.3.0 package
installed in the virtualenv, and the project sync AWX does is replayed with those as the already
installed versions: only this repository itself gets installed, which proves the `type: dir` entry.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import ansible

from tests.awx.helpers import load_yaml
from tests.roles.helpers import REPO_ROOT, VENV_BIN, base_env

SITE_COLLECTIONS = Path(ansible.__file__).resolve().parent.parent / "ansible_collections"
PROJECT_REQUIREMENTS = REPO_ROOT / "collections" / "requirements.yml"
EE_FILE = REPO_ROOT / "execution-environment.yml"
EE_DIR = REPO_ROOT / "execution-environment"


def installed_version(name: str) -> str:
    namespace, collection = name.split(".")
    manifest = json.loads((SITE_COLLECTIONS / namespace / collection / "MANIFEST.json").read_text(encoding="utf-8"))
    return manifest["collection_info"]["version"]


def pins(requirements: dict[str, Any]) -> dict[str, str]:
    return {entry["name"]: entry["version"] for entry in requirements["collections"] if entry.get("type") != "dir"}


def pip_pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[a-z,]+\])?==(\S+)$", line.strip())
        if match:
            found[match[1].lower()] = match[3]
    return found


def test_project_requirements_pin_the_tested_collections() -> None:
    requirements = load_yaml(PROJECT_REQUIREMENTS)
    assert pins(requirements) == {"kubernetes.core": "6.2.0", "awx.awx": "24.6.1"}
    for name, version in pins(requirements).items():
        assert installed_version(name) == version, name
    assert [entry for entry in requirements["collections"] if entry.get("type") == "dir"] == [{"name": ".", "type": "dir"}]


def test_project_sync_installs_this_repository_as_the_collection(tmp_path: Path) -> None:
    """What AWX runs at project sync, from the project root; the pinned collections count as installed."""
    target = tmp_path / "requirements_collections"
    env = base_env(ANSIBLE_COLLECTIONS_PATH=f"{target}:{SITE_COLLECTIONS.parent}")
    proc = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "-r", str(PROJECT_REQUIREMENTS),
                           "--collections-path", str(target), "--offline"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((target / "ansible_collections" / "microservices" / "postgres" / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == load_yaml(REPO_ROOT / "galaxy.yml")["version"]
    installed = target / "ansible_collections" / "microservices" / "postgres"
    for path in ("playbooks/status.yml", "roles/postgres_target/tasks/main.yml", "plugins/modules/service_databases.py"):
        assert (installed / path).is_file(), path
    assert not (installed / ".venv").exists()
    assert sorted(path.name for path in (target / "ansible_collections").iterdir()) == ["microservices"]


def test_execution_environment_matches_the_tested_runtime() -> None:
    definition = load_yaml(EE_FILE)
    assert definition["version"] == 3
    dependencies = definition["dependencies"]
    assert dependencies["ansible_core"]["package_pip"] == f"ansible-core=={pip_pins(REPO_ROOT / 'requirements.txt')['ansible-core']}"
    assert dependencies["python_interpreter"]["python_path"] == "/usr/bin/python3.11"
    for key in ("galaxy", "python", "system"):
        assert (REPO_ROOT / dependencies[key]).is_file(), dependencies[key]
    assert pins(load_yaml(REPO_ROOT / dependencies["galaxy"])) == pins(load_yaml(PROJECT_REQUIREMENTS))
    ee_python = pip_pins(REPO_ROOT / dependencies["python"])
    runtime = pip_pins(REPO_ROOT / "requirements.txt")
    assert set(ee_python) == {"kubernetes", "websocket-client", "psycopg", "jsonpatch", "pyyaml"}
    assert {name: runtime[name] for name in ee_python} == ee_python


def test_execution_environment_build_context(tmp_path: Path) -> None:
    """`ansible-builder create` validates the definition and writes the build context (no container engine)."""
    builder = shutil.which("ansible-builder", path=f"{VENV_BIN}")
    assert builder is not None, f"ansible-builder is missing from {VENV_BIN}: run `make venv` (requirements-test.txt)"
    proc = subprocess.run([builder, "create", "-f", str(EE_FILE), "-c", str(tmp_path / "context")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = tmp_path / "context" / "_build"
    assert load_yaml(build / "requirements.yml") == load_yaml(EE_DIR / "requirements.yml")
    recipe = next((tmp_path / "context").glob("[CD]*file")).read_text(encoding="utf-8")
    assert 'ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==2.4.3"' in recipe
