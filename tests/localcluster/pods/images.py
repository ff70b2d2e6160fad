"""Which local program stands in for which container image, and how it is reached.

A container's image picks its stand-in; the stand-in says what to run (or nothing), which extra
folders the container needs and, where the image's program needs a passwd entry, as whom it
runs. Images with no stand-in run no process: the pod is Running and its log says so, never
pretends otherwise.
"""

from __future__ import annotations

import json
import pwd
import re
import sysconfig
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.support.pgserver import bindir_for

ENTRYPOINT = Path(__file__).resolve().parent / "postgres_entrypoint.py"
POSTGRES_SOCKET_DIR = "/var/run/postgresql"
_OFFICIAL_POSTGRES = re.compile(r"^(?:docker\.io/)?(?:library/)?postgres:(\d+)")
_OPERATOR = re.compile(r"(^|/)postgres-operator:")
_EXPORTER = re.compile(r"(^|/)postgres[-_]exporter:")
_SPILO = re.compile(r"(^|/)spilo[^/:]*:")
SPILO_ENTRYPOINT = Path(__file__).resolve().parent / "spilo_entrypoint.py"
# The container user cannot run this virtualenv's interpreter (it lives under /root), so stand-ins
# that need its packages (Patroni) run the machine's python3 of the same minor with them on the path.
SITE_PACKAGES = sysconfig.get_paths()["purelib"]


@dataclass
class StandIn:
    """What runs for one container; ``argv`` empty means no process."""

    kind: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # host folder -> path in the container, made by the runner in the pod's folder
    extra_mounts: dict[str, str] = field(default_factory=dict)
    # host folder -> path in the container, read-only: programs and libraries of this machine that
    # the container's user could not reach where they are (a checkout under /root, say)
    tool_mounts: dict[str, str] = field(default_factory=dict)
    uid: int | None = None
    gid: int | None = None
    note: str = ""
    # readiness where the pod spec gives no probe: (pod address) -> ready
    ready: Callable[[str], bool] | None = None
    # file name -> script, made executable in the container's bin folder (first on its PATH)
    tools: dict[str, str] = field(default_factory=dict)


def postgres_major(image: str) -> tuple[int, str]:
    """The major that runs for a postgres image here, and a note when it is not the one asked for."""
    match = _OFFICIAL_POSTGRES.match(image)
    wanted = int(match.group(1)) if match else 15
    if wanted in (15, 18):
        return wanted, ""
    actual = 15 if wanted < 15 else 18
    return actual, f"image {image} asks for PostgreSQL {wanted}; this machine has 15 and 18 only, so {actual} runs"


def stand_in(image: str, container: dict[str, Any], runtime_dir: Path, binaries) -> StandIn:
    """``runtime_dir``: the pod's folder for sockets (kept out of the state folder's private tree)."""
    if _OFFICIAL_POSTGRES.match(image):
        major, note = postgres_major(image)
        bindir = bindir_for(major)
        account = pwd.getpwnam("postgres")
        socket_dir = runtime_dir / container["name"]
        path = f"{bindir}:/usr/local/bin:/usr/bin:/bin"
        # The container user may not read this checkout, so the entrypoint travels as source text.
        argv = ["/usr/bin/python3", "-c", ENTRYPOINT.read_text(), *(container.get("command") or [])[1:], *(container.get("args") or [])]
        return StandIn(
            kind=f"postgres {major}",
            argv=argv,
            env={"PATH": path, "PG_BINDIR": str(bindir)},
            extra_mounts={str(socket_dir): POSTGRES_SOCKET_DIR},
            # initdb and postgres need a passwd entry for their uid (the official image gets one
            # through nss_wrapper); the machine's `postgres` account stands in for runAsUser.
            uid=account.pw_uid,
            gid=account.pw_gid,
            note=note,
        )
    if _SPILO.search(image):
        return _spilo(image, container, runtime_dir)
    if _OPERATOR.search(image):
        return _binary("postgres-operator", binaries.postgres_operator, container, runtime_dir)
    if _EXPORTER.search(image):
        return _binary("postgres_exporter", binaries.postgres_exporter, container, runtime_dir)
    return StandIn(kind="none", note=f"no local process stands in for image {image}: the container is Running with no process")


def _binary(kind: str, program: Path, container: dict[str, Any], runtime_dir: Path) -> StandIn:
    """A built Go program, its folder mounted where the container's user (the operator's is 1000) can run it."""
    target = runtime_dir / container["name"] / "opt"
    return StandIn(kind=kind, argv=[str(target / program.name), *(container.get("args") or [])], tool_mounts={str(program.parent): str(target)})


def patroni_ready(address: str) -> bool:
    """A Spilo pod is ready when Patroni runs PostgreSQL as the leader, or as a replica that streams."""
    try:
        with urllib.request.urlopen(f"http://{address}:8008/patroni", timeout=2) as response:
            state = json.loads(response.read())
    except (OSError, ValueError):
        return False
    if state.get("state") != "running":
        return False
    return state.get("role") in ("primary", "master") or state.get("replication_state") == "streaming"


def _spilo(image: str, container: dict[str, Any], runtime_dir: Path) -> StandIn:
    env = {item["name"]: item.get("value", "") for item in container.get("env") or [] if "value" in item}
    major, note = postgres_major(f"postgres:{env.get('PGVERSION', '15')}")
    bindir = bindir_for(major)
    account = pwd.getpwnam("postgres")
    tools_dir = runtime_dir / container["name"] / "bin"
    pgroot = env.get("PGROOT", "/home/postgres/pgdata/pgroot")
    ctl = "import sys; sys.argv[0] = 'patronictl'; from patroni.ctl import ctl; ctl()"
    python_path = runtime_dir / container["name"] / "python"
    return StandIn(
        kind=f"spilo (Patroni, PostgreSQL {major})",
        argv=["/usr/bin/python3", "-c", SPILO_ENTRYPOINT.read_text()],
        env={
            "PATH": f"{tools_dir}:{bindir}:/usr/local/bin:/usr/bin:/bin",
            "PG_BINDIR": str(bindir),
            "PYTHONPATH": str(python_path),
            "PATRONICTL_CONFIG_FILE": str(Path(pgroot).parent / "postgres.yml"),
        },
        extra_mounts={str(runtime_dir / container["name"] / "socket"): POSTGRES_SOCKET_DIR},
        tool_mounts={SITE_PACKAGES: str(python_path)},
        uid=account.pw_uid,
        gid=account.pw_gid,
        note=note or f"image {image}: Patroni {_patroni_version()} with PostgreSQL {major} stands in for Spilo",
        ready=patroni_ready,
        tools={"patronictl": f'#!/bin/sh\nexec /usr/bin/python3 -c "{ctl}" "$@"\n'},
    )


def _patroni_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("patroni")
