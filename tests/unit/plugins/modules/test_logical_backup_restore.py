"""The logical_backup and logical_restore modules: retention around the new backup, and what a failed restore changed."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import write_checksum
from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.stream import StreamError
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError
from ansible_collections.microservices.postgres.plugins.modules import logical_backup, logical_restore

from ..module_utils._logical_backup.fakes import FakeStream

DUMP = b"CREATE ROLE postgres;\n--\n-- PostgreSQL database cluster dump complete\n--\n\n"
POD = {"namespace": "microservices", "pod": "postgresql-0"}


def run(module, monkeypatch, capsys, streamer, **args) -> dict:
    monkeypatch.setattr(module, "pod_streamer", lambda params, timeout_name="exec_timeout": streamer)
    with patch_module_args({**POD, **args}), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_retention_never_deletes_the_backup_just_written(tmp_path: Path, monkeypatch, capsys) -> None:
    newer = tmp_path / "dev-postgres-20991231T235959Z.sql.gz"
    newer.write_bytes(b"from a clock ahead")
    result = run(logical_backup, monkeypatch, capsys, FakeStream(stdout=[DUMP]), dest=str(tmp_path), prefix="dev-postgres", keep=1)
    assert result["changed"] is True and result["removed"] == []
    assert Path(result["path"]).is_file() and newer.is_file()


def _backup(tmp_path: Path) -> Path:
    path = tmp_path / "dev-postgres-20261126T081500Z.sql.gz"
    path.write_bytes(gzip.compress(DUMP))
    write_checksum(path, hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def _failing(error: Exception):
    def stream(argv, stdin, on_stdout):
        raise error
    return stream


def test_a_restore_that_never_reached_the_pod_changed_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    error = TransportError("expected exactly one Ready pod for pod 'postgresql-0' in namespace 'microservices', found 0 Ready")
    result = run(logical_restore, monkeypatch, capsys, _failing(error), src=str(_backup(tmp_path)), safety_dir=str(tmp_path))
    assert result["failed"] is True and result["changed"] is False and result["leftovers"] == []
    assert result["msg"].startswith("restore failed in phase read: read: expected exactly one Ready pod")


def test_a_restore_timing_out_names_restore_timeout(tmp_path: Path, monkeypatch, capsys) -> None:
    error = StreamError("psql in pod 'postgresql-0' did not finish within 5 s (restore_timeout); it was stopped",
                        input_sent=True)
    result = run(logical_restore, monkeypatch, capsys, _failing(error), src=str(_backup(tmp_path)), safety_dir=str(tmp_path),
                 restore_timeout=5)
    assert result["failed"] is True and result["phase"] == "read"
    assert "did not finish within 5 s (restore_timeout)" in result["msg"]


@pytest.mark.parametrize(("args", "message"), [
    ({"restore_timeout": 0}, "restore_timeout must be at least 1 (seconds), got 0; nothing was changed"),
    ({"safety_dir": None}, "safety_dir is required with src"),
    ({"src": None}, "src is required unless cleanup=true; nothing was changed"),
    ({"safety_prefix": "a/b"}, "safety_prefix must be a non-empty file name part without '/'"),
])
def test_bad_input_is_refused_naming_it_before_the_pod_is_reached(tmp_path: Path, monkeypatch, capsys, args, message) -> None:
    def untouched(argv, stdin, on_stdout):
        raise AssertionError("the pod was reached")

    given = {"src": str(_backup(tmp_path)), "safety_dir": str(tmp_path), **args}
    result = run(logical_restore, monkeypatch, capsys, untouched, **{key: value for key, value in given.items() if value is not None})
    assert result["failed"] is True and message in result["msg"] and result.get("changed", False) is False
