"""Telling pg_dumpall's own lines from function bodies and table data, and what a dump creates.

DUMP follows the shape of real ``pg_dumpall --clean --if-exists`` output of PostgreSQL 15 (trimmed):
globals, then per database pg_dump's creation part up to ``\\connect`` and its objects, with a
function body and table data holding lines that look like pg_dumpall's own.
"""

from __future__ import annotations

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.script import (
    COPY_DATA,
    CREATION,
    GLOBALS,
    OBJECTS,
    DumpContents,
    dump_parts,
    shown,
    unquote,
)

DUMP = [
    b"--\n", b"-- PostgreSQL database cluster dump\n", b"--\n", b"\n",
    b"DROP DATABASE IF EXISTS userdb;\n",
    b"DROP ROLE IF EXISTS postgres;\n",
    b"CREATE ROLE postgres;\n",
    b'CREATE ROLE "Odd ""name""";\n',
    b"\n", b"--\n", b'-- Database "template1" dump\n', b"--\n", b"\n",
    b"DROP DATABASE template1;\n",
    b"CREATE DATABASE template1 WITH TEMPLATE = template0 ENCODING = 'UTF8';\n",
    b"\\connect template1\n",
    b"\n", b"--\n", b'-- Database "userdb" dump\n', b"--\n", b"\n",
    b"CREATE DATABASE userdb WITH TEMPLATE = template0 ENCODING = 'UTF8';\n",
    b"\\connect userdb\n",
    b"CREATE FUNCTION public.g() RETURNS text\n",
    b"    LANGUAGE sql\n",
    b"    AS $$\n",
    b"DROP ROLE IF EXISTS postgres;\n",
    b"COPY t FROM stdin;\n",
    b"DROP DATABASE IF EXISTS userdb;\n",
    b"CREATE DATABASE fake WITH nothing\n",
    b"$$;\n",
    b"--\n", b"-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n", b"--\n", b"\n",
    b"COPY public.t (id, v) FROM stdin;\n",
    b"1\tCREATE DATABASE fake WITH nothing\n",
    b"2\t-- Database \"x\" dump\n",
    b"\\.\n",
    b"--\n", b"-- PostgreSQL database cluster dump complete\n", b"--\n",
]


def _parts() -> dict[bytes, list[str]]:
    found: dict[bytes, list[str]] = {}
    for line, part in dump_parts(DUMP):
        found.setdefault(line, []).append(part)
    return found


def test_globals_end_at_the_first_database_header() -> None:
    parts = _parts()
    assert parts[b"DROP DATABASE IF EXISTS userdb;\n"] == [GLOBALS, OBJECTS]
    assert parts[b"CREATE ROLE postgres;\n"] == [GLOBALS]
    assert parts[b"DROP ROLE IF EXISTS postgres;\n"] == [GLOBALS, OBJECTS]


def test_a_database_is_created_up_to_its_first_connect() -> None:
    parts = _parts()
    assert parts[b"DROP DATABASE template1;\n"] == [CREATION]
    assert parts[b"\\connect template1\n"] == [OBJECTS]
    assert parts[b"CREATE DATABASE userdb WITH TEMPLATE = template0 ENCODING = 'UTF8';\n"] == [CREATION]


def test_copy_inside_a_function_body_is_not_table_data() -> None:
    parts = _parts()
    assert parts[b"COPY t FROM stdin;\n"] == [OBJECTS]
    assert parts[b"$$;\n"] == [OBJECTS]


def test_table_data_runs_from_pg_dumps_copy_to_the_end_marker() -> None:
    labelled = list(dump_parts(DUMP))
    start = labelled.index((b"COPY public.t (id, v) FROM stdin;\n", OBJECTS))
    assert [part for _line, part in labelled[start + 1:start + 4]] == [COPY_DATA] * 3
    assert labelled[start + 4] == (b"--\n", OBJECTS)


def test_dump_contents_take_only_pg_dumpalls_own_lines_and_unquote_names() -> None:
    contents = DumpContents()
    for line, part in dump_parts(DUMP):
        contents.scan(line, part)
    assert contents.databases == ["template1", "userdb"]
    assert contents.roles == ["postgres", 'Odd "name"']


def test_unquote() -> None:
    assert unquote(b"userdb") == "userdb"
    assert unquote(b'"a""b"') == 'a"b'


def test_a_name_that_is_not_utf8_neither_fails_nor_equals_a_text_name() -> None:
    name = unquote(b'"caf\xe9"')
    assert name != "caf\u00e9"
    assert shown(name) == "caf\ufffd"
