# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A pod's exec as a stream: the kubernetes client opens the connection, the channel protocol is spoken here.

The client's handshake is kept (kubeconfig, tokens, TLS, proxies are all honoured as for every
other exec of the collection), but not its ``WSClient`` reading loop, which keeps every byte in
``_all`` and grows each channel with ``+=``: after the upgrade the websocket-client socket is read
and written directly (stream.run_stream).
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Iterable, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.protocol import V5_PROTOCOL
from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.stream import (
    SessionClosed,
    StreamResult,
    run_stream,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.kubernetes_exec import (
    KubernetesPodExec,
    PodTarget,
)

_OPCODE_BINARY, _OPCODE_TEXT, _OPCODE_CLOSE = 0x2, 0x1, 0x8


class WebSocketConnection:
    """A websocket-client ``WebSocket`` after the exec upgrade, as stream.Connection."""

    def __init__(self, websocket: Any, subprotocol: str | None) -> None:
        self._ws = websocket
        self.v5 = subprotocol == V5_PROTOCOL

    def receive(self) -> bytes | None:
        from websocket import WebSocketException  # pylint: disable=import-outside-toplevel

        while True:
            try:
                opcode, data = self._ws.recv_data()
            except (OSError, WebSocketException) as exc:
                raise SessionClosed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
            if opcode == _OPCODE_CLOSE:
                return None
            if opcode in (_OPCODE_BINARY, _OPCODE_TEXT) and data:
                return data if isinstance(data, bytes) else data.encode("utf-8")

    def send(self, message: bytes) -> None:
        from websocket import WebSocketException  # pylint: disable=import-outside-toplevel

        try:
            self._ws.send_binary(message)
        except (OSError, WebSocketException) as exc:
            raise SessionClosed(str(exc)) from None

    def abort(self) -> None:
        """Shut the socket down, which wakes a thread blocked in it; a socket already gone is fine."""
        raw = getattr(self._ws, "sock", None)
        if raw is not None:
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        """Release the socket, once no thread uses it any more."""
        try:
            self._ws.shutdown()
        except OSError:
            pass


class PodStreamer:
    """Runs commands in the pod the options name or select, streaming their stdin and stdout.

    The pod lookup and the handshake are KubernetesPodExec's, so both transports find the same pod
    the same way and fail with the same messages (issue 14 moves that runner out of _service_databases).
    """

    def __init__(self, target: PodTarget, timeout: float, timeout_name: str = "exec_timeout") -> None:
        self._runner = KubernetesPodExec(target)
        self._timeout = timeout
        self._timeout_name = timeout_name

    def __call__(self, argv: Sequence[str], stdin: Iterable[bytes], on_stdout: Callable[[bytes], None]) -> StreamResult:
        """Run ``argv`` in the pod to its exit status (see stream.run_stream)."""
        pod = self._runner._resolve_pod()  # pylint: disable=protected-access
        session = self._runner._open_session(pod, argv, binary=True)  # pylint: disable=protected-access
        connection = WebSocketConnection(session.sock, session.subprotocol)
        rc, stderr = run_stream(connection, f"{argv[0]} in pod {pod!r}", self._timeout, self._timeout_name,
                                stdin, on_stdout)
        return StreamResult(rc=rc, stderr=stderr, pod=pod)
