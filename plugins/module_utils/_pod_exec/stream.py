# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exec stream: stdout handed on frame by frame, stdin fed chunk by chunk, both at once, under a deadline.

A reader thread receives one message at a time and passes stdout to the caller at once; a writer
thread sends the caller's stdin chunks. So memory is one message plus one stdin chunk whatever the
size of the stream, and neither direction can stall the other (psql may write while it reads). The
deadline is kept by the calling thread: when it passes, the connection is cut, which ends both
threads, and the error names the input that set it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.protocol import (
    CLOSE,
    ERROR,
    STDERR,
    STDIN_CLOSED,
    STDOUT,
    ExitStatusError,
    exit_code,
    stdin_message,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError

STDERR_KEPT = 65536
"""Bytes of stderr kept (the tail): enough for psql's error, bounded for a noisy run."""
STATUS_KEPT = 65536
"""Bytes of the status channel kept: a Status is a few hundred bytes; a misbehaving server cannot grow it."""


class SessionClosed(Exception):
    """The connection is gone (closed by the server, reset, or cut at the deadline)."""


class Connection(Protocol):
    """What a stream needs of an upgraded exec connection (see pod.WebSocketConnection)."""

    v5: bool

    def receive(self) -> bytes | None:
        """The next data message, or None once the server closed the connection; SessionClosed when it broke."""

    def send(self, message: bytes) -> None:
        """Send one data message; SessionClosed when the connection is gone."""

    def abort(self) -> None:
        """Cut the connection at once, waking a thread blocked in receive or send."""

    def close(self) -> None:
        """Release the connection once no thread uses it."""


@dataclass(frozen=True)
class StreamResult:
    """How a streamed command ended: its exit code and the tail of its stderr."""

    rc: int
    stderr: str
    pod: str


class StreamError(TransportError):
    """A streamed command did not run to an exit status; ``input_sent`` tells whether any stdin byte left.

    A restore whose input never left the controller changed nothing, and must not say it may have.
    """

    def __init__(self, message: str, input_sent: bool) -> None:
        super().__init__(message)
        self.input_sent = input_sent


@dataclass
class _Outcome:
    """What the two threads found; written by them, read by the caller after joining them."""

    stderr: bytearray = field(default_factory=bytearray)
    status: bytearray = field(default_factory=bytearray)
    input_sent: bool = False
    lost: str = ""
    failure: BaseException | None = None


def run_stream(connection: Connection, what: str, timeout: float, timeout_name: str,
               stdin: Iterable[bytes], on_stdout: Callable[[bytes], None]) -> tuple[int, str]:
    """Run one exec over ``connection`` to its exit status; returns (exit code, stderr tail).

    An error raised by ``stdin`` (reading the backup) or ``on_stdout`` (writing the archive) is raised
    again as it was, after the connection is cut: it is the controller's, not the process's.
    """
    outcome = _Outcome()
    done = threading.Event()
    reader = threading.Thread(target=_read, args=(connection, on_stdout, outcome, done), daemon=True)
    writer = threading.Thread(target=_write, args=(connection, stdin, outcome, done), daemon=True)
    reader.start()
    writer.start()
    finished = done.wait(timeout)
    connection.abort()
    reader.join()
    writer.join()
    connection.close()
    if outcome.failure is not None:
        raise outcome.failure
    stderr = outcome.stderr.decode("utf-8", "replace")
    if not finished:
        raise StreamError(f"{what} did not finish within {timeout:g} s ({timeout_name}); it was stopped",
                          input_sent=outcome.input_sent)
    try:
        return exit_code(bytes(outcome.status)), stderr
    except ExitStatusError as exc:
        detail = f"{exc}" + (f" ({outcome.lost})" if outcome.lost else "")
        tail = stderr.strip()[-2000:]
        raise StreamError(f"{what} did not run to an exit status: {detail}" + (f"; stderr: {tail}" if tail else ""),
                          input_sent=outcome.input_sent) from None


def _read(connection: Connection, on_stdout: Callable[[bytes], None], outcome: _Outcome, done: threading.Event) -> None:
    """Hand every stdout message on as it arrives; keep the stderr tail and the status; end with the connection."""
    try:
        while True:
            message = connection.receive()
            if message is None:
                return
            channel, payload = message[0], message[1:]
            if channel == STDOUT:
                try:
                    on_stdout(payload)
                except BaseException as exc:  # pylint: disable=broad-exception-caught
                    outcome.failure = exc
                    return
            elif channel == STDERR:
                outcome.stderr.extend(payload)
                del outcome.stderr[:-STDERR_KEPT]
            elif channel == ERROR:
                outcome.status.extend(payload[:STATUS_KEPT - len(outcome.status)])
            elif channel == CLOSE:
                continue
    except SessionClosed as exc:
        outcome.lost = str(exc)
    finally:
        done.set()


def _write(connection: Connection, stdin: Iterable[bytes], outcome: _Outcome, done: threading.Event) -> None:
    """Send every stdin chunk, then close stdin; stop quietly once the process no longer reads (it exited).

    An empty chunk is not sent: it lets an input that waits for the process's output (restore.Restorer.swap) hand
    control back now and then, so that it is dropped when the process has ended instead of waiting forever.
    """
    try:
        for chunk in stdin:
            if done.is_set():
                return
            if not chunk:
                continue
            connection.send(stdin_message(chunk))
            outcome.input_sent = True
        if connection.v5:
            connection.send(STDIN_CLOSED)
    except SessionClosed:
        return
    except BaseException as exc:  # pylint: disable=broad-exception-caught
        outcome.failure = exc
        done.set()
