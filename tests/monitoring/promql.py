"""The metric and label names a PromQL expression uses, for checking them against a live scrape.

Not a PromQL parser: a scanner good for the expressions of roles/postgres_monitoring (selectors,
aggregations with by/without, vector matching with on/ignoring, functions, ranges). It removes
string literals and ranges first, so matcher values and durations are never taken for names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_IDENTIFIER = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                       "group_left", "group_right", "inf", "nan"})


@dataclass
class Names:
    """What one expression uses: metrics with the labels matched on each, and labels it groups or joins by."""

    metrics: dict[str, set[str]] = field(default_factory=dict)
    grouping: set[str] = field(default_factory=set)


def names(expr: str) -> Names:
    """The metric names, matcher labels per metric and grouping labels of ``expr``."""
    found = Names()
    text = _RANGE.sub(" ", _STRING.sub('""', expr))
    for match in _GROUPING.finditer(text):
        found.grouping.update(label.strip() for label in match.group(1).split(",") if label.strip())
    text = _GROUPING.sub(" ", text)
    for match in _SELECTOR.finditer(text):
        metric = match.group(1) or ""
        found.metrics.setdefault(metric, set()).update(_MATCHER_LABEL.findall(match.group(2)))
    text = _SELECTOR.sub(lambda m: " " + (m.group(1) or "") + " ", text)
    for identifier in _IDENTIFIER.findall(text):
        if identifier.lower() not in _KEYWORDS:
            found.metrics.setdefault(identifier, set())
    found.metrics.pop("", None)
    return found
