"""``AwxSim``: a local stand-in of the AWX API v2 for running playbooks/awx_configure.yml in tests.

Serves plain HTTP on 127.0.0.1 (awx.awx accepts ``http://`` hosts), answers only requests carrying its
OAuth token (``Authorization: Bearer ...``, as ``CONTROLLER_OAUTH_TOKEN`` makes the modules send) and
sends the ``X-API-Product-*`` headers awx.awx compares its own version with. The objects live in a
``Store`` the tests inspect directly.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .store import API, ApiError, Store

PRODUCT_VERSION = "24.6.1"
ROUTE = re.compile(r"^/api/v2/(?P<resource>[a-z_]+)/(?:(?P<id>\d+)/(?:(?P<sub>[a-z_]+)/)?)?$")


class AwxSim:
    """The stand-in server; use as a context manager, or start()/stop()."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.store = Store()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="awxsim", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "AwxSim":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> "AwxSim":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def by_name(self, resource: str, name: str) -> dict[str, Any]:
        """The one object of a resource with that name (identifier for workflow nodes), as the API shows it."""
        field = "identifier" if resource == "workflow_job_template_nodes" else "name"
        found = self.store.list(resource, {field: name})["results"]
        assert len(found) == 1, (resource, name, found)
        return found[0]


def _handler_for(sim: AwxSim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """Routes /api/v2/... to the store."""

        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
            """Quiet: the tests read the store, not a request log."""

        def do_GET(self) -> None:  # pylint: disable=invalid-name
            self._dispatch("GET")

        def do_POST(self) -> None:  # pylint: disable=invalid-name
            self._dispatch("POST")

        def do_PATCH(self) -> None:  # pylint: disable=invalid-name
            self._dispatch("PATCH")

        def do_DELETE(self) -> None:  # pylint: disable=invalid-name
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            body = self._body()
            if self.headers.get("Authorization") != f"Bearer {sim.token}":
                self._send(HTTPStatus.UNAUTHORIZED, {"detail": "Authentication credentials were not provided."})
                return
            try:
                status, payload = self._route(method, body)
            except ApiError as error:
                status, payload = error.status, error.body
            self._send(status, payload)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw) if raw else {}

        def _route(self, method: str, body: Any) -> tuple[int, Any]:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            if parts.path in (f"{API}/ping/", f"{API}/config/") and method == "GET":
                return HTTPStatus.OK, {"version": PRODUCT_VERSION, "active_node": "awxsim", "ha": False}
            if parts.path == f"{API}/me/" and method == "GET":
                return HTTPStatus.OK, {"count": 1, "results": [{"id": 1, "username": "admin", "is_superuser": True}]}
            match = ROUTE.match(parts.path)
            if not match:
                raise ApiError(HTTPStatus.NOT_FOUND, {"detail": "Not found."})
            resource, sub = match["resource"], match["sub"]
            object_id = int(match["id"]) if match["id"] else None
            if resource == "project_updates" and object_id is not None and sub is None and method == "GET":
                return HTTPStatus.OK, sim.store.project_update(object_id)
            if object_id is None:
                return self._collection(method, resource, query, body)
            if sub is None:
                return self._member(method, resource, object_id, body)
            if sub == "survey_spec":
                return self._survey(method, resource, object_id, body)
            if method == "GET":
                return HTTPStatus.OK, sim.store.associations(resource, object_id, sub)
            if method == "POST":
                sim.store.associate(resource, object_id, sub, body)
                return HTTPStatus.NO_CONTENT, None
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, {"detail": f'Method "{method}" not allowed.'})

        def _collection(self, method: str, resource: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
            if method == "GET":
                return HTTPStatus.OK, sim.store.list(resource, query)
            if method == "POST" and resource != "unified_job_templates":
                return HTTPStatus.CREATED, sim.store.create(resource, body)
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, {"detail": f'Method "{method}" not allowed.'})

        def _member(self, method: str, resource: str, object_id: int, body: Any) -> tuple[int, Any]:
            if method == "GET":
                return HTTPStatus.OK, sim.store.get(resource, object_id)
            if method == "PATCH":
                return HTTPStatus.OK, sim.store.update(resource, object_id, body)
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, {"detail": f'Method "{method}" not allowed.'})

        def _survey(self, method: str, resource: str, object_id: int, body: Any) -> tuple[int, Any]:
            if resource not in ("job_templates", "workflow_job_templates"):
                raise ApiError(HTTPStatus.NOT_FOUND, {"detail": "Not found."})
            if method == "GET":
                return HTTPStatus.OK, sim.store.survey(resource, object_id)
            if method == "POST":
                sim.store.set_survey(resource, object_id, body)
                return HTTPStatus.OK, {}
            if method == "DELETE":
                sim.store.delete_survey(resource, object_id)
                return HTTPStatus.OK, {}
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, {"detail": f'Method "{method}" not allowed.'})

        def _send(self, status: int, payload: Any) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-API-Product-Name", "AWX")
            self.send_header("X-API-Product-Version", PRODUCT_VERSION)
            self.end_headers()
            self.wfile.write(data)

    return Handler
