"""Letting a non-superuser login turn statement logging off for its own session (PostgreSQL 15+).

The module refuses to set a password that the server would log unless the login may SET the
logging settings (see ``password_log_guard``); tests that converge passwords as a CREATEROLE
login grant it these, and take them back before the role is dropped (a parameter privilege is
a dependency that blocks DROP ROLE).
"""

from __future__ import annotations

from tests.integration.helpers import ident

QUIET_PARAMETERS = ("log_statement", "log_min_duration_statement", "log_min_duration_sample",
                    "log_transaction_sample_rate", "log_min_error_statement")


def grant_quiet_logging(pg, request, role: str) -> None:
    """GRANT SET ON PARAMETER for every logging setting to ``role``, revoked when the test ends."""
    parameters = ", ".join(QUIET_PARAMETERS)
    pg.psql(f"GRANT SET ON PARAMETER {parameters} TO {ident(role)}")
    request.addfinalizer(lambda: pg.psql(f"REVOKE SET ON PARAMETER {parameters} FROM {ident(role)}", check=False))
