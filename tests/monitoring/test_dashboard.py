"""The dashboard is a Grafana dashboard model Grafana loads, and its ConfigMap is one Grafana's sidecar picks up."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.monitoring.conftest import DATABASES

PANEL_TYPES = {"row", "timeseries", "stat", "gauge"}
_VARIABLE = re.compile(r"\$(?:\{)?([a-zA-Z_][a-zA-Z0-9_]*)")
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}


def _queries(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_model_has_what_grafana_reads(dashboard: dict) -> None:
    for key, kind in (("uid", str), ("title", str), ("panels", list), ("templating", dict), ("schemaVersion", int),
                      ("time", dict)):
        assert isinstance(dashboard[key], kind), key
    assert 0 < len(dashboard["uid"]) <= 40
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES, panel
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            assert panel["panels"] == [] and not panel["collapsed"]
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"] and target["datasource"] == panel["datasource"]


def test_panel_ids_are_unique_and_panels_do_not_overlap(dashboard: dict) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & mine, f"panel {panel['title']!r} overlaps another"
        cells |= mine


def test_datasource_namespace_and_cluster_are_variables_and_every_used_variable_exists(dashboard: dict) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["current"]["value"] == "microservices"
    assert variables["cluster"]["current"]["value"] == "postgres-cluster"
    for variable in ("namespace", "cluster"):
        assert variables[variable]["type"] == "query" and variables[variable]["query"]["query"].startswith("label_values(")
    used = {name for query in _queries(dashboard) + [v["definition"] for v in variables.values() if "definition" in v]
            for name in _VARIABLE.findall(query)}
    assert used - set(variables) - BUILTIN_VARIABLES == set()


def test_overview_then_a_row_per_service_database_then_the_pooler(dashboard: dict) -> None:
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == ["Cluster overview"] + [f"Database {db}" for db in DATABASES] + ["Pooler (PgBouncer)"]
    titles = {panel["title"] for panel in dashboard["panels"]}
    for db in DATABASES:
        assert {f"{db} size", f"{db} connections", f"{db} transactions", f"{db} locks", f"{db} deadlocks"} <= titles
    for overview in ("Servers up", "Primaries", "Replicas", "Replication lag", "Connections", "Transactions per second",
                     "Cache hit ratio", "Data volume used"):
        assert overview in titles


def test_the_configmap_carries_the_sidecar_label_and_the_same_dashboard(rendered: Path, dashboard: dict) -> None:
    configmap = yaml.safe_load((rendered / "configmap-postgres-cluster-dashboard.yaml").read_text())
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    (name, content), = configmap["data"].items()
    assert name.endswith(".json") and json.loads(content) == dashboard
