# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep password statements out of the server's logs and statistics.

A SCRAM verifier is not the password, but it is enough to mount an offline guessing attack and,
with one recorded login, to impersonate the server: it must not land in the server log that
``log_statement = all`` (or a duration threshold, sampling, pgaudit, pg_stat_statements) writes.
So the write session that sets passwords SETs each of those settings off for itself right before
the statements that carry a verifier, and RESETs them right after, so the rest of the batch stays
in the audit trail.

They are superuser settings: a superuser may always SET them; another login only on
PostgreSQL 15+ after ``GRANT SET ON PARAMETER ... TO <login>``. The catalog read records each
setting's value and whether the login may SET it; the planner then either prepends the SETs or,
when a setting that would log the statement cannot be turned off, refuses (or warns, with
``password_log_guard: best_effort``) before anything is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.identifiers import (
    quote_ident,
    quote_literal,
)

PARAMETER_PRIVILEGES_MIN_SERVER_VERSION = 150000
REQUIRED = "required"
BEST_EFFORT = "best_effort"
GUARD_CHOICES = (REQUIRED, BEST_EFFORT)


@dataclass(frozen=True)
class QuietSetting:
    """A setting that can write a statement's text somewhere, the value that stops it, and when it is safe."""

    name: str
    quiet_value: str
    is_safe: Callable[[str], bool]


QUIET_SETTINGS: tuple[QuietSetting, ...] = (
    QuietSetting("log_statement", "none", lambda value: value == "none"),
    QuietSetting("log_min_duration_statement", "-1", lambda value: value == "-1"),
    QuietSetting("log_min_duration_sample", "-1", lambda value: value == "-1"),
    QuietSetting("log_transaction_sample_rate", "0", lambda value: float(value or 0) == 0),
    QuietSetting("log_min_error_statement", "panic", lambda value: value == "panic"),
    QuietSetting("pgaudit.log", "none", lambda value: value.strip().lower() in ("", "none")),
    QuietSetting("pg_stat_statements.track_utility", "off", lambda value: value == "off"),
)
"""Only those the server knows (pg_settings) are considered: pgaudit and pg_stat_statements
settings exist only where those libraries are loaded."""

SETTING_NAMES = tuple(setting.name for setting in QUIET_SETTINGS)


@dataclass(frozen=True)
class LoggingState:
    """The logging settings of the login's session and which of them it may change.

    Empty ``values`` means unknown (nothing to SET, nothing to refuse), as for a catalog read
    that predates this check.
    """

    values: Mapping[str, str] = field(default_factory=dict)
    settable: Mapping[str, bool] = field(default_factory=dict)
    login: str = ""

    def settable_names(self) -> list[str]:
        return [s.name for s in QUIET_SETTINGS if s.name in self.values and self.settable.get(s.name)]

    def leaking_names(self) -> list[str]:
        """Settings that would record a password statement and that the login cannot turn off."""
        return [s.name for s in QUIET_SETTINGS
                if s.name in self.values and not self.settable.get(s.name) and not s.is_safe(self.values[s.name])]


def settings_select(array_sql: Callable[[list[str]], str]) -> str:
    """JSON object name -> current value of the settings the server knows."""
    return ("SELECT coalesce(pg_catalog.json_object_agg(s.name, s.setting), '{}'::json) "
            f"FROM pg_catalog.pg_settings s WHERE s.name = ANY ({array_sql(list(SETTING_NAMES))})")


def privileges_supported_select() -> str:
    """Whether has_parameter_privilege exists (PostgreSQL 15+); gates the grants query."""
    return ("SELECT pg_catalog.to_json(pg_catalog.current_setting('server_version_num')::int >= "
            f"{PARAMETER_PRIVILEGES_MIN_SERVER_VERSION})")


def grants_select(array_sql: Callable[[list[str]], str]) -> str:
    """JSON object name -> whether the login may SET it (true for a superuser)."""
    return ("SELECT coalesce(pg_catalog.json_object_agg(s.name, pg_catalog.has_parameter_privilege(s.name, 'SET')), "
            f"'{{}}'::json) FROM pg_catalog.pg_settings s WHERE s.name = ANY ({array_sql(list(SETTING_NAMES))})")


def parse_logging(values: Mapping[str, Any] | None, grants: Mapping[str, Any] | None, superuser: bool,
                  login: str) -> LoggingState:
    """Before PostgreSQL 15 (no grants read) only a superuser may SET these settings."""
    values = {str(name): str(value) for name, value in (values or {}).items()}
    settable = {name: superuser or bool((grants or {}).get(name)) for name in values}
    return LoggingState(values=values, settable=settable, login=login)


def _setting_ident(name: str) -> str:
    """A (possibly dotted, extension-owned) setting name, each part quoted."""
    return ".".join(quote_ident(part) for part in name.split("."))


def quiet_statements_sql(state: LoggingState) -> list[str]:
    """``SET <setting> = <quiet value>`` for every setting the login may change (session scope only)."""
    by_name = {setting.name: setting for setting in QUIET_SETTINGS}
    return [f"SET {_setting_ident(name)} = {quote_literal(by_name[name].quiet_value)}" for name in state.settable_names()]


def restore_statements_sql(state: LoggingState) -> list[str]:
    """``RESET <setting>`` for every setting quiet_statements_sql changed: back to the session's default."""
    return [f"RESET {_setting_ident(name)}" for name in state.settable_names()]


def leak_message(state: LoggingState, server_version: int) -> str:
    """Why a password cannot be sent unlogged, and what lets the login keep it out of the log."""
    login_user = state.login
    leaking = state.leaking_names()
    settings = ", ".join(f"{name}={state.values[name]!r}" for name in leaking)
    if server_version >= PARAMETER_PRIVILEGES_MIN_SERVER_VERSION:
        fix = (f"let the login turn them off for its own session (as a superuser: GRANT SET ON PARAMETER "
               f"{', '.join(leaking)} TO {quote_ident(login_user)}), log in as a superuser")
    else:
        fix = "log in as a superuser (PostgreSQL before 15 has no GRANT SET ON PARAMETER)"
    return (f"a password is to be set, but this server would record the statement carrying its SCRAM verifier "
            f"({settings}) and login {login_user!r} may not turn that off for its session: {fix}")
