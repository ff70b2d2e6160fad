# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one small interface between the logic and whatever carries SQL to the server.

A transport knows how to run self-contained SQL (no bind parameters: every literal is
already quoted) and return one JSON value per query; nothing else knows which transport is
in use. That keeps the same queries and statements usable over psycopg and over a psql
script run inside a pod.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

_VERIFIER_RE = re.compile(r"SCRAM-SHA-256\$[^'\s]*")
REDACTED = "<redacted>"


def redact(text: str) -> str:
    """Remove anything that looks like a SCRAM verifier from text bound for results or errors.

    Server error messages can quote the statement back; this is the last line of defence
    so a verifier never reaches Ansible's output even then.
    """
    return _VERIFIER_RE.sub(REDACTED, text)


@dataclass(frozen=True)
class Query:
    """A catalog read returning ONE row with ONE text column holding JSON."""

    name: str
    sql: str
    database: str | None = None
    when: str | None = None


@dataclass(frozen=True)
class Statement:
    """One autocommit statement; ``display`` is what may be shown (secrets replaced)."""

    sql: str
    display: str
    service: str | None
    database: str | None = None
    reported: bool = True


class TransportError(Exception):
    """A query or statement failed. ``index`` is the statement's position in the write batch
    (None for reads and connection failures); the message never contains secrets."""

    def __init__(self, message: str, index: int | None = None, sqlstate: str | None = None) -> None:
        self.message = redact(message)
        self.index = index
        self.sqlstate = sqlstate
        super().__init__(self.message)


class Transport(ABC):
    """Runs catalog queries and statement batches against one PostgreSQL server."""

    @abstractmethod
    def read(self, queries: Sequence[Query]) -> dict[str, Any]:
        """Run the queries in order; return name -> parsed JSON (skipped ``when`` queries absent)."""

    @abstractmethod
    def write(self, statements: Sequence[Statement]) -> None:
        """Run the statements in order, each autocommit; stop at the first error with TransportError(index=i)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (and with them any session advisory locks)."""
