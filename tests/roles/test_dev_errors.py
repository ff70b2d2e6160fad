"""postgres_dev failures end with a message naming what went wrong, never a traceback: a wrong or
missing kubeconfig, an unreachable API server, a missing namespace, a forbidden namespace (an API
server that answers 403, as RBAC would) and a pod that never becomes Ready."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from .helpers import output, recap, run_deploy

pytestmark = pytest.mark.slow


def assert_clear_failure(proc, *fragments: str) -> str:
    text = output(proc)
    assert proc.returncode != 0, text[-4000:]
    assert recap(proc)["dev-postgres"]["failed"] == 1, text[-4000:]
    assert "Traceback" not in text, text[-6000:]
    for fragment in fragments:
        assert fragment in text, text[-6000:]
    return text


def test_missing_kubeconfig_file(tmp_path):
    missing = tmp_path / "nowhere" / "kubeconfig"
    proc = run_deploy(kubeconfig=missing)
    assert_clear_failure(proc, f"The kubeconfig {missing} does not exist",
                         "K8S_AUTH_KUBECONFIG or KUBECONFIG")


def test_kubeconfig_of_an_unreachable_server(tmp_path):
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "gone",
              "clusters": [{"name": "gone", "cluster": {"server": "http://127.0.0.1:9"}}],
              "users": [{"name": "gone", "user": {}}],
              "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    proc = run_deploy(kubeconfig=path)
    assert_clear_failure(proc, f"Cannot use the Kubernetes API with kubeconfig {path}",
                         "to read namespace microservices")


def test_unknown_context(kubesim):
    proc = run_deploy("-e", "postgres_dev_context=no-such-context", kubeconfig=kubesim.kubeconfig_path)
    assert_clear_failure(proc, "Cannot use the Kubernetes API", "context: no-such-context")


def test_missing_namespace_that_may_not_be_created(kubesim):
    proc = run_deploy("-e", "postgres_dev_namespace=not-there", "-e", "postgres_dev_create_namespace=false",
                      kubeconfig=kubesim.kubeconfig_path)
    assert_clear_failure(proc, "Namespace not-there does not exist and postgres_dev_create_namespace is false")


class _ForbiddingProxy(BaseHTTPRequestHandler):
    """Forwards to kubesim, but refuses every write in one namespace with 403 like RBAC would."""

    upstream: str = ""
    namespace: str = ""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _forbidden(self) -> bool:
        path = urlsplit(self.path).path
        return self.command != "GET" and (f"/namespaces/{self.namespace}/" in path + "/")

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self._forbidden():
            verb = {"PATCH": "patch", "POST": "create", "PUT": "update", "DELETE": "delete"}[self.command]
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden",
                      "code": 403, "message": f'User "system:serviceaccount:ci:deployer" cannot {verb} this resource '
                                              f'in the namespace "{self.namespace}"'}
            payload = json.dumps(status).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        target = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        conn.close()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


def test_forbidden_namespace(kubesim, tmp_path):
    handler = type("Handler", (_ForbiddingProxy,), {"upstream": kubesim.url, "namespace": "locked"})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        config = yaml.safe_load(Path(kubesim.kubeconfig_path).read_text())
        config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{proxy.server_address[1]}"
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        proc = run_deploy("-e", "postgres_dev_namespace=locked", kubeconfig=path)
    finally:
        proxy.shutdown()
        proxy.server_close()
    text = assert_clear_failure(proc, "Kubernetes refused to apply", "in namespace locked", "403", "Forbidden",
                                'this resource in the namespace "locked"', "check its RBAC")
    assert "Failed to" not in text.split("Kubernetes refused to apply", 1)[1]  # the API's message, not the raw dump


def test_pod_that_never_becomes_ready(kubesim, tmp_path):
    # An env var from a Secret that does not exist: the kubelet keeps the container in
    # CreateContainerConfigError, as a real cluster would.
    extra = {"postgres_dev_namespace": "not-ready", "postgres_dev_wait_timeout": 6,
             "postgres_dev_extra_env": [{"name": "BROKEN", "valueFrom": {"secretKeyRef": {"name": "no-such-secret",
                                                                                          "key": "x"}}}]}
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(extra))
    proc = run_deploy("-e", f"@{path}", kubeconfig=kubesim.kubeconfig_path)
    assert_clear_failure(proc, "Pod postgresql-0 in namespace not-ready did not become Ready within 6 s",
                         "CreateContainerConfigError", "kubectl -n not-ready describe pod postgresql-0")
