"""Apply mode against the real test bed (tests/localcluster): the dashboard ConfigMap always, the
PrometheusRule only once CRD prometheusrules.monitoring.coreos.com exists, and a re-run changes nothing.

The Prometheus operator itself is not part of the test bed: the CRD applied here is a minimal one of
the same name and version (schema left open), enough for the API server to store PrometheusRules.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.localcluster.pytest_plugin import LocalClusterProcess, localcluster  # noqa: F401  pylint: disable=unused-import
from tests.monitoring.conftest import CLUSTER, DATABASES, NAMESPACE, REPO

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "prometheusrules.monitoring.coreos.com"},
    "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
             "names": {"kind": "PrometheusRule", "listKind": "PrometheusRuleList", "plural": "prometheusrules",
                       "singular": "prometheusrule"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def _apply_role(cluster: LocalClusterProcess, tmp_path: Path) -> subprocess.CompletedProcess:
    playbook = tmp_path / "apply.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Apply the monitoring", "hosts": "localhost", "gather_facts": False,
                                         "roles": [{"role": "microservices.postgres.postgres_monitoring"}]}]))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KUBECONFIG", "K8S_AUTH"))}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook),
         "-e", json.dumps({"postgres_monitoring_kubeconfig": str(cluster.kubeconfig_path),
                           "postgres_monitoring_databases": DATABASES})],
        cwd=REPO, env={**env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        capture_output=True, text=True, check=False, timeout=600)


def _recap(result: subprocess.CompletedProcess) -> dict[str, int]:
    match = re.search(r"localhost\s*:\s*(.*)", result.stdout.split("PLAY RECAP")[-1])
    assert match, result.stdout[-3000:]
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def _json(cluster: LocalClusterProcess, *args: str) -> dict:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


@pytest.mark.slow
def test_apply_ships_the_dashboard_then_the_rules_once_the_crd_exists(
        localcluster: LocalClusterProcess, rules: dict, dashboard: dict, tmp_path: Path) -> None:  # noqa: F811
    localcluster.kubectl("create", "namespace", NAMESPACE)

    first = _apply_role(localcluster, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert "CRD prometheusrules.monitoring.coreos.com does not exist" in first.stdout
    configmap = _json(localcluster, "-n", NAMESPACE, "get", "configmap", f"{CLUSTER}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"][f"{CLUSTER}-dashboard.json"]) == dashboard

    localcluster.kubectl("apply", "-f", "-", input_text=json.dumps(CRD))
    localcluster.kubectl("wait", "--for=condition=Established", "crd/prometheusrules.monitoring.coreos.com",
                         "--timeout=60s")
    second = _apply_role(localcluster, tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    rule = _json(localcluster, "-n", NAMESPACE, "get", "prometheusrules.monitoring.coreos.com", f"{CLUSTER}-alerts")
    assert rule["spec"] == rules

    third = _apply_role(localcluster, tmp_path)
    assert _recap(third)["changed"] == 0, third.stdout[-3000:]
