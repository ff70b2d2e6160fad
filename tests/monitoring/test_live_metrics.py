"""Every series the rules and the dashboard use exists: in a live scrape of the real postgres_exporter
(run against a real PostgreSQL 15, logged in as a pg_monitor role), or in sources.ELSEWHERE, which
names each series no local process can serve, with its source and the reason.

The live samples then go through promtool as input series: every dashboard query over exporter
series must return data, and on this healthy server only the alert the data calls for fires.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.monitoring.conftest import CLUSTER, DATABASES, NAMESPACE, TARGET
from tests.monitoring.live import Sample
from tests.monitoring.promql import names
from tests.monitoring.sources import ELSEWHERE, TARGET_LABELS

_LABEL_VALUES = re.compile(r"^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$")
_LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
# The dashboard's variables as Grafana would fill them for the live target.
_DASHBOARD_VARIABLES = {"$namespace": NAMESPACE, "$cluster": CLUSTER, "$__rate_interval": "5m"}


def _served(scrape: list[Sample]) -> dict[str, set[str]]:
    served: dict[str, set[str]] = {}
    for sample in scrape:
        served.setdefault(sample.name, set()).update(sample.labels)
    return served


def _expressions(rules: dict, dashboard: dict) -> dict[str, tuple[str, set[str]]]:
    """Where -> (expression, labels it shows), for every rule, panel target and variable query.

    A variable's ``label_values(selector, label)`` (Grafana's, not PromQL) becomes its selector and the label.
    """
    found = {f"alert {rule['alert']}": (rule["expr"], set())
             for group in rules["groups"] for rule in group["rules"]}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = (
                target["expr"], set(_LEGEND_LABEL.findall(target.get("legendFormat", ""))))
    for variable in dashboard["templating"]["list"]:
        if "definition" in variable:
            selector, label = _LABEL_VALUES.match(variable["definition"]).groups()
            found[f"variable {variable['name']}"] = (selector, {label})
    return found


def _labels_of(metric: str, served: dict[str, set[str]]) -> set[str]:
    if metric in ELSEWHERE:
        return set(ELSEWHERE[metric].labels) | set(TARGET_LABELS)
    return served.get(metric, set())


def test_every_metric_and_label_used_is_served_live_or_listed_as_from_elsewhere(
        rules: dict, dashboard: dict, scrape: list[Sample]) -> None:
    served = _served(scrape)
    problems, from_elsewhere = [], set()
    for where, (expr, legend_labels) in _expressions(rules, dashboard).items():
        used = names(expr)
        assert used.metrics, f"{where}: no metric found in {expr!r}"
        available: set[str] = set()
        for metric, matcher_labels in used.metrics.items():
            if metric in ELSEWHERE:
                from_elsewhere.add(metric)
            elif metric not in served:
                problems.append(f"{where}: {metric} is not in the live scrape")
                continue
            labels = _labels_of(metric, served)
            available |= labels
            problems += [f"{where}: {metric} has no label {label!r}" for label in sorted(matcher_labels - labels)]
        problems += [f"{where}: no series of it carries {label!r}"
                     for label in sorted((used.grouping | legend_labels) - available)]
    assert problems == []
    assert from_elsewhere == set(ELSEWHERE), "sources.ELSEWHERE lists series nothing uses"


def test_the_exporter_serves_the_target_labels_it_must_not_clash_with(scrape: list[Sample]) -> None:
    # The rules rely on namespace/cluster/pod coming from the scrape configuration: an exporter that
    # served labels of those names itself would be overridden (or renamed exported_*) by Prometheus.
    raw = {label for sample in scrape for label in sample.labels} - set(TARGET)
    assert raw & set(TARGET_LABELS) == set()
    assert {"datname", "state", "mode", "slot_name", "slot_type"} <= raw


def _input_series(scrape: list[Sample]) -> list[dict[str, str]]:
    def selector(sample: Sample) -> str:
        labels = ",".join(f'{key}="{value}"'.replace("\\", "\\\\") for key, value in sorted(sample.labels.items()))
        return f"{sample.name}{{{labels}}}"

    # The scraped value held for 30 minutes, one sample a minute (written out: NaN has no "x30" shorthand).
    series = [{"series": selector(sample), "values": " ".join([sample.value] * 31)} for sample in scrape]
    series.append({"series": selector(Sample("up", dict(TARGET), "1")), "values": "1x30"})
    return series


def _promtool_test(promtool: Path, tmp_path: Path, rule_files: list[str], test: dict) -> subprocess.CompletedProcess:
    (tmp_path / "live.yml").write_text(yaml.safe_dump({"rule_files": rule_files, "evaluation_interval": "1m",
                                                      "tests": [test]}, sort_keys=False))
    return subprocess.run([str(promtool), "test", "rules", str(tmp_path / "live.yml")],
                          capture_output=True, text=True, check=False, timeout=300)


def test_every_dashboard_query_returns_data_on_the_live_series(
        promtool: Path, dashboard: dict, scrape: list[Sample], tmp_path: Path) -> None:
    checks, elsewhere_only = [], []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            query = target["expr"]
            for variable, value in _DASHBOARD_VARIABLES.items():
                query = query.replace(variable, value)
            metrics = set(names(query).metrics)
            if metrics <= set(ELSEWHERE):
                elsewhere_only.append(panel["title"])
                continue
            assert not metrics & set(ELSEWHERE), f"{panel['title']!r} mixes live and elsewhere series"
            # absent(q) is empty exactly when q returns data.
            checks.append({"expr": f"absent({query})", "eval_time": "20m", "exp_samples": []})
    test = {"interval": "1m", "input_series": _input_series(scrape), "promql_expr_test": checks}
    result = _promtool_test(promtool, tmp_path, [], test)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert len(checks) == 15 + 6 * len(DATABASES)  # the overview's live queries, then six per database row
    assert sorted(set(elsewhere_only)) == ["Data volume used", "Data volumes", "Pooler clients",
                                           "Pooler server connections", "Poolers up"]


def test_on_the_live_series_only_the_unused_replication_slot_alerts(
        promtool: Path, rules: dict, scrape: list[Sample], tmp_path: Path) -> None:
    bare = {"groups": [{**group, "rules": [{k: v for k, v in rule.items() if k != "annotations"}
                                           for rule in group["rules"]]} for group in rules["groups"]]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(bare, sort_keys=False))
    expected = {"PostgresReplicaNotStreaming": [{"exp_labels": {
        **TARGET, "severity": "warning", "slot_name": "postgres_cluster_1", "slot_type": "physical"}}]}
    cases = [{"alertname": rule["alert"], "eval_time": "20m", "exp_alerts": expected.get(rule["alert"], [])}
             for group in rules["groups"] for rule in group["rules"]]
    test = {"interval": "1m", "input_series": _input_series(scrape), "alert_rule_test": cases}
    result = _promtool_test(promtool, tmp_path, ["rules.yml"], test)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
