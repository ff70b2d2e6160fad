"""The two filters on small data: placeholders, left-out sources, grid layout."""

from __future__ import annotations

import pytest

from ansible_collections.microservices.postgres.plugins.filter.monitoring import grafana_dashboard, postgres_alert_rules

CATALOG = {"groups": [{"name": "g", "rules": [
    {"alert": "A", "expr": "x{<<pg>>} > <<limit>>", "for": "1m", "severity": "warning", "summary": "s",
     "description": "d <<limit>>", "playbook": "status.yml"},
    {"alert": "B", "needs": ["pooler"], "expr": "y{<<pooler>>}", "severity": "critical", "summary": "s",
     "description": "d", "playbook": "diagnose.yml", "next": "then this"}]}]}


def test_rules_fill_placeholders_and_name_the_playbook() -> None:
    rules = postgres_alert_rules(CATALOG, {"pg": 'a="1"', "limit": 3, "pooler": 'j="p"', "inventory": "inv/x"},
                                 {"team": "db"}, "p")
    first, second = rules["groups"][0]["rules"]
    assert rules["groups"][0]["name"] == "p.g"
    assert first["expr"] == 'x{a="1"} > 3' and first["annotations"]["description"] == "d 3"
    assert first["labels"] == {"team": "db", "severity": "warning"}
    assert first["annotations"]["runbook"] == "ansible-playbook playbooks/status.yml -i inv/x"
    assert second["annotations"]["runbook"] == "ansible-playbook playbooks/diagnose.yml -i inv/x; then: then this"


def test_a_rule_whose_source_is_empty_is_left_out() -> None:
    rules = postgres_alert_rules(CATALOG, {"pg": 'a="1"', "limit": 3, "pooler": "", "inventory": "i"})
    assert [rule["alert"] for rule in rules["groups"][0]["rules"]] == ["A"]


def test_an_unknown_placeholder_is_an_error_naming_the_rule() -> None:
    with pytest.raises(Exception, match=r"alert A: placeholder <<limit>> has no value"):
        postgres_alert_rules(CATALOG, {"pg": "", "pooler": "", "inventory": "i"})


def test_panels_wrap_at_24_columns_and_rows_repeat_per_item() -> None:
    layout = {"title": "T <<c>>", "rows": [{"title": "R <<db>>", "each": "db", "panels": [
        {"title": "p1", "width": 16, "targets": [{"expr": "m{<<pg>>}"}]},
        {"title": "p2 <<db>>", "width": 16, "height": 4, "targets": [{"expr": 'm{datname="<<db>>"}'}]}]}]}
    board = grafana_dashboard(layout, {"pg": "", "c": "x"}, {"db": ["a", "b"]}, "uid")
    assert board["title"] == "T x"
    assert [(p["title"], p["id"], p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]] == [
        ("R a", 1, 0, 0), ("p1", 2, 0, 1), ("p2 a", 3, 0, 9), ("R b", 4, 0, 13), ("p1", 5, 0, 14), ("p2 b", 6, 0, 22)]
    assert board["panels"][2]["targets"][0]["expr"] == 'm{datname="a"}'
