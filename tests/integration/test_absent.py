"""`state: absent` removes exactly what is named, and refuses databases in use unless forced."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.integration.helpers import (
    LogWindow,
    catalog_snapshot,
    count_matching,
    database_facts,
    role_facts,
    try_login,
)

pytestmark = pytest.mark.integration


def _without(snapshot, dbs, roles):
    return {
        "databases": {k: v for k, v in snapshot["databases"].items() if k not in dbs},
        "roles": {k: v for k, v in snapshot["roles"].items() if k not in roles},
        "members": [m for m in snapshot["members"] if m[0] not in roles and m[1] not in roles],
    }


def test_absent_drops_only_the_named_service(pg, runner, names):
    """Listing one service as absent drops its database and then its role (DROP DATABASE before
    DROP ROLE), reports it `removed`, and leaves every other database and role of the cluster
    byte-identical, including services not listed in the call. Running it again is `unchanged`."""
    gone, kept, unlisted = names.services(3)
    assert runner.run([gone, kept, unlisted]).ok
    before = catalog_snapshot(pg)
    with LogWindow(pg) as window:
        r = runner.run([{**gone, "state": "absent"}, kept])
    assert r.ok, r.describe()
    assert r.changed is True
    assert r.status == {gone["database"]: "removed", kept["database"]: "unchanged"}
    st = r.statements
    assert count_matching(st, r"^DROP DATABASE (IF EXISTS )?{0}", gone["database"]) == 1, st
    assert count_matching(st, r"^DROP ROLE (IF EXISTS )?{0}", gone["owner"]) == 1, st
    drop_db = next(i for i, s in enumerate(st) if s.upper().startswith("DROP DATABASE"))
    drop_role = next(i for i, s in enumerate(st) if s.upper().startswith("DROP ROLE"))
    assert drop_db < drop_role, st
    assert len(window.ddl) == len(st) == 2, window.text()

    after = catalog_snapshot(pg)
    assert gone["database"] not in after["databases"] and gone["owner"] not in after["roles"]
    assert after == _without(before, {gone["database"]}, {gone["owner"]})
    for service in (kept, unlisted):
        assert try_login(pg.info, service["owner"], service["password"], service["database"])[0]

    again = runner.run([{**gone, "state": "absent"}])
    assert again.ok and again.changed is False and again.statements == [], again.describe()
    assert again.status == {gone["database"]: "unchanged"}


def test_absent_refuses_a_database_in_use_unless_forced(pg, runner, names):
    """With two live connections to the database, state absent fails naming the database and the
    number of connections, and drops nothing; with force: true it drops it anyway (the sessions
    are terminated) and the role goes too."""
    target, other = names.services(2)
    assert runner.run([target, other]).ok
    conns = [
        psycopg.connect(host=pg.info.host, port=pg.info.port, user=target["owner"], password=target["password"],
                        dbname=target["database"], autocommit=True)
        for _index in range(2)
    ]
    try:
        snapshot = catalog_snapshot(pg)
        with LogWindow(pg) as window:
            refused = runner.run([{**target, "state": "absent"}])
        assert refused.failed, refused.describe()
        assert target["database"] in refused.msg, refused.msg
        without_name = refused.msg.replace(target["database"], "").replace(target["owner"], "")
        assert re.search(r"\b2\b", without_name), f"connection count missing: {refused.msg}"
        assert window.ddl == [], window.text()
        assert catalog_snapshot(pg) == snapshot

        forced = runner.run([{**target, "state": "absent", "force": True}])
        assert forced.ok, forced.describe()
        assert forced.status == {target["database"]: "removed"}
        assert database_facts(pg, [target["database"]]) == {}
        assert role_facts(pg, [target["owner"]]) == {}
        with pytest.raises(psycopg.OperationalError):
            conns[0].execute("SELECT 1")
        assert other["database"] in database_facts(pg, [other["database"]])
    finally:
        for conn in conns:
            conn.close()
