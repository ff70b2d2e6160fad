"""OpenAPI schemas of the built-in kinds, and a walker shared with custom resources.

The built-in schemas come from the ``kubernetes-validate`` wheel (a pinned test dependency),
which packages the real API server's OpenAPI definitions for Kubernetes 1.33 including the
``x-kubernetes-patch-merge-key``/``x-kubernetes-list-type`` extensions. Using them rather
than a hand-written table means strategic merge patch, server-side apply list semantics,
unknown-field detection and the published ``/openapi/v3`` documents all agree with a real
1.33 server. Custom resources use their CRD's ``openAPIV3Schema`` through the same walker.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import kubernetes_validate

KUBERNETES_SCHEMA_VERSION = "1.33.0"
_REF_PREFIX = "#/$defs/"
ANY: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


def _strip_null(node: Any) -> Any:
    """The wheel's JSON-schema form marks everything nullable; OpenAPI does not."""
    if isinstance(node, list):
        return [_strip_null(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            kept = [t for t in value if t != "null"]
            out[key] = kept[0] if len(kept) == 1 else kept
        elif key == "$ref" and isinstance(value, str):
            out[key] = value[len(_REF_PREFIX):] if value.startswith(_REF_PREFIX) else value
        else:
            out[key] = _strip_null(value)
    return out


@functools.lru_cache(maxsize=1)
def builtin_definitions() -> dict[str, dict[str, Any]]:
    """Definition name -> schema (``$ref`` values are bare definition names)."""
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    path = base / f"v{KUBERNETES_SCHEMA_VERSION}-local" / "_definitions.json"
    raw = json.loads(path.read_text())["$defs"]
    return {name: _strip_null(schema) for name, schema in raw.items()}


class Schema:
    """A node of a schema plus the definitions its ``$ref`` values point into."""

    def __init__(self, node: dict[str, Any] | None, defs: dict[str, dict[str, Any]] | None = None) -> None:
        self.defs = defs if defs is not None else builtin_definitions()
        self.node = self._resolve(node) if node is not None else None

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in node and seen < 20:
            extensions = {k: v for k, v in node.items() if k.startswith("x-kubernetes-")}
            node = {**self.defs.get(node["$ref"], ANY), **extensions}
            seen += 1
        if "allOf" in node and len(node["allOf"]) == 1:
            merged = {**node, **self._resolve(node["allOf"][0])}
            merged.pop("allOf", None)
            node = merged
        return node

    @classmethod
    def for_definition(cls, name: str) -> "Schema":
        return cls({"$ref": name})

    @property
    def known(self) -> bool:
        return self.node is not None

    @property
    def preserves_unknown(self) -> bool:
        """True where any content is accepted (preserve-unknown-fields, RawExtension, untyped)."""
        if self.node is None:
            return False
        node = self.node
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return True
        if "oneOf" in node or "anyOf" in node:
            return True
        return "type" not in node and "properties" not in node and "additionalProperties" not in node \
            and "items" not in node

    def child(self, key: str) -> "Schema":
        """Schema of a map field; an unknown field yields an empty Schema (``known`` False)."""
        if self.node is None:
            return Schema(None, self.defs)
        props = self.node.get("properties") or {}
        if key in props:
            return Schema(props[key], self.defs)
        additional = self.node.get("additionalProperties")
        if isinstance(additional, dict):
            return Schema(additional, self.defs)
        if additional is True or self.preserves_unknown:
            return Schema(ANY, self.defs)
        return Schema(None, self.defs)

    def items(self) -> "Schema":
        if self.node is None:
            return Schema(None, self.defs)
        items = self.node.get("items")
        return Schema(items, self.defs) if isinstance(items, dict) else Schema(ANY, self.defs)

    def list_map_keys(self) -> list[str]:
        """Keys identifying list items for merging: SSA list-map keys, else the patch merge key."""
        if self.node is None:
            return []
        keys = self.node.get("x-kubernetes-list-map-keys")
        if self.node.get("x-kubernetes-list-type") == "map" and keys:
            return list(keys)
        merge_key = self.node.get("x-kubernetes-patch-merge-key")
        if merge_key and "merge" in str(self.node.get("x-kubernetes-patch-strategy", "")):
            return [merge_key]
        return []

    def patch_merge_key(self) -> str | None:
        """Strategic-merge-patch merge key, only where the list's strategy is ``merge``."""
        if self.node is None or "merge" not in str(self.node.get("x-kubernetes-patch-strategy", "")):
            return None
        return self.node.get("x-kubernetes-patch-merge-key")

    def is_set(self) -> bool:
        """A list merged as a set of scalars (SMP ``merge`` without key, or list-type ``set``)."""
        if self.node is None:
            return False
        if self.node.get("x-kubernetes-list-type") == "set":
            return True
        return "merge" in str(self.node.get("x-kubernetes-patch-strategy", "")) and \
            not self.node.get("x-kubernetes-patch-merge-key")

    def is_atomic_map(self) -> bool:
        return self.node is not None and self.node.get("x-kubernetes-map-type") == "atomic"
