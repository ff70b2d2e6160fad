# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A pg_dumpall script rewritten to load beside the live databases instead of over them.

Each application database ``D`` of the backup is loaded as ``D__restoring_<stamp>``; nothing in
the script may touch ``D`` itself, so these of pg_dumpall's and pg_dump's own lines are rewritten or
left out (found with script.dump_parts, never inside function bodies or table data):

- GLOBALS: ``DROP DATABASE`` and ``DROP ROLE`` are left out. Roles the server already has are not
  changed at all (their attributes, memberships and passwords stay as they are); roles it lacks are
  created as the backup has them, so that ownerships and grants in the loaded databases resolve.
  Other global statements (tablespaces) are left out.
- The parts of ``template1`` and ``postgres`` are left out whole: they belong to the server, and a
  database the restore is connected to cannot be swapped. So are databases earlier restores left
  (``<name>__replaced_<stamp>``, ``<name>__restoring_<stamp>``) that a backup happened to include.
- Each application database's part: ``CREATE DATABASE D``, ``ALTER DATABASE D OWNER``, ``\\connect D``,
  and the database-level entries (``COMMENT ON DATABASE D``, ``ALTER DATABASE D SET``, ``GRANT``/``REVOKE
  ... ON DATABASE D``) name the new database instead.

While the script passes, the rows of every table's data block are counted: what the loaded database
must hold for the verification (restore.verify_counts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Iterator

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.script import (
    COPY_DATA,
    COPY_END,
    COPY_START,
    CREATE_ROLE,
    CREATION,
    GLOBALS,
    OBJECTS,
    dump_parts,
    unquote,
)

SERVER_DATABASES = frozenset({"template0", "template1", "postgres"})
RESTORING, REPLACED = "restoring", "replaced"
STAMP_FORMAT = "%Y%m%d_%H%M%S"
SIMPLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_NAME_BYTES = 63
LEFTOVER = re.compile(r"^([a-z_][a-z0-9_]*)__(" + RESTORING + "|" + REPLACED + r")_(\d{8}_\d{6})$")

_HEADER = re.compile(rb'^-- Database "(.*)" dump\n$')
_ENTRY = re.compile(rb"^-- (?:Data for )?Name: (.*); Type: (.*); Schema: .*; Owner: .*$")
_ROLE_LINE = re.compile(rb'^(?:ALTER ROLE|COMMENT ON ROLE) ([a-z_][a-z0-9_$]*|"(?:[^"]|"")+")[ ;]')
_MEMBERSHIP = re.compile(rb'^GRANT .+ TO ([a-z_][a-z0-9_$]*|"(?:[^"]|"")+")( |;)')
_PASSES = re.compile(rb"^(?:SET |SELECT pg_catalog\.set_config|\\restrict |\\unrestrict |--|\n)")
_COPY_TABLE = re.compile(rb"^COPY (.+?) (?:\(.*\) )?FROM stdin;\n$")


class StagingError(Exception):
    """The backup cannot be loaded beside the live databases (a name that cannot take the suffix)."""


def stamp(now: datetime) -> str:
    """The suffix time of one restore's database names (UTC, lower case: the names stay unquoted)."""
    return now.astimezone(timezone.utc).strftime(STAMP_FORMAT)


def staged_name(database: str, kind: str, when: str) -> str:
    """``<database>__restoring_<stamp>`` (being loaded) or ``<database>__replaced_<stamp>`` (the old one, kept)."""
    return f"{database}__{kind}_{when}"


def check_names(databases: Iterable[str], when: str) -> None:
    """Refuse, before anything changes, a database whose staged names would not be plain identifiers of 63 bytes."""
    for database in databases:
        longest = staged_name(database, RESTORING, when)
        if not SIMPLE_NAME.match(database) or len(longest.encode()) > MAX_NAME_BYTES:
            raise StagingError(f"database {database!r} of the backup cannot be restored beside the live one: its name "
                               f"must be lower-case letters, digits and _ and at most "
                               f"{MAX_NAME_BYTES - len(longest) + len(database)} bytes, so that {longest!r} fits")


def application_databases(databases: Iterable[str]) -> list[str]:
    """The databases of a backup that a restore replaces: all but the server's own and earlier restores' leftovers
    (a backup taken while a replaced copy was kept holds it; it is not what the services use)."""
    return [name for name in databases if name not in SERVER_DATABASES and not LEFTOVER.match(name)]


@dataclass
class LoadScript:
    """The rewritten script of one restore, and the row counts it found on the way."""

    existing_roles: frozenset[str]
    when: str
    between_databases: bytes = b""
    """Sent before every application database but the first (the load's advisory lock, see restore.lock_statement)."""
    row_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    created_roles: list[str] = field(default_factory=list)

    def lines(self, dump: Iterable[bytes]) -> Iterator[bytes]:
        """The script to feed psql (connected to ``postgres``); counts rows into ``row_counts`` as it goes."""
        database: str | None = None
        entry: tuple[bytes, bytes] | None = None
        table = ""
        started = False
        for line, part in dump_parts(dump):
            header = _HEADER.match(line) if part == CREATION else None
            if header:
                database = header.group(1).decode("utf-8", "surrogateescape")
                entry = None
                if database not in SERVER_DATABASES and not LEFTOVER.match(database):
                    if started:
                        yield self.between_databases
                    started = True
            if part == GLOBALS:
                kept = self._global(line)
                if kept:
                    yield kept
                continue
            if database is None or database in SERVER_DATABASES or LEFTOVER.match(database):
                continue
            if part == COPY_DATA:
                if line != COPY_END:
                    self.row_counts[database][table] += 1
                yield line
                continue
            found = _ENTRY.match(line) if part == OBJECTS else None
            if found:
                entry = (found.group(1), found.group(2))
            copy = _COPY_TABLE.match(line) if part == OBJECTS and COPY_START.match(line) else None
            if copy:
                table = copy.group(1).decode("utf-8", "surrogateescape")
                self.row_counts.setdefault(database, {}).setdefault(table, 0)
            yield self._renamed(line, part, database, entry)

    def _global(self, line: bytes) -> bytes | None:
        """A GLOBALS line as loaded: only what creates a missing role (and its settings) passes, besides SET and comments."""
        if _PASSES.match(line):
            return line
        created = CREATE_ROLE.match(line)
        if created:
            role = unquote(created.group(1))
            if role in self.existing_roles:
                return None
            self.created_roles.append(role)
            return line
        about = _ROLE_LINE.match(line) or _MEMBERSHIP.match(line)
        if about and unquote(about.group(1)) in self.created_roles and b" IN DATABASE " not in line:
            return line
        return None

    def _renamed(self, line: bytes, part: str, database: str, entry: tuple[bytes, bytes] | None) -> bytes:
        """Database ``database``'s own lines naming the staged database instead (see the module docstring)."""
        if part == CREATION or (part == OBJECTS and _database_level(entry, database)):
            name = database.encode()
            target = staged_name(database, RESTORING, self.when).encode()
            pattern = re.compile(rb"^(CREATE DATABASE |ALTER DATABASE |COMMENT ON DATABASE |\\connect |"
                                 rb"(?:GRANT|REVOKE) .* ON DATABASE )" + re.escape(name) + rb"( |;|\n)")
            return pattern.sub(lambda match: match.group(1) + target + match.group(2), line, count=1)
        return line


def _database_level(entry: tuple[bytes, bytes] | None, database: str) -> bool:
    """Whether the current pg_dump entry is about the database itself (or none has started yet: the ``\\connect``)."""
    if entry is None:
        return True
    name, kind = entry
    return name in (database.encode(), b"DATABASE " + database.encode()) and kind in (
        b"DATABASE", b"DATABASE PROPERTIES", b"COMMENT", b"ACL", b"SECURITY LABEL")
