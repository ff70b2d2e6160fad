"""Drift made by hand on the server is repaired, reported as `updated`, and then stays repaired."""

from __future__ import annotations

import pytest

from tests.integration.helpers import (
    LogWindow,
    common_extension,
    count_matching,
    database_facts,
    extensions,
    ident,
    lit,
    logged_statements,
    public_can_connect,
    random_password,
    role_facts,
    try_login,
)

pytestmark = pytest.mark.integration


def test_hand_made_drift_is_repaired(pg, runner, names):
    """Six services, six kinds of drift done by hand with psql: owner changed to another role,
    CONNECT re-granted to PUBLIC, an extension dropped, the password changed, LOGIN removed, the
    connection limit changed. One run reports each service `updated` with the repairing
    statement and the server shows every repair (the foreign role itself is left alone); the
    next run is a no-op."""
    ext = common_extension(pg)
    if ext is None:
        pytest.skip(f"none of pg_trgm/hstore/citext is available on PostgreSQL {pg.version}")
    owner_s = names.service("owner")
    public_s = names.service("public")
    ext_s = names.service("ext", extensions=[ext])
    pw_s = names.service("pw")
    login_s = names.service("login")
    limit_s = names.service("limit", connection_limit=5)
    services = [owner_s, public_s, ext_s, pw_s, login_s, limit_s]
    first = runner.run(services)
    assert first.ok, first.describe()
    assert ext in extensions(pg, ext_s["database"])

    intruder = names.role("intruder")
    hand_password = random_password("hand")
    pg.psql(f"CREATE ROLE {ident(intruder)} NOLOGIN")
    pg.psql(f"ALTER DATABASE {ident(owner_s['database'])} OWNER TO {ident(intruder)}")
    pg.psql(f"GRANT CONNECT ON DATABASE {ident(public_s['database'])} TO PUBLIC")
    pg.psql(f"DROP EXTENSION {ident(ext)}", ext_s["database"])
    pg.psql(f"ALTER ROLE {ident(pw_s['owner'])} PASSWORD {lit(hand_password)}")
    pg.psql(f"ALTER ROLE {ident(login_s['owner'])} NOLOGIN")
    pg.psql(f"ALTER DATABASE {ident(limit_s['database'])} CONNECTION LIMIT 17")
    # The drift is real before the run.
    dbs = database_facts(pg, [s["database"] for s in services])
    assert dbs[owner_s["database"]]["owner"] == intruder
    assert public_can_connect(dbs[public_s["database"]])
    assert ext not in extensions(pg, ext_s["database"])
    assert not try_login(pg.info, pw_s["owner"], pw_s["password"], pw_s["database"])[0]
    assert role_facts(pg, [login_s["owner"]])[login_s["owner"]]["login"] is False
    assert dbs[limit_s["database"]]["connlimit"] == 17

    with LogWindow(pg) as window:
        r = runner.run(services)
    assert r.ok, r.describe()
    assert r.changed is True
    assert r.status == {s["database"]: "updated" for s in services}, r.describe()
    st = r.statements
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)

    expect(count_matching(st, r"^ALTER DATABASE {0} OWNER TO {1}", owner_s["database"], owner_s["owner"]) == 1,
           "owner repair statement")
    expect(count_matching(st, r"^REVOKE CONNECT ON DATABASE {0} FROM PUBLIC", public_s["database"]) == 1,
           "REVOKE CONNECT statement")
    expect(count_matching(st, r"^CREATE EXTENSION IF NOT EXISTS {0}", ext) == 1, "CREATE EXTENSION statement")
    expect(count_matching(st, r"^ALTER ROLE {0} .*PASSWORD '<redacted>'", pw_s["owner"]) == 1,
           "password repair statement")
    expect(count_matching(st, r"^ALTER ROLE {0} (WITH )?LOGIN", login_s["owner"]) == 1, "ALTER ROLE ... LOGIN")
    expect(count_matching(st, r"^ALTER DATABASE {0} (WITH )?CONNECTION LIMIT 5", limit_s["database"]) == 1,
           "connection limit repair")
    for service in services:
        expect(bool(r.service(service["database"])["changes"]), f"changes listed for {service['database']}")

    dbs = database_facts(pg, [s["database"] for s in services])
    roles = role_facts(pg, [s["owner"] for s in services] + [intruder])
    expect(dbs[owner_s["database"]]["owner"] == owner_s["owner"], "owner restored")
    expect(intruder in roles, "foreign role left alone")
    expect(not public_can_connect(dbs[public_s["database"]]), "PUBLIC CONNECT revoked again")
    expect((public_s["owner"], "CONNECT") in dbs[public_s["database"]]["acl"], "owner keeps CONNECT")
    expect(ext in extensions(pg, ext_s["database"]), "extension recreated")
    expect(try_login(pg.info, pw_s["owner"], pw_s["password"], pw_s["database"])[0], "inventory password works")
    expect(not try_login(pg.info, pw_s["owner"], hand_password, pw_s["database"])[0], "hand password rejected")
    expect(roles[login_s["owner"]]["login"] is True, "LOGIN restored")
    expect(try_login(pg.info, login_s["owner"], login_s["password"], login_s["database"])[0], "login works again")
    expect(dbs[limit_s["database"]]["connlimit"] == 5, "connection limit restored")
    expect(len(window.ddl) == len(logged_statements(st)), "server executed exactly the reported statements")
    assert not problems, f"{problems}\n{r.describe()}"

    with LogWindow(pg) as window:
        again = runner.run(services)
    assert again.ok, again.describe()
    assert again.changed is False and again.statements == [], again.describe()
    assert again.status == {s["database"]: "unchanged" for s in services}
    assert window.writes == []


def test_revoke_public_connect_false_leaves_public_alone(pg, runner, names):
    """With revoke_public_connect=false the module neither revokes nor re-grants PUBLIC's CONNECT:
    a new database keeps the default (PUBLIC may connect) and a hand-made REVOKE stays."""
    a, b = names.services(2)
    r = runner.run([a, b], revoke_public_connect=False)
    assert r.ok, r.describe()
    assert not any("REVOKE" in s.upper() for s in r.statements), r.statements
    dbs = database_facts(pg, [a["database"], b["database"]])
    assert public_can_connect(dbs[a["database"]]) and public_can_connect(dbs[b["database"]])
    pg.psql(f"REVOKE CONNECT ON DATABASE {ident(b['database'])} FROM PUBLIC")
    again = runner.run([a, b], revoke_public_connect=False)
    assert again.ok and again.changed is False, again.describe()
    assert not public_can_connect(database_facts(pg, [b["database"]])[b["database"]])
