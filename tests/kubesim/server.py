"""``KubeSim``: the whole test bed in one object — API server, controllers, database pods.

Tests use it as a context manager (or ``start()``/``stop()``); the command line wraps the same
object. ``stop()`` ends every thread and PostgreSQL server it started, so nothing outlives it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

import yaml

from . import discovery
from .controllers import ControllerLoop
from .crds import CrdController
from .http_api import ApiServer
from .postgres_pods import PodRuntime
from .resources import Registry
from .rest import Options, Rest
from .scale import ScaleSubresource
from .store import Store

LOG = logging.getLogger("kubesim")
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "zalando-postgres-operator-v2.0.1"


class KubeSim:
    """A simulated Kubernetes API server on ``127.0.0.1:port`` with its controllers.

    ``state_dir`` receives ``kubeconfig`` once the server accepts requests, and the data of
    the PostgreSQL servers backing database pods.
    """

    def __init__(self, state_dir: Path | str, port: int = 0, token: str | None = None,
                 postgres_version: int | None = None, operator_crd_path: Path | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.port = port
        # kubectl (client-go) does not send bearer tokens over plain http, so by default the
        # simulator requires no credentials; a token can still be demanded (Python clients send it).
        self.token = token or ""
        self.registry = Registry()
        self.store = Store()
        self.rest = Rest(self.store, self.registry)
        self.crds = CrdController(self.store, self.registry)
        self.rest.on_crd_change = self.crds.changed
        self.scale = ScaleSubresource(self.rest)
        self.pods = PodRuntime(self, self.state_dir / "postgres", postgres_version)
        self.controllers = ControllerLoop(self, operator_crd_path or FIXTURES / "postgresql.crd.yaml")
        self._http: ApiServer | None = None
        self._thread: threading.Thread | None = None
        self._openapi_cache: dict[str, Any] = {}
        self._openapi_lock = threading.Lock()
        self._bootstrap()

    # ---- lifecycle -----------------------------------------------------------------------------
    def _bootstrap(self) -> None:
        """Namespaces every cluster has, created through the API so they look like any other."""
        ns_type = self.registry.get("", "v1", "namespaces")
        assert ns_type is not None
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.rest.create(ns_type, "", {"metadata": {"name": name}}, Options(manager="kube-apiserver"))

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "KubeSim":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._http = ApiServer(self.port, self)
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="kubesim-http", daemon=True)
        self._thread.start()
        self.controllers.start()
        self._write_kubeconfig()
        LOG.info("kubesim serving on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, stop the controllers and every PostgreSQL server this instance started."""
        self.store.close()
        self.controllers.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self.pods.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "KubeSim":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "kubesim", "cluster": {"server": self.url}}],
            "users": [{"name": "kubesim-admin", "user": {"token": self.token} if self.token else {}}],
            "contexts": [{"name": "kubesim", "context": {"cluster": "kubesim", "user": "kubesim-admin",
                                                         "namespace": "default"}}],
            "current-context": "kubesim",
        }
        tmp = self.kubeconfig_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.chmod(0o600)
        tmp.replace(self.kubeconfig_path)

    # ---- OpenAPI documents, cached per registry content ------------------------------------------
    def _registry_fingerprint(self) -> str:
        names = sorted(f"{t.group}/{t.version}/{t.plural}/{json.dumps(t.crd_schema, sort_keys=True)}"
                       for t in self.registry.all())
        return hashlib.sha256("\n".join(names).encode()).hexdigest()

    def openapi_group_version(self, group: str, version: str) -> dict[str, Any] | None:
        key = f"{self._registry_fingerprint()}:{group}/{version}"
        with self._openapi_lock:
            if key not in self._openapi_cache:
                self._openapi_cache[key] = discovery.openapi_v3_group_version(self.registry, group, version)
            return self._openapi_cache[key]

    def openapi_root(self) -> dict[str, Any]:
        key = f"{self._registry_fingerprint()}:root"
        with self._openapi_lock:
            if key not in self._openapi_cache:
                self._openapi_cache.clear()
                self._openapi_cache[key] = discovery.openapi_v3_root(self.registry)
            return self._openapi_cache[key]
