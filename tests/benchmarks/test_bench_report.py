"""The benchmark's report arithmetic (no server, no timing)."""

from __future__ import annotations

import pytest

from tests.benchmarks.bench_service_databases import (
    Measurement,
    Results,
    evaluate_targets,
    floor_sql,
    per_extra_service_ms,
    ratio,
    render_markdown,
    scram_verifier,
    services,
)


def _results() -> Results:
    return Results([
        Measurement("module", 50, first=2.0, noop=1.0),
        Measurement("anchor", 50, first=30.0, noop=25.0),
        Measurement("floor", 50, first=1.6, noop=0.9),
        Measurement("module", 200, first=4.0, noop=1.15),
        Measurement("anchor", 200, first=120.0, noop=100.0, noop_changed=3),
        Measurement("floor", 200, first=3.5, noop=1.0),
    ])


def test_ratio_and_per_service_cost() -> None:
    results = _results()
    assert ratio(30.0, 2.0) == 15.0
    assert ratio(1.0, 0.0) == float("inf")
    assert per_extra_service_ms(results, "module", 50, 200) == pytest.approx(1.0)
    assert per_extra_service_ms(results, "anchor", 50, 200, "first") == pytest.approx(600.0)
    assert per_extra_service_ms(results, "module", 50, 5) is None


def test_targets_at_n50() -> None:
    verdicts = {v.name: v for v in evaluate_targets(_results())}
    assert verdicts["first run, N=50: anchor / module"].value == "15.0x"
    assert verdicts["first run, N=50: anchor / module"].holds
    assert verdicts["no-op re-run, N=50: anchor / module"].value == "25.0x"
    assert verdicts["no-op re-run, N=50: anchor / module"].holds
    assert verdicts["first run, N=50: module / floor"].value == "1.25x"
    assert verdicts["first run, N=50: module / floor"].holds
    assert verdicts["no-op re-run cost per extra service, N=50..200"].holds


def test_targets_missed_are_reported() -> None:
    results = Results([Measurement("module", 50, 10.0, 5.0), Measurement("anchor", 50, 20.0, 20.0),
                       Measurement("floor", 50, 1.0, 1.0)])
    assert not any(v.holds for v in evaluate_targets(results))


def test_markdown_table() -> None:
    text = render_markdown(_results(), {"CPU": "test CPU"}, "2026-01-01 00:00 UTC")
    assert "| 50 | module | 2.00 | 1.00 | 15.0x | 1.25x | 25.0x | 1.11x |" in text
    assert "| 200 | anchor | 120.00 | 100.00 (changed=3) |" in text
    assert "| module | 13.3 | 1.0 |" in text
    assert "- CPU: test CPU" in text
    assert "**no**" not in text


def test_floor_sql_matches_the_services() -> None:
    items = services(3)
    sql = floor_sql(items)
    assert sql.count("CREATE ROLE") == 3 and sql.count("CREATE DATABASE") == 3 and sql.count("REVOKE CONNECT") == 3
    assert "bench-only-password" not in sql
    verifier = scram_verifier("secret")
    assert verifier.startswith("SCRAM-SHA-256$4096:") and verifier.count("$") == 2
