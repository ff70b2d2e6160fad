"""The backup rewritten to load beside the live databases: nothing may name a live database or change a live role."""

from __future__ import annotations

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.staging import (
    LEFTOVER,
    LoadScript,
    StagingError,
    application_databases,
    check_names,
    staged_name,
)

WHEN = "20261126_081500"
HEADER = b"--\n-- PostgreSQL database cluster dump\n--\n\n\\restrict abc\nSET client_encoding = 'UTF8';\n"
GLOBALS = (b"DROP DATABASE IF EXISTS userdb;\n"
           b"DROP ROLE IF EXISTS postgres;\n"
           b"DROP ROLE IF EXISTS userservice;\n"
           b"DROP ROLE IF EXISTS reporting;\n"
           b"CREATE ROLE postgres;\n"
           b"ALTER ROLE postgres WITH SUPERUSER PASSWORD 'SCRAM-SHA-256$4096:old';\n"
           b"CREATE ROLE userservice;\n"
           b"ALTER ROLE userservice WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:old';\n"
           b"CREATE ROLE reporting;\n"
           b"ALTER ROLE reporting WITH NOLOGIN;\n"
           b"ALTER ROLE reporting SET work_mem TO '8MB';\n"
           b"ALTER ROLE userservice SET search_path TO 'app';\n"
           b"GRANT userservice TO reporting GRANTED BY postgres;\n"
           b"GRANT reporting TO userservice GRANTED BY postgres;\n"
           b"CREATE TABLESPACE fast OWNER postgres LOCATION '/ssd';\n"
           b"\\unrestrict abc\n")
TEMPLATE1 = (b"\n--\n-- Database \"template1\" dump\n--\n\n"
             b"UPDATE pg_catalog.pg_database SET datistemplate = false WHERE datname = 'template1';\n"
             b"DROP DATABASE template1;\n"
             b"CREATE DATABASE template1 WITH TEMPLATE = template0;\n"
             b"\\connect template1\n"
             b"COMMENT ON DATABASE template1 IS 'default template';\n")
USERDB = (b"\n--\n-- Database \"userdb\" dump\n--\n\n"
          b"\\restrict def\n"
          b"--\n-- Name: userdb; Type: DATABASE; Schema: -; Owner: userservice\n--\n\n"
          b"CREATE DATABASE userdb WITH TEMPLATE = template0 ENCODING = 'UTF8';\n"
          b"ALTER DATABASE userdb OWNER TO userservice;\n"
          b"\\unrestrict def\n"
          b"\\connect userdb\n"
          b"--\n-- Name: DATABASE userdb; Type: COMMENT; Schema: -; Owner: userservice\n--\n\n"
          b"COMMENT ON DATABASE userdb IS 'users';\n"
          b"--\n-- Name: userdb; Type: DATABASE PROPERTIES; Schema: -; Owner: userservice\n--\n\n"
          b"ALTER DATABASE userdb SET work_mem TO '8MB';\n"
          b"\\connect userdb\n"
          b"--\n-- Name: f; Type: FUNCTION; Schema: public; Owner: userservice\n--\n\n"
          b"CREATE FUNCTION public.f() RETURNS void LANGUAGE sql AS $$\n"
          b"ALTER DATABASE userdb SET work_mem TO '1MB';\n"
          b"$$;\n"
          b"--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: userservice\n--\n\n"
          b"COPY public.t (id, v) FROM stdin;\n"
          b"1\tDROP DATABASE IF EXISTS userdb;\n"
          b"2\t\\connect userdb\n"
          b"\\.\n"
          b"--\n-- Data for Name: Empty; Type: TABLE DATA; Schema: public; Owner: userservice\n--\n\n"
          b'COPY public."Empty" (id) FROM stdin;\n'
          b"\\.\n"
          b"--\n-- Name: DATABASE userdb; Type: ACL; Schema: -; Owner: userservice\n--\n\n"
          b"REVOKE CONNECT,TEMPORARY ON DATABASE userdb FROM PUBLIC;\n"
          b"GRANT CONNECT ON DATABASE userdb TO userservice;\n")
FOOTER = b"--\n-- PostgreSQL database cluster dump complete\n--\n\n"
SCRIPT = HEADER + GLOBALS + TEMPLATE1 + USERDB + FOOTER
STAGED = staged_name("userdb", "restoring", WHEN).encode()


def load(existing=("postgres", "userservice")) -> tuple[bytes, LoadScript]:
    script = LoadScript(existing_roles=frozenset(existing), when=WHEN)
    return b"".join(script.lines(SCRIPT.splitlines(keepends=True))), script


def statements(text: bytes) -> list[bytes]:
    skipped = (b"--", b"SET ", b"\\restrict", b"\\unrestrict")
    return [line for line in text.splitlines() if line and not line.startswith(skipped)]


def test_nothing_drops_or_alters_what_the_server_has() -> None:
    text, script = load()
    assert b"DROP " not in text.replace(b"1\tDROP DATABASE IF EXISTS userdb;\n", b"")
    assert b"ALTER ROLE postgres" not in text and b"ALTER ROLE userservice" not in text
    assert b"GRANT reporting TO userservice" not in text
    assert b"TABLESPACE" not in text
    assert script.created_roles == ["reporting"]


def test_a_missing_role_is_created_as_the_backup_has_it() -> None:
    text = load()[0]
    assert statements(text)[:4] == [b"CREATE ROLE reporting;", b"ALTER ROLE reporting WITH NOLOGIN;",
                                    b"ALTER ROLE reporting SET work_mem TO '8MB';",
                                    b"GRANT userservice TO reporting GRANTED BY postgres;"]


def test_the_servers_own_databases_are_left_out_whole() -> None:
    text = load()[0]
    assert b"template1" not in text


def test_every_line_naming_the_database_names_the_staged_copy() -> None:
    text = load()[0]
    for line in (b"CREATE DATABASE " + STAGED + b" WITH TEMPLATE = template0 ENCODING = 'UTF8';",
                 b"ALTER DATABASE " + STAGED + b" OWNER TO userservice;",
                 b"COMMENT ON DATABASE " + STAGED + b" IS 'users';",
                 b"ALTER DATABASE " + STAGED + b" SET work_mem TO '8MB';",
                 b"REVOKE CONNECT,TEMPORARY ON DATABASE " + STAGED + b" FROM PUBLIC;",
                 b"GRANT CONNECT ON DATABASE " + STAGED + b" TO userservice;"):
        assert line in text.splitlines(), line
    assert text.count(b"\\connect " + STAGED + b"\n") == 2
    untouched = {b"ALTER DATABASE userdb SET work_mem TO '1MB';", b"1\tDROP DATABASE IF EXISTS userdb;", b"2\t\\connect userdb"}
    assert [line for line in statements(text) if b"userdb" in line and b"userdb__" not in line] == sorted(
        untouched, key=text.index)


def test_function_bodies_and_table_data_are_never_rewritten() -> None:
    text = load()[0]
    assert b"ALTER DATABASE userdb SET work_mem TO '1MB';\n" in text
    assert b"1\tDROP DATABASE IF EXISTS userdb;\n2\t\\connect userdb\n\\.\n" in text


def test_rows_are_counted_per_table_as_the_data_passes() -> None:
    script = load()[1]
    assert script.row_counts == {"userdb": {"public.t": 2, 'public."Empty"': 0}}


@pytest.mark.parametrize("database", ["Odd db", "x" * 40])
def test_a_name_that_cannot_take_the_suffix_is_refused_naming_it(database: str) -> None:
    with pytest.raises(StagingError, match=f"database {database!r} of the backup cannot be restored"):
        check_names(["userdb", database], WHEN)


def test_leftover_names_are_recognised() -> None:
    assert LEFTOVER.match(staged_name("userdb", "replaced", WHEN)).group(1, 2) == ("userdb", "replaced")
    assert not LEFTOVER.match("userdb__replaced_later")


def test_leftovers_of_earlier_restores_in_a_backup_are_not_restored() -> None:
    kept = USERDB.replace(b"userdb", staged_name("userdb", "replaced", "20250101_000000").encode())
    script = LoadScript(existing_roles=frozenset({"postgres", "userservice"}), when=WHEN)
    text = b"".join(script.lines((HEADER + GLOBALS + USERDB + kept + FOOTER).splitlines(keepends=True)))
    assert b"20250101_000000" not in text and list(script.row_counts) == ["userdb"]
    assert application_databases(["template1", "userdb", "userdb__replaced_20250101_000000"]) == ["userdb"]
