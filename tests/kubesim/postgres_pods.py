"""The "container runtime": which pods are backed by a real PostgreSQL, and how exec and
logs reach it.

A pod whose container image looks like PostgreSQL (``postgres``, ``spilo``) gets a real
throwaway server (``tests.support.pgserver``). Its lifetime follows the pod's storage, as
the data would on a cluster: a StatefulSet pod's server is keyed by its PersistentVolumeClaim,
so deleting and recreating the pod (rolling update, restart) keeps the data, and the server
stops when the claim is deleted; a pod without a claim keeps its server only as long as it
lives. Pods of a Zalando cluster share the one server the operator simulation registers for
that cluster. ``POSTGRES_PASSWORD``/``POSTGRES_USER``/``POSTGRES_DB`` are honoured as the
official image does on first start.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import tempfile
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.pgserver import PgServer, PgServerError, ServerInfo

from .errors import bad_request

if TYPE_CHECKING:
    from .server import KubeSim

LOG = logging.getLogger("kubesim.pods")
_PG_IMAGE = re.compile(r"(^|/)(postgres|postgresql|spilo[^/:]*)(:|@|$)")
BackendKey = tuple[str, ...]


class ConfigError(Exception):
    """The pod's env refers to a missing Secret/ConfigMap key (kubelet: CreateContainerConfigError)."""


def is_postgres_image(image: str) -> bool:
    return bool(_PG_IMAGE.search(image or ""))


def major_version(image: str, declared: str | None = None) -> int:
    """Map the requested major onto the servers this machine has (15 from Debian, 18 from the wheel)."""
    text = declared or (image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "")
    match = re.match(r"(\d+)", text)
    wanted = int(match.group(1)) if match else 15
    return 15 if wanted <= 15 else 18


@dataclass
class Backend:
    """One running (or starting) PostgreSQL server."""

    key: BackendKey
    server: PgServer
    info: ServerInfo | None = None
    error: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)


class PodRuntime:
    def __init__(self, sim: "KubeSim", base_dir: Path, version: int | None) -> None:
        self.sim = sim
        self.base_dir = base_dir
        self.forced_version = version
        self._lock = threading.Lock()
        self._backends: dict[BackendKey, Backend] = {}
        self._execs: set[subprocess.Popen] = set()
        self._logs: dict[str, str] = {}
        self._closing = False
        # PostgreSQL runs as an unprivileged user, who must be able to reach its data directory:
        # a world-traversable place, whatever the state directory is.
        self.server_root = Path(tempfile.gettempdir()) / "kubesim-pg" / f"{os.getpid()}-{id(self) % 65536:x}"

    # ---- backends --------------------------------------------------------------------------------
    def ensure_backend(self, key: BackendKey, version: int, init_sql: list[str] | None = None) -> Backend:
        """Start a server for ``key`` in the background (once); callers poll ``ready``."""
        with self._lock:
            backend = self._backends.get(key)
            if backend is not None or self._closing:
                return backend  # type: ignore[return-value]
            # Unix socket paths are limited to 107 bytes: a short digest, not the readable key.
            base = self.server_root / hashlib.sha256("/".join(key).encode()).hexdigest()[:12]
            base.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(base.parent, 0o755)
            os.chmod(base.parent.parent, 0o755)
            backend = Backend(key, PgServer(self.forced_version or version, base_dir=base, log_statements=False))
            self._backends[key] = backend
        threading.Thread(target=self._start, args=(backend, init_sql or []), daemon=True,
                         name=f"pg-{'-'.join(key)}").start()
        return backend

    def _start(self, backend: Backend, init_sql: list[str]) -> None:
        try:
            backend.info = backend.server.start()
            for statement in init_sql:
                self.admin_sql(backend.info, statement)
        except (PgServerError, RuntimeError, OSError) as exc:
            backend.error = str(exc)
            LOG.error("PostgreSQL for %s failed: %s", backend.key, exc)
        finally:
            backend.ready.set()
        with self._lock:
            stale = self._closing or self._backends.get(backend.key) is not backend
        if stale:
            backend.server.stop()

    def backend(self, key: BackendKey) -> Backend | None:
        with self._lock:
            return self._backends.get(key)

    def release(self, key: BackendKey) -> None:
        """Stop and remove a backend's server (in the background: pg_ctl stop takes a moment)."""
        with self._lock:
            backend = self._backends.pop(key, None)
        if backend is not None and backend.ready.is_set():
            threading.Thread(target=backend.server.stop, daemon=True).start()

    def keys(self) -> list[BackendKey]:
        with self._lock:
            return list(self._backends)

    @staticmethod
    def admin_sql(info: ServerInfo, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser over the Unix socket (trust), whatever its password is now."""
        proc = subprocess.run(
            [str(Path(info.bindir) / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", dbname, "-c", sql],
            capture_output=True, text=True, check=False,
            env={**os.environ, "PGHOST": info.socket_dir, "PGPORT": str(info.port), "PGUSER": "postgres"})
        if proc.returncode != 0:
            raise PgServerError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    # ---- pods --------------------------------------------------------------------------------------
    def resolve_env(self, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        """Container env with valueFrom resolved like the kubelet; missing refs raise ConfigError."""
        namespace = pod["metadata"].get("namespace", "")
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            ref_kind = "secrets" if "secretRef" in source else "configmaps"
            ref = source.get("secretRef") or source.get("configMapRef") or {}
            obj = self.sim.store.get(("", ref_kind), namespace, ref.get("name", ""))
            if obj is None:
                if not ref.get("optional"):
                    raise ConfigError(f'{ref_kind[:-1]} "{ref.get("name")}" not found')
                continue
            for key, value in (obj.get("data") or {}).items():
                env[source.get("prefix", "") + key] = base64.b64decode(value).decode() if ref_kind == "secrets" \
                    else value
        for item in container.get("env") or []:
            if "value" in item or "valueFrom" not in item:
                env[item["name"]] = str(item.get("value", ""))
                continue
            value_from = item["valueFrom"]
            if "secretKeyRef" in value_from or "configMapKeyRef" in value_from:
                secret = "secretKeyRef" in value_from
                ref = value_from.get("secretKeyRef") or value_from.get("configMapKeyRef")
                obj = self.sim.store.get(("", "secrets" if secret else "configmaps"), namespace, ref.get("name", ""))
                data = (obj or {}).get("data") or {}
                if ref.get("key") not in data:
                    if ref.get("optional"):
                        continue
                    what = "secret" if secret else "configmap"
                    raise ConfigError(f'{what} "{ref.get("name")}" not found' if obj is None
                                      else f"couldn't find key {ref.get('key')} in {what.capitalize()} "
                                           f"{namespace}/{ref.get('name')}")
                raw = data[ref["key"]]
                env[item["name"]] = base64.b64decode(raw).decode() if secret else raw
            elif "fieldRef" in value_from:
                path = value_from["fieldRef"].get("fieldPath", "")
                values = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": namespace,
                          "metadata.uid": pod["metadata"].get("uid", ""),
                          "status.podIP": (pod.get("status") or {}).get("podIP", ""),
                          "spec.nodeName": (pod.get("spec") or {}).get("nodeName", "")}
                env[item["name"]] = values.get(path, "")
        return env

    def backend_key(self, pod: dict[str, Any]) -> tuple[BackendKey, int] | None:
        """Which server backs this pod (None for pods without PostgreSQL)."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        labels = meta.get("labels") or {}
        namespace = meta.get("namespace", "")
        containers = spec.get("containers") or []
        if labels.get("application") == "spilo" and labels.get("cluster-name"):
            return ("cluster", namespace, labels["cluster-name"]), 15
        main = next((c for c in containers if is_postgres_image(c.get("image", ""))), None)
        if main is None or "job-name" in labels:
            return None
        version = major_version(main.get("image", ""))
        mounted = {m.get("name") for m in main.get("volumeMounts") or []}
        for volume in spec.get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and volume.get("name") in mounted:
                return ("pvc", namespace, claim), version
        return ("pod", namespace, meta["name"], meta.get("uid", "")[:8]), version

    def first_start_sql(self, env: dict[str, str]) -> list[str]:
        """What the official image's entrypoint does with its env on an empty data directory."""
        statements = []
        user = env.get("POSTGRES_USER", "postgres")
        password = env.get("POSTGRES_PASSWORD")
        quoted_user = '"' + user.replace('"', '""') + '"'
        if user != "postgres":
            statements.append(f"CREATE ROLE {quoted_user} SUPERUSER LOGIN")
        if password:
            literal = "'" + password.replace("'", "''") + "'"
            statements.append(f"ALTER ROLE {quoted_user} PASSWORD {literal}")
        database = env.get("POSTGRES_DB", user)
        if database != "postgres":
            statements.append(f'CREATE DATABASE "{database.replace(chr(34), chr(34) * 2)}" OWNER {quoted_user}')
        return statements

    def exec_environment(self, pod: dict[str, Any], container_name: str) -> tuple[dict[str, str], str]:
        """Environment and working directory for a command exec'd into ``pod``."""
        containers = (pod.get("spec") or {}).get("containers") or []
        container = next((c for c in containers if c.get("name") == container_name), None) if container_name \
            else (containers[0] if containers else None)
        if container is None:
            raise bad_request(f'container {container_name} is not valid for pod {pod["metadata"]["name"]}')
        if (pod.get("status") or {}).get("phase") != "Running":
            raise bad_request(f'unable to upgrade connection: container not found ("{container.get("name")}")')
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": pod["metadata"]["name"],
               "LANG": "C.UTF-8"}
        try:
            env.update(self.resolve_env(pod, container))
        except ConfigError:
            pass
        workdir = self.base_dir / "pods" / f"{pod['metadata'].get('namespace', '')}-{pod['metadata']['name']}"
        workdir.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(workdir)
        found = self.backend_key(pod)
        backend = self.backend(found[0]) if found else None
        if backend is not None and backend.info is not None:
            env["PATH"] = f"{backend.info.bindir}:{env['PATH']}"
            env.update(PGHOST=backend.info.socket_dir, PGPORT=str(backend.info.port))
            env.setdefault("PGUSER", "postgres")
        return env, str(workdir)

    def logs(self, pod: dict[str, Any], container: str | None, tail: str | None) -> str:
        """What ``kubectl logs`` shows: the pod's PostgreSQL log, or its Job runner's output."""
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        if container and container not in names:
            raise bad_request(f"container {container} is not valid for pod {pod['metadata']['name']}")
        if not container and len(names) > 1 and not default:
            raise bad_request(f"a container name must be specified for pod {pod['metadata']['name']}, "
                              f"choose one of: [{' '.join(names)}]")
        with self._lock:
            text = self._logs.get(pod["metadata"].get("uid", ""), "")
        found = self.backend_key(pod)
        backend = self.backend(found[0]) if found else None
        if backend is not None and backend.info is not None and Path(backend.info.log_file).exists():
            text += Path(backend.info.log_file).read_text(errors="replace")
        lines = text.splitlines(keepends=True)
        if tail is not None and tail.isdigit():
            lines = lines[-int(tail):] if int(tail) else []
        return "".join(lines)

    def record_log(self, pod: dict[str, Any], text: str) -> None:
        """Output of a pod's finished run (a Job runner), served by ``pods/log``."""
        with self._lock:
            self._logs[pod["metadata"].get("uid", "")] = text

    def track_exec(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._execs.add(proc)

    def untrack_exec(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._execs.discard(proc)

    def shutdown(self) -> None:
        """Kill running execs and stop every server (synchronously: nothing may outlive stop())."""
        with self._lock:
            self._closing = True
            backends = list(self._backends.values())
            self._backends.clear()
            execs = list(self._execs)
        for proc in execs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
        threads = []
        for backend in backends:
            backend.ready.wait(timeout=60)
            thread = threading.Thread(target=backend.server.stop, daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(timeout=30)
        shutil.rmtree(self.server_root, ignore_errors=True)
