"""Carry host connections to the API server inside the test bed's network namespace.

``serve`` binds a loopback socket in the host's namespace before entering its own; sockets keep
the namespace they were made in, so this forwarder accepts host clients on it and opens each
upstream connection from inside. Bytes are passed through untouched: TLS is between the client
and the API server, whose certificate names 127.0.0.1 too.
"""

from __future__ import annotations

import socket
import threading


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


def _serve_one(client: socket.socket, upstream: tuple[str, int]) -> None:
    try:
        server = socket.create_connection(upstream, timeout=10)
    except OSError:
        client.close()
        return
    server.settimeout(None)
    back = threading.Thread(target=_pump, args=(server, client), daemon=True)
    back.start()
    _pump(client, server)
    back.join()
    client.close()
    server.close()


def forward_forever(listener: socket.socket, upstream: tuple[str, int]) -> threading.Thread:
    """Accept on ``listener`` (already listening) in a daemon thread until it is closed."""

    def accept_loop() -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve_one, args=(client, upstream), daemon=True).start()

    thread = threading.Thread(target=accept_loop, name="apiserver-forward", daemon=True)
    thread.start()
    return thread
