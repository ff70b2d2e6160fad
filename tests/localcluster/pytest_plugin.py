"""pytest fixtures for tests that need the real test bed.

``localcluster`` starts ``python -m tests.localcluster serve`` for the test module that asks for
it and stops it afterwards (SIGTERM: every process it started ends, its namespace goes). The
handle has ``kubeconfig_path`` like kubesim's, so a suite moves from one bed to the other by
changing its fixture.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 300


class LocalClusterProcess:
    """A running ``serve``: its state folder, kubeconfig and pinned kubectl."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.kubeconfig_path = state_dir / "kubeconfig"
        self.kubectl_path = state_dir / "kubectl"
        self.log_path = state_dir / "serve.log"
        self._process: subprocess.Popen | None = None

    def start(self) -> "LocalClusterProcess":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.localcluster", "serve", "--state-dir", str(self.state_dir)],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.kubeconfig_path.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the test bed did not start; last lines of {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.5)
        return self

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kubectl(self, *args: str, check: bool = True, input_text: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig_path}", *args],
            capture_output=True, text=True, input=input_text, timeout=timeout, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> "LocalClusterProcess":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def require_test_bed() -> None:
    """Skip, saying why, where the test bed cannot run; the summary of `make test` counts these."""
    if os.geteuid() != 0:
        pytest.skip("localcluster: needs root (network namespaces, cgroups, PostgreSQL as postgres)")
    try:
        from .binaries import Binaries  # noqa: PLC0415

        Binaries.locate()
    except FileNotFoundError as exc:
        pytest.skip(f"localcluster: {exc}")


@pytest.fixture(scope="module")
def localcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClusterProcess]:
    require_test_bed()
    with LocalClusterProcess(tmp_path_factory.mktemp("localcluster")) as running:
        yield running


__all__ = ["LocalClusterProcess", "localcluster", "require_test_bed"]
