"""The logical_backup and logical_restore modules: retention around the new backup, and what a failed restore changed."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.files import write_checksum
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.kubernetes_exec import StreamError
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError
from ansible_collections.microservices.postgres.plugins.modules import logical_backup, logical_restore

from ..module_utils._logical_backup.fakes import FakeStream

DUMP = b"CREATE ROLE postgres;\n--\n-- PostgreSQL database cluster dump complete\n--\n\n"
POD = {"namespace": "microservices", "pod": "postgresql-0"}


def run(module, monkeypatch, capsys, streamer, **args) -> dict:
    monkeypatch.setattr(module, "pod_exec", lambda params: SimpleNamespace(stream_bytes=streamer))
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


def test_a_restore_that_never_reached_psql_changed_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    error = TransportError("expected exactly one Ready pod for pod 'postgresql-0' in namespace 'microservices', found 0 Ready")
    result = run(logical_restore, monkeypatch, capsys, _failing(error), src=str(_backup(tmp_path)))
    assert result["failed"] is True and result["changed"] is False
    assert "Nothing was sent to psql, so nothing was restored." in result["msg"]


@pytest.mark.parametrize(("input_sent", "changed"), [(False, False), (True, True)])
def test_a_restore_failing_in_its_session_is_changed_once_psql_had_input(tmp_path: Path, monkeypatch, capsys,
                                                                         input_sent: bool, changed: bool) -> None:
    error = StreamError("psql in pod 'postgresql-0' did not finish within 300 s", input_sent=input_sent)
    result = run(logical_restore, monkeypatch, capsys, _failing(error), src=str(_backup(tmp_path)))
    assert result["failed"] is True and result["changed"] is changed
    assert ("run the restore of this backup again" in result["msg"]) is changed
