"""Where each series the rules and the dashboard use comes from, when not from postgres_exporter.

The live scrape of tests/monitoring proves what postgres_exporter serves. These series come from
elsewhere in a Kubernetes cluster and no local process stands in for them; each is named with
its source, the labels it carries, and why the live scrape cannot show it.
"""

from __future__ import annotations

from typing import NamedTuple


class Elsewhere(NamedTuple):
    source: str
    labels: frozenset[str]
    reason: str


_KUBELET = ("kubelet (/metrics of every node)", frozenset({"namespace", "persistentvolumeclaim"}),
            "volume usage is measured by the kubelet on the node that mounts the claim; PostgreSQL cannot see it")
_PGBOUNCER = ("pgbouncer_exporter (prometheus-community) beside the pooler", frozenset({"database", "user"}),
              "the operator's PgBouncer image exports no metrics; a pgbouncer_exporter scraped under the pooler's job "
              "serves them, and the role leaves the pooler rules and row out when postgres_monitoring_pooler_job is empty")

ELSEWHERE: dict[str, Elsewhere] = {
    "up": Elsewhere("Prometheus itself, one series per scrape target", frozenset(),
                    "written by Prometheus for every scrape, not by the target"),
    "kubelet_volume_stats_used_bytes": Elsewhere(*_KUBELET),
    "kubelet_volume_stats_capacity_bytes": Elsewhere(*_KUBELET),
    "kubelet_volume_stats_available_bytes": Elsewhere(*_KUBELET),
    "kube_cronjob_status_last_successful_time": Elsewhere(
        "kube-state-metrics", frozenset({"namespace", "cronjob"}),
        "the logical backup is the operator's CronJob; its last success is a Kubernetes object's status"),
    "pgbouncer_pools_client_waiting_connections": Elsewhere(*_PGBOUNCER),
    "pgbouncer_pools_client_active_connections": Elsewhere(*_PGBOUNCER),
    "pgbouncer_pools_server_active_connections": Elsewhere(*_PGBOUNCER),
    "pgbouncer_pools_server_idle_connections": Elsewhere(*_PGBOUNCER),
    "pgbouncer_up": Elsewhere(*_PGBOUNCER),
}

TARGET_LABELS: dict[str, str] = {
    "namespace": "the scrape configuration (ServiceMonitor: the target's namespace)",
    "cluster": "the scrape configuration (relabelled from the pod label cluster-name)",
    "pod": "the scrape configuration (ServiceMonitor: the target's pod)",
    "job": "Prometheus (the ServiceMonitor's Service name)",
    "instance": "Prometheus (the target's address)",
}
"""Labels Prometheus attaches to every series of a target, whatever the exporter serves."""
