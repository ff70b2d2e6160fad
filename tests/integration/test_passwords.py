"""Passwords reach the server only as SCRAM-SHA-256 verifiers computed on the controller."""

from __future__ import annotations

import pytest

from tests.integration.helpers import (
    LogWindow,
    assert_absent,
    count_matching,
    random_password,
    role_facts,
    try_login,
)

pytestmark = pytest.mark.integration


def test_passwords_travel_only_as_verifiers_and_change_exactly_one_role(pg, runner, names):
    """With log_statement=all, -vvvv: no plaintext password in the server log or the ansible
    output, no verifier in the output or the server log; what the server stored is a
    `SCRAM-SHA-256$4096:` verifier and login works, also for passwords with quotes, backslashes
    and non-ASCII characters. Changing one service's password changes exactly that role's
    rolpassword (the others stay byte-identical) and reports only that service as updated."""
    services = names.services(3)
    owners = [s["owner"] for s in services]
    with LogWindow(pg) as window:
        r = runner.run(services, verbosity=4)
    assert r.ok, r.describe()
    assert r.status == {s["database"]: "created" for s in services}
    stored = role_facts(pg, owners)
    log = pg.log_text()
    for service in services:
        verifier = stored[service["owner"]]["password"]
        assert verifier.startswith("SCRAM-SHA-256$4096:"), service["owner"]
        assert_absent(log, service["password"], "server log")
        assert_absent(r.all_output, service["password"], "ansible -vvvv output")
        assert_absent(r.all_output, verifier, "ansible -vvvv output")
        # The statement carrying the verifier ran with logging off for it: not in the log.
        assert not any(verifier in e.message for e in window.entries), f"verifier of {service['owner']} logged"
        ok, detail = try_login(pg.info, service["owner"], service["password"], service["database"])
        assert ok, detail

    # Change the password of the middle service only.
    old_password = services[1]["password"]
    services[1] = {**services[1], "password": random_password("rotated")}
    with LogWindow(pg) as window:
        changed = runner.run(services, verbosity=4)
    assert changed.ok, changed.describe()
    assert changed.changed is True
    assert changed.status == {
        services[0]["database"]: "unchanged",
        services[1]["database"]: "updated",
        services[2]["database"]: "unchanged",
    }
    assert len(changed.statements) == 1, changed.statements
    assert count_matching(changed.statements, r"^ALTER ROLE {0} .*PASSWORD '<redacted>'", owners[1]) == 1
    assert any("password" in c.lower() for c in changed.service(services[1]["database"])["changes"])
    assert window.ddl == [], "the one statement run carries a verifier: it is kept out of the log"

    after = role_facts(pg, owners)
    assert after[owners[0]]["password"] == stored[owners[0]]["password"]
    assert after[owners[2]]["password"] == stored[owners[2]]["password"]
    assert after[owners[1]]["password"] != stored[owners[1]]["password"]
    assert after[owners[1]]["password"].startswith("SCRAM-SHA-256$4096:")
    log = pg.log_text()
    assert_absent(log, services[1]["password"], "server log")
    assert_absent(changed.all_output, services[1]["password"], "ansible -vvvv output")
    assert_absent(changed.all_output, old_password, "ansible -vvvv output")
    assert_absent(changed.all_output, after[owners[1]]["password"], "ansible -vvvv output")
    assert try_login(pg.info, owners[1], services[1]["password"], services[1]["database"])[0]
    assert not try_login(pg.info, owners[1], old_password, services[1]["database"])[0]
    assert try_login(pg.info, owners[0], services[0]["password"], services[0]["database"])[0]


def test_password_update_on_create_leaves_existing_password_alone(pg, runner, names):
    """With password_update=on_create, a different password in the input for an existing role is
    not applied: changed false, status unchanged, rolpassword byte-identical, the old password
    still logs in and the new one does not; new roles still get their password."""
    services = names.services(2)
    first = runner.run(services, password_update="on_create")
    assert first.ok, first.describe()
    stored = role_facts(pg, [s["owner"] for s in services])
    old_password = services[0]["password"]
    services[0] = {**services[0], "password": random_password("ignored")}
    with LogWindow(pg) as window:
        r = runner.run(services, password_update="on_create")
    assert r.ok, r.describe()
    assert r.changed is False
    assert r.statements == []
    assert r.status == {s["database"]: "unchanged" for s in services}
    assert window.writes == []
    assert role_facts(pg, [s["owner"] for s in services]) == stored
    assert try_login(pg.info, services[0]["owner"], old_password, services[0]["database"])[0]
    assert not try_login(pg.info, services[0]["owner"], services[0]["password"], services[0]["database"])[0]
    assert try_login(pg.info, services[1]["owner"], services[1]["password"], services[1]["database"])[0]
