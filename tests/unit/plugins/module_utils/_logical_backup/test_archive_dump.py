"""Writing a backup from a streamed dump, verifying it, and leaving nothing behind on failure."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.archive import (
    ArchiveError,
    ArchiveWriter,
    inspect_archive,
)
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.dump import (
    DumpError,
    dump_command,
    take_backup,
)

from .fakes import FakeStream

COMPLETE = (b"--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE postgres;\nCREATE ROLE userservice;\n"
            b"\n--\n-- Database \"userdb\" dump\n--\n\n"
            b"CREATE DATABASE userdb WITH TEMPLATE = template0;\n\\connect userdb\n"
            b"--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n"
            b"COPY public.t (id, v) FROM stdin;\n1\t\xea\xb3\xa0\xea\xb0\x9d \xf0\x9f\x92\xb3\n\\.\n\n"
            b"--\n-- PostgreSQL database cluster dump complete\n--\n\n")


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[index:index + size] for index in range(0, len(data), size)]


def test_take_backup_writes_the_bytes_exactly_and_verifies_them(tmp_path: Path) -> None:
    target = tmp_path / "dev-postgres-20261126T081500Z.sql.gz"
    stream = FakeStream(stdout=_split(COMPLETE, 7))
    result = take_backup(stream, target, "postgres")
    assert stream.argv == ["pg_dumpall", "--clean", "--if-exists", "-U", "postgres"] == dump_command("postgres")
    assert stream.stdin == b""
    assert gzip.decompress(target.read_bytes()) == COMPLETE
    assert result.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert result.checksum_path.read_text() == f"{result.sha256}  {target.name}\n"
    assert (result.size, result.dump_size) == (target.stat().st_size, len(COMPLETE))
    assert result.databases == ["userdb"] and result.roles == ["postgres", "userservice"]
    assert result.pod == "postgresql-0"
    assert sorted(path.name for path in tmp_path.iterdir()) == [target.name, f"{target.name}.sha256"]


def test_a_failed_dump_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "b.sql.gz"
    stream = FakeStream(stdout=[COMPLETE[:50]], rc=1, stderr="pg_dumpall: error: connection failed\n")
    with pytest.raises(DumpError, match="pg_dumpall in pod 'postgresql-0' exited with code 1: pg_dumpall: error: "
                                        "connection failed"):
        take_backup(stream, target, "postgres")
    assert list(tmp_path.iterdir()) == []


def test_a_dump_without_the_completion_marker_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="does not end with pg_dumpall's completion marker"):
        take_backup(FakeStream(stdout=[COMPLETE[:-60]]), tmp_path / "b.sql.gz", "postgres")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_backup_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "b.sql.gz"
    target.write_bytes(b"old")
    with pytest.raises(DumpError, match="already exists"):
        take_backup(FakeStream(stdout=[COMPLETE]), target, "postgres")
    assert target.read_bytes() == b"old"


def test_inspect_archive_refuses_a_truncated_or_foreign_file(tmp_path: Path) -> None:
    truncated = tmp_path / "t.sql.gz"
    truncated.write_bytes(gzip.compress(COMPLETE)[:-12])
    with pytest.raises(ArchiveError, match="is not a readable gzip archive"):
        inspect_archive(truncated)
    plain = tmp_path / "p.sql.gz"
    plain.write_bytes(COMPLETE)
    with pytest.raises(ArchiveError, match="is not a readable gzip archive"):
        inspect_archive(plain)


class _OtherRunPublishes(FakeStream):
    """Another run of the same second publishes its files while this dump is streaming."""

    def __init__(self, target: Path, files: dict[str, bytes]) -> None:
        super().__init__(stdout=[COMPLETE])
        self.target = target
        self.files = files

    def __call__(self, argv, stdin, on_stdout):
        for suffix, content in self.files.items():
            self.target.with_name(self.target.name + suffix).write_bytes(content)
        return super().__call__(argv, stdin, on_stdout)


@pytest.mark.parametrize("files", [{"": b"theirs"}, {".sha256": b"their checksum\n"}, {"": b"theirs", ".sha256": b"their checksum\n"}])
def test_a_backup_published_meanwhile_is_neither_overwritten_nor_given_our_checksum(tmp_path: Path, files: dict[str, bytes]) -> None:
    target = tmp_path / "dev-postgres-20261126T081500Z.sql.gz"
    with pytest.raises(DumpError, match="already exists; backups are never overwritten"):
        take_backup(_OtherRunPublishes(target, files), target, "postgres")
    expected = {target.name + suffix: content for suffix, content in files.items()}
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == expected


def test_abort_removes_the_partial_file_even_when_closing_fails_again(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path / "b.sql.gz")
    writer.write(b"CREATE ROLE x;\n")

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    writer._gzip.close = disk_full  # pylint: disable=protected-access
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_pg_dumpall_errors_are_redacted(tmp_path: Path) -> None:
    stderr = "pg_dumpall: error: query failed near PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy'\n"
    with pytest.raises(DumpError) as info:
        take_backup(FakeStream(rc=1, stderr=stderr), tmp_path / "b.sql.gz", "postgres")
    assert "SCRAM-SHA-256$" not in str(info.value) and "<redacted>" in str(info.value)
