"""Server-side apply: field ownership (``managedFields``), conflicts and the apply merge.

This is the part of structured-merge-diff that clients observe: which manager owns which
field (``FieldsV1``), a 409 ``Conflict`` naming the other manager when an applier would change
a field it does not own (unless ``force``), removal of fields an applier stops declaring, and
ownership moving to whoever updates a field with a plain update or patch.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any, Iterable

from .schemas import Schema

Path = tuple[str, ...]
_METADATA_FIELDS = ("labels", "annotations", "finalizers", "ownerReferences")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Defaults of list-map key fields, as the published schemas declare them: SSA matches
# ``{containerPort: 80}`` with the live ``{containerPort: 80, protocol: TCP}``.
KEY_DEFAULTS = {"protocol": "TCP"}


def key_value(item: dict[str, Any], key: str) -> Any:
    return item.get(key, KEY_DEFAULTS.get(key))


def _item_key(item: dict[str, Any], keys: list[str]) -> str:
    return "k:" + json.dumps({k: key_value(item, k) for k in keys}, separators=(",", ":"), sort_keys=True)


def _value_key(value: Any) -> str:
    return "v:" + json.dumps(value, separators=(",", ":"))


def field_paths(obj: dict[str, Any], schema: Schema, status: bool = False) -> set[Path]:
    """Leaf paths (and list-item paths) an object sets; ``status`` selects the status subresource."""
    paths: set[Path] = set()
    if status:
        if isinstance(obj.get("status"), dict):
            _walk(obj["status"], schema.child("status"), ("f:status",), paths)
        return paths
    meta = obj.get("metadata") or {}
    meta_schema = schema.child("metadata")
    for key in _METADATA_FIELDS:
        if meta.get(key) not in (None, {}, []):
            _walk_value(meta[key], meta_schema.child(key), ("f:metadata", f"f:{key}"), paths)
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "metadata", "status"):
            continue
        _walk_value(value, schema.child(key), (f"f:{key}",), paths)
    return paths


def _walk(value: dict[str, Any], schema: Schema, prefix: Path, paths: set[Path]) -> None:
    if not value:
        paths.add(prefix)
    for key, child in value.items():
        _walk_value(child, schema.child(key), prefix + (f"f:{key}",), paths)


def _walk_value(value: Any, schema: Schema, path: Path, paths: set[Path]) -> None:
    if isinstance(value, dict) and not schema.is_atomic_map():
        _walk(value, schema, path, paths)
    elif isinstance(value, list) and value:
        keys = schema.list_map_keys()
        if keys and all(isinstance(i, dict) for i in value):
            for item in value:
                item_path = path + (_item_key(item, keys),)
                paths.add(item_path)
                for key, child in item.items():
                    _walk_value(child, schema.items().child(key), item_path + (f"f:{key}",), paths)
        elif schema.is_set():
            paths.update(path + (_value_key(v),) for v in value)
        else:
            paths.add(path)
    else:
        paths.add(path)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Render a path set as the nested ``fieldsV1`` object clients see."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        if path and path[-1].startswith("k:"):
            node.setdefault(".", {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for element, child in (tree or {}).items():
        if element == ".":
            paths.add(prefix)
            continue
        if child:
            paths.update(from_fields_v1(child, prefix + (element,)))
            if element.startswith("k:"):
                paths.add(prefix + (element,))
        else:
            paths.add(prefix + (element,))
    return paths


def value_at(obj: Any, path: Path) -> tuple[bool, Any]:
    """Follow a path; returns (found, value)."""
    current = obj
    for element in path:
        kind, _sep, rest = element.partition(":")
        if kind == "f":
            if not isinstance(current, dict) or rest not in current:
                return False, None
            current = current[rest]
        elif kind == "k":
            wanted = json.loads(rest)
            if not isinstance(current, list):
                return False, None
            match = next((i for i in current if isinstance(i, dict)
                          and all(key_value(i, k) == v for k, v in wanted.items())), None)
            if match is None:
                return False, None
            current = match
        elif kind == "v":
            value = json.loads(rest)
            return (isinstance(current, list) and value in current), value
        else:
            return False, None
    return True, current


def remove_at(obj: Any, path: Path) -> None:
    """Delete the field, list item or set value a path names (missing is fine)."""
    if not path:
        return
    found, parent = value_at(obj, path[:-1])
    if not found:
        return
    kind, _sep, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind == "k" and isinstance(parent, list):
        wanted = json.loads(rest)
        parent[:] = [i for i in parent
                     if not (isinstance(i, dict) and all(key_value(i, k) == v for k, v in wanted.items()))]
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(rest)
        parent[:] = [i for i in parent if i != value]


def format_path(path: Path) -> str:
    """``.spec.template.spec.containers[name="db"].image`` as the API server words it."""
    out = []
    for element in path:
        kind, _sep, rest = element.partition(":")
        if kind == "f":
            out.append(f".{rest}")
        elif kind == "k":
            keys = json.loads(rest)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]")
        else:
            out.append(f"[={rest}]")
    return "".join(out)


def apply_merge(live: Any, config: Any, schema: Schema) -> Any:
    """Merge an applied configuration into the live object: maps and keyed lists merge,
    sets union, atomic values are replaced."""
    if isinstance(config, dict) and isinstance(live, dict) and not schema.is_atomic_map():
        result = copy.deepcopy(live)
        for key, value in config.items():
            result[key] = apply_merge(live.get(key), value, schema.child(key))
        return result
    if isinstance(config, list) and isinstance(live, list):
        keys = schema.list_map_keys()
        if keys and all(isinstance(i, dict) for i in config + live):
            result = copy.deepcopy(live)
            for item in config:
                index = next((n for n, cur in enumerate(result)
                              if all(key_value(cur, k) == key_value(item, k) for k in keys)), None)
                if index is None:
                    result.append(copy.deepcopy(item))
                else:
                    result[index] = apply_merge(result[index], item, schema.items())
            return result
        if schema.is_set():
            return copy.deepcopy(live) + [copy.deepcopy(v) for v in config if v not in live]
    return copy.deepcopy(config)


class FieldManagers:
    """The ``managedFields`` of one object as path sets, keyed by (manager, operation, subresource)."""

    def __init__(self, entries: list[dict[str, Any]] | None) -> None:
        self.entries: list[dict[str, Any]] = copy.deepcopy(entries or [])
        self.sets: list[set[Path]] = [from_fields_v1(e.get("fieldsV1") or {}) for e in self.entries]

    def _index(self, manager: str, operation: str, subresource: str) -> int | None:
        for n, entry in enumerate(self.entries):
            if entry.get("manager") == manager and entry.get("operation") == operation \
                    and entry.get("subresource", "") == subresource:
                return n
        return None

    def owned_by(self, manager: str, operation: str, subresource: str = "") -> set[Path]:
        index = self._index(manager, operation, subresource)
        return set(self.sets[index]) if index is not None else set()

    def others(self, manager: str, operation: str, subresource: str = "") -> list[tuple[dict[str, Any], set[Path]]]:
        return [(e, s) for e, s in zip(self.entries, self.sets)
                if not (e.get("manager") == manager and e.get("operation") == operation
                        and e.get("subresource", "") == subresource)]

    def set_owned(self, manager: str, operation: str, subresource: str, paths: set[Path], api_version: str) -> None:
        index = self._index(manager, operation, subresource)
        if index is not None and self.sets[index] == paths:
            return
        entry: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": api_version,
                                 "time": now_iso(), "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}
        if subresource:
            entry["subresource"] = subresource
        if index is None:
            self.entries.append(entry)
            self.sets.append(set(paths))
        else:
            self.entries[index] = entry
            self.sets[index] = set(paths)

    def release(self, paths: set[Path], keep: tuple[str, str, str] | None = None) -> None:
        """Remove paths from every manager except ``keep``; entries left empty disappear."""
        for n, entry in enumerate(self.entries):
            ident = (entry.get("manager"), entry.get("operation"), entry.get("subresource", ""))
            if keep is not None and ident == keep:
                continue
            remaining = {p for p in self.sets[n] if not any(p[:len(r)] == r for r in paths)}
            if remaining != self.sets[n]:
                self.sets[n] = remaining
                entry["fieldsV1"] = to_fields_v1(remaining)
        pairs = [(e, s) for e, s in zip(self.entries, self.sets) if s]
        self.entries = [pair[0] for pair in pairs]
        self.sets = [pair[1] for pair in pairs]

    def render(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.entries)


def changed_paths(old: dict[str, Any], new: dict[str, Any], schema: Schema, status: bool) -> tuple[set[Path], set[Path]]:
    """Paths a plain update set to a new value, and paths it removed."""
    old_paths = field_paths(old, schema, status) if old else set()
    new_paths = field_paths(new, schema, status)
    changed = {p for p in new_paths if p not in old_paths or value_at(old, p) != value_at(new, p)}
    removed = old_paths - new_paths
    return changed, removed
