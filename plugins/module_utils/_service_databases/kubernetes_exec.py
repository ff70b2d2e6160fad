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

        Nothing is held in memory beyond one websocket frame, so dumps and restores of any size
        pass through; the text mode of ``__call__`` would decode (and could mangle) the bytes.
        stdout is drained between stdin chunks so neither side of the pipe can stall the other.
        """
        pod = self._resolve_pod()
        session = self._open_session(pod, argv, binary=True)
        stderr = bytearray()
        deadline = time.monotonic() + self._target.exec_timeout

        def pump(timeout: float) -> None:
            if time.monotonic() > deadline:
                raise TransportError(f"{argv[0]} in pod {pod!r} did not finish within {self._target.exec_timeout} s")
            session.update(timeout=timeout)
            chunk = session.read_stdout(timeout=0)
            if chunk:
                on_stdout(chunk)
            stderr.extend(session.read_stderr(timeout=0) or b"")
            del stderr[:-STDERR_KEPT]

        try:
            for chunk in stdin:
                session.write_stdin(chunk)
                pump(0)
            session.close_channel(0)
            while session.is_open():
                pump(1)
            pump(0)
            rc = session.returncode
        finally:
            session.close()
        return StreamResult(rc=rc if rc is not None else 1, stderr=stderr.decode("utf-8", "replace"), pod=pod)

    def _communicate(self, session: Any, stdin: str, pod: str) -> ExecResult:
        """Send the script, then collect output until the process exits or the timeout passes."""
        session.write_stdin(stdin)
        session.close_channel(0)
        stdout: list[str] = []
        stderr: list[str] = []
        deadline = time.monotonic() + self._target.exec_timeout
        while session.is_open():
            if time.monotonic() > deadline:
                raise TransportError(f"psql in pod {pod!r} did not finish within {self._target.exec_timeout} s")
            session.update(timeout=1)
            stdout.append(session.read_stdout(timeout=0) or "")
            stderr.append(session.read_stderr(timeout=0) or "")
        stdout.append(session.read_stdout(timeout=0) or "")
        stderr.append(session.read_stderr(timeout=0) or "")
        rc = session.returncode
        return ExecResult(rc=rc if rc is not None else 1, stdout="".join(stdout), stderr="".join(stderr))
