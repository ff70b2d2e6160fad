"""kubernetes.core through ansible-playbook: apply (client- and server-side) with waits,
k8s_info waiting for a Ready pod, k8s_exec into a PostgreSQL pod, and idempotence — the
second run of the same playbook changes nothing, as on a real cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kubesim import KubeSim

from .conftest import REPO

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: apply namespace-scoped objects with client-side apply and wait for them
      kubernetes.core.k8s:
        state: present
        apply: true
        wait: true
        wait_timeout: 90
        definition:
          - {{apiVersion: v1, kind: ConfigMap, metadata: {{name: cfg, namespace: {ns}}}, data: {{a: "1"}}}}
          - apiVersion: apps/v1
            kind: StatefulSet
            metadata: {{name: db, namespace: {ns}}}
            spec:
              serviceName: db
              replicas: 1
              selector: {{matchLabels: {{app: db}}}}
              template:
                metadata: {{labels: {{app: db}}}}
                spec:
                  containers:
                    - name: postgres
                      image: postgres:15
                      env: [{{name: POSTGRES_PASSWORD, value: pw}}]
                      ports: [{{containerPort: 5432, name: pg}}]
                      volumeMounts: [{{name: data, mountPath: /var/lib/postgresql/data}}]
              volumeClaimTemplates:
                - metadata: {{name: data}}
                  spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
    - name: apply a deployment and wait for its Available condition
      kubernetes.core.k8s:
        state: present
        apply: true
        wait: true
        wait_condition: {{type: Available, status: "True"}}
        definition:
          apiVersion: apps/v1
          kind: Deployment
          metadata: {{name: web, namespace: {ns}}}
          spec:
            replicas: 1
            selector: {{matchLabels: {{app: web}}}}
            template:
              metadata: {{labels: {{app: web}}}}
              spec:
                containers: [{{name: web, image: "nginx:1.27", ports: [{{containerPort: 80}}]}}]
    - name: server-side apply a ConfigMap
      kubernetes.core.k8s:
        state: present
        server_side_apply: {{field_manager: ansible}}
        definition: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: ssa, namespace: {ns}}}, data: {{b: "2"}}}}
    - name: wait for the database pod
      kubernetes.core.k8s_info:
        kind: Pod
        namespace: {ns}
        name: db-0
        wait: true
        wait_condition: {{type: Ready, status: "True"}}
        wait_timeout: 60
      register: pod
    - name: query the database in the pod
      kubernetes.core.k8s_exec:
        namespace: {ns}
        pod: db-0
        command: psql -U postgres -Atc 'select 40 + 2'
      register: query
"""


def _run(playbook: Path, kubeconfig: Path) -> dict:
    env = {**os.environ, "K8S_AUTH_KUBECONFIG": str(kubeconfig), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"), "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    playbook_bin = Path(sys.executable).parent / "ansible-playbook"
    proc = subprocess.run([str(playbook_bin), str(playbook)], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _results(report: dict) -> dict[str, dict]:
    return {task["task"]["name"]: task["hosts"]["localhost"] for task in report["plays"][0]["tasks"]}


@pytest.mark.skipif(not (Path(sys.executable).parent / "ansible-playbook").exists(), reason="needs ansible-playbook")
def test_kubernetes_core_modules_and_idempotence(kubesim: KubeSim, namespace: str, tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.format(ns=namespace))
    first = _results(_run(playbook, kubesim.kubeconfig_path))
    assert [r["changed"] for r in first.values()] == [True, True, True, False, True]
    assert first["wait for the database pod"]["resources"][0]["status"]["phase"] == "Running"
    assert first["query the database in the pod"]["stdout"] == "42\n"
    assert first["query the database in the pod"]["rc"] == 0
    second = _results(_run(playbook, kubesim.kubeconfig_path))
    changed = {name: r["changed"] for name, r in second.items()}
    assert changed == {
        "apply namespace-scoped objects with client-side apply and wait for them": False,
        "apply a deployment and wait for its Available condition": False,
        "server-side apply a ConfigMap": False,
        "wait for the database pod": False,
        "query the database in the pod": True,  # k8s_exec always reports a change
    }
