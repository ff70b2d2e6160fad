"""`make demo` / `make demo-stop`: a throwaway PostgreSQL 15 and the local inventory, end to end.

start: start (or reuse) a PostgreSQL 15 server owned by an unprivileged user on a free loopback
       port (55432 when free) with its data under .demo/ (folders and socket 0700, password
       logins only: no trust for other local users), run
       `ansible-playbook playbooks/deploy.yml -i inventories/local` twice with the connection in
       the libpq environment, show the service databases with their owners, and prove that the
       second run changed nothing.
stop:  stop the server and remove its data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.support.pgserver import (  # noqa: E402  pylint: disable=wrong-import-position
    UNPRIVILEGED_USER,
    PgServer,
    PgServerError,
    ServerInfo,
    free_port,
)

DEMO_DIR = REPO_ROOT / ".demo"
SERVER_DIR = DEMO_DIR / "pg15"  # the server's base directory, or a link to it
ENV_FILE = DEMO_DIR / "env"
PREFERRED_PORT = 55432
VERSION = 15
SEED_DATABASES = ("userdb", "paymentdb", "settlementdb", "partnerdb", "accountingdb")
RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)")


def say(message: str = "") -> None:
    print(message, flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def traversable_by_server_owner(path: Path) -> bool:
    """Whether the unprivileged server owner can reach `path` (only matters when we are root)."""
    if os.geteuid() != 0:
        return True
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            return False
    return True


def recorded_server() -> ServerInfo | None:
    meta = SERVER_DIR / "server.json"
    if not meta.exists():
        return None
    return ServerInfo(**json.loads(meta.read_text()))


def server_answers(info: ServerInfo) -> bool:
    proc = subprocess.run(
        [str(Path(info.bindir) / "pg_isready"), "-h", info.host, "-p", str(info.port), "-t", "3"],
        capture_output=True, check=False,
    )
    return proc.returncode == 0


def forget_server() -> None:
    """Stop whatever .demo/pg15 records and remove its data (and the link to it)."""
    info = recorded_server()
    target = SERVER_DIR.resolve() if SERVER_DIR.exists() or SERVER_DIR.is_symlink() else None
    if info is not None and target is not None:
        server = demo_server(target, info.port)
        server.info = info
        server.stop(remove=True)
    elif target is not None:
        shutil.rmtree(target, ignore_errors=True)
    if SERVER_DIR.is_symlink():
        SERVER_DIR.unlink()
    ENV_FILE.unlink(missing_ok=True)


def demo_server(base_dir: Path, port: int) -> PgServer:
    """The demo's server: private from the start, and no login without a password.

    Other local users could otherwise reach the socket (initdb's default is trust for local
    connections: superuser for anyone on the machine) or read the data folder. Here the base and
    socket folders are created 0700, the socket is 0700, and every login, local or TCP, needs the
    superuser's password (SCRAM), which only .demo/env (0600) holds.
    """
    return PgServer(VERSION, base_dir=base_dir, port=port, local_auth="scram-sha-256", private=True)


def start_server() -> ServerInfo:
    # 0711: the server's owner may traverse to .demo/pg15 (itself 0700), nobody may list .demo.
    DEMO_DIR.mkdir(mode=0o711, exist_ok=True)
    os.chmod(DEMO_DIR, 0o711)
    port = PREFERRED_PORT if port_is_free(PREFERRED_PORT) else free_port()
    if port != PREFERRED_PORT:
        say(f"NOTE: port {PREFERRED_PORT} is busy, using {port}: source .demo/env before running the playbook yourself.")
    if traversable_by_server_owner(DEMO_DIR):
        base_dir = SERVER_DIR
    else:
        base_dir = Path(tempfile.mkdtemp(prefix="microservices-postgres-demo-"))  # 0700, handed to the owner
        SERVER_DIR.symlink_to(base_dir, target_is_directory=True)
        say(f"NOTE: user {UNPRIVILEGED_USER} cannot traverse {REPO_ROOT}'s parent folders, so the data lives in")
        say(f"      {base_dir} and {SERVER_DIR.relative_to(REPO_ROOT)} is a link to it.")
    server = demo_server(base_dir, port)
    info = server.start()
    say(f"==> started PostgreSQL {VERSION} as user {UNPRIVILEGED_USER} on {info.host}:{info.port} "
        f"(data: {Path(info.data_dir)})")
    return info


def ensure_server() -> ServerInfo:
    info = recorded_server()
    if info is not None and server_answers(info):
        say(f"==> reusing the running demo server: PostgreSQL {info.version} on {info.host}:{info.port}")
        return info
    if info is not None or SERVER_DIR.exists() or SERVER_DIR.is_symlink():
        say("==> the recorded demo server is not running any more: starting a new one")
        forget_server()
    return start_server()


def write_env_file(info: ServerInfo) -> None:
    """Created 0600 (not chmod-ed afterwards): it holds the superuser's password."""
    lines = [f"export {key}={value}" for key, value in info.env().items()]
    ENV_FILE.unlink(missing_ok=True)
    fd = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# libpq environment of the `make demo` server (local throwaway credentials)\n"
                     + "\n".join(lines) + "\n")


def run_playbook(info: ServerInfo, label: str) -> dict[str, dict[str, int]]:
    """Run the deploy playbook, streaming its output; return the PLAY RECAP per host."""
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/deploy.yml", "-i", "inventories/local"]
    say()
    say(f"==> {label}: {' '.join(['ansible-playbook', *argv[1:]])}")
    env = {**os.environ, **info.env()}
    env.pop("ANSIBLE_CONFIG", None)  # the repository's ansible.cfg (collections_path) applies
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    recap: dict[str, dict[str, int]] = {}
    with subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
                match = RECAP_LINE.match(line.strip())
                if match:
                    recap[match["host"]] = {k: int(v) for k, v in match.groupdict().items() if k != "host"}
            sys.stdout.flush()
        except BaseException:  # e.g. our stdout closed (piped into `head`) or Ctrl-C: do not leave it blocked
            proc.kill()
            raise
    if proc.returncode != 0:
        raise SystemExit(f"ansible-playbook failed ({label}, exit code {proc.returncode})")
    if not recap:
        raise SystemExit(f"no PLAY RECAP found in the output of the {label}")
    return recap


def show_databases(info: ServerInfo) -> None:
    names = ", ".join(f"'{name}'" for name in SEED_DATABASES)
    sql = (
        "SELECT d.datname AS database, r.rolname AS owner, r.rolcanlogin AS owner_can_login, "
        "pg_encoding_to_char(d.encoding) AS encoding, d.datconnlimit AS connection_limit, "
        "coalesce(array_to_string(d.datacl, ', '), '(default)') AS access_privileges "
        "FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
        f"WHERE d.datname IN ({names}) ORDER BY d.datname"
    )
    proc = subprocess.run(
        [str(Path(info.bindir) / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-P", "footer=off", "-d", "postgres",
         "-c", sql],
        capture_output=True, text=True, env={**os.environ, **info.env()}, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"psql failed: {proc.stderr.strip()}")
    say()
    say("==> the service databases and their owners (psql):")
    say(proc.stdout.rstrip())
    found = {line.split("|")[0].strip() for line in proc.stdout.splitlines()[2:]}
    missing = [name for name in SEED_DATABASES if name not in found]
    if missing:
        raise SystemExit(f"missing databases after the run: {', '.join(missing)}")


def start() -> int:
    try:
        info = ensure_server()
    except PgServerError as exc:
        say(f"ERROR: {exc}")
        return 1
    write_env_file(info)
    run_playbook(info, "first run")
    second = run_playbook(info, "second run (same input)")
    show_databases(info)
    say()
    changed = {host: counts["changed"] for host, counts in second.items()}
    if any(changed.values()) or any(counts["failed"] or counts["unreachable"] for counts in second.values()):
        say(f"FAILED: the second run was not a no-op: {second}")
        return 1
    say("==> second run: " + ", ".join(f"{host} changed={count}" for host, count in changed.items())
        + " (nothing changed: idempotent)")
    say()
    say(f"Demo server: PostgreSQL {info.version} on {info.host}:{info.port}, superuser {info.user}, "
        f"server log {info.log_file}")
    say(f"Run it yourself:  . {ENV_FILE.relative_to(REPO_ROOT)} && .venv/bin/ansible-playbook playbooks/deploy.yml "
        "-i inventories/local")
    say("Stop it:          make demo-stop")
    return 0


def stop() -> int:
    info = recorded_server()
    if info is None and not (SERVER_DIR.exists() or SERVER_DIR.is_symlink()):
        say("No demo server recorded in .demo/: nothing to stop.")
        return 0
    forget_server()
    if info is not None:
        say(f"Stopped the demo server (PostgreSQL {info.version} on {info.host}:{info.port}) and removed its data.")
    else:
        say("Removed the leftover demo data.")
    return 0


def main(argv: list[str]) -> int:
    if argv == ["start"]:
        return start()
    if argv == ["stop"]:
        return stop()
    print("usage: scripts/demo.py start|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
