"""Validation of the services input: everything is checked before any connection."""

from __future__ import annotations

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.desired import (
    Options,
    ServiceSpec,
    ValidationError,
    canonical_encoding,
    parse_services,
)


def _errors(raw, options=None):
    with pytest.raises(ValidationError) as info:
        parse_services(raw, options or Options())
    return info.value.errors


def test_defaults():
    [spec] = parse_services([{"database": "userdb", "owner": "userservice"}], Options())
    assert spec == ServiceSpec(index=0, database="userdb", owner="userservice", password=None, connection_limit=-1,
                               extensions=(), encoding="UTF8", locale=None, state="present", force=False)


def test_password_is_kept_but_never_shown_in_repr():
    [spec] = parse_services([{"database": "userdb", "owner": "userservice", "password": "hunter2"}], Options())
    assert spec.password == "hunter2"
    assert "hunter2" not in repr(spec)


@pytest.mark.parametrize("given,canonical", [("UTF8", "UTF8"), ("utf-8", "UTF8"), ("unicode", "UTF8"),
                                             ("latin1", "LATIN1"), ("iso-8859-5", "ISO_8859_5")])
def test_encoding_is_canonicalised(given, canonical):
    assert canonical_encoding(given) == canonical
    [spec] = parse_services([{"database": "a", "owner": "b", "encoding": given}], Options())
    assert spec.encoding == canonical


def test_duplicate_database_names_the_first_declaration():
    errors = _errors([{"database": "userdb", "owner": "a"}, {"database": "userdb", "owner": "b"}])
    assert errors == ["services[1] (database 'userdb'): database 'userdb' is already declared by "
                      "services[0] (database 'userdb')"]


def test_one_owner_for_two_databases_is_rejected():
    [error] = _errors([{"database": "one", "owner": "svc"}, {"database": "two", "owner": "svc"}])
    assert "services[1] (database 'two')" in error and "already owns database 'one'" in error


@pytest.mark.parametrize("limit", [-2, "5", True, 1.5])
def test_bad_connection_limit(limit):
    [error] = _errors([{"database": "a", "owner": "b", "connection_limit": limit}])
    assert error.startswith("services[0] (database 'a'): connection_limit must be an integer >= -1")


def test_every_problem_is_reported_at_once_with_its_service():
    errors = _errors([
        {"database": "Bad", "owner": "ok1"},
        {"database": "ok", "owner": "pg_x", "encoding": "EBCDIC", "locale": "en US", "extensions": ["x;y", "a", "a"]},
        {"database": "ok2", "owner": "ok2", "password": ""},
        {"database": "ok3", "owner": "ok3", "state": "gone"},
        "not a dict",
    ])
    assert any(e.startswith("services[0] (database 'Bad'): database:") and "uppercase" in e for e in errors)
    prefix = "services[1] (database 'ok'): "
    assert any(e.startswith(prefix + "owner:") and "reserved" in e for e in errors)
    assert any(e.startswith(prefix + "encoding 'EBCDIC'") for e in errors)
    assert any(e.startswith(prefix + "locale 'en US'") for e in errors)
    assert any(e.startswith(prefix + "extensions[0]:") for e in errors)
    assert any(e.startswith(prefix + "extensions lists a more than once") for e in errors)
    assert any(e.startswith("services[2] (database 'ok2'): password must be a non-empty string") for e in errors)
    assert any(e.startswith("services[3] (database 'ok3'): state must be one of") for e in errors)
    assert any(e.startswith("services[4]: must be a dict") for e in errors)
    assert len(errors) == 9


def test_cannot_drop_the_login_database():
    [error] = _errors([{"database": "admin", "owner": "adm", "state": "absent"}], Options(login_db="admin"))
    assert "cannot drop the database the module connects to" in error


def test_services_must_be_a_list_and_password_update_known():
    assert _errors({"database": "a"}) == ["services must be a list of dicts"]
    assert "password_update" in _errors([], Options(password_update="sometimes"))[0]


def test_empty_list_is_valid():
    assert parse_services([], Options()) == []


@pytest.mark.parametrize("field, kind", [("extensions", "extension"), ("connect_roles", "role")])
def test_name_lists_must_be_lists_of_valid_names(field, kind):
    [error] = _errors([{"database": "a", "owner": "b", field: "pgcrypto"}])
    assert error == f"services[0] (database 'a'): {field} must be a list of {kind} names"
    [error] = _errors([{"database": "a", "owner": "b", field: ["ok", "Bad Name"]}])
    assert error.startswith(f"services[0] (database 'a'): {field}[1]:")


def test_connect_roles_drop_the_owner_and_repeats():
    [spec] = parse_services([{"database": "a", "owner": "b", "connect_roles": ["pooler", "b", "pooler"]}], Options())
    assert spec.connect_roles == ("pooler",)
