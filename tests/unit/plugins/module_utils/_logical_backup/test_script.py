"""Telling SQL lines from COPY data, and what a dump creates."""

from __future__ import annotations

from ansible_collections.microservices.postgres.plugins.module_utils._logical_backup.script import (
    DumpContents,
    sql_lines,
    unquote,
)

DUMP = [
    b"CREATE ROLE postgres;\n",
    b'CREATE ROLE "Odd ""name""";\n',
    b"CREATE DATABASE userdb WITH TEMPLATE = template0 ENCODING = 'UTF8';\n",
    b"COPY public.t (id, v) FROM stdin;\n",
    b"1\tCREATE DATABASE fake WITH nothing\n",
    b"2\tDROP DATABASE IF EXISTS userdb;\n",
    b"\\.\n",
    b'CREATE DATABASE "My DB" WITH TEMPLATE = template0;\n',
]


def test_sql_lines_marks_copy_data_until_the_end_marker() -> None:
    assert [is_sql for _line, is_sql in sql_lines(DUMP)] == [True, True, True, True, False, False, False, True]


def test_dump_contents_ignore_copy_data_and_unquote_names() -> None:
    contents = DumpContents()
    for line, is_sql in sql_lines(DUMP):
        if is_sql:
            contents.scan(line)
    assert contents.databases == ["userdb", "My DB"]
    assert contents.roles == ["postgres", 'Odd "name"']


def test_unquote() -> None:
    assert unquote(b"userdb") == "userdb"
    assert unquote(b'"a""b"') == 'a"b'
