"""JSON merge patch, JSON patch and strategic merge patch, applied server-side.

Strategic merge patch is what ``kubectl apply`` (client-side), ``kubectl patch`` and
kubernetes.core send for built-in kinds; its list semantics (merge by ``name``, by
``containerPort``...) come from the schema's patch extensions, so a patch naming one
container leaves the others alone exactly as on a real server.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from .errors import ApiError, bad_request
from .schemas import Schema

_DELETE = object()


def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(original: Any, operations: Any) -> Any:
    """RFC 6902; a failing operation is a 422 as the API server reports it."""
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        return jsonpatch.JsonPatch(operations).apply(copy.deepcopy(original))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, IndexError, TypeError) as exc:
        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {exc}",
                       {}) from exc


def strategic_merge_patch(original: Any, patch: Any, schema: Schema) -> Any:
    """Apply a strategic merge patch (directives ``$patch``, ``$retainKeys``,
    ``$setElementOrder/``, ``$deleteFromPrimitiveList/`` included)."""
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch body must be a JSON object")
    result = _merge_map(original if isinstance(original, dict) else {}, patch, schema)
    return {} if result is _DELETE else result


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip_directives(patch)
    result = copy.deepcopy(original)
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        sub = schema.child(key)
        if isinstance(value, dict) and not sub.is_atomic_map():
            merged = _merge_map(result.get(key) if isinstance(result.get(key), dict) else {}, value, sub)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, sub)
        else:
            result[key] = copy.deepcopy(value)
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(result[field], order, schema.child(field).patch_merge_key())
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"] or [])
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _merge_list(original: Any, patch: list[Any], schema: Schema) -> list[Any]:
    original = original if isinstance(original, list) else []
    merge_key = schema.patch_merge_key()
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(item) for item in patch
                if not (isinstance(item, dict) and item.get("$patch") == "replace")]
    if merge_key:
        result = copy.deepcopy(original)
        for item in patch:
            if not isinstance(item, dict):
                raise bad_request(f"merging an object in json but data type is not struct, instead is: "
                                  f"{type(item).__name__}")
            if merge_key not in item:
                raise bad_request(f"map: {item} does not contain declared merge key: {merge_key}")
            index = next((i for i, cur in enumerate(result)
                          if isinstance(cur, dict) and cur.get(merge_key) == item[merge_key]), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del result[index]
                continue
            if index is None:
                result.append(_strip_directives(item))
            else:
                merged = _merge_map(result[index], item, schema.items())
                result[index] = merged
        return result
    if schema.is_set():
        result = copy.deepcopy(original)
        for item in patch:
            if item not in result:
                result.append(copy.deepcopy(item))
        return result
    return [_strip_directives(item) for item in patch]


def _apply_order(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    """Reorder per ``$setElementOrder``; items absent from the order keep their place at the end."""
    def ident(item: Any) -> Any:
        return item.get(merge_key) if merge_key and isinstance(item, dict) else item

    wanted = [ident(o) if isinstance(o, dict) else o for o in order]
    ordered = [item for w in wanted for item in items if ident(item) == w]
    rest = [item for item in items if ident(item) not in wanted]
    return ordered + rest


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items()
                if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value
