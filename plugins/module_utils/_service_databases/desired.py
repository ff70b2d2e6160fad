# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The desired state: raw module input validated into immutable ServiceSpec objects.

All validation happens here, before any connection is opened, so a typo never leaves a
cluster half-converged. Every problem is reported at once, each naming the service (index
and database) and the offending input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.identifiers import (
    IdentifierError,
    validate_identifier,
)

PRESENT = "present"
ABSENT = "absent"
STATES = (PRESENT, ABSENT)
PASSWORD_UPDATE_CHOICES = ("always", "on_create")

SERVER_ENCODINGS = (
    "SQL_ASCII", "UTF8", "EUC_JP", "EUC_CN", "EUC_KR", "EUC_TW", "EUC_JIS_2004", "MULE_INTERNAL",
    "LATIN1", "LATIN2", "LATIN3", "LATIN4", "LATIN5", "LATIN6", "LATIN7", "LATIN8", "LATIN9", "LATIN10",
    "WIN1250", "WIN1251", "WIN1252", "WIN1253", "WIN1254", "WIN1255", "WIN1256", "WIN1257", "WIN1258",
    "WIN866", "WIN874", "KOI8R", "KOI8U", "ISO_8859_5", "ISO_8859_6", "ISO_8859_7", "ISO_8859_8",
)
"""Encodings CREATE DATABASE accepts (client-only ones such as SJIS cannot be server encodings)."""

_ENCODING_ALIASES = {"UNICODE": "UTF8"}
_ENCODING_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_LOCALE_RE = re.compile(r"^[A-Za-z0-9_.@-]+$")


class ValidationError(ValueError):
    """The input cannot be converged; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True)
class Options:
    """Module-wide settings that shape the plan rather than one service."""

    password_update: str = "always"
    revoke_public_connect: bool = True
    login_db: str = "postgres"
    password_log_guard: str = "required"
    """``required``: refuse to send a password the server would log; ``best_effort``: warn and go on."""


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its database, its owner role and what must hold for them."""

    index: int
    database: str
    owner: str
    password: str | None = field(default=None, repr=False)
    connection_limit: int = -1
    extensions: tuple[str, ...] = ()
    connect_roles: tuple[str, ...] = ()
    encoding: str = "UTF8"
    locale: str | None = None
    state: str = PRESENT
    force: bool = False

    @property
    def label(self) -> str:
        """How errors name this service: position in the list and database name."""
        return f"services[{self.index}] (database {self.database!r})"


def encoding_key(name: str) -> str:
    """Compare encodings the way PostgreSQL looks them up: case- and punctuation-insensitive."""
    return re.sub(r"[^A-Z0-9]", "", name.upper())


_CANONICAL_ENCODINGS = {encoding_key(name): name for name in SERVER_ENCODINGS}
_CANONICAL_ENCODINGS.update({encoding_key(alias): name for alias, name in _ENCODING_ALIASES.items()})


def canonical_encoding(name: str) -> str | None:
    """PostgreSQL's canonical spelling of a server encoding (``utf-8`` -> ``UTF8``), or None."""
    if not _ENCODING_RE.match(name):
        return None
    return _CANONICAL_ENCODINGS.get(encoding_key(name))


def _label(index: int, item: Any) -> str:
    database = item.get("database") if isinstance(item, dict) else None
    return f"services[{index}] (database {database!r})" if database else f"services[{index}]"


def _check_name(errors: list[str], where: str, option: str, kind: str, value: Any) -> None:
    try:
        validate_identifier(kind, value)
    except IdentifierError as exc:
        errors.append(f"{where}: {option}: {exc}")


def _check_connection_limit(errors: list[str], where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        errors.append(f"{where}: connection_limit must be an integer >= -1 (-1 means no limit), got {value!r}")
        return -1
    return value


def _check_encoding(errors: list[str], where: str, value: Any) -> str:
    canonical = canonical_encoding(value) if isinstance(value, str) else None
    if canonical is None:
        errors.append(f"{where}: encoding {value!r} is not a PostgreSQL server encoding; allowed: {', '.join(SERVER_ENCODINGS)}")
        return "UTF8"
    return canonical


def _check_locale(errors: list[str], where: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _LOCALE_RE.match(value):
        errors.append(f"{where}: locale {value!r} is not a locale name (letters, digits, '_', '.', '@', '-'), e.g. 'C.UTF-8'")
        return None
    return value


def _check_password(errors: list[str], where: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        errors.append(f"{where}: password must be a non-empty string (PostgreSQL treats an empty password as none)")
        return None
    return value


def _check_name_list(errors: list[str], where: str, field: str, kind: str, value: Any) -> list[str] | None:
    """The names of a list option, each checked as an identifier; None when the option is not a list.

    Extensions and connect_roles share this so both report a bad entry the same way, by position.
    """
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        errors.append(f"{where}: {field} must be a list of {kind} names")
        return None
    for position, name in enumerate(value):
        _check_name(errors, where, f"{field}[{position}]", kind, name)
    return [name for name in value if isinstance(name, str)]


def _check_extensions(errors: list[str], where: str, value: Any) -> tuple[str, ...]:
    """Extensions to create; a name listed twice is an error, as it usually hides a typo."""
    names = _check_name_list(errors, where, "extensions", "extension", value)
    if not names:
        return ()
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        errors.append(f"{where}: extensions lists {', '.join(duplicates)} more than once")
    return tuple(dict.fromkeys(names))


def _check_connect_roles(errors: list[str], where: str, value: Any, owner: Any) -> tuple[str, ...]:
    """Roles besides the owner that keep CONNECT (a connection pooler's lookup role, say).

    The owner always keeps CONNECT, so naming it here adds nothing and is dropped quietly.
    """
    names = _check_name_list(errors, where, "connect_roles", "role", value)
    return tuple(dict.fromkeys(name for name in names or [] if name != owner))


def _parse_one(index: int, item: Any, options: Options, errors: list[str]) -> ServiceSpec | None:
    where = _label(index, item)
    if not isinstance(item, dict):
        errors.append(f"{where}: must be a dict with at least database and owner, got {type(item).__name__}")
        return None
    count = len(errors)
    database, owner = item.get("database"), item.get("owner")
    _check_name(errors, where, "database", "database", database)
    _check_name(errors, where, "owner", "role", owner)
    state = item.get("state") or PRESENT
    if state not in STATES:
        errors.append(f"{where}: state must be one of {', '.join(STATES)}, got {state!r}")
    if state == ABSENT and database == options.login_db:
        errors.append(f"{where}: cannot drop the database the module connects to (login_db {options.login_db!r})")
    spec = ServiceSpec(
        index=index,
        database=database,
        owner=owner,
        password=_check_password(errors, where, item.get("password")),
        connection_limit=_check_connection_limit(errors, where, item.get("connection_limit", -1)),
        extensions=_check_extensions(errors, where, item.get("extensions")),
        connect_roles=_check_connect_roles(errors, where, item.get("connect_roles"), owner),
        encoding=_check_encoding(errors, where, item.get("encoding") or "UTF8"),
        locale=_check_locale(errors, where, item.get("locale")),
        state=state,
        force=bool(item.get("force", False)),
    )
    return spec if len(errors) == count else None


def _check_uniqueness(specs: Sequence[ServiceSpec], errors: list[str]) -> None:
    """Each database appears once and each owner owns one database: a shared owner would let
    one service read another's data and make dropping one service break the other."""
    seen_db: dict[str, ServiceSpec] = {}
    seen_owner: dict[str, ServiceSpec] = {}
    for spec in specs:
        if spec.database in seen_db:
            errors.append(f"{spec.label}: database {spec.database!r} is already declared by {seen_db[spec.database].label}")
        else:
            seen_db[spec.database] = spec
        if spec.owner in seen_owner:
            first = seen_owner[spec.owner]
            errors.append(
                f"{spec.label}: owner {spec.owner!r} already owns database {first.database!r} ({first.label}); "
                "each service needs its own role"
            )
        else:
            seen_owner[spec.owner] = spec


def parse_services(raw: Any, options: Options) -> list[ServiceSpec]:
    """Validate the ``services`` option into specs, raising ValidationError listing every problem."""
    if options.password_update not in PASSWORD_UPDATE_CHOICES:
        raise ValidationError([f"password_update must be one of {', '.join(PASSWORD_UPDATE_CHOICES)}"])
    if not isinstance(raw, (list, tuple)):
        raise ValidationError(["services must be a list of dicts"])
    errors: list[str] = []
    specs = [spec for spec in (_parse_one(i, item, options, errors) for i, item in enumerate(raw)) if spec]
    _check_uniqueness(specs, errors)
    if errors:
        raise ValidationError(errors)
    return specs
