"""A Streamer that runs nothing: it hands out prepared stdout and records what it was fed."""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.stream import StreamResult


class FakeStream:
    """Plays one exec: stdout in the given chunks, then the given exit code and stderr."""

    def __init__(self, stdout: Sequence[bytes] = (), rc: int = 0, stderr: str = "") -> None:
        self.stdout = stdout
        self.rc = rc
        self.stderr = stderr
        self.argv: list[str] = []
        self.stdin = b""

    def __call__(self, argv: Sequence[str], stdin: Iterable[bytes], on_stdout: Callable[[bytes], None]) -> StreamResult:
        self.argv = list(argv)
        self.stdin = b"".join(stdin)
        for chunk in self.stdout:
            on_stdout(chunk)
        return StreamResult(rc=self.rc, stderr=self.stderr, pod="postgresql-0")
