"""The real tools of the monitoring tests, built from the Go module proxy by the test bed's builder.

promtool and postgres_exporter are components of tests/localcluster (their go.mod pins them); a
build is cached, so asking here costs a stat when `make test` already built them. A tool that
cannot be built skips the tests that need it with the reason, never passes them quietly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.localcluster import build


def tool(component: str, program: str) -> Path:
    """The path of ``program`` built by ``component``, building it first when the cache lacks it."""
    if shutil.which("go") is None:
        pytest.skip(f"SKIPPED LOUDLY: {program} cannot be built, no `go` on PATH (the Go toolchain is needed to build "
                    f"tests/localcluster/components/{component} from the Go module proxy)")
    try:
        folder = build.build(component, build.go_env())[0]
    except build.BuildError as exc:
        pytest.skip(f"SKIPPED LOUDLY: {program} could not be built: {exc}")
    return folder / program
