"""Identifier rules and the two quoting functions every SQL string is built with."""

from __future__ import annotations

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.identifiers import (
    IdentifierError,
    quote_ident,
    quote_literal,
    validate_identifier,
)


@pytest.mark.parametrize("kind,value", [
    ("database", "userdb"), ("database", "_private"), ("role", "user_service_2"), ("role", "a" * 63),
    ("extension", "uuid-ossp"), ("extension", "pg_trgm"), ("extension", "3d_stuff"),
])
def test_accepts_valid_names(kind, value):
    assert validate_identifier(kind, value) == value


@pytest.mark.parametrize("kind,value,fragment", [
    ("database", "", "non-empty"),
    ("role", None, "non-empty"),
    ("database", 5, "non-empty"),
    ("database", "a" * 64, "64 bytes"),
    ("role", "a" * 62 + "\u00e9", "64 bytes"),          # 63 characters, 64 bytes: PostgreSQL would truncate
    ("database", "\u00e9" * 32, "64 bytes"),
    ("database", "caf\u00e9", "'\u00e9'"),               # short enough, but not ASCII
    ("database", "UserDB", "uppercase"),
    ("role", "Owner", "use 'owner'"),
    ("database", 'user"db', "'\"'"),
    ("database", "user;db", "';'"),
    ("role", "user db", "' '"),
    ("database", "user'db", '"\'"'),
    ("database", "user\\db", "'\\\\'"),
    ("database", "1db", "not allowed"),
    ("database", "user-db", "not allowed"),
    ("extension", "-ext", "not allowed"),
    ("extension", "Uuid", "uppercase"),
])
def test_rejects_with_an_explanation(kind, value, fragment):
    with pytest.raises(IdentifierError) as info:
        validate_identifier(kind, value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("value", ["postgres", "public", "none", "current_user", "session_user", "current_role",
                                   "pg_monitor", "pg_anything"])
def test_rejects_reserved_roles(value):
    with pytest.raises(IdentifierError, match="reserved"):
        validate_identifier("role", value)


@pytest.mark.parametrize("value", ["postgres", "template0", "template1"])
def test_rejects_reserved_databases(value):
    with pytest.raises(IdentifierError, match="reserved"):
        validate_identifier("database", value)


def test_reserved_role_names_are_fine_as_database_names_and_vice_versa():
    assert validate_identifier("database", "pg_stuff") == "pg_stuff"
    assert validate_identifier("role", "template1") == "template1"


def test_unknown_kind_is_a_programming_error_not_user_error():
    with pytest.raises(ValueError) as info:
        validate_identifier("table", "x")
    assert not isinstance(info.value, IdentifierError)


@pytest.mark.parametrize("name,quoted", [
    ("userdb", '"userdb"'),
    ("uuid-ossp", '"uuid-ossp"'),
    ('a"b', '"a""b"'),
    ('""', '""""""'),
    ("select", '"select"'),
])
def test_quote_ident(name, quoted):
    assert quote_ident(name) == quoted


@pytest.mark.parametrize("text,quoted", [
    ("plain", "'plain'"),
    ("it's", "'it''s'"),
    ("a\\b", "E'a\\\\b'"),
    ("'\\'", "E'''\\\\'''"),
    ("", "''"),
    ("SCRAM-SHA-256$4096:c2FsdA==$a:b", "'SCRAM-SHA-256$4096:c2FsdA==$a:b'"),
])
def test_quote_literal(text, quoted):
    assert quote_literal(text) == quoted


@pytest.mark.parametrize("function", [quote_ident, quote_literal])
def test_quoting_refuses_nul(function):
    with pytest.raises(ValueError, match="NUL"):
        function("a\x00b")
