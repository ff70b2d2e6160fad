# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs a command inside a database pod through the Kubernetes exec API.

This is the runner behind the ``kubernetes`` transport: it needs neither Python nor a
network path into the pod, only what kubectl exec needs. The script travels on stdin, never
on the command line, so verifiers do not show up in the API server's audit log of the
request or in the pod's process list.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.psql import ExecResult
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError


@dataclass(frozen=True)
class PodTarget:
    """Which pod and container to exec into, and how to reach the API server."""

    namespace: str
    pod: str | None = None
    pod_selector: str | None = None
    container: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    exec_timeout: int = 300

    def describe(self) -> str:
        which = f"pod {self.pod!r}" if self.pod else f"the pod selected by {self.pod_selector!r}"
        return f"{which} in namespace {self.namespace!r}"


@dataclass(frozen=True)
class StreamResult:
    """How a byte-streamed command ended: its exit code and the tail of its stderr."""

    rc: int
    stderr: str
    pod: str


STDERR_KEPT = 65536
"""Bytes of stderr a streamed command keeps (the tail): enough for psql's error, bounded for a noisy run."""


def kubernetes_import_error() -> str | None:
    """The import failure as text when the kubernetes client is missing; for missing_required_lib."""
    try:
        import kubernetes  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError as exc:
        return str(exc)
    return None


def _api_client(target: PodTarget) -> Any:
    """An ApiClient from the kubeconfig (explicit, else $KUBECONFIG or ~/.kube/config), else in-cluster.

    In-cluster matters for AWX, whose jobs may run as pods with a service account and no kubeconfig.
    """
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel
    from kubernetes.config.config_exception import ConfigException  # pylint: disable=import-outside-toplevel

    try:
        return config.new_client_from_config(config_file=target.kubeconfig, context=target.context)
    except (ConfigException, FileNotFoundError, OSError) as exc:
        if target.kubeconfig:
            raise TransportError(f"cannot load kubeconfig {target.kubeconfig!r}: {exc}") from None
        try:
            config.load_incluster_config()
        except ConfigException:
            raise TransportError(
                f"no usable kubeconfig ({exc}) and not running inside a cluster; set kubeconfig, "
                "K8S_AUTH_KUBECONFIG or KUBECONFIG"
            ) from None
        return client.ApiClient()


def _is_ready(pod: Any) -> bool:
    conditions = (pod.status.conditions or []) if pod.status else []
    return pod.status is not None and pod.status.phase == "Running" and any(
        condition.type == "Ready" and condition.status == "True" for condition in conditions
    )


def _api_error(exc: Any, what: str) -> TransportError:
    """Turn an ApiException into a message carrying the API server's own Status message.

    A refused exec handshake arrives as status 0 with the HTTP status, headers and body packed
    into ``reason`` (separated by ``-+-+-``); the Status body's message is what names the cause.
    """
    status = getattr(exc, "status", None) or ""
    reason = str(getattr(exc, "reason", "") or "")
    parts = reason.split("-+-+-")
    body = getattr(exc, "body", None) or (parts[-1] if len(parts) > 1 else None)
    if len(parts) > 1:
        status = parts[0].replace("Handshake status", "").strip()
    try:
        reason = json.loads(body).get("message", reason)
    except (TypeError, ValueError, AttributeError):
        reason = parts[0].strip()
    return TransportError(f"{what}: {status} {reason}".strip())


class KubernetesPodExec:
    """A psql runner executing inside one pod; the pod is resolved once, on first use."""

    def __init__(self, target: PodTarget) -> None:
        self._target = target
        self._core: Any = None
        self._pod_name: str | None = None

    def _core_api(self) -> Any:
        if self._core is None:
            from kubernetes import client  # pylint: disable=import-outside-toplevel

            self._core = client.CoreV1Api(_api_client(self._target))
        return self._core

    def _resolve_pod(self) -> str:
        """The one Ready pod named or selected; anything else is an error that names what was found."""
        if self._pod_name:
            return self._pod_name
        from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel
        from urllib3.exceptions import HTTPError  # pylint: disable=import-outside-toplevel

        target, core = self._target, self._core_api()
        try:
            if target.pod:
                pods = [core.read_namespaced_pod(target.pod, target.namespace)]
            else:
                pods = core.list_namespaced_pod(target.namespace, label_selector=target.pod_selector).items
        except ApiException as exc:
            raise _api_error(exc, f"cannot read {target.describe()}") from None
        except HTTPError as exc:
            raise TransportError(f"cannot reach the Kubernetes API server to read {target.describe()}: {exc}") from None
        ready = [pod.metadata.name for pod in pods if _is_ready(pod)]
        if len(ready) != 1:
            found = ", ".join(sorted(pod.metadata.name for pod in pods)) or "none"
            raise TransportError(f"expected exactly one Ready pod for {target.describe()}, found {len(ready)} Ready "
                                 f"(pods: {found})")
        self._pod_name = ready[0]
        return self._pod_name

    def _open_session(self, pod: str, argv: Sequence[str], binary: bool) -> Any:
        """An exec session with stdin, stdout and stderr; ``binary`` keeps every channel as bytes."""
        from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel
        from kubernetes.stream import stream  # pylint: disable=import-outside-toplevel

        kwargs = {"command": list(argv), "stdin": True, "stdout": True, "stderr": True, "tty": False,
                  "_preload_content": False}
        if binary:
            kwargs["binary"] = True
        if self._target.container:
            kwargs["container"] = self._target.container
        try:
            return stream(self._core_api().connect_get_namespaced_pod_exec, pod, self._target.namespace, **kwargs)
        except ApiException as exc:
            raise _api_error(exc, f"exec into pod {pod!r} failed") from None

    def __call__(self, argv: Sequence[str], stdin: str) -> ExecResult:
        pod = self._resolve_pod()
        session = self._open_session(pod, argv, binary=False)
        try:
            return self._communicate(session, stdin, pod)
        finally:
            session.close()

    def stream_bytes(self, argv: Sequence[str], stdin: Iterable[bytes],
                     on_stdout: Callable[[bytes], None]) -> StreamResult:
        """Run argv feeding it ``stdin`` chunk by chunk and handing every stdout chunk to ``on_stdout``.

        Memory stays bounded by one stdin chunk plus what the websocket client buffers between two
        pumps (it joins the frames that are already available), so dumps and restores of any size pass
        through; the text mode of ``__call__`` would decode (and could mangle) the bytes. stdout is
        drained between stdin chunks so neither side of the pipe can stall the other. When the process
        exits before reading all its input (psql with ON_ERROR_STOP), feeding stops and its exit code
        and stderr are collected as usual. Failures after the pod was resolved raise StreamError,
        which says whether any input reached the process.
        """
        pod = self._resolve_pod()
        session = self._open_session(pod, argv, binary=True)
        run = _StreamRun(session, f"{argv[0]} in pod {pod!r}", self._target.exec_timeout, on_stdout)
        try:
            run.feed(stdin)
            run.drain()
            rc = _exit_code(session, run.what, run.stderr_text())
        except TransportError as exc:
            raise StreamError(exc.message, input_sent=run.input_sent) from None
        finally:
            session.close()
        return StreamResult(rc=rc, stderr=run.stderr_text(), pod=pod)

    def _communicate(self, session: Any, stdin: str, pod: str) -> ExecResult:
        """Send the script, then collect output until the process exits or the timeout passes."""
        what = f"psql in pod {pod!r}"
        deadline = time.monotonic() + self._target.exec_timeout
        if _send(session, deadline, partial(session.write_stdin, stdin)):
            _send(session, deadline, partial(_end_stdin, session))
        stdout: list[str] = []
        stderr: list[str] = []
        while session.is_open():
            if time.monotonic() > deadline:
                raise TransportError(f"{what} did not finish within {self._target.exec_timeout} s")
            _update(session, 1)
            stdout.append(_read(session, session.read_stdout) or "")
            stderr.append(_read(session, session.read_stderr) or "")
        stdout.append(_read(session, session.read_stdout) or "")
        stderr.append(_read(session, session.read_stderr) or "")
        rc = _exit_code(session, what, "".join(stderr)[-STDERR_KEPT:])
        return ExecResult(rc=rc, stdout="".join(stdout), stderr="".join(stderr))


class StreamError(TransportError):
    """A streamed command failed inside its session; ``input_sent`` tells whether any stdin byte was written.

    A restore whose input never left the controller changed nothing, and must not say it may have.
    """

    def __init__(self, message: str, input_sent: bool) -> None:
        super().__init__(message)
        self.input_sent = input_sent


class _StreamRun:
    """One byte-streamed exec in progress: feeds stdin, pumps stdout and keeps the tail of stderr."""

    def __init__(self, session: Any, what: str, exec_timeout: int, on_stdout: Callable[[bytes], None]) -> None:
        self.session = session
        self.what = what
        self.exec_timeout = exec_timeout
        self.deadline = time.monotonic() + exec_timeout
        self.on_stdout = on_stdout
        self.stderr = bytearray()
        self.input_sent = False

    def feed(self, stdin: Iterable[bytes]) -> None:
        """Write every chunk, pumping output in between; stop early once the process no longer reads.

        A write to a session the API server already closed raises (broken pipe, reset, closed
        websocket): that is the process having exited, which draining then reports properly. Only the
        sends are guarded so: an error reading the input or handling the output is not the process's.
        """
        for chunk in stdin:
            if not self.pump(0) or not self.session.is_open():
                return
            self.input_sent = True
            if not _send(self.session, self.deadline, partial(self.session.write_stdin, chunk)):
                return
        _send(self.session, self.deadline, partial(_end_stdin, self.session))

    def drain(self) -> None:
        """Pump until the process has exited and the server closed the session, or the deadline passes."""
        while self.session.is_open():
            if not self.pump(1):
                return
        self.pump(0)

    def pump(self, timeout: float) -> bool:
        """Move what has arrived to ``on_stdout`` and the stderr tail; False once the connection is lost."""
        if time.monotonic() > self.deadline:
            raise TransportError(f"{self.what} did not finish within {self.exec_timeout} s")
        alive = _update(self.session, timeout)
        chunk = _read(self.session, self.session.read_stdout)
        if chunk:
            self.on_stdout(chunk)
        self.stderr.extend(_read(self.session, self.session.read_stderr) or b"")
        del self.stderr[:-STDERR_KEPT]
        return alive

    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")


_ERROR_CHANNEL = 3
"""The exec protocol's status channel: the process's exit status, or why it could not be started."""


def _session_errors() -> tuple[type[BaseException], ...]:
    """What using a session the server closed raises: the socket's OSError family and websocket-client's own."""
    from websocket import WebSocketException  # pylint: disable=import-outside-toplevel

    return (OSError, WebSocketException)


def _update(session: Any, timeout: float) -> bool:
    """Read the frames that have arrived; False when the connection broke without a close frame.

    The session is then closed on our side, so that its buffered channels (the status among them)
    can still be read and ``is_open`` stops reporting a connection that is gone.
    """
    try:
        session.update(timeout=timeout)
    except _session_errors():
        session.close()
        return False
    return True


def _read(session: Any, read: Callable[..., Any]) -> Any:
    """What a channel holds. The client updates inside a read when the channel is empty, so the read can
    meet a lost connection too: the session is then closed and the buffer read again, without updating."""
    try:
        return read(timeout=0)
    except _session_errors():
        session.close()
        return read(timeout=0)


def _send(session: Any, deadline: float, send: Callable[[], None]) -> bool:
    """Send within the time left; False when the server already closed the session (the process exited).

    The websocket send blocks while the pod does not read, so its socket timeout is set to what is left
    of exec_timeout: a stalled peer cannot outlast it (the timeout then reads as a closed session, and
    draining reports the deadline).
    """
    try:
        sock = getattr(session, "sock", None)
        if sock is not None and hasattr(sock, "settimeout"):
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
        send()
    except _session_errors():
        return False
    return True


def _end_stdin(session: Any) -> None:
    """Close the process's stdin where the client can (close_channel, kubernetes >= 36, v5 protocol).

    Without it the input still ends: every script sent ends with psql's ``\\q``, and pg_dumpall reads none.
    """
    close_channel = getattr(session, "close_channel", None)
    if close_channel is not None:
        close_channel(0)


def _error_channel_text(session: Any) -> str:
    """The status channel as text (its Status ``message`` when it is one), read without consuming it."""
    raw = session.peek_channel(_ERROR_CHANNEL, timeout=0) or ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    try:
        return str(json.loads(text).get("message") or text).strip()
    except (ValueError, AttributeError):
        return text.strip()


def _exit_code(session: Any, what: str, stderr: str) -> int:
    """The exit code from the status channel; a status that is not one (exec refused, no status) is an error.

    The client parses the status itself and fails with ValueError/TypeError/KeyError/IndexError when the
    exec could not start (wrong container, binary not on PATH: the cause is text) or the connection
    closed without a status; the channel's own text says what happened, so that is what is reported.
    """
    from yaml import YAMLError  # pylint: disable=import-outside-toplevel

    status = _error_channel_text(session)
    try:
        return int(session.returncode)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, YAMLError) as exc:
        detail = status or f"the connection closed without an exit status ({type(exc).__name__})"
        tail = stderr.strip()[-2000:]
        raise TransportError(f"{what} did not run to an exit status: {detail}" + (f"; stderr: {tail}" if tail else "")) from None
