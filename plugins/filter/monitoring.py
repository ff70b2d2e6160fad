# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alert rules and a Grafana dashboard for one PostgreSQL cluster, built from the role's data files.

The PromQL, the thresholds' places and the panel layout are data (``roles/postgres_monitoring/
files/alerts.yml`` and ``dashboard.yml``). These filters only fill the ``<<name>>`` placeholders,
drop what needs a metrics source the deployment does not have, add labels and annotations, and lay
the panels out on Grafana's 24-column grid. A placeholder without a value is an error, so a typo in
the data never ships as a rule that silently matches nothing.

Documentation of each filter is in the ``<filter name>.yml`` file next to this one.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

PLACEHOLDER = re.compile(r"<<([a-z_]+)>>")
GRID_WIDTH = 24
DASHBOARD_SCHEMA_VERSION = 39


def _fail(message: str) -> None:
    """Raise the error Ansible reports for a filter (imported lazily: keeps the module importable alone)."""
    try:
        from ansible.errors import AnsibleFilterError  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover - only without ansible installed
        raise ValueError(message) from None
    raise AnsibleFilterError(message)


def fill(text: Any, values: Mapping[str, Any], where: str) -> str:
    """Replace every ``<<name>>`` in ``text`` by ``values[name]``; an unknown name is an error naming ``where``."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            _fail(f"{where}: placeholder <<{name}>> has no value (known: {', '.join(sorted(values))})")
        return str(values[name])

    return PLACEHOLDER.sub(value, str(text))


def _available(item: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Whether every source an item ``needs`` (a value name, such as the pooler's selector) is set."""
    return all(str(values.get(name, "")) != "" for name in item.get("needs", []))


def _runbook(rule: Mapping[str, Any], inventory: str) -> str:
    """The command the on-call runs first, then the rule's follow-up step when it has one."""
    command = f"ansible-playbook playbooks/{rule['playbook']} -i {inventory}"
    return f"{command}; then: {rule['next']}" if rule.get("next") else command


def postgres_alert_rules(catalog: Mapping[str, Any], values: Mapping[str, Any], labels: Mapping[str, Any] | None = None,
                         group_prefix: str = "postgres") -> dict[str, Any]:
    """Prometheus rule groups (``{"groups": [...]}``) from the alert catalog.

    Each catalog rule carries ``alert``, ``expr``, ``for``, ``severity``, ``summary``, ``description``,
    ``playbook`` (the collection playbook its ``runbook`` annotation names) and optionally ``next`` (the
    follow-up step) and ``needs``.
    ``values`` fills the placeholders and holds ``inventory`` for the runbook command; ``labels`` are
    added to every alert (for routing: team, environment).
    """
    inventory = str(values.get("inventory", ""))
    groups = []
    for group in catalog.get("groups", []):
        rules = []
        for rule in group.get("rules", []):
            if not _available(rule, values):
                continue
            where = f"alert {rule['alert']}"
            rules.append({
                "alert": rule["alert"],
                "expr": " ".join(fill(rule["expr"], values, where).split()),
                "for": str(rule.get("for", "0m")),
                "labels": {**dict(labels or {}), "severity": rule["severity"]},
                "annotations": {
                    "summary": fill(rule["summary"], values, where),
                    "description": " ".join(fill(rule["description"], values, where).split()),
                    "runbook": _runbook(rule, inventory),
                },
            })
        if rules:
            groups.append({"name": f"{group_prefix}.{group['name']}", "rules": rules})
    return {"groups": groups}


def _target(expr: str, legend: str, ref: int) -> dict[str, Any]:
    return {
        "refId": chr(ord("A") + ref),
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "expr": " ".join(expr.split()),
        "legendFormat": legend or "__auto",
        "range": True,
    }


def _panel(spec: Mapping[str, Any], values: Mapping[str, Any], panel_id: int, x: int, y: int) -> dict[str, Any]:
    where = f"panel {spec['title']!r}"
    panel: dict[str, Any] = {
        "id": panel_id,
        "type": spec.get("type", "timeseries"),
        "title": fill(spec["title"], values, where),
        "description": fill(spec.get("description", ""), values, where),
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": int(spec.get("width", 8)), "h": int(spec.get("height", 8))},
        "fieldConfig": {"defaults": {"unit": spec.get("unit", "short")}, "overrides": []},
        "options": {},
        "targets": [_target(fill(target["expr"], values, where), fill(target.get("legend", ""), values, where), ref)
                    for ref, target in enumerate(spec["targets"])],
    }
    if "max" in spec:
        panel["fieldConfig"]["defaults"]["max"] = spec["max"]
    return panel


def _row_instances(rows: Iterable[Mapping[str, Any]], values: Mapping[str, Any],
                   repeats: Mapping[str, Iterable[str]]) -> list[tuple[Mapping[str, Any], dict[str, Any]]]:
    """Each row with the values it is drawn with; a row with ``each: NAME`` once per item of ``repeats[NAME]``."""
    instances = []
    for row in rows:
        if not _available(row, values):
            continue
        if "each" in row:
            instances.extend((row, {**values, row["each"]: item}) for item in repeats.get(row["each"], []))
        else:
            instances.append((row, dict(values)))
    return instances


def grafana_dashboard(layout: Mapping[str, Any], values: Mapping[str, Any],
                      repeats: Mapping[str, Iterable[str]] | None = None, uid: str = "",
                      tags: Iterable[str] = ()) -> dict[str, Any]:
    """A Grafana dashboard model (the JSON Grafana imports) from the layout data.

    Rows are Grafana row panels; each row's panels flow left to right and wrap at 24 columns. Panel
    ids are numbered from 1 in order, so they are unique. ``repeats`` gives the items of rows drawn
    once per item (``each: database`` -> the service databases).
    """
    panels: list[dict[str, Any]] = []
    y = 0
    for row, row_values in _row_instances(layout.get("rows", []), values, repeats or {}):
        panels.append({"id": len(panels) + 1, "type": "row", "collapsed": False, "panels": [],
                       "title": fill(row["title"], row_values, f"row {row['title']!r}"),
                       "gridPos": {"x": 0, "y": y, "w": GRID_WIDTH, "h": 1}})
        y += 1
        x, line_height = 0, 0
        for spec in row.get("panels", []):
            width = int(spec.get("width", 8))
            if x + width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel(spec, row_values, len(panels) + 1, x, y))
            x += width
            line_height = max(line_height, int(spec.get("height", 8)))
        y += line_height
    return {
        "uid": uid,
        "title": fill(layout["title"], values, "dashboard title"),
        "description": layout.get("description", ""),
        "tags": list(tags),
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": layout.get("refresh", "1m"),
        "schemaVersion": DASHBOARD_SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [_variable(variable, values) for variable in layout.get("variables", [])]},
        "annotations": {"list": []},
        "panels": panels,
    }


def _variable(spec: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A template variable: the data source picker, or a query over label values (preset to ``default``)."""
    if spec["type"] == "datasource":
        return {"name": spec["name"], "label": spec.get("label", spec["name"]), "type": "datasource",
                "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []}
    return {
        "name": spec["name"],
        "label": spec.get("label", spec["name"]),
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": spec["query"], "refId": f"{spec['name']}-values"},
        "definition": spec["query"],
        "current": _current(fill(spec.get("default", ""), values, f"variable {spec['name']}")),
        "hide": 0,
        "refresh": 2,
        "sort": 1,
        "regex": "",
        "includeAll": False,
        "multi": False,
        "options": [],
    }


def _current(value: str) -> dict[str, Any]:
    return {"text": value, "value": value, "selected": True} if value else {}


class FilterModule:  # pylint: disable=too-few-public-methods
    """microservices.postgres monitoring filters."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function."""
        return {"postgres_alert_rules": postgres_alert_rules, "grafana_dashboard": grafana_dashboard}
