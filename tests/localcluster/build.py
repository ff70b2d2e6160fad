"""Build the local test bed's Go components once, into a cache keyed by what they are built from.

Each folder under ``components/`` is a Go module whose ``tool`` directives name the programs to
build (``go get -tool PKG@VERSION`` pins them, with their whole dependency graph, in its go.mod
and go.sum); an optional ``ldflags`` file (one flag a line) stamps what a release build stamps,
such as the version ``kubectl version`` reports. A component's binaries go to
``.cache/localcluster/<component>-<key>/``, where the key hashes those files and the Go
toolchain version: a changed pin builds again, an
unchanged one costs a stat. Nothing built here is committed: the sources come from the Go module
proxy at build time.

Run as ``python -m tests.localcluster.build [COMPONENT ...]``; it prints one line per component
with the time it took, and exits non-zero, naming the component, when a build fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
COMPONENTS_DIR = HERE / "components"
CACHE_DIR = Path(os.environ.get("LOCALCLUSTER_CACHE", REPO_ROOT / ".cache" / "localcluster"))
# Marks a finished build: a folder without it (an interrupted build) is built again.
DONE_MARK = ".built"


class BuildError(RuntimeError):
    """A component did not build; the message names it and carries go's last lines."""


def component_names() -> list[str]:
    return sorted(p.name for p in COMPONENTS_DIR.iterdir() if (p / "go.mod").is_file())


def go_env() -> dict[str, str]:
    """The environment every build runs in: module mode, no VCS stamping, the pinned toolchain.

    ``GOFLAGS=-mod=mod`` is not set: go.sum must already hold every hash, so a build never
    resolves anything the commit did not pin.
    """
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-buildvcs=false")
    env["CGO_ENABLED"] = env.get("CGO_ENABLED", "0")
    return env


def _go_version(env: dict[str, str]) -> str:
    return subprocess.run(["go", "env", "GOVERSION"], env=env, check=True, capture_output=True, text=True).stdout.strip()


def cache_key(component: str, env: dict[str, str]) -> str:
    """A hash of what decides the binaries: the pins and the compiler."""
    digest = hashlib.sha256(_go_version(env).encode())
    for name in ("go.mod", "go.sum", "ldflags"):
        path = COMPONENTS_DIR / component / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def bin_dir(component: str, env: dict[str, str] | None = None) -> Path:
    """Where the component's binaries are (or will be) for the current pins."""
    env = env or go_env()
    return CACHE_DIR / f"{component}-{cache_key(component, env)}"


def build(component: str, env: dict[str, str]) -> tuple[Path, bool]:
    """Build one component unless its cache folder is complete; return the folder and whether it was built."""
    target = bin_dir(component, env)
    if (target / DONE_MARK).exists():
        return target, False
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    ldflags_file = COMPONENTS_DIR / component / "ldflags"
    ldflags = " ".join(ldflags_file.read_text().split()) if ldflags_file.exists() else ""
    result = subprocess.run(
        ["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(partial) + "/", "tool"],
        cwd=COMPONENTS_DIR / component,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise BuildError(f"component {component!r} did not build (go build rc={result.returncode}):\n{tail}")
    (partial / DONE_MARK).write_text(_go_version(env) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    for stale in CACHE_DIR.glob(f"{component}-*"):
        if stale != target and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return target, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("components", nargs="*", help="components to build (default: all)")
    args = parser.parse_args(argv)
    if shutil.which("go") is None:
        print("localcluster build: no `go` on PATH; the test bed needs the Go toolchain", file=sys.stderr)
        return 2
    env = go_env()
    names = args.components or component_names()
    unknown = sorted(set(names) - set(component_names()))
    if unknown:
        print(f"localcluster build: unknown component(s) {unknown}; known: {component_names()}", file=sys.stderr)
        return 2
    total = time.monotonic()
    for name in names:
        started = time.monotonic()
        try:
            target, built = build(name, env)
        except BuildError as exc:
            print(f"localcluster build: {exc}", file=sys.stderr)
            return 1
        took = time.monotonic() - started
        state = f"built in {took:.0f} s" if built else "cached"
        print(f"localcluster build: {name:<16} {state:<16} {target}", flush=True)
    print(f"localcluster build: all {len(names)} component(s) ready in {time.monotonic() - total:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
