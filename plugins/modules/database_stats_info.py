#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: database_stats_info
short_description: Read a PostgreSQL server's version, database sizes, connections and replication lag
version_added: 1.0.0
description:
  - Reads, in one round trip (one psql run inside the pod with O(transport=kubernetes)), the server version and
    whether it is in recovery, per database its size, connection limit and client connections by state from
    C(pg_stat_activity), and the rows of C(pg_stat_replication) with the replay lag in bytes and seconds.
  - Never changes anything.
  - Works as a non-superuser. A member of C(pg_monitor) (or C(pg_read_all_stats)) sees every figure. Any other role
    sees the sizes of the databases it may connect to (others are null), the connection counts of every database
    but the state only of its own sessions (others are counted under V(unknown)), and null in the replication
    columns of other roles' WAL senders.
author:
  - microservices.postgres contributors (@microservices)
extends_documentation_fragment:
  - microservices.postgres.connection
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to show a difference of.
requirements:
  - psycopg >= 3.1 (for O(transport=direct))
  - kubernetes >= 24.2.0 (for O(transport=kubernetes))
options:
  databases:
    description:
      - Databases to report on; all databases except templates when empty.
      - A named database that does not exist is an error naming it.
    type: list
    elements: str
    default: []
  replicas:
    description:
      - Names of the standbys expected to stream from this server, matched against the C(application_name) of
        C(pg_stat_replication) (Patroni, in Spilo, uses the pod name). Each is reported in RV(replicas), as
        not streaming when it has no row.
    type: list
    elements: str
    default: []
notes:
  - Connections count client backends only (no autovacuum, WAL senders or background workers) and leave out the
    module's own session. Without C(pg_read_all_stats) the type of other roles' sessions is hidden, so their parallel
    and logical replication workers (which have a role and a database) are counted with their client backends.
  - C(pg_stat_replication) is read on the server the module connects to; on a standby it is usually empty and the
    lag is null (C(pg_current_wal_lsn()) exists only on a primary).
"""

EXAMPLES = r"""
- name: Statistics of the dev database pod
  microservices.postgres.database_stats_info:
    transport: kubernetes
    namespace: microservices
    pod: postgresql-0
    container: postgresql
  register: stats

- name: Statistics of the Zalando cluster's master, with the replicas expected to stream
  microservices.postgres.database_stats_info:
    transport: kubernetes
    namespace: microservices
    pod_selector: application=spilo,cluster-name=postgres-cluster,spilo-role=master
    container: postgres
    databases: [userdb, paymentdb]
    replicas: [postgres-cluster-1, postgres-cluster-2]
  register: stats

- name: Statistics over a direct connection as a pg_monitor member
  microservices.postgres.database_stats_info:
    login_host: db.internal
    login_user: monitoring
    login_password: "{{ monitoring_password }}"
"""

RETURN = r"""
server:
  description: The server the statistics come from.
  returned: always
  type: dict
  contains:
    version:
      description: C(server_version).
      type: str
      sample: "15.10 (Debian 15.10-0+deb12u1)"
    version_num:
      description: C(server_version_num).
      type: int
      sample: 150010
    in_recovery:
      description: Whether the server is a standby (C(pg_is_in_recovery())).
      type: bool
      sample: false
    current_user:
      description: The role the statistics were read as.
      type: str
      sample: postgres
    read_all_stats:
      description: Whether that role has the privileges of C(pg_read_all_stats) (so no figure is hidden).
      type: bool
      sample: true
databases:
  description: One entry per database, by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Database name.
      type: str
      sample: userdb
    size_bytes:
      description: C(pg_database_size()); null when the login role may not connect to the database.
      type: int
      sample: 7631663
    size_pretty:
      description: The size as C(pg_size_pretty()) shows it; null when RV(databases[].size_bytes) is null.
      type: str
      sample: 7453 kB
    connection_limit:
      description: C(datconnlimit); V(-1) means no limit.
      type: int
      sample: -1
    allow_connections:
      description: C(datallowconn).
      type: bool
      sample: true
    connections:
      description: Client connections to the database.
      type: dict
      contains:
        total:
          description: Number of client backends.
          type: int
          sample: 3
        by_state:
          description: State (C(active), C(idle), C(idle in transaction), ... or V(unknown) when hidden) -> count.
          type: dict
          sample: {"active": 1, "idle": 2}
total_size_bytes:
  description: Sum of the known sizes in RV(databases).
  returned: always
  type: int
  sample: 38158315
replication:
  description: The rows of C(pg_stat_replication), by C(application_name).
  returned: always
  type: list
  elements: dict
  contains:
    application_name:
      description: Name the standby connected with (Patroni uses the pod name).
      type: str
      sample: postgres-cluster-1
    client_addr:
      description: Address of the standby; null over a Unix socket or when hidden.
      type: str
      sample: 10.244.0.12
    state:
      description: WAL sender state, for example V(streaming) or V(catchup).
      type: str
      sample: streaming
    sync_state:
      description: V(async), V(potential), V(sync) or V(quorum).
      type: str
      sample: async
    lag_bytes:
      description: C(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)); null on a standby or when hidden.
      type: int
      sample: 0
    replay_lag_seconds:
      description: C(replay_lag) in seconds; null when the standby is idle (nothing to replay) or when hidden.
      type: float
      sample: 0.0012
replicas:
  description: One entry per name in O(replicas), in that order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The replica's name from O(replicas).
      type: str
      sample: postgres-cluster-1
    streaming:
      description:
        - Whether it has a C(pg_stat_replication) row in state V(streaming).
        - Null when it has a row whose details are hidden (the login role lacks C(pg_read_all_stats)).
      type: bool
      sample: true
    state:
      description: Its WAL sender state, V(not streaming) when it has no row, or V(unknown) when the row's details are hidden.
      type: str
      sample: streaming
    sync_state:
      description: As in RV(replication); null when not streaming.
      type: str
      sample: async
    client_addr:
      description: As in RV(replication); null when not streaming.
      type: str
      sample: 10.244.0.12
    lag_bytes:
      description: As in RV(replication); null when not streaming.
      type: int
      sample: 0
    replay_lag_seconds:
      description: As in RV(replication); null when not streaming.
      type: float
      sample: 0.0012
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.microservices.postgres.plugins.module_utils._database_stats.stats import (
    StatsError,
    build_queries,
    shape,
)
from ansible_collections.microservices.postgres.plugins.module_utils._postgres_connection import (
    CONNECTION_ARGUMENT_SPEC,
    CONNECTION_MUTUALLY_EXCLUSIVE,
    CONNECTION_REQUIRED_IF,
    missing_library,
    open_transport,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError

ARGUMENT_SPEC = dict(
    databases=dict(type="list", elements="str", default=[]),
    replicas=dict(type="list", elements="str", default=[]),
    **CONNECTION_ARGUMENT_SPEC,
)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_if=CONNECTION_REQUIRED_IF,
        mutually_exclusive=CONNECTION_MUTUALLY_EXCLUSIVE,
    )
    params = module.params
    library, import_error = missing_library(params)
    if import_error:
        module.fail_json(msg=missing_required_lib(library), exception=import_error)

    transport = open_transport(params)
    try:
        rows = transport.read(build_queries(params["databases"]))
        result = shape(rows, params["databases"], params["replicas"])
    except (TransportError, StatsError) as exc:
        module.fail_json(msg=f"cannot read the statistics: {exc}")
    finally:
        transport.close()
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
