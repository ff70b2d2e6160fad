# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Identifier validation and the only two functions allowed to put text into SQL.

Every SQL string this collection sends is built from constants plus ``quote_ident`` and
``quote_literal``; validation narrows names further so that what the user wrote is exactly
what PostgreSQL stores (no case folding surprises, no quoting needed by humans later).
"""

from __future__ import annotations

import re

MAX_IDENTIFIER_BYTES = 63
"""NAMEDATALEN - 1: PostgreSQL silently truncates longer names, which would make two
different inputs collide, so they are rejected instead."""

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_EXTENSION_RE = re.compile(r"^[a-z0-9_][a-z0-9_-]*$")

RESERVED_ROLES = frozenset({"public", "none", "current_user", "session_user", "current_role", "postgres"})
RESERVED_DATABASES = frozenset({"template0", "template1", "postgres"})

KINDS = ("database", "role", "extension")


class IdentifierError(ValueError):
    """A name that this collection refuses to manage; the message says why and what is allowed."""


def _allowed_text(kind: str) -> str:
    if kind == "extension":
        return "lowercase letters, digits, underscores and hyphens, not starting with a hyphen"
    return "lowercase letters, digits and underscores, starting with a letter or underscore"


def _explain_pattern_failure(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    """Say precisely what is wrong, because "invalid name" alone sends people guessing."""
    if any("A" <= ch <= "Z" for ch in value):
        hint = f"; use {value.lower()!r}" if pattern.match(value.lower()) else ""
        return (
            f"{kind} name {value!r} contains uppercase letters: PostgreSQL folds unquoted names to lowercase, "
            f"so a mixed-case name would have to be double-quoted in every client and tool{hint}"
        )
    bad = sorted({ch for ch in value if not (ch.isascii() and (ch.isalnum() or ch in "_-"))})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        return f"{kind} name {value!r} contains characters that are not allowed ({shown}); allowed: {_allowed_text(kind)}"
    return f"{kind} name {value!r} is not allowed; allowed: {_allowed_text(kind)}"


def validate_identifier(kind: str, value: object) -> str:
    """Return ``value`` when it is a name this collection may manage, else raise IdentifierError.

    ``kind`` is ``database``, ``role`` or ``extension``. The rules are stricter than
    PostgreSQL's so that names never need quoting by people and never collide after folding
    or truncation; reserved names protect the cluster's own roles and databases.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown identifier kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not isinstance(value, str) or not value:
        raise IdentifierError(f"{kind} name must be a non-empty string, got {value!r}")
    size = len(value.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise IdentifierError(
            f"{kind} name {value!r} is {size} bytes long; PostgreSQL allows at most {MAX_IDENTIFIER_BYTES} bytes "
            "and would silently truncate it"
        )
    pattern = _EXTENSION_RE if kind == "extension" else _NAME_RE
    if not pattern.match(value):
        raise IdentifierError(_explain_pattern_failure(kind, value, pattern))
    if kind == "role" and (value in RESERVED_ROLES or value.startswith("pg_")):
        raise IdentifierError(
            f"role name {value!r} is reserved (pg_* roles, public, none, current_user, session_user, current_role "
            "and postgres belong to PostgreSQL itself); choose a dedicated role for the service"
        )
    if kind == "database" and value in RESERVED_DATABASES:
        raise IdentifierError(
            f"database name {value!r} is reserved (template0, template1 and postgres belong to the cluster); "
            "choose a dedicated database for the service"
        )
    return value


def quote_ident(name: str) -> str:
    """Quote an identifier the way PostgreSQL's quote_ident() does, always (not only when needed).

    Always quoting keeps the generated SQL uniform and makes any name, reserved word or not,
    safe; a NUL cannot be stored in a name and is rejected rather than silently truncated.
    """
    if "\x00" in name:
        raise ValueError("identifier contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote a string literal the way PostgreSQL's quote_literal() does.

    Quotes are doubled; when a backslash is present the E'' form with doubled backslashes is
    used, so the literal means the same whatever ``standard_conforming_strings`` says.
    """
    if "\x00" in text:
        raise ValueError("literal contains a NUL character")
    doubled = text.replace("'", "''")
    if "\\" in text:
        return "E'" + doubled.replace("\\", "\\\\") + "'"
    return "'" + doubled + "'"
