"""KubernetesPodExec over a scripted exec session: early exits, exit statuses, the deadline, stderr and chunks.

FakeSession borrows WSClient's own channel, status and open/closed logic (kubernetes 37) and replaces only
the socket: each ``update`` (the client also updates inside its reads) delivers the next batch of frames
the API server would have sent once the process has been fed that many stdin chunks, and writes fail the
way a closed websocket makes them fail.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Sequence

import pytest
from kubernetes.stream.ws_client import WSClient
from websocket import WebSocketConnectionClosedException

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases import kubernetes_exec
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.kubernetes_exec import (
    STDERR_KEPT,
    KubernetesPodExec,
    PodTarget,
    StreamError,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError

STDOUT, STDERR, STATUS = 1, 2, 3
CLOSE = "close"
RESET = "reset"
SUCCESS = json.dumps({"metadata": {}, "status": "Success"}).encode()
EXEC_FAILED = json.dumps({
    "metadata": {}, "status": "Failure", "reason": "InternalError", "code": 500,
    "message": 'OCI runtime exec failed: exec failed: unable to start container process: exec: "psql": '
               'executable file not found in $PATH: unknown',
    "details": {"causes": [{"message": 'OCI runtime exec failed: exec: "psql": executable file not found in $PATH'}]},
}).encode()


def exit_status(code: int) -> bytes:
    return json.dumps({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode", "message": f"exit code {code}",
                       "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}).encode()


class FakeSocket:
    """Records the send timeouts the runner sets."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def settimeout(self, timeout: float) -> None:
        self.timeouts.append(timeout)


class FakeSession:
    """An exec session whose server side is a script of ``(after so many writes, frames)``, one batch per ``update``."""

    peek_channel = WSClient.peek_channel
    read_channel = WSClient.read_channel
    read_stdout = WSClient.read_stdout
    read_stderr = WSClient.read_stderr
    is_open = WSClient.is_open
    returncode = WSClient.returncode

    def __init__(self, batches: Sequence[tuple[int, Sequence[Any]]], writes_accepted: int | None = None,
                 write_error: BaseException | None = None, binary: bool = True) -> None:
        self._connected = True
        self._channels: dict[int, Any] = {}
        self._closed_channels: set[int] = set()
        self._returncode = None
        self.binary = binary
        self.sock = FakeSocket()
        self.batches = deque(batches)
        self.writes_accepted = writes_accepted
        self.write_error = write_error
        self.write_attempts = 0
        self.written: list[Any] = []
        self.stdin_closed = False
        self.closed = False

    def update(self, timeout: float = 0) -> None:
        del timeout
        if not self._connected or not self.batches or self.write_attempts < self.batches[0][0]:
            return
        for frame in self.batches.popleft()[1]:
            if frame == RESET:
                raise WebSocketConnectionClosedException("Connection to remote host was lost.")
            if frame == CLOSE:
                self._connected = False
                return
            channel, data = frame
            data = data if self.binary else data.decode()
            self._channels[channel] = self._channels.get(channel, data[:0]) + data

    def write_stdin(self, data: Any) -> None:
        self.write_attempts += 1
        if self.writes_accepted is not None and self.write_attempts > self.writes_accepted:
            raise self.write_error or BrokenPipeError(32, "Broken pipe")
        self.written.append(data)

    def close_channel(self, channel: int) -> None:
        assert channel == 0
        self.stdin_closed = True

    def close(self, **kwargs: Any) -> None:
        del kwargs
        self._connected = False
        self.closed = True


class OldClientSession(FakeSession):
    """A kubernetes client from before close_channel (< 36): the attribute does not exist."""

    close_channel = property(doc="reading it raises AttributeError, as on a client without the method")  # type: ignore[assignment]


def runner(session: FakeSession, exec_timeout: int = 300) -> KubernetesPodExec:
    """A runner whose pod is resolved and whose session is the fake, so no API server is needed."""
    pod_exec = KubernetesPodExec(PodTarget(namespace="microservices", pod="postgresql-0", exec_timeout=exec_timeout))
    pod_exec._resolve_pod = lambda: "postgresql-0"  # type: ignore[method-assign]  # pylint: disable=protected-access
    pod_exec._open_session = lambda pod, argv, binary: session  # type: ignore[method-assign]  # pylint: disable=protected-access
    return pod_exec


def stream(session: FakeSession, stdin: Sequence[bytes] = (), exec_timeout: int = 300) -> tuple[Any, list[bytes]]:
    received: list[bytes] = []
    result = runner(session, exec_timeout).stream_bytes(["psql", "-f", "-"], stdin, received.append)
    return result, received


def test_every_stdin_chunk_is_written_in_order_and_stdout_handed_over_as_it_arrives() -> None:
    session = FakeSession([(0, [(STDOUT, b"a")]), (2, [(STDOUT, b"b"), (STDOUT, b"c")]), (3, [(STATUS, SUCCESS), CLOSE])])
    result, received = stream(session, [b"one", b"two", b"three"])
    assert session.written == [b"one", b"two", b"three"]
    assert session.stdin_closed and session.closed
    assert received == [b"a", b"bc"]
    assert (result.rc, result.stderr, result.pod) == (0, "", "postgresql-0")


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "Connection reset by peer"),
                                   WebSocketConnectionClosedException("socket is already closed.")])
def test_a_write_after_psql_exited_ends_feeding_and_psqls_error_is_reported(error: BaseException) -> None:
    stderr = b'psql:<stdin>:12: ERROR:  relation "t" already exists\n'
    session = FakeSession([(3, [(STDERR, stderr), (STATUS, exit_status(3)), CLOSE])], writes_accepted=2,
                          write_error=error)
    result, received = stream(session, [b"1", b"2", b"3", b"4", b"5"])
    assert session.written == [b"1", b"2"] and session.write_attempts == 3
    assert (result.rc, result.stderr, received) == (3, stderr.decode(), [])


def test_feeding_stops_once_the_server_closed_the_session() -> None:
    session = FakeSession([(1, [(STDERR, b"psql: error: connection failed\n"), (STATUS, exit_status(2)), CLOSE])])
    result, _received = stream(session, [b"1", b"2", b"3"])
    assert session.written == [b"1"]
    assert (result.rc, result.stderr) == (2, "psql: error: connection failed\n")


def test_an_exec_that_could_not_start_reports_the_status_message_not_a_traceback() -> None:
    session = FakeSession([(0, [(STATUS, EXEC_FAILED), CLOSE])])
    with pytest.raises(StreamError, match=r'psql in pod .postgresql-0. did not run to an exit status: OCI runtime exec failed: .*'
                                          r'executable file not found in \$PATH') as info:
        stream(session, [b"SELECT 1;\n"])
    assert info.value.input_sent is False and session.written == []


def test_a_connection_lost_without_a_status_is_an_error_with_the_stderr_tail() -> None:
    session = FakeSession([(1, [(STDERR, b"psql:<stdin>:3: ERROR:  boom\n")]), (1, [RESET])])
    with pytest.raises(StreamError, match=r"closed without an exit status .*; stderr: psql:<stdin>:3: ERROR:  boom") as info:
        stream(session, [b"1"])
    assert info.value.input_sent is True and session.closed


def test_status_text_that_is_not_a_status_is_reported_as_it_came() -> None:
    session = FakeSession([(0, [(STATUS, b"not: [a status"), CLOSE])])
    with pytest.raises(StreamError, match=r"did not run to an exit status: not: \[a status"):
        stream(session)


def test_the_deadline_stops_a_process_that_never_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(float(second) for second in range(1000))
    monkeypatch.setattr(kubernetes_exec.time, "monotonic", lambda: next(clock))
    session = FakeSession([])
    with pytest.raises(StreamError, match=r"psql in pod 'postgresql-0' did not finish within 5 s") as info:
        stream(session, [b"1", b"2"], exec_timeout=5)
    assert info.value.input_sent is True and session.closed
    assert session.sock.timeouts and all(0 < timeout <= 5 for timeout in session.sock.timeouts)


def test_a_send_is_bounded_by_the_time_left() -> None:
    session = FakeSession([(1, [(STATUS, SUCCESS), CLOSE])])
    stream(session, [b"1"], exec_timeout=30)
    assert session.sock.timeouts and all(29 < timeout <= 30 for timeout in session.sock.timeouts)


def test_only_the_tail_of_a_noisy_stderr_is_kept() -> None:
    noise = [(STDERR, bytes([65 + index]) * 40000) for index in range(4)]
    session = FakeSession([(0, noise[:2]), (0, noise[2:]), (0, [(STATUS, SUCCESS), CLOSE])])
    result, _received = stream(session)
    assert len(result.stderr) == STDERR_KEPT
    assert result.stderr == ("C" * 40000 + "D" * 40000)[-STDERR_KEPT:]


def test_a_client_without_close_channel_still_ends_the_run() -> None:
    session = OldClientSession([(1, [(STATUS, SUCCESS), CLOSE])])
    result, _received = stream(session, [b"SELECT 1;\n\\q\n"])
    assert result.rc == 0 and session.written == [b"SELECT 1;\n\\q\n"]


def test_the_text_mode_reports_a_refused_exec_as_a_transport_error() -> None:
    session = FakeSession([(0, [(STATUS, EXEC_FAILED), CLOSE])], binary=False)
    with pytest.raises(TransportError, match="did not run to an exit status: OCI runtime exec failed"):
        runner(session)(["psql"], "SELECT 1;\n\\q\n")


def test_the_text_mode_collects_output_after_psql_stopped_reading() -> None:
    session = FakeSession([(1, [(STDOUT, b"[1]\n"), (STDERR, b"psql:<stdin>:2: ERROR:  x\n"), (STATUS, exit_status(3)), CLOSE])],
                          writes_accepted=0, binary=False)
    result = runner(session)(["psql"], "SELECT 1;\n\\q\n")
    assert (result.rc, result.stdout, result.stderr) == (3, "[1]\n", "psql:<stdin>:2: ERROR:  x\n")


def test_errors_of_the_input_or_the_output_are_not_taken_for_psql_exiting() -> None:
    def unreadable_backup():
        yield b"1"
        raise OSError(5, "Input/output error")

    session = FakeSession([(0, [(STDOUT, b"dump")])])
    with pytest.raises(OSError, match="Input/output error"):
        stream(session, unreadable_backup())
    assert session.closed

    def disk_full(chunk: bytes) -> None:
        raise OSError(28, "No space left on device")

    session = FakeSession([(0, [(STDOUT, b"dump")])])
    with pytest.raises(OSError, match="No space left on device"):
        runner(session).stream_bytes(["pg_dumpall"], (), disk_full)
    assert session.closed
