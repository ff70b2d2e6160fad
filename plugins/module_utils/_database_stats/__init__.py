# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private logic of the ``database_stats_info`` module: the read-only statistics queries and the
shaping of their rows. Nothing here imports Ansible, so it is unit-testable with plain pytest.
"""
