"""The exec stream: memory bounded whatever the size, both directions at once, exit status, deadline, errors."""

from __future__ import annotations

import json
import queue
import threading
import time
import tracemalloc

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.protocol import (
    STDIN_CLOSED,
    ExitStatusError,
    exit_code,
)
from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.stream import (
    STDERR_KEPT,
    SessionClosed,
    StreamError,
    run_stream,
)

SUCCESS = bytes([3]) + json.dumps({"metadata": {}, "status": "Success"}).encode()
FRAME = 32768


def failure(code: int) -> bytes:
    return bytes([3]) + json.dumps({"status": "Failure", "message": f"exit code {code}", "reason": "NonZeroExitCode",
                                    "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}).encode()


class FakeConnection:
    """Server side played from a generator of messages; records what the client sent; abort ends receive()."""

    def __init__(self, messages, v5: bool = True) -> None:
        self.messages = iter(messages)
        self.v5 = v5
        self.sent: list[bytes] = []
        self.aborted = threading.Event()
        self.closed = False

    def receive(self):
        if self.aborted.is_set():
            raise SessionClosed("aborted")
        return next(self.messages, None)

    def send(self, message: bytes) -> None:
        if self.aborted.is_set():
            raise SessionClosed("aborted")
        self.sent.append(message)

    def abort(self) -> None:
        self.aborted.set()

    def close(self) -> None:
        self.closed = True


def test_a_stream_far_larger_than_memory_allows_keeps_memory_flat() -> None:
    """512 MiB of stdout in 32 KiB frames: the traced peak stays within a few frames, not the size."""
    total = 512 * 1024 * 1024
    payload = bytes([1]) + b"x" * FRAME

    def frames():
        for _frame in range(total // FRAME):
            yield payload
        yield SUCCESS

    received = 0

    def count(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)

    tracemalloc.start()
    try:
        rc, _stderr = run_stream(FakeConnection(frames()), "pg_dumpall in pod 'p'", 60, "exec_timeout", (), count)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rc == 0 and received == total
    assert peak < 1024 * 1024, f"peak {peak} bytes for a {total} byte stream"


def test_stdin_is_sent_in_order_then_closed_while_stdout_flows() -> None:
    connection = FakeConnection([bytes([1]) + b"out", SUCCESS])
    seen: list[bytes] = []
    rc = run_stream(connection, "psql", 10, "restore_timeout", [b"a", b"b"], seen.append)[0]
    assert rc == 0 and seen == [b"out"]
    # The reader may end (status received) before the writer is done, so only the order is certain.
    assert connection.sent == [b"\x00a", b"\x00b", STDIN_CLOSED][:len(connection.sent)]
    assert connection.closed


def test_v4_has_no_stdin_close_message() -> None:
    connection = FakeConnection([], v5=False)
    done = threading.Event()

    def messages():
        done.wait(5)
        yield SUCCESS

    connection.messages = messages()
    feed = iter([b"x"])

    def stdin():
        yield from feed
        done.set()

    run_stream(connection, "psql", 10, "restore_timeout", stdin(), lambda chunk: None)
    assert STDIN_CLOSED not in connection.sent


def test_the_exit_code_and_the_stderr_tail_come_back() -> None:
    noise = bytes([2]) + b"e" * (STDERR_KEPT + 10)
    rc, stderr = run_stream(FakeConnection([noise, bytes([2]) + b"ERROR: boom\n", failure(3)]), "psql", 10,
                            "restore_timeout", (), lambda chunk: None)
    assert rc == 3 and stderr.endswith("ERROR: boom\n") and len(stderr) == STDERR_KEPT


def test_a_connection_lost_without_status_is_an_error_saying_whether_input_left() -> None:
    def messages():
        yield bytes([2]) + b"psql:<stdin>:3: ERROR:  boom\n"
        raise SessionClosed("Connection reset by peer")

    class Lossy(FakeConnection):
        def receive(self):
            return next(self.messages, None)

    with pytest.raises(StreamError, match=r"psql did not run to an exit status: the connection closed without an exit "
                                          r"status \(Connection reset by peer\); stderr: psql:<stdin>:3: ERROR:  boom"):
        run_stream(Lossy(messages()), "psql", 10, "restore_timeout", (), lambda chunk: None)


def test_the_deadline_cuts_the_connection_and_names_its_input() -> None:
    blocked: queue.Queue = queue.Queue()

    class Silent(FakeConnection):
        def receive(self):
            self.aborted.wait()
            raise SessionClosed("aborted")

    started = time.monotonic()
    with pytest.raises(StreamError, match=r"psql in pod 'p' did not finish within 0.5 s \(restore_timeout\); "
                                          r"it was stopped") as info:
        run_stream(Silent([]), "psql in pod 'p'", 0.5, "restore_timeout", [b"x"], blocked.put)
    assert time.monotonic() - started < 5
    assert info.value.input_sent is True


def test_an_error_writing_stdout_is_raised_as_it_was() -> None:
    def disk_full(chunk: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        run_stream(FakeConnection([bytes([1]) + b"x", SUCCESS]), "pg_dumpall", 10, "exec_timeout", (), disk_full)


def test_an_error_reading_stdin_is_raised_as_it_was() -> None:
    def broken():
        yield b"first"
        raise ValueError("gzip: corrupt")

    class Waiting(FakeConnection):
        def receive(self):
            self.aborted.wait()
            raise SessionClosed("aborted")

    with pytest.raises(ValueError, match="gzip: corrupt"):
        run_stream(Waiting([]), "psql", 10, "restore_timeout", broken(), lambda chunk: None)


@pytest.mark.parametrize(("status", "expected"), [
    (b'{"status": "Success"}', 0),
    (failure(2)[1:], 2),
])
def test_exit_code(status: bytes, expected: int) -> None:
    assert exit_code(status) == expected


@pytest.mark.parametrize(("status", "message"), [
    (b"", "the connection closed without an exit status"),
    (b'OCI runtime exec failed: exec: "psql": executable file not found', "OCI runtime exec failed"),
    (b'{"status": "Failure", "message": "container not found"}', "container not found"),
    (b"[1]", r"\[1\]"),
])
def test_what_is_not_an_exit_status(status: bytes, message: str) -> None:
    with pytest.raises(ExitStatusError, match=message):
        exit_code(status)
