"""Label and field selectors, in the query-string syntax and the LabelSelector object form.

Lists, watches and controllers (Deployment/StatefulSet pod ownership, Services) all select
objects the same way, so the parsing and matching live here once.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .errors import bad_request

Requirement = Callable[[dict[str, str]], bool]

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\((.*)\)\s*$")
# Field selectors a real server accepts, per kind, on top of metadata.name/metadata.namespace.
_FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    "Pod": ("status.phase", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName", "spec.hostNetwork"),
    "Secret": ("type",),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"),
    "Namespace": ("status.phase",),
    "Job": ("status.successful",),
}


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``in (...)`` value lists."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h``; raises 400 on malformed input."""
    if not text:
        return []
    requirements: list[Requirement] = []
    for part in _split_top_level(text):
        match = _SET_RE.match(part)
        if match:
            key, op, raw = match.group(1), match.group(2), match.group(3)
            values = {v.strip() for v in raw.split(",") if v.strip()}
            if op == "in":
                requirements.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                requirements.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            requirements.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "==" in part or "=" in part:
            key, value = (s.strip() for s in re.split(r"==?", part, maxsplit=1))
            if not key:
                raise bad_request("unable to parse requirement: found '=', expected: identifier")
            requirements.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif part.startswith("!"):
            key = part[1:].strip()
            requirements.append(lambda labels, k=key: k not in labels)
        elif re.fullmatch(r"[A-Za-z0-9./_-]+", part):
            requirements.append(lambda labels, k=part: k in labels)
        else:
            raise bad_request(f"unable to parse requirement: {part!r}")
    return requirements


def labels_match(requirements: list[Requirement], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(req(labels) for req in requirements)


def selector_object_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """Match a ``LabelSelector`` object (matchLabels + matchExpressions); empty selects everything."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _field_value(obj: dict[str, Any], path: str) -> str:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def parse_field_selector(text: str | None, kind: str) -> Callable[[dict[str, Any]], bool]:
    """Parse ``metadata.name=x,status.phase!=Running``; unsupported fields are a 400 as on a real server."""
    if not text:
        return lambda obj: True
    allowed = ("metadata.name", "metadata.namespace", *_FIELDS_BY_KIND.get(kind, ()))
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split_top_level(text):
        negate = "!=" in part
        key, value = (s.strip() for s in re.split(r"!=|==|=", part, maxsplit=1))
        if key not in allowed:
            raise bad_request(f'field label not supported: {key}')
        if negate:
            checks.append(lambda obj, k=key, v=value: _field_value(obj, k) != v)
        else:
            checks.append(lambda obj, k=key, v=value: _field_value(obj, k) == v)
    return lambda obj: all(check(obj) for check in checks)
