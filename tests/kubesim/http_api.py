"""The HTTP front end: routing, content negotiation, watch streams and error rendering.

A ``ThreadingHTTPServer`` on loopback speaking HTTP/1.1 with keep-alive, so kubectl's burst of
discovery requests and long-running watches behave as against a real server. Every failure
leaves as a ``Status`` object; watches are chunked streams of ``{"type","object"}`` lines.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import yaml

from . import discovery
from .errors import ApiError, bad_request, method_not_allowed, unsupported_media_type
from .exec_ws import serve_exec
from .resources import ResourceType
from .rest import Options
from .selectors import labels_match, parse_field_selector, parse_label_selector
from .tables import to_table

if TYPE_CHECKING:
    from .server import KubeSim

LOG = logging.getLogger("kubesim.http")
_NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource", {})
_DEFAULT_WATCH_TIMEOUT = 1800
PROTOBUF = "application/vnd.kubernetes.protobuf"
OPENAPI_V2_PB = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


@dataclass
class Route:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str


class ApiServer(ThreadingHTTPServer):
    """Threading server bound to loopback; ``sim`` gives handlers the registry, store and pods."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, sim: "KubeSim") -> None:
        self.sim = sim
        super().__init__(("127.0.0.1", port), Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY every keep-alive
    # response would wait for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: ApiServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        LOG.debug("%s %s", self.address_string(), format % args)

    # ---- plumbing ------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, code: int, payload: Any, warnings: list[str] | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        for warning in warnings or []:
            self.send_header("Warning", f'299 - {json.dumps(warning)}')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_text(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        token = self.server.sim.token
        return not token or self.headers.get("Authorization", "") == f"Bearer {token}"

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        multi = parse_qs(url.query, keep_blank_values=True)
        try:
            if not self._authorized():
                self._body()
                raise ApiError(401, "Unauthorized", "Unauthorized", {})
            self._route(method, url.path.rstrip("/") or "/", query, multi)
        except ApiError as exc:
            self._send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - a bug must come back as a 500 Status, not a hang
            LOG.exception("internal error on %s %s", method, self.path)
            self._send_json(500, ApiError(500, "InternalError", f"Internal error occurred: {exc}", {}).status())

    # ---- routing -------------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, str], multi: dict[str, list[str]]) -> None:
        sim = self.server.sim
        registry = sim.registry
        if path in ("/healthz", "/readyz", "/livez"):
            self._send_text(200, "ok")
            return
        if method == "GET" and path == "/openapi/v2":
            self._openapi_v2()
            return
        if method == "GET":
            static = self._discovery(path)
            if static is not None:
                self._send_json(200, static)
                return
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _NOT_FOUND
        watch_path = bool(rest) and rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        route = self._parse(registry, group, version, rest)
        if watch_path or query.get("watch") in ("1", "true", "True"):
            if method != "GET" or route.name is not None and route.subresource:
                raise method_not_allowed()
            self._watch(route, query)
            return
        self._handle(method, route, query, multi)

    def _openapi_v2(self) -> None:
        """JSON when the client accepts it. kubectl asks for the protobuf form alone and treats
        a 406 or 404 as a failed download, which fails client-side validation of any kind the
        /openapi/v3 documents lack (1.30). So it gets an empty (zero-length) document: it then
        validates nothing from v2, as for any kind it does not know, and leaves field validation
        to the server, which does it (every PATCH in /openapi/v3 declares fieldValidation)."""
        media = [m.split(";")[0].strip() for m in self.headers.get("Accept", "").split(",") if m.strip()]
        if not media or any(m in ("application/json", "application/*", "*/*") for m in media):
            self._send_json(200, discovery.openapi_v2_json())
            return
        if OPENAPI_V2_PB not in media:
            raise ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json")
        self.send_response(200)
        self.send_header("Content-Type", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _discovery(self, path: str) -> dict[str, Any] | None:
        registry = self.server.sim.registry
        if path == "/version":
            return discovery.VERSION_INFO
        if path == "/api":
            return discovery.api_versions()
        if path == "/apis":
            return discovery.api_group_list(registry)
        if path == "/api/v1":
            return discovery.api_resource_list(registry, "", "v1")
        if path == "/openapi/v3":
            return self.server.sim.openapi_root()
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["openapi", "v3"] and len(parts) >= 4:
            group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4] if len(parts) > 4 else "")
            doc = self.server.sim.openapi_group_version(group, version)
            if doc is None:
                raise _NOT_FOUND
            return doc
        if parts[:1] == ["apis"] and len(parts) == 2:
            group = discovery.api_group(registry, parts[1])
            if group is None:
                raise _NOT_FOUND
            return group
        if parts[:1] == ["apis"] and len(parts) == 3:
            listing = discovery.api_resource_list(registry, parts[1], parts[2])
            if listing is None:
                raise _NOT_FOUND
            return listing
        return None

    @staticmethod
    def _parse(registry: Any, group: str, version: str, rest: list[str]) -> Route:
        if len(rest) >= 3 and rest[0] == "namespaces":
            rtype = registry.get(group, version, rest[2])
            if rtype is not None and rtype.namespaced:
                name = rest[3] if len(rest) > 3 else None
                sub = rest[4] if len(rest) > 4 else ""
                if len(rest) > 5 or (sub and sub not in rtype.subresources):
                    raise _NOT_FOUND
                return Route(rtype, rest[1], name, sub)
        if not rest:
            raise _NOT_FOUND
        rtype = registry.get(group, version, rest[0])
        if rtype is None:
            raise _NOT_FOUND
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if len(rest) > 3 or (sub and sub not in rtype.subresources):
            raise _NOT_FOUND
        if rtype.namespaced and name is not None:
            raise _NOT_FOUND
        return Route(rtype, None, name, sub)

    # ---- verbs ---------------------------------------------------------------------------------
    def _options(self, query: dict[str, str]) -> Options:
        agent = self.headers.get("User-Agent", "unknown")
        manager = query.get("fieldManager") or agent.split("/")[0]
        if query.get("dryRun") not in (None, "", "All"):
            raise bad_request(f"Invalid dry run value {query['dryRun']!r}")
        return Options(manager=manager, dry_run=query.get("dryRun") == "All",
                       field_validation=query.get("fieldValidation", ""),
                       force=query.get("force") in ("true", "1"))

    def _load(self, raw: bytes) -> Any:
        content_type = self.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if content_type == PROTOBUF:
            # kubesim cannot decode protobuf: answer as a server without that serializer does.
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types include: "
                           f"application/json, application/yaml (kubesim serves JSON/YAML only, not {PROTOBUF}; "
                           f"use `kubectl apply -f` / `kubectl create -f` with a manifest, or kubectl <= 1.31)")
        if content_type not in ("application/json", "application/yaml", ""):
            raise unsupported_media_type(content_type, ["application/json", "application/yaml"])
        try:
            return json.loads(raw or b"null")
        except json.JSONDecodeError:
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc

    def _handle(self, method: str, route: Route, query: dict[str, str], multi: dict[str, list[str]]) -> None:
        sim = self.server.sim
        rest = sim.rest
        rtype, ns, name, sub = route.rtype, route.namespace or "", route.name, route.subresource
        if sub in ("exec", "log", "scale"):
            self._special(method, route, query, multi)
            return
        opts = self._options(query)
        if name is None:
            if method == "GET":
                listing = rest.list(rtype, route.namespace, query.get("labelSelector"), query.get("fieldSelector"))
                self._send_listing(rtype, listing, query)
            elif method == "POST":
                if rtype.namespaced and route.namespace is None:
                    raise method_not_allowed()
                created = rest.create(rtype, ns, self._load(self._body()), opts)
                self._send_json(201, created, opts.warnings)
            elif method == "DELETE":
                self._body()
                listing = rest.list(rtype, route.namespace, query.get("labelSelector"), query.get("fieldSelector"))
                for item in listing["items"]:
                    rest.delete(rtype, item["metadata"].get("namespace", ""), item["metadata"]["name"], opts,
                                query.get("propagationPolicy"))
                self._send_json(200, listing)
            else:
                raise method_not_allowed()
            return
        if method == "GET":
            obj = rest.get(rtype, ns, name)
            self._send_object(rtype, obj, query)
        elif method == "PUT":
            updated = rest.update(rtype, ns, name, self._load(self._body()), opts, sub)
            self._send_json(200, updated, opts.warnings)
        elif method == "PATCH":
            content_type = self.headers.get("Content-Type", "")
            patched, created = rest.patch(rtype, ns, name, content_type, self._body(), opts, sub)
            self._send_json(201 if created else 200, patched, opts.warnings)
        elif method == "DELETE":
            body = self._load(self._body()) or {}
            propagation = query.get("propagationPolicy") or (body.get("propagationPolicy")
                                                             if isinstance(body, dict) else None)
            if not propagation and isinstance(body, dict) and body.get("orphanDependents") is not None:
                propagation = "Orphan" if body["orphanDependents"] else "Background"
            preconditions = body.get("preconditions") if isinstance(body, dict) else None
            if isinstance(body, dict) and body.get("dryRun") == ["All"]:
                opts.dry_run = True
            result = rest.delete(rtype, ns, name, opts, propagation, preconditions)
            self._send_json(200, result)
        else:
            raise method_not_allowed()

    def _wants(self, what: str) -> bool:
        return f"as={what}" in self.headers.get("Accept", "")

    def _send_listing(self, rtype: ResourceType, listing: dict[str, Any], query: dict[str, str]) -> None:
        if self._wants("Table"):
            self._send_json(200, to_table(rtype, listing["items"], listing["metadata"]["resourceVersion"],
                                          query.get("includeObject", "Metadata")))
        elif self._wants("PartialObjectMetadataList"):
            items = [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": i["metadata"]}
                     for i in listing["items"]]
            self._send_json(200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                  "metadata": listing["metadata"], "items": items})
        else:
            self._send_json(200, listing)

    def _send_object(self, rtype: ResourceType, obj: dict[str, Any], query: dict[str, str]) -> None:
        if self._wants("Table"):
            self._send_json(200, to_table(rtype, [obj], obj["metadata"].get("resourceVersion", ""),
                                          query.get("includeObject", "Metadata")))
        elif self._wants("PartialObjectMetadata"):
            self._send_json(200, {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                  "metadata": obj["metadata"]})
        else:
            self._send_json(200, obj)

    def _special(self, method: str, route: Route, query: dict[str, str], multi: dict[str, list[str]]) -> None:
        sim = self.server.sim
        ns, name = route.namespace or "", route.name or ""
        if route.subresource == "scale":
            if method == "GET":
                self._send_json(200, sim.scale.get(route.rtype, ns, name))
            elif method in ("PUT", "PATCH"):
                opts = self._options(query)
                scaled = sim.scale.set(route.rtype, ns, name, method, self.headers.get("Content-Type", ""),
                                       self._body(), opts)
                self._send_json(200, scaled)
            else:
                raise method_not_allowed()
            return
        pod = sim.rest.get(route.rtype, ns, name)
        if route.subresource == "log":
            if method != "GET":
                raise method_not_allowed()
            self._send_text(200, sim.pods.logs(pod, query.get("container"), query.get("tailLines")))
            return
        if method not in ("GET", "POST"):
            raise method_not_allowed()
        if self.headers.get("Upgrade", "").lower() != "websocket":
            self._body()
            raise bad_request("Upgrade request required: kubesim implements exec over WebSocket "
                              "(v5.channel.k8s.io, v4.channel.k8s.io) only, not SPDY")
        serve_exec(self, sim, pod, multi)
        self.close_connection = True

    # ---- watch ---------------------------------------------------------------------------------
    def _watch(self, route: Route, query: dict[str, str]) -> None:
        sim = self.server.sim
        rtype = route.rtype
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), rtype.kind)
        if route.name is not None:
            name_filter = route.name
            fields_base = fields

            def fields(obj: dict[str, Any]) -> bool:
                return fields_base(obj) and obj["metadata"]["name"] == name_filter
        namespace = route.namespace

        def matches(obj: dict[str, Any]) -> bool:
            if namespace is not None and rtype.namespaced and obj["metadata"].get("namespace") != namespace:
                return False
            return labels_match(labels, obj["metadata"].get("labels")) and fields(obj)

        timeout = float(query.get("timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT)
        rv_text = query.get("resourceVersion", "")
        send_initial = query.get("sendInitialEvents") == "true"
        initial: list[dict[str, Any]] = []
        with sim.store.lock:
            start_rv = sim.store.resource_version
            if rv_text in ("", "0") or send_initial:
                initial = [o for o in sim.store.list(rtype.key, namespace if rtype.namespaced else None)
                           if matches(o)]
            else:
                try:
                    start_rv = int(rv_text)
                except ValueError as exc:
                    raise bad_request(f"invalid resource version: {rv_text}") from exc
                sim.store.check_watchable(start_rv)
            events = sim.store.events_after(rtype.key, start_rv, timeout)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            for obj in initial:
                self._chunk({"type": "ADDED", "object": _with_kind(rtype, obj)})
            if send_initial:
                self._chunk({"type": "BOOKMARK", "object": {
                    "kind": rtype.kind, "apiVersion": rtype.group_version,
                    "metadata": {"resourceVersion": str(start_rv),
                                 "annotations": {"k8s.io/initial-events-end": "true"}}}})
            for event in events:
                if matches(event.obj):
                    self._chunk({"type": event.type, "object": _with_kind(rtype, event.obj)})
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self.close_connection = True

    def _chunk(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _with_kind(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    obj.setdefault("apiVersion", rtype.group_version)
    obj.setdefault("kind", rtype.kind)
    return obj
