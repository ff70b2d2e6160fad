"""The rendered alert rules pass promtool's checks, and its unit tests prove when each alert fires.

alert_cases.yml gives, for every alert, series that must fire it and series (or moments) that must
leave it quiet; promtool evaluates the rules on them as Prometheus would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CASES = HERE / "alert_cases.yml"


def _alerts(rules: dict) -> list[dict]:
    return [rule for group in rules["groups"] for rule in group["rules"]]


def _run(promtool: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, check=False, timeout=300)


def test_promtool_check_rules_accepts_the_rules_file(promtool: Path, rendered: Path) -> None:
    result = _run(promtool, "check", "rules", str(rendered / "postgres-alerts.rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 18 rules found" in result.stdout, result.stdout


def test_the_prometheusrule_carries_the_same_rules(rendered: Path, rules: dict) -> None:
    resource = yaml.safe_load((rendered / "prometheusrule-postgres-cluster-alerts.yaml").read_text())
    assert resource["apiVersion"] == "monitoring.coreos.com/v1" and resource["kind"] == "PrometheusRule"
    assert resource["spec"] == rules


def test_every_alert_has_a_runbook_naming_a_playbook_of_the_collection(rules: dict) -> None:
    for alert in _alerts(rules):
        runbook = alert["annotations"]["runbook"]
        playbook = runbook.split()[1]
        assert runbook.startswith("ansible-playbook playbooks/") and (REPO / playbook).is_file(), alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]


def test_every_alert_has_cases_that_fire_it_and_cases_that_keep_it_quiet(rules: dict) -> None:
    fired, quiet = set(), set()
    for group in yaml.safe_load(CASES.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {alert["alert"] for alert in _alerts(rules)}
    assert names - fired == set(), "alerts no case fires"
    assert names - quiet == set(), "alerts no case keeps quiet"
    assert (fired | quiet) - names == set(), "cases of alerts that do not exist"


def test_promtool_unit_tests_fire_and_quiet_each_alert(promtool: Path, rendered: Path, rules: dict,
                                                       tmp_path: Path) -> None:
    # promtool compares annotations verbatim, so the cases run on the rules without them: what is
    # tested is each rule's expression, duration and labels. promtool check rules (above) parses the
    # annotations' templates.
    bare = {"groups": [{**group, "rules": [{k: v for k, v in rule.items() if k != "annotations"}
                                           for rule in group["rules"]]} for group in rules["groups"]]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(bare, sort_keys=False))
    cases = {"rule_files": ["rules.yml"], **yaml.safe_load(CASES.read_text())}
    (tmp_path / "cases.yml").write_text(yaml.safe_dump(cases, sort_keys=False))
    result = _run(promtool, "test", "rules", str(tmp_path / "cases.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
