"""Statistics queries and the shaping of their rows into the module's result."""

from __future__ import annotations

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._database_stats.stats import (
    NOT_STREAMING,
    UNKNOWN_STATE,
    StatsError,
    build_queries,
    shape,
)

SERVER = {"version": "17.6", "version_num": 170006, "in_recovery": False, "current_user": "postgres",
          "read_all_stats": True}


def database(name: str, size: int | None, pretty: str | None, limit: int = -1) -> dict:
    return {"name": name, "size_bytes": size, "size_pretty": pretty, "connection_limit": limit, "allow_connections": True}


def rows(databases=(), activity=(), replication=()) -> dict:
    return {"server": SERVER, "databases": list(databases), "activity": list(activity), "replication": list(replication)}


# Rows as a Zalando master with two streaming replicas returns them: one caught up, one 3 MiB behind.
REPLICATION = [
    {"application_name": "postgres-cluster-1", "client_addr": "10.244.0.12", "state": "streaming",
     "sync_state": "async", "lag_bytes": 0, "replay_lag_seconds": None},
    {"application_name": "postgres-cluster-2", "client_addr": "10.244.0.13", "state": "streaming",
     "sync_state": "async", "lag_bytes": 3145728, "replay_lag_seconds": 1.734},
]


def test_one_read_of_four_queries_in_the_login_database():
    queries = build_queries()
    assert [query.name for query in queries] == ["server", "databases", "activity", "replication"]
    assert all(query.database is None and query.when is None for query in queries)


def test_database_filter_is_a_quoted_array_only_when_databases_are_named():
    assert "ANY" not in build_queries()[1].sql
    sql = build_queries(["userdb", "it's"])[1].sql
    assert "d.datname = ANY (ARRAY['userdb', 'it''s']::text[])" in sql
    assert "NOT d.datistemplate" in sql


def test_size_is_guarded_so_a_database_without_connect_does_not_fail_the_read():
    sql = build_queries()[1].sql
    assert "has_database_privilege(d.oid, 'CONNECT')" in sql and "pg_read_all_stats" in sql
    assert sql.index("CASE WHEN") < sql.index("pg_database_size")


def test_lag_is_computed_only_on_a_primary():
    sql = build_queries()[3].sql
    assert "NOT pg_catalog.pg_is_in_recovery()" in sql
    assert "pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.replay_lsn)" in sql
    assert "extract(epoch FROM r.replay_lag)" in sql


def test_connections_count_client_backends_by_state_per_database():
    activity = [
        {"database": "userdb", "state": "idle", "count": 2},
        {"database": "userdb", "state": "active", "count": 1},
        {"database": "userdb", "state": None, "count": 4},
        {"database": "paymentdb", "state": "idle in transaction", "count": 1},
    ]
    result = shape(rows([database("paymentdb", 8000000, "7813 kB", 50), database("userdb", 9000000, "8789 kB"),
                         database("partnerdb", 7000000, "6836 kB")], activity))
    by_name = {item["name"]: item for item in result["databases"]}
    assert by_name["userdb"]["connections"] == {"total": 7, "by_state": {"active": 1, "idle": 2, UNKNOWN_STATE: 4}}
    assert by_name["paymentdb"]["connections"] == {"total": 1, "by_state": {"idle in transaction": 1}}
    assert by_name["partnerdb"]["connections"] == {"total": 0, "by_state": {}}
    assert by_name["paymentdb"]["connection_limit"] == 50
    assert by_name["userdb"]["size_pretty"] == "8789 kB"
    assert result["total_size_bytes"] == 24000000
    assert result["server"] == SERVER


def test_unknown_sizes_are_kept_null_and_left_out_of_the_total():
    result = shape(rows([database("userdb", 9000000, "8789 kB"), database("secretdb", None, None)]))
    assert [item["size_bytes"] for item in result["databases"]] == [9000000, None]
    assert result["total_size_bytes"] == 9000000


def test_named_database_that_does_not_exist_is_an_error_naming_it():
    with pytest.raises(StatsError, match="database\\(s\\) not found: nosuchdb"):
        shape(rows([database("userdb", 1, "1 bytes")]), databases=["userdb", "nosuchdb"])


def test_streaming_replicas_are_reported_with_their_lag():
    result = shape(rows(replication=REPLICATION), replicas=["postgres-cluster-2", "postgres-cluster-1"])
    assert result["replication"] == REPLICATION
    assert result["replicas"] == [
        {"name": "postgres-cluster-2", "streaming": True, "state": "streaming", "sync_state": "async",
         "client_addr": "10.244.0.13", "lag_bytes": 3145728, "replay_lag_seconds": 1.734},
        {"name": "postgres-cluster-1", "streaming": True, "state": "streaming", "sync_state": "async",
         "client_addr": "10.244.0.12", "lag_bytes": 0, "replay_lag_seconds": None},
    ]


def test_replica_catching_up_is_not_counted_as_streaming():
    catchup = [{**REPLICATION[0], "state": "catchup", "lag_bytes": 52428800}]
    (replica,) = shape(rows(replication=catchup), replicas=["postgres-cluster-1"])["replicas"]
    assert replica["streaming"] is False and replica["state"] == "catchup" and replica["lag_bytes"] == 52428800


def test_replica_without_a_row_is_not_streaming():
    result = shape(rows(replication=REPLICATION[:1]), replicas=["postgres-cluster-1", "postgres-cluster-3"])
    missing = result["replicas"][1]
    assert missing == {"name": "postgres-cluster-3", "streaming": False, "state": NOT_STREAMING, "sync_state": None,
                       "client_addr": None, "lag_bytes": None, "replay_lag_seconds": None}
    assert shape(rows(), replicas=[])["replicas"] == []


def test_replica_whose_wal_sender_is_hidden_is_unknown_not_stopped():
    hidden = [{"application_name": "postgres-cluster-1", "client_addr": None, "state": None, "sync_state": None,
               "lag_bytes": None, "replay_lag_seconds": None}]
    (replica,) = shape(rows(replication=hidden), replicas=["postgres-cluster-1"])["replicas"]
    assert replica == {"name": "postgres-cluster-1", "streaming": None, "state": UNKNOWN_STATE, "sync_state": None,
                       "client_addr": None, "lag_bytes": None, "replay_lag_seconds": None}
