"""The official ``postgres`` image's entrypoint contract, for a container run as a local process.

On first start (PGDATA has no PG_VERSION): initdb as POSTGRES_USER (default ``postgres``) with
POSTGRES_PASSWORD, listening on every address as the image's sample configuration does, local
connections trusted and every host connection asked for a SCRAM
password (POSTGRES_HOST_AUTH_METHOD), then a socket-only server runs POSTGRES_DB's creation and
every ``*.sql``/``*.sh`` file of /docker-entrypoint-initdb.d in name order, and stops. Then, on
every start, ``postgres`` is exec'd with the container's arguments, so it is the container's
process and gets its signals. Run by ``launch.py`` inside the pod's namespaces, as the container
user.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

INIT_DIR = Path("/docker-entrypoint-initdb.d")
SOCKET_DIR = "/var/run/postgresql"


def _bin(name: str) -> str:
    return str(Path(os.environ["PG_BINDIR"]) / name)


def _first_start(pgdata: Path, env: dict[str, str]) -> None:
    user = env.get("POSTGRES_USER", "postgres")
    password = env.get("POSTGRES_PASSWORD", "")
    if not password and env.get("POSTGRES_HOST_AUTH_METHOD") != "trust":
        sys.exit("Error: Database is uninitialized and superuser password is not specified (POSTGRES_PASSWORD)")
    pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.NamedTemporaryFile("w", delete=False) as pwfile:
        pwfile.write(password + "\n")
    try:
        subprocess.run(
            [_bin("initdb"), "-D", str(pgdata), f"--username={user}", f"--pwfile={pwfile.name}", *env.get("POSTGRES_INITDB_ARGS", "").split()],
            check=True, stdout=sys.stdout, stderr=sys.stderr,
        )
    finally:
        os.unlink(pwfile.name)
    # The image's postgresql.conf.sample listens on every address; initdb copies it into PGDATA.
    with open(pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\nlisten_addresses = '*'\n")
    with open(pgdata / "pg_hba.conf", "a", encoding="utf-8") as hba:
        hba.write(f"\nhost all all all {env.get('POSTGRES_HOST_AUTH_METHOD', 'scram-sha-256')}\n")
    ctl = _bin("pg_ctl")
    subprocess.run(
        [ctl, "-D", str(pgdata), "-w", "-o", f"-c listen_addresses='' -c unix_socket_directories={SOCKET_DIR}", "start"],
        check=True, stdout=sys.stdout, stderr=sys.stderr,
    )
    try:
        psql = [_bin("psql"), "-v", "ON_ERROR_STOP=1", "-h", SOCKET_DIR, "-U", user, "--no-password"]
        database = env.get("POSTGRES_DB", user)
        if database != "postgres":
            subprocess.run([*psql, "-d", "postgres", "-c", f'CREATE DATABASE "{database}"'], check=True)
        for script in sorted(INIT_DIR.glob("*")) if INIT_DIR.is_dir() else []:
            if script.suffix == ".sql":
                subprocess.run([*psql, "-d", database, "-f", str(script)], check=True)
            elif script.suffix == ".sh":
                subprocess.run(["bash", str(script)], check=True, env={**env, "PGHOST": SOCKET_DIR})
    finally:
        subprocess.run([ctl, "-D", str(pgdata), "-m", "fast", "-w", "stop"], check=True, stdout=sys.stdout, stderr=sys.stderr)


def main(args: list[str]) -> None:
    env = dict(os.environ)
    pgdata = Path(env.get("PGDATA", "/var/lib/postgresql/data"))
    if not (pgdata / "PG_VERSION").exists():
        _first_start(pgdata, env)
    postgres = _bin("postgres")
    os.execv(postgres, [postgres, "-D", str(pgdata), "-c", f"unix_socket_directories={SOCKET_DIR}", *args])


if __name__ == "__main__":
    main(sys.argv[1:])
