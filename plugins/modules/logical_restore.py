#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: logical_restore
short_description: Replay a backup written by logical_backup into a PostgreSQL pod's server
version_added: 1.0.0
description:
  - Checks O(src) against its checksum file C(<src>.sha256) and reads it fully (gzip integrity, pg_dumpall's
    completion marker) before anything is changed; a missing or mismatching checksum, or a damaged or incomplete
    file, is an error and nothing is restored.
  - Then streams the decompressed script into C(psql -X -v ON_ERROR_STOP=1) inside the database pod through the
    Kubernetes exec API. Every database and role in the backup is replaced by its backed-up state; databases and
    roles that are not in the backup are left alone.
  - Two conflicts of replaying a C(pg_dumpall --clean --if-exists) script into a live server are resolved rather
    than ignored. C(DROP DATABASE) runs C(WITH (FORCE)), terminating the sessions of the databases being replaced.
    The role running the restore (O(login_user)) is not dropped and re-created, only altered as the backup says.
    Any other error stops the restore at that statement and fails with psql's message.
author:
  - microservices.postgres contributors (@microservices)
attributes:
  check_mode:
    support: full
    description: Only the verification runs; RV(databases) and RV(roles) say what a real run would replace.
  diff_mode:
    support: none
    description: A restore replaces whole databases; RV(databases) and RV(roles) name them.
requirements:
  - kubernetes >= 30.1.0
options:
  src:
    description:
      - Backup file on the managed host, as written by M(microservices.postgres.logical_backup), with its
        checksum file next to it.
    type: path
    required: true
  exec_timeout:
    description:
      - Seconds the whole restore may take inside the pod before the run fails.
    type: int
    default: 300
  login_user:
    description:
      - Superuser that C(psql) runs as, over the pod's local socket.
      - Falls back to the E(PGUSER) environment variable.
    type: str
    default: postgres
notes:
  - The restore is not one transaction (C(CREATE DATABASE) cannot run in one). When it fails part-way, the databases
    and roles dropped or replaced before the failing statement stay so; the error says so, and the backup must be
    restored again once the cause is fixed. A failure before any input reached C(psql) (no Ready pod, exec refused)
    changes nothing and reports C(changed=false).
extends_documentation_fragment:
  - microservices.postgres.pod
seealso:
  - module: microservices.postgres.logical_backup
"""

EXAMPLES = r"""
- name: Restore the dev server from a backup
  microservices.postgres.logical_restore:
    namespace: microservices
    pod: postgresql-0
    container: postgresql
    src: ~/postgres-backups/dev-postgres-20261126T081500Z.sql.gz
"""

RETURN = r"""
sha256:
  description: Hex SHA-256 of the backup, as verified against its checksum file.
  returned: success
  type: str
  sample: f0641308b278b36c540acc8c0dc62409215d197fbb0d6ba4cc379394c5c4c4c7
dump_size:
  description: Size of the uncompressed script in bytes.
  returned: success
  type: int
  sample: 44238
databases:
  description: The databases the backup replaces (in check mode, would replace), in dump order.
  returned: success
  type: list
  elements: str
  sample: [template1, postgres, userdb]
roles:
  description: The roles the backup restores (in check mode, would restore).
  returned: success
  type: list
  elements: str
  sample: [postgres, userservice]
pod:
  description: The pod the backup was restored into.
  returned: success and not in check mode
  type: str
  sample: postgresql-0
messages:
  description: What psql reported on stderr (notices such as skipped C(IF EXISTS) drops).
  returned: success and not in check mode
  type: list
  elements: str
  sample: []
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.pod import (
    POD_ARGUMENT_SPEC,
    POD_MUTUALLY_EXCLUSIVE,
    POD_REQUIRED_ONE_OF,
    pod_exec,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.restore import (
    PARTIAL_RESTORE,
    RestoreError,
    check_backup,
    restore_backup,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.kubernetes_exec import (
    StreamError,
    kubernetes_import_error,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError

ARGUMENT_SPEC = dict(
    src=dict(type="path", required=True),
    **POD_ARGUMENT_SPEC,
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_one_of=POD_REQUIRED_ONE_OF, mutually_exclusive=POD_MUTUALLY_EXCLUSIVE)
    params = module.params
    src = Path(params["src"])
    import_error = kubernetes_import_error()
    if import_error:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=import_error)

    try:
        if module.check_mode:
            info = check_backup(src)
            module.exit_json(changed=True, sha256=info.sha256, dump_size=info.dump_size, databases=info.databases,
                             roles=info.roles)
        result = restore_backup(pod_exec(params).stream_bytes, src, params["login_user"])
    except RestoreError as exc:
        module.fail_json(msg=f"restore of {src} failed: {exc}", changed=exc.started)
    except TransportError as exc:
        started = isinstance(exc, StreamError) and exc.input_sent
        outcome = PARTIAL_RESTORE if started else "Nothing was sent to psql, so nothing was restored."
        module.fail_json(msg=f"restore of {src} failed: {exc}. {outcome}", changed=started)
    module.exit_json(changed=True, sha256=result.archive.sha256, dump_size=result.archive.dump_size,
                     databases=result.archive.databases, roles=result.archive.roles, pod=result.pod,
                     messages=result.messages)


if __name__ == "__main__":
    main()
