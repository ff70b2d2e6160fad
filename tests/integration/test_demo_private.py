"""The `make demo` server is private: no other local user gets in, and its files are the owner's.

Runs the demo's own server start (scripts/demo.py, with .demo/ moved to a temporary folder) and
then tries, as the unprivileged users of the machine, what the review found open: the socket
with trust (superuser for anyone), a password-less TCP login, reading the data folder.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OUTSIDER = "nobody"


def _load_demo():
    spec = importlib.util.spec_from_file_location("demo_script", REPO / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def demo(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root: the demo server runs as user postgres, and the test logs in as other users")
    try:
        pwd.getpwnam(OUTSIDER)
    except KeyError:
        pytest.skip(f"no user {OUTSIDER!r} to play another local user")
    module = _load_demo()
    parent = Path(tempfile.mkdtemp(prefix="demo-private-"))
    os.chmod(parent, 0o755)  # like a checkout under /home or /srv: the server lives inside .demo/
    monkeypatch.setattr(module, "DEMO_DIR", parent / ".demo")
    monkeypatch.setattr(module, "SERVER_DIR", parent / ".demo" / "pg15")
    monkeypatch.setattr(module, "ENV_FILE", parent / ".demo" / "env")
    monkeypatch.setattr(module, "PREFERRED_PORT", module.free_port())
    info = module.start_server()
    module.write_env_file(info)
    try:
        yield module, info
    finally:
        module.forget_server()
        shutil.rmtree(parent, ignore_errors=True)


def _psql_as(user: str, info, host: str, password: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], **({"PGPASSWORD": password} if password else {})}
    return subprocess.run(["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()),
                           f"{info.bindir}/psql", "-X", "-w", "-At", "-h", host, "-p", str(info.port), "-U", info.user,
                           "-d", "postgres", "-c", "SELECT current_user"],
                          capture_output=True, text=True, check=False)


def test_files_and_socket_are_private_from_the_start(demo):
    module, info = demo
    assert _mode(module.DEMO_DIR) == 0o711
    assert _mode(module.ENV_FILE) == 0o600
    base = module.SERVER_DIR
    for folder in (base, Path(info.socket_dir), Path(info.data_dir)):
        assert _mode(folder) == 0o700, folder
    socket_file = Path(info.socket_dir) / f".s.PGSQL.{info.port}"
    assert stat.S_ISSOCK(os.lstat(socket_file).st_mode) and _mode(socket_file) == 0o700
    assert not _mode(Path(info.log_file)) & 0o077
    listing = subprocess.run(["runuser", "-u", OUTSIDER, "--", "ls", str(base)], capture_output=True, check=False)
    assert listing.returncode != 0


def test_no_login_without_the_password(demo):
    _module, info = demo
    outsider_socket = _psql_as(OUTSIDER, info, info.socket_dir)
    assert outsider_socket.returncode != 0 and "Permission denied" in outsider_socket.stderr, outsider_socket.stderr
    outsider_tcp = _psql_as(OUTSIDER, info, info.host)
    assert outsider_tcp.returncode != 0 and "no password supplied" in outsider_tcp.stderr, outsider_tcp.stderr
    owner_socket = _psql_as("postgres", info, info.socket_dir)
    assert owner_socket.returncode != 0 and "no password supplied" in owner_socket.stderr, owner_socket.stderr
    with_password = _psql_as(OUTSIDER, info, info.host, password=info.password)
    assert with_password.returncode == 0 and with_password.stdout.strip() == "postgres", with_password.stderr
