"""Discovery and OpenAPI documents, generated from the resource registry.

kubectl and the dynamic client learn every resource from these documents before acting
(REST mapping, short names, scope, verbs), and kubectl checks ``/openapi/v3`` to decide that
the server validates fields itself (``fieldValidation``) and to compute client-side apply
patches. Served in the legacy (unaggregated) form: clients asking for aggregated discovery
get ``application/json`` and fall back, as they do with any server that lacks it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType
from .schemas import builtin_definitions

VERSION_INFO = {
    "major": "1", "minor": "33", "gitVersion": "v1.33.0-kubesim", "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2", "compiler": "gc",
    "platform": "linux/amd64", "emulationMajor": "1", "emulationMinor": "33",
    "minCompatibilityMajor": "1", "minCompatibilityMinor": "32",
}
_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = []
    for group, versions in registry.group_versions().items():
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def _resource_entry(rtype: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": rtype.plural, "singularName": rtype.singular, "namespaced": rtype.namespaced,
                             "kind": rtype.kind, "verbs": sorted(rtype.verbs)}
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    entry["storageVersionHash"] = hashlib.sha256(f"{rtype.group}/{rtype.plural}".encode()).hexdigest()[:12]
    return entry


def _subresource_entry(rtype: ResourceType, sub: str) -> dict[str, Any]:
    verbs = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "exec": ["create", "get"],
             "log": ["get"], "finalize": ["update"]}[sub]
    kind = {"scale": "Scale", "exec": "PodExecOptions", "log": "Pod"}.get(sub, rtype.kind)
    entry: dict[str, Any] = {"name": f"{rtype.plural}/{sub}", "singularName": "", "namespaced": rtype.namespaced,
                             "kind": kind, "verbs": verbs}
    if sub == "scale":
        entry.update(group="autoscaling", version="v1")
    return entry


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = sorted(registry.in_group_version(group, version), key=lambda t: t.plural)
    if not types:
        return None
    resources = []
    for rtype in types:
        resources.append(_resource_entry(rtype))
        resources.extend(_subresource_entry(rtype, sub) for sub in rtype.subresources)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


# ---- OpenAPI v3 -----------------------------------------------------------------------------------
def _v3_refs(node: Any) -> Any:
    """Turn bare definition names into ``#/components/schemas`` refs, wrapped in allOf like the server."""
    if isinstance(node, list):
        return [_v3_refs(v) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = {"$ref": f"#/components/schemas/{node['$ref']}"}
        rest = {k: _v3_refs(v) for k, v in node.items() if k != "$ref"}
        return {"allOf": [ref], **rest} if rest else ref
    return {k: _v3_refs(v) for k, v in node.items()}


def _referenced(names: list[str], defs: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        text = json.dumps(defs[name])
        for part in text.split('"$ref": "')[1:]:
            stack.append(part.split('"', 1)[0])
    return seen


def _operation(rtype: ResourceType, action: str) -> dict[str, Any]:
    params = [{"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}} for p in _QUERY_PARAMS]
    return {"operationId": f"{action}{rtype.kind}", "parameters": params,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": rtype.group, "version": rtype.version, "kind": rtype.kind},
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
                "$ref": f"#/components/schemas/{_schema_name(rtype)}"}}}}}}


def _schema_name(rtype: ResourceType) -> str:
    if rtype.is_custom:
        group = ".".join(reversed(rtype.group.split(".")))
        return f"{group}.{rtype.version}.{rtype.kind}"
    return rtype.schema_ref


def openapi_v3_group_version(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    defs = builtin_definitions()
    schemas: dict[str, Any] = {}
    builtin_roots = [t.schema_ref for t in types if not t.is_custom]
    if any(t.is_custom for t in types):
        builtin_roots.append("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    for name in _referenced(builtin_roots, defs):
        schemas[name] = _v3_refs(defs[name])
    paths: dict[str, Any] = {}
    for rtype in types:
        if rtype.is_custom:
            schema = copy.deepcopy(rtype.crd_schema or {})
            props = schema.setdefault("properties", {})
            props["metadata"] = {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1."
                                                    "ObjectMeta"}]}
            schema["x-kubernetes-group-version-kind"] = [{"group": rtype.group, "version": rtype.version,
                                                          "kind": rtype.kind}]
            schemas[_schema_name(rtype)] = schema
        base = rtype.base_path()
        ns = "/namespaces/{namespace}" if rtype.namespaced else ""
        item = f"{base}{ns}/{rtype.plural}/{{name}}"
        paths[f"{base}{ns}/{rtype.plural}"] = {"post": _operation(rtype, "post"), "get": _operation(rtype, "list")}
        paths[item] = {"get": _operation(rtype, "get"), "put": _operation(rtype, "put"),
                       "patch": _operation(rtype, "patch"), "delete": _operation(rtype, "delete")}
        if "status" in rtype.subresources:
            paths[f"{item}/status"] = {"get": _operation(rtype, "get"), "put": _operation(rtype, "put"),
                                       "patch": _operation(rtype, "patch")}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]},
            "paths": paths, "components": {"schemas": schemas}}


def openapi_v3_root(registry: Registry) -> dict[str, Any]:
    """Index of per-group-version documents; the hash changes when a document's content does."""
    paths = {}
    gvs = [("", "v1")] + [(g, v) for g, vs in registry.group_versions().items() for v in vs]
    for group, version in gvs:
        doc = openapi_v3_group_version(registry, group, version)
        rel = f"api/{version}" if not group else f"apis/{group}/{version}"
        digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={digest}"}
    return {"paths": paths}


# ---- OpenAPI v2 -----------------------------------------------------------------------------------
def _v2_refs(node: Any) -> Any:
    if isinstance(node, list):
        return [_v2_refs(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {k: (f"#/definitions/{v}" if k == "$ref" else _v2_refs(v)) for k, v in node.items()}


def openapi_v2_json() -> dict[str, Any]:
    """Swagger 2.0 with the built-in definitions (for clients that read the JSON form)."""
    defs = builtin_definitions()
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]},
            "paths": {}, "definitions": {name: _v2_refs(schema) for name, schema in defs.items()}}
