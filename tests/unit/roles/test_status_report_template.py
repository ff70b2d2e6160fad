"""roles/postgres_status/templates/report.txt.j2 rendered from real-looking report data, in particular
the replication lines a kubesim cluster (no replication) never shows."""

from __future__ import annotations

from pathlib import Path

import jinja2

from ansible.plugins.filter.mathstuff import human_readable

TEMPLATE = Path(__file__).resolve().parents[3] / "roles" / "postgres_status" / "templates" / "report.txt.j2"


def render(report: dict) -> list[str]:
    """As the template lookup renders it (trim_blocks on), with the one Ansible filter it uses."""
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["ansible.builtin.human_readable"] = human_readable
    return env.from_string(TEMPLATE.read_text()).render(postgres_status_report=report).splitlines()


def pod(name: str, role: str, ready: bool = True, restarts: int = 0) -> dict:
    return {"name": name, "role": role, "phase": "Running", "ready": ready, "restarts": restarts, "node": "node-a"}


def replica(name: str, state: str, lag: int | None, replay: float | None, sync: str | None = "async") -> dict:
    return {"name": name, "streaming": state == "streaming", "state": state, "sync_state": sync, "client_addr": "10.0.0.9",
            "lag_bytes": lag, "replay_lag_seconds": replay}


PROD = {
    "host": "prod-postgres", "environment": "prod", "namespace": "microservices", "name": "postgres-cluster",
    "generated_at": "2026-11-26T08:00:00Z", "cluster_status": "Running", "instances": 4,
    "statefulset": {"name": "postgres-cluster", "replicas": 4, "ready": 3},
    "pods": [pod("postgres-cluster-0", "master"), pod("postgres-cluster-1", "replica", restarts=2),
             pod("postgres-cluster-2", "replica"), pod("postgres-cluster-3", "replica", ready=False)],
    "pooler": {"name": "postgres-cluster-pooler", "namespace": "microservices", "replicas": 2, "ready": 1, "available": True},
    "operator": None,
    "server": {"version": "17.6", "version_num": 170006, "in_recovery": False, "current_user": "postgres", "read_all_stats": True},
    "databases": [{"name": "userdb", "size_bytes": 12582912, "size_pretty": "12 MB", "connection_limit": 50,
                   "allow_connections": True, "connections": {"total": 3, "by_state": {"active": 1, "idle": 2}}},
                  {"name": "hiddendb", "size_bytes": None, "size_pretty": None, "connection_limit": -1,
                   "allow_connections": True, "connections": {"total": 0, "by_state": {}}}],
    "total_size_bytes": 12582912,
    "replicas": [replica("postgres-cluster-1", "streaming", 0, None), replica("postgres-cluster-2", "streaming", 3145728, 1.734),
                 replica("postgres-cluster-3", "not streaming", None, None, None)],
    "stats_error": "",
    "volumes": [{"name": "pgdata-postgres-cluster-0", "phase": "Bound", "capacity": "50Gi", "storage_class": "gp3"}],
    "last_backup": {"cronjob": {"name": "logical-backup-postgres-cluster", "schedule": "30 00 * * *", "suspended": False,
                                "last_schedule_time": "2026-11-26T00:30:00Z", "last_successful_time": "2026-11-26T00:31:12Z"},
                    "job": {"name": "logical-backup-postgres-cluster-29401230", "created": "2026-11-26T00:30:00Z",
                            "completed": "2026-11-26T00:31:12Z", "result": "Complete"}},
}


def test_replication_lines_show_lag_zero_lag_and_not_streaming():
    lines = render(PROD)
    start = lines.index("Replication (lag per replica, from pg_stat_replication on the master):")
    assert lines[start + 1:start + 4] == [
        "  postgres-cluster-1: streaming (async), lag 0 bytes, replay lag - s",
        "  postgres-cluster-2: streaming (async), lag 3145728 bytes, replay lag 1.734 s",
        "  postgres-cluster-3: not streaming",
    ]
    assert lines[start + 4].startswith("Volumes ")


def test_prod_pods_deployments_databases_and_backup_lines():
    lines = render(PROD)
    assert "Cluster: postgresql postgres-cluster status Running, 4 instances declared" in lines
    assert "StatefulSet postgres-cluster: 3/4 ready" in lines
    assert "  postgres-cluster-1         replica  Running    yes    2         node-a" in lines
    assert "  postgres-cluster-3         replica  Running    no     0         node-a" in lines
    assert "Pooler: Deployment microservices/postgres-cluster-pooler 1/2 ready, Available" in lines
    assert "Operator: Deployment not found" in lines
    assert "  userdb                  12 MB            3  active=1, idle=2               50" in lines
    assert "  hiddendb              unknown            0  -                              none" in lines
    assert "  sum of database sizes (not the volume usage): 12.00 MB of 50Gi per instance" in lines
    assert ('  CronJob logical-backup-postgres-cluster: schedule "30 00 * * *", last scheduled 2026-11-26T00:30:00Z, '
            "last successful 2026-11-26T00:31:12Z") in lines
    assert ("  newest Job logical-backup-postgres-cluster-29401230: Complete, created 2026-11-26T00:30:00Z, "
            "completed 2026-11-26T00:31:12Z") in lines


def test_unreadable_database_pod_is_reported_not_fatal():
    lines = render({**PROD, "stats_error": "cannot read the statistics: expected exactly one Ready pod", "server": None,
                    "databases": [], "total_size_bytes": None, "replicas": []})
    assert "Databases: could not be read: cannot read the statistics: expected exactly one Ready pod" in lines
    assert not any(line.startswith("Replication") for line in lines)
    assert not any("sum of database sizes" in line for line in lines)


def test_dev_backup_found_and_none_found():
    dev = {**PROD, "environment": "dev", "host": "dev-postgres", "replicas": [],
           "last_backup": {"found": True, "dir": "~/postgres-backups", "pattern": "dev-postgres-*.sql.gz", "dir_exists": True,
                           "file": "/root/postgres-backups/dev-postgres-20261126T020304Z.sql.gz",
                           "name": "dev-postgres-20261126T020304Z.sql.gz", "size_bytes": 123456,
                           "modified": "2026-11-26T02:03:04Z", "age_seconds": 93784}}
    lines = render(dev)
    assert not any(line.startswith(("Cluster:", "Pooler:", "Operator:", "Replication")) for line in lines)
    assert lines[-1] == ("  dev-postgres-20261126T020304Z.sql.gz: 120.56 KB, 1d 2h ago (2026-11-26T02:03:04Z), "
                         "in ~/postgres-backups")
    none = render({**dev, "last_backup": {"found": False, "dir": "/srv/b", "pattern": "dev-postgres-*.sql.gz", "dir_exists": False}})
    assert none[-1] == "  none found in /srv/b (dev-postgres-*.sql.gz; the directory does not exist)"


def test_a_replica_whose_details_are_hidden_is_reported_as_unknown():
    hidden = {"name": "postgres-cluster-1", "streaming": None, "state": "unknown", "sync_state": None, "client_addr": None,
              "lag_bytes": None, "replay_lag_seconds": None}
    lines = render({**PROD, "server": {**PROD["server"], "current_user": "monitor", "read_all_stats": False}, "replicas": [hidden]})
    start = lines.index("Replication (lag per replica, from pg_stat_replication on the master):")
    assert lines[start + 1] == "  postgres-cluster-1: connected, state unknown (read as monitor, which lacks pg_read_all_stats)"
