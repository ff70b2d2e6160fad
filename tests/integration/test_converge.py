"""Converging service databases on real PostgreSQL: creation, cost, idempotence, check and diff mode.

Every test reads the truth back from the server (pg_database, pg_authid, aclexplode(datacl),
pg_extension, the statement log, real logins) instead of trusting what the module reports.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.integration.helpers import (
    SEED_SERVICES,
    LogWindow,
    assert_absent,
    catalog_snapshot,
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


def test_one_call_creates_the_five_seed_services(pg, runner, seed_clean):
    """One module call creates userdb/userservice ... accountingdb/accountingservice: each database
    owned by its role, CONNECT revoked from PUBLIC and kept by the owner, the owner logs in with its
    password and connects (another service's owner cannot), status `created`, and the returned
    statements cover every creation with the passwords redacted."""
    services = [{"database": db, "owner": owner, "password": random_password(owner)} for db, owner in SEED_SERVICES]
    r = runner.run(services)
    assert r.ok, r.describe()
    assert r.changed is True
    assert r.status == {db: "created" for db, _owner in SEED_SERVICES}, r.describe()
    for item in r.services:
        assert item["owner"] == dict(SEED_SERVICES)[item["database"]]
        assert item["state"] == "present"
    assert int(r.result["server_version"]) // 10000 == pg.version

    dbs = database_facts(pg, [db for db, _owner in SEED_SERVICES])
    roles = role_facts(pg, [owner for _db, owner in SEED_SERVICES])
    assert set(dbs) == {db for db, _owner in SEED_SERVICES}
    assert set(roles) == {owner for _db, owner in SEED_SERVICES}
    for service in services:
        db, owner = service["database"], service["owner"]
        fact = dbs[db]
        assert fact["owner"] == owner, (db, fact)
        assert fact["encoding"] == "UTF8"
        assert fact["connlimit"] == -1
        assert not public_can_connect(fact), f"PUBLIC can still connect to {db}: {fact['acl']}"
        assert (owner, "CONNECT") in fact["acl"], f"owner lost CONNECT on {db}: {fact['acl']}"
        assert roles[owner]["login"] is True and roles[owner]["super"] is False
        assert roles[owner]["password"].startswith("SCRAM-SHA-256$4096:")
        ok, detail = try_login(pg.info, owner, service["password"], db)
        assert ok, f"{owner} cannot log in to {db}: {detail}"

    # CONNECT revoked for real: a valid login of another service is refused by userdb.
    ok, detail = try_login(pg.info, "paymentservice", services[1]["password"], "userdb")
    assert not ok and "permission denied" in detail.lower(), detail

    statements = r.statements
    for db, owner in SEED_SERVICES:
        assert count_matching(statements, r"^CREATE ROLE {0} .*PASSWORD '<redacted>'", owner) == 1, statements
        assert count_matching(statements, r"^CREATE DATABASE {0} .*OWNER {1}", db, owner) == 1, statements
        assert count_matching(statements, r"^REVOKE CONNECT ON DATABASE {0} FROM PUBLIC", db) == 1, statements
    verifiers = [roles[o]["password"] for o in roles]
    for secret in [s["password"] for s in services] + verifiers:
        assert_absent(r.all_output, secret, "ansible output")
    assert "SCRAM-SHA-256$" not in json.dumps(r.result)


def test_one_catalog_read_and_one_write_batch_regardless_of_size(pg, runner, names):
    """For 5 and for 20 services: the first run opens the same (small) number of sessions, runs
    the same fixed number of catalog reads, and all its writes in one session behind one advisory
    lock; the no-op re-run opens exactly one session, executes no write/DDL at all, and runs the
    same number of read queries for 5 as for 20 services (cost does not grow with N)."""
    measured = {}
    for count in (5, 20):
        services = [names.service(f"n{count}x{i:02d}") for i in range(count)]
        with LogWindow(pg) as create:
            first = runner.run(services)
        assert first.ok, first.describe()
        assert set(first.status.values()) == {"created"}
        with LogWindow(pg) as noop:
            again = runner.run(services)
        assert again.ok, again.describe()
        assert again.changed is False

        write_pids = {e.pid for e in create.writes}
        assert len(write_pids) == 1, f"writes spread over sessions {write_pids}:\n{create.text()}"
        locks = [s for s in create.sql if "pg_advisory" in s and "lock" in s.lower()]
        assert len(locks) == 1, locks
        first_write = create.statements.index(create.writes[0])
        assert "pg_advisory" in create.writes[0].statement, "the write batch must start with the advisory lock"
        # Every reported statement executed exactly once, and nothing else DDL-like ran.
        assert len(create.ddl) == len(logged_statements(first.statements)), (create.ddl_redacted(), first.statements)
        assert len(first.statements) >= 3 * count

        assert noop.writes == [], f"no-op run wrote:\n{noop.text()}"
        assert noop.ddl == []
        assert len(noop.connections) == 1, f"no-op run opened {len(noop.connections)} sessions"
        measured[count] = {
            "create_sessions": len(create.connections),
            "create_reads": first_write,
            "noop_reads": len(noop.statements),
            "noop_sessions": len(noop.connections),
        }
    assert measured[5] == measured[20], measured
    assert measured[5]["create_sessions"] <= 2, measured
    assert measured[5]["noop_reads"] >= 1


def test_second_run_changes_nothing(pg, runner, names):
    """A second run with the same input reports changed=false, no statements, every service
    unchanged; the server executes no write at all and the catalog (verifiers included) is
    byte-identical."""
    ext = common_extension(pg)
    services = [
        names.service("a", connection_limit=10),
        names.service("b", extensions=[ext] if ext else []),
        names.service("c", password=False),
    ]
    first = runner.run(services)
    assert first.ok, first.describe()
    assert first.changed
    before = catalog_snapshot(pg)
    with LogWindow(pg) as window:
        second = runner.run(services)
    assert second.ok, second.describe()
    assert second.changed is False
    assert second.statements == []
    assert second.status == {s["database"]: "unchanged" for s in services}
    assert window.writes == [], window.text()
    assert catalog_snapshot(pg) == before
    assert database_facts(pg, [services[0]["database"]])[services[0]["database"]]["connlimit"] == 10
    if ext:
        assert ext in extensions(pg, services[1]["database"])


def _seed_drifted(pg, runner, names):
    """A service that exists, then drifted by hand (owner + PUBLIC CONNECT); returns it."""
    existing = names.service("old")
    r = runner.run([existing])
    assert r.ok, r.describe()
    intruder = names.role("intruder")
    pg.psql(f"CREATE ROLE {ident(intruder)} NOLOGIN")
    pg.psql(f"ALTER DATABASE {ident(existing['database'])} OWNER TO {ident(intruder)}")
    pg.psql(f"GRANT CONNECT ON DATABASE {ident(existing['database'])} TO PUBLIC")
    return existing, intruder


def test_check_mode_runs_no_ddl_and_predicts_the_real_run(pg, runner, names):
    """Check mode reads only (no DDL, no DO block, no advisory lock in the server log), leaves the
    catalog identical, and returns exactly the statements (same list, same order) that the
    following real run returns and that the server log shows it executed; afterwards check mode
    reports nothing to do."""
    ext = common_extension(pg)
    existing, _intruder = _seed_drifted(pg, runner, names)
    services = [
        existing,
        names.service("new1"),
        names.service("new2", connection_limit=5, extensions=[ext] if ext else []),
        names.service("new3", password=False),
    ]
    before = catalog_snapshot(pg)
    with LogWindow(pg) as check_window:
        check = runner.run(services, check=True)
    assert check.ok, check.describe()
    assert check.changed is True
    assert check_window.writes == [], f"check mode wrote:\n{check_window.text()}"
    assert catalog_snapshot(pg) == before, "check mode changed the server"
    for new in services[1:]:
        assert new["database"] not in database_facts(pg, [new["database"]])

    with LogWindow(pg) as real_window:
        real = runner.run(services)
    assert real.ok, real.describe()
    assert real.statements, real.describe()
    assert check.statements == real.statements, (check.statements, real.statements)
    assert check.status == real.status, (check.status, real.status)
    assert real.status == {
        existing["database"]: "updated",
        services[1]["database"]: "created",
        services[2]["database"]: "created",
        services[3]["database"]: "created",
    }
    assert real_window.ddl_redacted() == logged_statements(real.statements)

    with LogWindow(pg) as after_window:
        after = runner.run(services, check=True)
    assert after.ok and after.changed is False and after.statements == [], after.describe()
    assert after_window.writes == []


def _as_mapping(value):
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        loaded = yaml.safe_load(value) if value.strip() else {}
        return loaded if isinstance(loaded, dict) else {"_text": value}
    return {"_value": value}


def _diff_for(result, database):
    entries = result.result.get("diff") or []
    if isinstance(entries, dict):
        entries = [entries]
    found = [
        e for e in entries
        if database in str(e.get("before_header", "")) or database in str(e.get("after_header", ""))
    ]
    return found


def test_diff_mode_shows_before_and_after_without_secrets(pg, runner, names):
    """With --diff (first with --check, then for real), each changed service gets one
    before/after entry (a new service: exists false -> true; a drifted one: the connection limit
    and the password change shown as a placeholder), unchanged services get none, check mode
    leaves the server alone, and neither plaintext passwords nor SCRAM verifiers appear anywhere
    in the output."""
    drifted = names.service("drift")
    steady = names.service("steady")
    first = runner.run([drifted, steady])
    assert first.ok, first.describe()
    hand_password = random_password("hand")
    pg.psql(f"ALTER DATABASE {ident(drifted['database'])} CONNECTION LIMIT 3")
    pg.psql(f"ALTER ROLE {ident(drifted['owner'])} PASSWORD {lit(hand_password)}")
    new = names.service("fresh")
    verifiers = [v["password"] for v in role_facts(pg, [drifted["owner"], steady["owner"]]).values()]

    for check in (True, False):
        r = runner.run([drifted, steady, new], diff=True, check=check)
        mode = "check" if check else "real"
        assert r.ok, r.describe()
        assert r.status == {
            drifted["database"]: "updated", steady["database"]: "unchanged", new["database"]: "created"
        }, mode
        assert _diff_for(r, steady["database"]) == [], f"{mode}: unchanged service must have no diff entry"

        (new_entry,) = _diff_for(r, new["database"])
        new_before, new_after = _as_mapping(new_entry["before"]), _as_mapping(new_entry["after"])
        assert not new_before.get("exists"), (mode, new_before)
        assert new_after.get("exists") is True, (mode, new_after)
        assert new_after.get("owner") == new["owner"], (mode, new_after)

        (drift_entry,) = _diff_for(r, drifted["database"])
        before, after = _as_mapping(drift_entry["before"]), _as_mapping(drift_entry["after"])
        assert before.get("connection_limit") == 3, (mode, before)
        assert after.get("connection_limit") == -1, (mode, after)
        assert before.get("exists") is True and after.get("exists") is True, mode
        assert after.get("password") == "<changed>", (mode, after)
        for placeholder in (before.get("password"), new_after.get("password")):
            assert placeholder in ("<set>", "<changed>", "<unchanged>", "<not managed>"), (mode, placeholder)

        verifiers += [v["password"] for v in role_facts(pg, [drifted["owner"], new["owner"]]).values()]
        for secret in [drifted["password"], steady["password"], new["password"], hand_password] + verifiers:
            assert_absent(r.all_output, secret, f"ansible --diff output ({mode})")
        assert not re.search(r"SCRAM-SHA-256\$", r.all_output), f"a verifier leaked into the output ({mode})"

        facts = database_facts(pg, [drifted["database"], new["database"]])
        if check:
            assert facts[drifted["database"]]["connlimit"] == 3 and new["database"] not in facts
        else:
            assert facts[drifted["database"]]["connlimit"] == -1 and new["database"] in facts
