# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gzip archives of pg_dumpall output: written through a hash, verified by reading them back whole.

A backup counts only once it has been read back: the gzip stream must decompress to its end
(CRC and length checked by gzip itself) and the script must end with pg_dumpall's completion
marker, which a dump cut short (pod killed, timeout) never has.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import READ_CHUNK
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.script import (
    DumpContents,
    dump_parts,
)

DUMP_COMPLETE_MARKER = b"PostgreSQL database cluster dump complete"
COMPRESS_LEVEL = 6
"""gzip's own default: Python's is 9, about three times slower for a few percent less size."""
_TAIL_KEPT = 4096


class ArchiveError(Exception):
    """An archive cannot be written, or does not read back as a complete pg_dumpall script."""


@dataclass(frozen=True)
class ArchiveInfo:
    """What reading an archive back found."""

    sha256: str
    size: int
    dump_size: int
    databases: list[str]
    roles: list[str]


class _HashingFile:
    """A raw file that hashes and counts every byte that passes through it."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._handle.write(data)

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def flush(self) -> None:
        self._handle.flush()


class ArchiveWriter:
    """Writes a gzip archive to a private partial file next to ``target``; ``commit`` links it into place.

    The partial file is created with mode 0600 (dumps hold password verifiers) and a leading dot, so
    retention and the status playbook never mistake it for a backup.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
        self.partial = Path(name)
        self._raw = os.fdopen(fd, "wb")
        self._hashing = _HashingFile(self._raw)
        self._gzip = gzip.GzipFile(filename=target.name[:-len(".gz")], mode="wb", fileobj=self._hashing,
                                   compresslevel=COMPRESS_LEVEL)
        self.dump_size = 0

    def write(self, chunk: bytes) -> None:
        self._gzip.write(chunk)
        self.dump_size += len(chunk)

    def close(self) -> str:
        """Finish the gzip stream and flush it to disk; returns the archive's hex SHA-256."""
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        return self._hashing.digest.hexdigest()

    def commit(self) -> None:
        """Publish the archive under its name, never over an existing file (another run's backup of the same second).

        A hard link fails (FileExistsError) where a rename would silently replace; the partial name is then dropped.
        """
        os.link(self.partial, self.target)
        self.partial.unlink()

    def abort(self) -> None:
        """Leave no partial file behind (a failed dump must not look like a backup, even half of one).

        Closing can fail again (the disk that stopped the dump is still full); that must neither hide the
        first error nor keep the partial file, which holds password verifiers.
        """
        for close in (self._gzip.close, self._raw.close):
            with contextlib.suppress(OSError, ValueError):
                close()
        self.partial.unlink(missing_ok=True)


def inspect_archive(path: Path) -> ArchiveInfo:
    """Read the archive fully: its SHA-256, gzip integrity, the completion marker, what it creates."""
    contents = DumpContents()
    tail = b""
    dump_size = 0
    try:
        with path.open("rb") as raw:
            hashing = _HashingFile(raw)
            with gzip.GzipFile(fileobj=hashing, mode="rb") as dump:
                for line, part in dump_parts(dump):
                    dump_size += len(line)
                    tail = (tail + line)[-_TAIL_KEPT:]
                    contents.scan(line, part)
            while hashing.read(READ_CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{path} is not a readable gzip archive: {exc}") from None
    if DUMP_COMPLETE_MARKER not in tail:
        raise ArchiveError(f"{path} does not end with pg_dumpall's completion marker "
                           f"({DUMP_COMPLETE_MARKER.decode()!r}): the dump is incomplete")
    return ArchiveInfo(sha256=hashing.digest.hexdigest(), size=hashing.size, dump_size=dump_size,
                       databases=contents.databases, roles=contents.roles)
