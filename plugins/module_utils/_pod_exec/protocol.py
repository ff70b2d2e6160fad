# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exec channel protocol (``v4.channel.k8s.io``, ``v5.channel.k8s.io``) as the API server speaks it.

Every binary message starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 the process's exit
``Status``; v5 adds channel 255, whose payload ``0`` tells the server that stdin is closed. Only
these few facts are needed to stream, which is why the transport speaks the protocol itself
instead of going through the kubernetes client's ``WSClient`` (which keeps a copy of everything).
"""

from __future__ import annotations

import json

STDIN, STDOUT, STDERR, ERROR, CLOSE = 0, 1, 2, 3, 255
V5_PROTOCOL = "v5.channel.k8s.io"
STDIN_CLOSED = bytes([CLOSE, STDIN])
"""v5's "stdin is closed" message: without it a process reading stdin waits for more (v4 has no such message)."""


class ExitStatusError(Exception):
    """The status channel did not hold an exit status (exec refused, or no status at all)."""


def stdin_message(chunk: bytes) -> bytes:
    """One stdin chunk as a channel message."""
    return bytes([STDIN]) + chunk


def exit_code(status: bytes) -> int:
    """The exit code in the status channel's ``Status``: 0 on Success, the ``ExitCode`` cause otherwise.

    Anything else (an exec the runtime could not start sends its message as text, or a Status
    without an exit code) is an ExitStatusError carrying what the channel said.
    """
    text = status.decode("utf-8", "replace").strip()
    if not text:
        raise ExitStatusError("the connection closed without an exit status")
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ExitStatusError(text) from None
    if not isinstance(parsed, dict):
        raise ExitStatusError(text)
    if parsed.get("status") == "Success":
        return 0
    causes = (parsed.get("details") or {}).get("causes") or []
    for cause in causes:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                break
    raise ExitStatusError(str(parsed.get("message") or text))
