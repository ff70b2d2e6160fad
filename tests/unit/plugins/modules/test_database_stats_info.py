"""The database_stats_info module: one read, result shaped, nothing changed, errors as fail_json."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import TransportError
from ansible_collections.microservices.postgres.plugins.modules import database_stats_info

from ..module_utils.fakes import FakeTransport

ROWS = {
    "server": {"version": "15.10", "version_num": 150010, "in_recovery": False, "current_user": "postgres",
               "read_all_stats": True},
    "databases": [{"name": "userdb", "size_bytes": 7631663, "size_pretty": "7453 kB", "connection_limit": -1,
                   "allow_connections": True}],
    "activity": [{"database": "userdb", "state": "active", "count": 1}],
    "replication": [],
}


def run(monkeypatch, capsys, transport: FakeTransport, check_mode: bool = False, **args) -> dict:
    monkeypatch.setattr(database_stats_info, "open_transport", lambda params: transport)
    module_args = {"transport": "kubernetes", "namespace": "microservices", "pod": "postgresql-0", **args}
    if check_mode:
        module_args["_ansible_check_mode"] = True
    with patch_module_args(module_args), pytest.raises(SystemExit):
        database_stats_info.main()
    return json.loads(capsys.readouterr().out)


def test_one_read_and_the_shaped_result_never_changed(monkeypatch, capsys):
    transport = FakeTransport(ROWS)
    result = run(monkeypatch, capsys, transport, check_mode=True, databases=["userdb"], replicas=["postgresql-1"])
    assert result["changed"] is False and "failed" not in result
    assert len(transport.read_calls) == 1 and transport.write_calls == [] and transport.closed
    assert result["databases"][0]["connections"] == {"total": 1, "by_state": {"active": 1}}
    assert result["total_size_bytes"] == 7631663
    assert result["replicas"][0]["state"] == "not streaming"


def test_transport_error_fails_with_its_message_and_closes(monkeypatch, capsys):
    transport = FakeTransport(TransportError("expected exactly one Ready pod for pod postgresql-0, found 0 Ready"))
    result = run(monkeypatch, capsys, transport)
    assert result["failed"] is True and transport.closed
    assert result["msg"] == "cannot read the statistics: expected exactly one Ready pod for pod postgresql-0, found 0 Ready"


def test_missing_database_fails_naming_it(monkeypatch, capsys):
    result = run(monkeypatch, capsys, FakeTransport(ROWS), databases=["userdb", "ghostdb"])
    assert result["failed"] is True and result["msg"] == "cannot read the statistics: database(s) not found: ghostdb"
