"""Static quality gates, run inside the single `make test` pytest run.

* ``ansible-test sanity`` for the collection, from a copy of the checkout at a path of the form
  ``.../ansible_collections/microservices/postgres`` (ansible-test derives the collection's name
  from that path), on the controller's Python 3.11 without containers.
* ``ansible-lint`` with the production profile (configuration: ``.ansible-lint``).
* ``antsibull-changelog lint`` for ``changelogs/``.

Each is slow (tens of seconds) and marked ``slow``: ``make sanity`` and ``make lint`` run them alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"

# ansible-test bootstraps pip in each sanity virtualenv with a get-pip script it downloads from a
# host these machines cannot reach, unless a cached copy exists. This stand-in uses the
# interpreter's own ensurepip, then installs the requested pip from the package index.
GET_PIP_STANDIN = '''"""Stand-in for get-pip.py, written by microservices.postgres tests/sanity/test_static_checks.py.

ansible-test runs it with pip's arguments; --no-setuptools/--no-wheel are get-pip's own options.
"""
import subprocess
import sys

ARGS = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *ARGS]))
'''

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("ANSIBLE_CONFIG", None)
    env["NO_COLOR"] = "1"
    env["PY_COLORS"] = "0"
    return env


def _run(argv: list[str], cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def _report(proc: subprocess.CompletedProcess, limit: int = 20000) -> str:
    """The failing command's findings first (ERROR/FATAL lines), then the tail of its output."""
    output = f"{proc.stdout}\n{proc.stderr}"
    findings = [line for line in output.splitlines() if line.startswith(("ERROR", "FATAL"))]
    text = (
        f"$ {' '.join(map(str, proc.args))}\nexit code {proc.returncode}\n"
        + ("--- findings ---\n" + "\n".join(findings) + "\n" if findings else "")
        + f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )
    return text if len(text) <= limit else text[: limit // 2] + "\n...\n" + text[-limit // 2:]


def _pip_version_for_ansible_test() -> str:
    """The pip version ansible-test bootstraps (24.2 for ansible-core 2.19)."""
    import ansible_test  # noqa: PLC0415 - only needed here  # pylint: disable=import-outside-toplevel

    source = (Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
    match = re.search(r"pip='([0-9.]+)'", source)
    assert match, "cannot find the pip version ansible-test bootstraps"
    return match.group(1)


def _ensure_get_pip_cache() -> Path:
    version = _pip_version_for_ansible_test()
    cache = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{version.replace('.', '_')}.py"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(GET_PIP_STANDIN)
    return cache


def _checkout_files() -> list[str]:
    """Tracked files plus untracked ones that are not ignored: what a commit would contain."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot tell the collection's files from local clutter")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode()
    return sorted({name for name in out.split("\0") if name})


def _copy_collection(dest: Path) -> None:
    for name in _checkout_files():
        source = REPO_ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet in the index
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def test_ansible_test_sanity(tmp_path: Path) -> None:
    _ensure_get_pip_cache()
    collection = tmp_path / "ansible_collections" / "microservices" / "postgres"
    _copy_collection(collection)
    proc = _run(
        [str(VENV_BIN / "ansible-test"), "sanity", "--local", "--python", PYTHON_VERSION, "--color", "no"],
        cwd=collection,
    )
    assert proc.returncode == 0, _report(proc)


def test_ansible_lint_production_profile() -> None:
    proc = _run([str(VENV_BIN / "ansible-lint"), "--offline", "--nocolor"], cwd=REPO_ROOT)
    assert proc.returncode == 0, _report(proc)


def test_changelog_fragments_lint() -> None:
    proc = _run([str(VENV_BIN / "antsibull-changelog"), "lint"], cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, _report(proc)
    assert not proc.stdout.strip(), _report(proc)
