"""``pods/exec`` over WebSocket, as kubectl 1.30+ (``v5.channel.k8s.io``) and the kubernetes
Python client (``v4.channel.k8s.io``) speak it.

Frames carry a leading channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a ``Status`` whose
``NonZeroExitCode`` cause holds the exit code), 4 resize; v5 adds channel 255 with payload
``0`` meaning "stdin closed". The command runs on this machine with the pod's environment
(see ``postgres_pods.PodRuntime.exec_environment``), which is what makes ``psql`` in a database
pod reach that pod's PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import threading
from typing import TYPE_CHECKING, Any

from .errors import bad_request

if TYPE_CHECKING:
    from .http_api import Handler
    from .server import KubeSim

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocket:
    """Minimal RFC 6455 server side: unfragmented sends, reassembly of fragmented receives."""

    def __init__(self, rfile: Any, wfile: Any, sock: socket.socket) -> None:
        self.rfile = rfile
        self.wfile = wfile
        self.sock = sock
        self._send_lock = threading.Lock()
        self.closed = False

    def send(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([length])
        elif length < 1 << 16:
            header += bytes([126]) + struct.pack("!H", length)
        else:
            header += bytes([127]) + struct.pack("!Q", length)
        with self._send_lock:
            if self.closed:
                return
            try:
                self.wfile.write(header + payload)
                self.wfile.flush()
            except OSError:
                self.closed = True

    def _read_exact(self, count: int) -> bytes:
        data = self.rfile.read(count)
        if data is None or len(data) < count:
            raise ConnectionError("websocket closed")
        return data

    def receive(self) -> tuple[int, bytes]:
        """Next complete message (opcode, payload); control frames are returned as they come."""
        message_opcode, chunks = None, []
        while True:
            first, second = self._read_exact(2)
            fin, opcode = first & 0x80, first & 0x0F
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read_exact(8))[0]
            mask = self._read_exact(4) if second & 0x80 else None
            payload = self._read_exact(length) if length else b""
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode >= 0x8:
                return opcode, payload
            if opcode != OP_CONT:
                message_opcode = opcode
            chunks.append(payload)
            if fin:
                return message_opcode or OP_BINARY, b"".join(chunks)

    def close(self, code: int = 1000) -> None:
        self.send(OP_CLOSE, struct.pack("!H", code))
        with self._send_lock:
            self.closed = True


def _handshake(handler: "Handler") -> str:
    offered = [p.strip() for p in handler.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    chosen = next((p for p in PROTOCOLS if p in offered), None)
    key = handler.headers.get("Sec-WebSocket-Key")
    if chosen is None or not key:
        raise bad_request(f"unable to negotiate a streaming protocol: offered {offered}, supported {list(PROTOCOLS)}")
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    handler.send_response(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept)
    handler.send_header("Sec-WebSocket-Protocol", chosen)
    handler.end_headers()
    handler.wfile.flush()
    return chosen


def exit_status(code: int, command: list[str]) -> dict[str, Any]:
    """The error-channel Status for an exit code, worded as the kubelet (CRI) does."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(command)}], exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def serve_exec(handler: "Handler", sim: "KubeSim", pod: dict[str, Any], params: dict[str, list[str]]) -> None:
    """Run one exec session on an upgraded connection; returns when the command and streams end."""
    command = params.get("command") or []
    if not command:
        raise bad_request("you must specify at least 1 command")
    container = (params.get("container") or [""])[-1]
    env, cwd = sim.pods.exec_environment(pod, container)
    want_stdin = (params.get("stdin") or ["false"])[-1] in ("true", "1")
    tty = (params.get("tty") or ["false"])[-1] in ("true", "1")
    protocol = _handshake(handler)
    ws = WebSocket(handler.rfile, handler.wfile, handler.connection)
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE if want_stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT if tty else subprocess.PIPE,
                                env=env, cwd=cwd, start_new_session=True)
    except (FileNotFoundError, PermissionError) as exc:
        message = (f'OCI runtime exec failed: exec failed: unable to start container process: exec: '
                   f'"{command[0]}": {"executable file not found in $PATH" if isinstance(exc, FileNotFoundError) else "permission denied"}: unknown\r\n')
        ws.send(OP_BINARY, bytes([STDOUT]) + message.encode())
        ws.send(OP_BINARY, bytes([ERROR]) + json.dumps(exit_status(126, command)).encode())
        ws.close()
        return
    sim.pods.track_exec(proc)
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, ws, STDOUT), daemon=True)]
    if not tty:
        pumps.append(threading.Thread(target=_pump, args=(proc.stderr, ws, STDERR), daemon=True))
    for pump in pumps:
        pump.start()
    reader = threading.Thread(target=_read_client, args=(ws, proc, protocol), daemon=True)
    reader.start()
    code = proc.wait()
    for pump in pumps:
        pump.join()
    sim.pods.untrack_exec(proc)
    ws.send(OP_BINARY, bytes([ERROR]) + json.dumps(exit_status(code, command)).encode())
    ws.close()
    try:
        handler.connection.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _pump(stream: Any, ws: WebSocket, channel: int) -> None:
    fd = stream.fileno()
    while True:
        data = os.read(fd, 32768)
        if not data:
            break
        ws.send(OP_BINARY, bytes([channel]) + data)
    stream.close()


def _read_client(ws: WebSocket, proc: subprocess.Popen, protocol: str) -> None:
    """Feed stdin, honour v5's close-stdin signal, answer pings; a closed socket ends stdin."""
    try:
        while True:
            opcode, payload = ws.receive()
            if opcode == OP_CLOSE:
                break
            if opcode == OP_PING:
                ws.send(OP_PONG, payload)
                continue
            if opcode not in (OP_BINARY, OP_TEXT) or not payload:
                continue
            channel, data = payload[0], payload[1:]
            if channel == STDIN and proc.stdin is not None and data:
                try:
                    proc.stdin.write(data)
                    proc.stdin.flush()
                except (BrokenPipeError, ValueError):
                    pass
            elif channel == CLOSE and protocol.startswith("v5") and data[:1] == bytes([STDIN]):
                if proc.stdin is not None:
                    proc.stdin.close()
    except (ConnectionError, OSError, ValueError):
        pass
    finally:
        if proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass
