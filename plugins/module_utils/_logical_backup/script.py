# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a pg_dumpall script line by line, telling pg_dumpall's own lines from everything else.

Restoring needs to recognise a handful of lines pg_dumpall itself writes (``DROP DATABASE``,
``CREATE DATABASE``, ``CREATE ROLE``...), and only those: a function body, a string literal or a
row of table data may hold a line that looks exactly like one. The script has a fixed shape
(measured with ``pg_dumpall --clean --if-exists`` of PostgreSQL 15):

- GLOBALS: everything before the first ``-- Database "<name>" dump`` header. pg_dumpall writes it
  itself: ``DROP DATABASE IF EXISTS`` of every database but template1 and postgres, ``DROP ROLE IF
  EXISTS``, ``CREATE ROLE``/``ALTER ROLE``, role settings, tablespaces. No function bodies.
- CREATION: each database's part from its header to pg_dump's first ``\\connect``: ``DROP DATABASE``
  (template1 and postgres only), ``CREATE DATABASE``, ``ALTER DATABASE ... OWNER``.
- OBJECTS: the rest of a database's part, pg_dump's objects with their bodies; never rewritten.
- COPY_DATA: table data, written by pg_dump only as ``COPY ... FROM stdin;`` three lines after its
  ``-- Data for Name: ...; Type: TABLE DATA; ...`` header and ``--`` and an empty line, and ended by
  ``\\.``. A ``COPY`` line anywhere else (inside a body) is not data.

pg_dumpall writes the statements on one line each, with identifiers quoted only when needed (its
fmtId), which the patterns follow.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator

GLOBALS = "globals"
CREATION = "creation"
OBJECTS = "objects"
COPY_DATA = "copy data"

_IDENT = rb'(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")'
DATABASE_HEADER = re.compile(rb'^-- Database ".*" dump\n$')
CONNECT = re.compile(rb"^\\connect ")
DATA_HEADER = re.compile(rb"^-- Data for Name: .*; Type: TABLE DATA; ")
COPY_START = re.compile(rb"^COPY .+ FROM stdin;\n$")
COPY_END = b"\\.\n"
DROP_DATABASE = re.compile(rb"^DROP DATABASE (IF EXISTS )?(" + _IDENT + rb");\n$")
CREATE_DATABASE = re.compile(rb"^CREATE DATABASE (" + _IDENT + rb") WITH ")
CREATE_ROLE = re.compile(rb"^CREATE ROLE (" + _IDENT + rb");\n$")
DROP_ROLE = re.compile(rb"^DROP ROLE IF EXISTS (" + _IDENT + rb");\n$")


def unquote(ident: bytes) -> str:
    """The exact name behind an identifier as pg_dumpall writes it (quoted only when needed).

    Names of a server in SQL_ASCII or a single-byte encoding need not be UTF-8: undecodable bytes are
    kept as surrogates (never equal to a real name given as text) rather than failing the run.
    """
    text = ident.decode("utf-8", "surrogateescape")
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def shown(name: str) -> str:
    """A name from ``unquote`` fit for a result: undecodable bytes become U+FFFD (JSON and terminals refuse surrogates)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _copy_starts(recent: deque[bytes], line: bytes) -> bool:
    """Whether ``line`` opens a data block where pg_dump writes them: right after its TABLE DATA header."""
    return (COPY_START.match(line) is not None and len(recent) == 3 and DATA_HEADER.match(recent[0]) is not None
            and recent[1] == b"--\n" and recent[2] == b"\n")


def dump_parts(lines: Iterable[bytes]) -> Iterator[tuple[bytes, str]]:
    """Every line with the part of the script it belongs to: GLOBALS, CREATION, OBJECTS or COPY_DATA (see above)."""
    part = GLOBALS
    recent: deque[bytes] = deque(maxlen=3)
    for line in lines:
        if part == COPY_DATA:
            yield line, part
            if line == COPY_END:
                part = OBJECTS
            continue
        if DATABASE_HEADER.match(line) and recent and recent[-1] == b"--\n":
            part = CREATION
        elif part == CREATION and CONNECT.match(line):
            part = OBJECTS
        yield line, part
        if part == OBJECTS and _copy_starts(recent, line):
            part = COPY_DATA
        recent.append(line)


@dataclass
class DumpContents:
    """What a dump creates: its databases and roles, in the order they appear."""

    databases: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    def scan(self, line: bytes, part: str) -> None:
        """Record the database or role a line of pg_dumpall's own creates, if any."""
        database = CREATE_DATABASE.match(line) if part == CREATION else None
        if database:
            self.databases.append(shown(unquote(database.group(1))))
            return
        role = CREATE_ROLE.match(line) if part == GLOBALS else None
        if role:
            self.roles.append(shown(unquote(role.group(1))))
