"""Start and stop the test bed's processes so that none outlives it.

Every process gets a session of its own (its children die with its process group), its output
goes to ``logs/<name>.log`` in the state folder, and ``stop_all`` ends them in the reverse order
of their start: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Managed:
    name: str
    process: subprocess.Popen
    log: Path


class ProcessError(RuntimeError):
    """A process exited when it should be running; the message ends with its log's last lines."""


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Supervisor:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._running: list[Managed] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Managed:
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=cwd, start_new_session=True,
            )
        managed = Managed(name, process, log)
        self._running.append(managed)
        return managed

    def check(self, managed: Managed) -> None:
        """Raise if the process has exited, with what it last logged."""
        if managed.process.poll() is not None:
            raise ProcessError(
                f"{managed.name} exited with rc={managed.process.returncode}; last lines of {managed.log}:\n"
                + log_tail(managed.log)
            )

    def check_all(self) -> None:
        for managed in list(self._running):
            self.check(managed)

    def stop(self, managed: Managed, grace: float = 10.0) -> None:
        _terminate([managed], grace)
        if managed in self._running:
            self._running.remove(managed)

    def stop_all(self, grace: float = 10.0) -> None:
        _terminate(list(reversed(self._running)), grace)
        self._running.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _terminate(processes: list[Managed], grace: float) -> None:
    for managed in processes:
        _signal_group(managed.process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for managed in processes:
        try:
            managed.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(managed.process, signal.SIGKILL)
        try:
            managed.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
