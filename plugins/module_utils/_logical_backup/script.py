# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a pg_dumpall script line by line, telling SQL lines from COPY data.

Restoring needs to recognise a handful of lines pg_dumpall itself writes (``DROP DATABASE``,
``CREATE DATABASE``, ``CREATE ROLE``...). Table data travels in ``COPY ... FROM stdin;`` blocks
ended by a line ``\\.``, exactly as psql reads them, and a data row may look like anything:
so lines are only ever matched outside those blocks. pg_dumpall writes these statements on one
line each, with identifiers quoted only when needed (its fmtId), which the patterns follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

_IDENT = rb'(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")'
COPY_START = re.compile(rb"^COPY .+ FROM stdin;\n$")
COPY_END = b"\\.\n"
DROP_DATABASE = re.compile(rb"^DROP DATABASE (IF EXISTS )?(" + _IDENT + rb");\n$")
CREATE_DATABASE = re.compile(rb"^CREATE DATABASE (" + _IDENT + rb") WITH ")
CREATE_ROLE = re.compile(rb"^CREATE ROLE (" + _IDENT + rb");\n$")
DROP_ROLE = re.compile(rb"^DROP ROLE IF EXISTS (" + _IDENT + rb");\n$")


def unquote(ident: bytes) -> str:
    """The name behind an identifier as pg_dumpall writes it (quoted only when needed)."""
    text = ident.decode("utf-8")
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def sql_lines(lines: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Every line with True when it is SQL (or a psql meta-command), False inside a COPY data block."""
    in_copy = False
    for line in lines:
        if in_copy:
            in_copy = line != COPY_END
            yield line, False
            continue
        in_copy = COPY_START.match(line) is not None
        yield line, True


@dataclass
class DumpContents:
    """What a dump creates: its databases and roles, in the order they appear."""

    databases: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    def scan(self, line: bytes) -> None:
        """Record the database or role a SQL line creates, if any."""
        database = CREATE_DATABASE.match(line)
        if database:
            self.databases.append(unquote(database.group(1)))
            return
        role = CREATE_ROLE.match(line)
        if role:
            self.roles.append(unquote(role.group(1)))
