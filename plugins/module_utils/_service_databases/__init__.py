# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private logic of the ``service_databases`` module.

desired (validated input) -> catalog (actual state, one read) -> plan (ordered SQL)
-> transport (runs it); ``converge`` ties them together. Nothing here imports Ansible,
so every step is unit-testable with plain pytest.
"""
