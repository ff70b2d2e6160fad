"""``spec.clone`` of the Zalando operator (v2.0.1): a new cluster that starts from another one's data.

What the real operator and Spilo do (pkg/cluster/k8sres.go ``generateCloneEnvironment``, Spilo's
bootstrap scripts): ``clone.cluster`` becomes ``CLONE_SCOPE``. Without ``timestamp`` the new cluster
takes a pg_basebackup from the running source's master Service (``CLONE_WITH_BASEBACKUP``, as the
source's ``standby`` user). With ``timestamp`` (RFC 3339 with a numeric UTC offset, the CRD's pattern)
it restores a WAL-G base backup and replays WAL up to that time (``CLONE_WITH_WALE``,
``CLONE_TARGET_TIME``), from ``s3_wal_path`` or else from the operator's ``wal_s3_bucket`` /
``wal_gs_bucket`` / ``wal_az_storage_account`` under ``spilo/<cluster>/<uid>/wal`` (the source's uid is
the path's suffix). When that cannot work the clone's pods never finish bootstrapping and the
operator reports the creation as failed.

The stand-in here: the "archive" is the source cluster's live server, so a clone is seeded with a
``pg_dumpall`` of the source's current contents before the operator's role and database sync. A
clone whose source (or uid) is not there, a timestamp clone with no WAL location configured, and a
timestamp outside the source's lifetime end in ``CreateFailed`` with a Warning event naming why.
Replaying WAL up to the timestamp cannot be simulated: every clone holds the source as it is now.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.pgserver import PgServerError, ServerInfo

from .store import Store

WAL_LOCATION_SETTINGS = ("wal_s3_bucket", "wal_gs_bucket", "wal_az_storage_account")


def source_name(pg: dict[str, Any]) -> str:
    """The cluster a ``postgresql`` resource clones, or '' when it is not a clone."""
    return str(((pg.get("spec") or {}).get("clone") or {}).get("cluster") or "")


def clone_problem(store: Store, pg_key: tuple[str, str], pg: dict[str, Any], config: dict[str, str],
                  now: datetime.datetime) -> str | None:
    """Why this clone cannot bootstrap (the CreateFailed event's message), or None when it can."""
    clone = (pg.get("spec") or {}).get("clone") or {}
    cluster, uid, timestamp = source_name(pg), str(clone.get("uid") or ""), str(clone.get("timestamp") or "")
    namespace = pg["metadata"]["namespace"]
    if timestamp and not clone.get("s3_wal_path") and not any(config.get(k) for k in WAL_LOCATION_SETTINGS):
        return ("could not create cluster: cannot figure out S3 or GS bucket or AZ storage account to clone from "
                f"(none of {', '.join(WAL_LOCATION_SETTINGS)} is set in the operator configuration)")
    source = store.get(pg_key, namespace, cluster)
    if source is None or (uid and uid != source["metadata"]["uid"]):
        if not timestamp:
            return (f'could not create cluster: clone of "{cluster}" failed: pg_basebackup could not connect to '
                    f"Service {cluster}")
        return (f'could not create cluster: clone of "{cluster}" failed: no base backup found in '
                f"spilo/{cluster}/{uid}/wal")
    if timestamp:
        target = datetime.datetime.fromisoformat(timestamp)
        if target < datetime.datetime.fromisoformat(source["metadata"]["creationTimestamp"]):
            return (f'could not create cluster: clone of "{cluster}" failed: no base backup before {timestamp} '
                    f"(the cluster was created at {source['metadata']['creationTimestamp']})")
        if target > now:
            return (f'could not create cluster: clone of "{cluster}" failed: recovery ended before the configured '
                    f"recovery target {timestamp} was reached")
    return None


def seed(source: ServerInfo, target: ServerInfo) -> None:
    """Load the source's roles and databases into the clone's fresh server (the WAL-G restore's stand-in).

    Role passwords stay behind (``--no-role-passwords``): the operator gives the clone's roles the
    passwords of the clone's own credential Secrets right after, as it does after a real clone.
    Statements about objects every server already has (role postgres) fail harmlessly, so psql runs
    without ON_ERROR_STOP and only a failure to connect or to read the dump counts.
    """
    dump = subprocess.run([str(Path(source.bindir) / "pg_dumpall"), "--no-role-passwords", "-h", source.socket_dir,
                           "-p", str(source.port), "-U", "postgres"], capture_output=True, check=False)
    if dump.returncode != 0:
        raise PgServerError(f"pg_dumpall of the clone source failed: {dump.stderr.decode(errors='replace').strip()}")
    load = subprocess.run([str(Path(target.bindir) / "psql"), "-X", "-q", "-d", "postgres"], input=dump.stdout,
                          capture_output=True, check=False,
                          env={**os.environ, "PGHOST": target.socket_dir, "PGPORT": str(target.port),
                               "PGUSER": "postgres"})
    if load.returncode != 0:
        raise PgServerError(f"loading the clone failed: {load.stderr.decode(errors='replace').strip()}")
