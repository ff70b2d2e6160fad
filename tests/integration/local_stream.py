"""A Streamer (as _pod_exec.PodStreamer is one) that runs psql and pg_dumpall on this machine against a test server.

It lets the restore's phases run for real against PostgreSQL without Kubernetes: same argv, stdin
and stdout as in the pod, with the server's libpq environment instead of the pod's socket.
"""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Callable, Iterable, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.stream import StreamResult
from tests.support.pgserver import ServerInfo


class LocalStream:
    """Runs each command with the server's binaries and environment; ``before`` sees each argv first (test hooks)."""

    def __init__(self, info: ServerInfo, before: Callable[[Sequence[str]], None] | None = None) -> None:
        self.info = info
        self.before = before
        self.commands: list[list[str]] = []

    def __call__(self, argv: Sequence[str], stdin: Iterable[bytes], on_stdout: Callable[[bytes], None]) -> StreamResult:
        self.commands.append(list(argv))
        if self.before:
            self.before(argv)
        env = {**os.environ, **self.info.env(), "PATH": f"{self.info.bindir}:{os.environ['PATH']}"}
        proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env)
        stderr: list[bytes] = []
        reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
        reader.start()

        def feed() -> None:
            try:
                for chunk in stdin:
                    proc.stdin.write(chunk)
                    proc.stdin.flush()
                proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            on_stdout(chunk)
        rc = proc.wait()
        writer.join()
        reader.join()
        return StreamResult(rc=rc, stderr=b"".join(stderr).decode("utf-8", "replace"), pod="local")
