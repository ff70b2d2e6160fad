# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private logic of the ``logical_backup`` and ``logical_restore`` modules.

files (names, retention, checksum files) -> script (reading a pg_dumpall script line by line)
-> archive (gzip writing and verification) -> dump (pg_dumpall out of a pod into an archive)
and restore (an archive into psql in a pod). Nothing here imports Ansible.
"""
