# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server, per-database and replication statistics, read in ONE transport call.

Each query returns one JSON value so that every transport (psycopg, or psql inside a pod) can
carry it, and everything is read through the statistics views a ``pg_monitor`` member may see:
where the login role lacks a privilege the value comes back as null (and is reported as
unknown) instead of failing the whole read, because a status report that stops at the first
hidden figure helps nobody.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.catalog import text_array
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import Query

UNKNOWN_STATE = "unknown"
"""State of sessions whose details the login role may not see (not a member of pg_read_all_stats)."""

NOT_STREAMING = "not streaming"

_SERVER_SQL = (
    "SELECT pg_catalog.json_build_object("
    "'version', current_setting('server_version'), "
    "'version_num', current_setting('server_version_num')::int, "
    "'in_recovery', pg_catalog.pg_is_in_recovery(), "
    "'current_user', current_user, "
    "'read_all_stats', pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'))"
)

# pg_database_size() raises for a database without CONNECT unless the caller has pg_read_all_stats:
# the CASE keeps such a database in the report with an unknown (null) size.
_DATABASES_SQL = (
    "SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object("
    "'name', d.datname, "
    "'connection_limit', d.datconnlimit, "
    "'allow_connections', d.datallowconn, "
    "'size_bytes', s.size, "
    "'size_pretty', pg_catalog.pg_size_pretty(s.size)) ORDER BY d.datname), '[]'::json) "
    "FROM pg_catalog.pg_database d CROSS JOIN LATERAL (SELECT CASE WHEN d.datallowconn AND "
    "(pg_catalog.has_database_privilege(d.oid, 'CONNECT') OR pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')) "
    "THEN pg_catalog.pg_database_size(d.oid) END AS size) s "
    "WHERE NOT d.datistemplate{filter}"
)

# Only client backends count as connections (autovacuum, WAL senders and background workers are not
# the services'); the reading session itself is left out so an idle server shows 0. Without
# pg_read_all_stats the backend_type of other roles' sessions is hidden (null), and only pid, datname,
# usesysid and application_name remain: rows without a role or database (autovacuum launcher,
# checkpointer...) are left out, the rest are counted as connections in state unknown. Other roles'
# parallel and logical replication workers have a role and a database too and cannot be told apart
# from their client backends then, so they are counted as well (the module documents this).
_ACTIVITY_SQL = (
    "SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object("
    "'database', a.datname, 'state', a.state, 'count', a.n)), '[]'::json) "
    "FROM (SELECT sa.datname, sa.state, count(*) AS n FROM pg_catalog.pg_stat_activity sa "
    "WHERE sa.datname IS NOT NULL AND sa.usesysid IS NOT NULL AND coalesce(sa.backend_type, 'client backend') = 'client backend' "
    "AND sa.pid <> pg_catalog.pg_backend_pid() "
    "GROUP BY sa.datname, sa.state) a"
)

# pg_current_wal_lsn() raises on a standby, so the lag is only computed on a primary.
_REPLICATION_SQL = (
    "SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object("
    "'application_name', r.application_name, "
    "'client_addr', host(r.client_addr), "
    "'state', r.state, "
    "'sync_state', r.sync_state, "
    "'lag_bytes', CASE WHEN NOT pg_catalog.pg_is_in_recovery() AND r.replay_lsn IS NOT NULL "
    "THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.replay_lsn)::bigint END, "
    "'replay_lag_seconds', extract(epoch FROM r.replay_lag)::float8) "
    "ORDER BY r.application_name), '[]'::json) "
    "FROM pg_catalog.pg_stat_replication r"
)


class StatsError(Exception):
    """The statistics asked for cannot be given (for example a named database does not exist)."""


def _json_query(name: str, select: str) -> Query:
    """Transports expect one text column holding JSON (psycopg would decode a json column itself)."""
    return Query(name, f"SELECT ({select})::text")


def build_queries(databases: Sequence[str] = ()) -> list[Query]:
    """The reads of one run, all in the login database; ``databases`` limits the per-database rows."""
    database_filter = f" AND d.datname = ANY ({text_array(list(databases))})" if databases else ""
    return [
        _json_query("server", _SERVER_SQL),
        _json_query("databases", _DATABASES_SQL.format(filter=database_filter)),
        _json_query("activity", _ACTIVITY_SQL),
        _json_query("replication", _REPLICATION_SQL),
    ]


def _connections(activity: Sequence[Mapping[str, Any]], database: str) -> dict[str, Any]:
    by_state: dict[str, int] = {}
    for row in activity:
        if row["database"] == database:
            state = row["state"] or UNKNOWN_STATE
            by_state[state] = by_state.get(state, 0) + int(row["count"])
    return {"total": sum(by_state.values()), "by_state": dict(sorted(by_state.items()))}


def _database(row: Mapping[str, Any], activity: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "size_bytes": row["size_bytes"],
        "size_pretty": row["size_pretty"],
        "connection_limit": row["connection_limit"],
        "allow_connections": row["allow_connections"],
        "connections": _connections(activity, row["name"]),
    }


def _replica(name: str, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One expected standby: not streaming without a row; unknown when its WAL sender's columns are hidden.

    Without pg_read_all_stats every column of another role's WAL sender but pid is null, while the
    application_name (from pg_stat_activity) still matches: the replica is connected, but whether it
    streams cannot be seen, and saying "not streaming" would be false.
    """
    row = rows.get(name)
    if row is None:
        return {"name": name, "streaming": False, "state": NOT_STREAMING, "sync_state": None, "client_addr": None,
                "lag_bytes": None, "replay_lag_seconds": None}
    if row["state"] is None:
        return {"name": name, "streaming": None, "state": UNKNOWN_STATE, "sync_state": None, "client_addr": row["client_addr"],
                "lag_bytes": None, "replay_lag_seconds": None}
    return {"name": name, "streaming": row["state"] == "streaming", "state": row["state"],
            "sync_state": row["sync_state"], "client_addr": row["client_addr"], "lag_bytes": row["lag_bytes"],
            "replay_lag_seconds": row["replay_lag_seconds"]}


def shape(rows: Mapping[str, Any], databases: Sequence[str] = (), replicas: Sequence[str] = ()) -> dict[str, Any]:
    """The module's result from the read's rows.

    ``replicas`` are the standbys expected to stream (Patroni names each one's WAL receiver after
    its pod); each is matched by application_name and reported with its lag, or as not streaming,
    so a replica that silently stopped replicating is visible rather than merely absent.
    """
    found = {row["name"] for row in rows["databases"]}
    missing = [name for name in databases if name not in found]
    if missing:
        raise StatsError(f"database(s) not found: {', '.join(missing)}")
    activity = rows["activity"]
    replication = rows["replication"]
    by_name = {row["application_name"]: row for row in replication}
    shaped = [_database(row, activity) for row in rows["databases"]]
    return {
        "server": rows["server"],
        "databases": shaped,
        "total_size_bytes": sum(row["size_bytes"] or 0 for row in shaped),
        "replication": replication,
        "replicas": [_replica(name, by_name) for name in replicas],
    }
