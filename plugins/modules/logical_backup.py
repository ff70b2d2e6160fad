#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: logical_backup
short_description: Dump a PostgreSQL pod's whole server into a verified, compressed file on the managed host
version_added: 1.0.0
description:
  - Runs C(pg_dumpall --clean --if-exists) inside the database pod through the Kubernetes exec API and streams its
    output through gzip into O(dest)/O(prefix)C(-<UTC %Y%m%dT%H%M%SZ>.sql.gz), with a checksum file
    C(<same name>.sha256) in C(sha256sum) format. Nothing is written inside the pod, and the dump is never held in
    memory as a whole (only what the Kubernetes client buffers between two reads).
  - The file is read back fully before it counts (gzip integrity and pg_dumpall's completion marker); a failed or
    incomplete dump leaves no file behind. Both files are created with mode 0600 (the dump holds the roles'
    password verifiers); a missing O(dest) is created with mode 0700.
  - After a successful backup, only the newest O(keep) backups of O(prefix) in O(dest) are kept; older ones are
    deleted with their checksum files. The backup just written is never deleted. Other files are never touched.
  - The restore counterpart is M(microservices.postgres.logical_restore).
author:
  - microservices.postgres contributors (@microservices)
attributes:
  check_mode:
    support: full
    description: Nothing is dumped, written or deleted; RV(path) and RV(removed) say what a real run would write and delete.
  diff_mode:
    support: none
    description: The backup is a new file; there is nothing to compare.
requirements:
  - kubernetes >= 30.1.0
options:
  dest:
    description:
      - Directory on the managed host the backup is written to. Created with mode 0700 when missing.
    type: path
    required: true
  prefix:
    description:
      - First part of the file names, usually the inventory host name; the UTC time of the backup follows it.
      - Retention only considers files named O(prefix)C(-<timestamp>.sql.gz).
    type: str
    required: true
  keep:
    description:
      - How many backups of O(prefix) to keep in O(dest), the new one included. At least 1.
    type: int
    default: 7
  exec_timeout:
    description:
      - Seconds the whole dump may take inside the pod before the run fails.
    type: int
    default: 300
  login_user:
    description:
      - Superuser that C(pg_dumpall) runs as, over the pod's local socket.
      - Falls back to the E(PGUSER) environment variable.
    type: str
    default: postgres
extends_documentation_fragment:
  - microservices.postgres.pod
seealso:
  - module: microservices.postgres.logical_restore
"""

EXAMPLES = r"""
- name: Back up the dev server into ~/postgres-backups, keeping the newest seven backups
  microservices.postgres.logical_backup:
    namespace: microservices
    pod: postgresql-0
    container: postgresql
    dest: ~/postgres-backups
    prefix: "{{ inventory_hostname }}"
    keep: 7
"""

RETURN = r"""
path:
  description: The backup written (in check mode, the one a real run would write).
  returned: always
  type: str
  sample: /root/postgres-backups/dev-postgres-20261126T081500Z.sql.gz
checksum_path:
  description: Its checksum file, C(<hex>  <file name>).
  returned: always
  type: str
  sample: /root/postgres-backups/dev-postgres-20261126T081500Z.sql.gz.sha256
sha256:
  description: Hex SHA-256 of the compressed file.
  returned: success and not in check mode
  type: str
  sample: f0641308b278b36c540acc8c0dc62409215d197fbb0d6ba4cc379394c5c4c4c7
size:
  description: Size of the compressed file in bytes.
  returned: success and not in check mode
  type: int
  sample: 24076
dump_size:
  description: Size of the uncompressed dump in bytes.
  returned: success and not in check mode
  type: int
  sample: 44238
databases:
  description: The databases the dump recreates, in dump order (C(template1) and C(postgres) included).
  returned: success and not in check mode
  type: list
  elements: str
  sample: [template1, postgres, userdb]
roles:
  description: The roles the dump recreates.
  returned: success and not in check mode
  type: list
  elements: str
  sample: [postgres, userservice]
pod:
  description: The pod the dump was taken from.
  returned: success and not in check mode
  type: str
  sample: postgresql-0
removed:
  description: Older backups deleted by retention, with their checksum files (in check mode, those a real run would delete).
  returned: always
  type: list
  elements: str
  sample: [/root/postgres-backups/dev-postgres-20261119T081500Z.sql.gz]
backups:
  description: The backups of O(prefix) in O(dest) after the run, oldest first (in check mode, as a real run would leave them).
  returned: always
  type: list
  elements: str
  sample: [/root/postgres-backups/dev-postgres-20261126T081500Z.sql.gz]
created_dest:
  description: Whether O(dest) was created (in check mode, would be created).
  returned: always
  type: bool
  sample: false
"""

from datetime import datetime, timezone
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.dump import DumpError, take_backup
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import (
    backup_name,
    checksum_path,
    ensure_directory,
    expired,
    list_backups,
    remove_backup,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.pod import (
    POD_ARGUMENT_SPEC,
    POD_MUTUALLY_EXCLUSIVE,
    POD_REQUIRED_ONE_OF,
    pod_streamer,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.kubernetes_exec import (
    kubernetes_import_error,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError

ARGUMENT_SPEC = dict(
    dest=dict(type="path", required=True),
    prefix=dict(type="str", required=True),
    keep=dict(type="int", default=7),
    **POD_ARGUMENT_SPEC,
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_one_of=POD_REQUIRED_ONE_OF, mutually_exclusive=POD_MUTUALLY_EXCLUSIVE)
    params = module.params
    if params["keep"] < 1:
        module.fail_json(msg=f"keep must be at least 1, got {params['keep']}; nothing was changed")
    if not params["prefix"] or "/" in params["prefix"]:
        module.fail_json(msg=f"prefix must be a non-empty file name part without '/', got {params['prefix']!r}")
    import_error = kubernetes_import_error()
    if import_error:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=import_error)

    dest = Path(params["dest"])
    target = dest / backup_name(params["prefix"], datetime.now(timezone.utc))
    existing = list_backups(dest, params["prefix"])
    if module.check_mode:
        removed = expired(existing + [target], params["keep"])
        module.exit_json(changed=True, path=str(target), checksum_path=str(checksum_path(target)),
                         removed=[str(path) for path in removed], created_dest=not dest.is_dir(),
                         backups=[str(path) for path in existing + [target] if path not in removed])

    created_dest = ensure_directory(dest)
    try:
        result = take_backup(pod_streamer(params), target, params["login_user"])
    except (DumpError, TransportError) as exc:
        module.fail_json(msg=f"backup failed, no backup file was written: {exc}", changed=created_dest, path=str(target))
    removed = [path for path in expired(list_backups(dest, params["prefix"]), params["keep"]) if path != result.path]
    for path in removed:
        remove_backup(path)
    module.exit_json(changed=True, path=str(result.path), checksum_path=str(result.checksum_path), sha256=result.sha256,
                     size=result.size, dump_size=result.dump_size, databases=result.databases, roles=result.roles,
                     pod=result.pod, removed=[str(path) for path in removed], created_dest=created_dest,
                     backups=[str(path) for path in list_backups(dest, params["prefix"])])


if __name__ == "__main__":
    main()
