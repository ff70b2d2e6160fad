#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: logical_restore
short_description: Restore a backup written by logical_backup beside the live databases, then swap them in
version_added: 1.0.0
description:
  - Checks O(src) against its checksum file C(<src>.sha256) and reads it fully (gzip integrity, pg_dumpall's
    completion marker) before anything is read from or changed in the server.
  - Then, inside the database pod through the Kubernetes exec API, without ever writing over a live database
    (1) loads every application database C(D) of the backup into a new database C(D__restoring_<UTC stamp>),
    creating the roles the server lacks (roles it has are not changed, passwords included);
    (2) verifies that every table of every loaded database holds as many rows as the backup;
    (3) takes a safety dump of the live server into O(safety_dir)/O(safety_prefix)C(-<UTC time>.sql.gz) with its
    C(.sha256), verified like a backup;
    (4) in one transaction, renames each live C(D) to C(D__replaced_<stamp>) and the loaded copy to C(D), ending the
    sessions on them.
  - Stopped at any point before the swap commits (psql or the exec killed, O(restore_timeout) reached, the module
    killed), the databases the services use are exactly as before, and only C(__restoring_) copies are left; the
    error names the phase and what is left to clean up. The swap is one transaction, so it happens whole or not.
  - The databases C(template1) and C(postgres) of a backup are not restored (they belong to the server).
  - Streams of any size pass through with flat memory (the exec's WebSocket channels are read and written directly).
  - O(cleanup=true) instead drops the databases earlier restores left (C(__replaced_) originals, C(__restoring_)
    copies of stopped runs).
author:
  - microservices.postgres contributors (@microservices)
attributes:
  check_mode:
    support: full
    description: The backup is verified and the server's roles and databases are read; nothing is loaded, dumped, renamed
      or dropped. The results say what a real run would do.
  diff_mode:
    support: none
    description: A restore replaces whole databases; RV(replaced), RV(created) and RV(kept) name them.
requirements:
  - kubernetes >= 30.1.0
  - websocket-client
options:
  src:
    description:
      - Backup file on the managed host, as written by M(microservices.postgres.logical_backup), with its
        checksum file next to it. Required unless O(cleanup=true).
    type: path
  restore_timeout:
    description:
      - Seconds the whole restore (read, load, verify, safety dump and swap together) may take in the pod. When they
        run out the exec is stopped and the run fails naming this option; the live databases are unchanged.
    type: int
    default: 3600
  safety_dir:
    description:
      - Directory on the managed host the safety dump is written to (created with mode 0700 when missing). Required
        with O(src).
    type: path
  safety_prefix:
    description:
      - First part of the safety dump's file name; the UTC time follows it.
    type: str
    default: pre-restore
  cleanup:
    description:
      - Drop the databases earlier restores left behind (named C(<database>__replaced_<stamp>) and
        C(<database>__restoring_<stamp>)) instead of restoring. O(exec_timeout) bounds it.
    type: bool
    default: false
  exec_timeout:
    description:
      - Seconds the cleanup may take in the pod.
    type: int
    default: 300
  login_user:
    description:
      - Superuser that C(psql) runs as, over the pod's local socket.
      - Falls back to the E(PGUSER) environment variable.
    type: str
    default: postgres
notes:
  - Role passwords are never taken from the backup for roles the server has; roles created from the backup get the
    backup's password. The C(postgres_restore) role then sets every service owner's password from its Secret.
extends_documentation_fragment:
  - microservices.postgres.pod
seealso:
  - module: microservices.postgres.logical_backup
"""

EXAMPLES = r"""
- name: Restore the dev server from a backup, keeping a safety dump of what it replaces
  microservices.postgres.logical_restore:
    namespace: microservices
    pod: postgresql-0
    container: postgresql
    src: ~/postgres-backups/dev-postgres-20261126T081500Z.sql.gz
    safety_dir: ~/postgres-backups
    safety_prefix: dev-postgres-pre-restore
    restore_timeout: 3600

- name: Drop the databases earlier restores kept
  microservices.postgres.logical_restore:
    namespace: microservices
    pod: postgresql-0
    cleanup: true
"""

RETURN = r"""
sha256:
  description: Hex SHA-256 of the backup, as verified against its checksum file.
  returned: success and not cleanup
  type: str
  sample: f0641308b278b36c540acc8c0dc62409215d197fbb0d6ba4cc379394c5c4c4c7
dump_size:
  description: Size of the uncompressed script in bytes.
  returned: success and not cleanup
  type: int
  sample: 44238
databases:
  description: The databases the backup restores (in check mode, would restore), in dump order.
  returned: success and not cleanup
  type: list
  elements: str
  sample: [userdb, paymentdb]
replaced:
  description: Live databases replaced by their restored copy (in check mode, that would be).
  returned: success and not cleanup
  type: list
  elements: str
  sample: [userdb]
created:
  description: Databases of the backup the server did not have (in check mode, that would be created).
  returned: success and not cleanup
  type: list
  elements: str
  sample: [paymentdb]
kept:
  description: The replaced databases under their dated names, kept until O(cleanup=true) drops them.
  returned: success and not cleanup and not check mode
  type: list
  elements: str
  sample: [userdb__replaced_20261126_081500]
roles_created:
  description: Roles of the backup the server lacked, created from it (in check mode, that would be).
  returned: success and not cleanup
  type: list
  elements: str
  sample: []
skipped:
  description: Databases of the backup left out (the server's own).
  returned: success and not cleanup
  type: list
  elements: str
  sample: [template1, postgres]
row_counts:
  description: Rows per table of each restored database, as verified against the backup.
  returned: success and not cleanup and not check mode
  type: dict
  sample: {userdb: {public.orders: 5000}}
safety_dump:
  description: The verified dump of the server taken just before the swap.
  returned: success and not cleanup and not check mode
  type: str
  sample: /root/postgres-backups/dev-postgres-pre-restore-20261126T081502Z.sql.gz
durations:
  description: Seconds each phase took.
  returned: success and not cleanup and not check mode
  type: dict
  sample: {load: 3.2, verify: 0.4, safety dump: 2.9, swap: 0.2}
leftovers:
  description: Databases left by restores. On failure, what is left to clean up; with O(cleanup=true), those dropped
    (in check mode, those that would be); in check mode of a restore, those already there.
  returned: always
  type: list
  elements: str
  sample: [userdb__restoring_20261126_081500]
phase:
  description: The phase a failed restore stopped in (check, read, load, verify, safety dump, swap).
  returned: failure
  type: str
  sample: load
pod:
  description: The pod the backup was restored into.
  returned: success and not check mode
  type: str
  sample: postgresql-0
"""

from datetime import datetime, timezone
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import (
    backup_name,
    ensure_directory,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.pod import (
    POD_ARGUMENT_SPEC,
    POD_MUTUALLY_EXCLUSIVE,
    POD_REQUIRED_ONE_OF,
    pod_streamer,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.restore import (
    LoadScript,
    Restorer,
    RestoreError,
    check_backup,
    cleanup,
    restore_backup,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.staging import stamp
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.kubernetes_exec import (
    kubernetes_import_error,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError

ARGUMENT_SPEC = dict(
    src=dict(type="path"),
    restore_timeout=dict(type="int", default=3600),
    safety_dir=dict(type="path"),
    safety_prefix=dict(type="str", default="pre-restore"),
    cleanup=dict(type="bool", default=False),
    **POD_ARGUMENT_SPEC,
)


def _refusal(params: dict) -> str | None:
    """The first input that cannot work, named, before anything is read or changed."""
    if params["cleanup"]:
        return None
    if not params["src"]:
        return "src is required unless cleanup=true"
    if not params["safety_dir"]:
        return "safety_dir is required with src: the safety dump taken before the swap goes there"
    if params["restore_timeout"] < 1:
        return f"restore_timeout must be at least 1 (seconds), got {params['restore_timeout']}"
    if not params["safety_prefix"] or "/" in params["safety_prefix"]:
        return f"safety_prefix must be a non-empty file name part without '/', got {params['safety_prefix']!r}"
    return None


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_one_of=POD_REQUIRED_ONE_OF, mutually_exclusive=POD_MUTUALLY_EXCLUSIVE)
    params = module.params
    refusal = _refusal(params)
    if refusal:
        module.fail_json(msg=f"{refusal}; nothing was changed", leftovers=[])
    import_error = kubernetes_import_error()
    if import_error:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=import_error)

    try:
        if params["cleanup"]:
            dropped = cleanup(pod_streamer(params), params["login_user"], module.check_mode)
            module.exit_json(changed=bool(dropped), leftovers=dropped)
        src = Path(params["src"])
        now = datetime.now(timezone.utc)
        stream = pod_streamer(params, "restore_timeout")
        if module.check_mode:
            info = check_backup(src)
            restorer = Restorer(stream, params["login_user"], stamp(now))
            state = restorer.read_state()
            plan = restorer.plan(info, state, LoadScript(existing_roles=state.roles, when=stamp(now)))
            module.exit_json(changed=bool(plan.databases), sha256=info.sha256, dump_size=info.dump_size,
                             databases=plan.databases, replaced=plan.replaced, created=plan.created,
                             roles_created=plan.roles_created, skipped=plan.skipped, leftovers=state.leftovers())
        safety_dir = Path(params["safety_dir"])
        ensure_directory(safety_dir)
        result = restore_backup(stream, src, params["login_user"], stamp(now),
                                safety_dir / backup_name(params["safety_prefix"], now))
    except RestoreError as exc:
        module.fail_json(msg=f"restore failed in phase {exc.phase}: {exc}", phase=exc.phase, leftovers=exc.leftovers,
                         changed=exc.swapped or bool(exc.leftovers))
    except TransportError as exc:
        module.fail_json(msg=f"{'cleanup' if params['cleanup'] else 'restore'} failed before anything changed: {exc}",
                         phase="read", leftovers=[], changed=False)
    plan = result.plan
    module.exit_json(changed=True, sha256=plan.archive.sha256, dump_size=plan.archive.dump_size,
                     databases=plan.databases, replaced=plan.replaced, created=plan.created, kept=result.kept,
                     roles_created=plan.roles_created, skipped=plan.skipped, row_counts=result.row_counts,
                     safety_dump=str(result.safety_dump.path), durations=result.durations, leftovers=result.kept,
                     pod=result.pod)


if __name__ == "__main__":
    main()
