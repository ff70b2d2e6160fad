"""Benchmark: microservices.postgres.service_databases against today's way and against the floor.

For N = 5, 50 and 200 service databases (each with its owner login role and a password), on a
fresh PostgreSQL 15 server per scenario, it measures the wall time of a first run and of a
no-op re-run for:

* module: one ``ansible-playbook`` run with one ``microservices.postgres.service_databases`` task;
* anchor: an ``ansible-playbook`` loop of ``community.postgresql.postgresql_user`` +
  ``community.postgresql.postgresql_db`` (how platform teams do it today);
* floor: the same SQL through one ``psql`` session plus an ``ansible-playbook`` run of one
  ``ansible.builtin.debug`` task (no-op re-run: one catalog read through ``psql`` plus the
  no-op task).

Run it with ``make bench``; it writes ``docs/benchmarks.md``. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SIZES = (5, 50, 200)
SCENARIOS = ("module", "anchor", "floor")
RECAP_LINE = re.compile(r"^\S+\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
                        r"failed=(?P<failed>\d+)", re.MULTILINE)

# Targets of issue 2, checked at N = 50.
TARGET_N = 50
TARGET_FIRST_VS_ANCHOR = 8.0      # module first run at least 8x faster than the anchor
TARGET_FIRST_VS_FLOOR = 1.5       # ... and within 1.5x of the floor
TARGET_NOOP_VS_ANCHOR = 20.0      # no-op re-run at least 20x faster than the anchor
TARGET_PER_SERVICE_NOOP_MS = 5.0  # "close to zero": below 5 ms per extra service on the re-run


# --------------------------------------------------------------------------------------------
# Results and report (pure functions, unit-tested in tests/benchmarks/test_bench_report.py)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Measurement:
    """Wall times in seconds of one scenario at one size."""

    scenario: str
    n: int
    first: float
    noop: float
    noop_changed: int = 0  # changed tasks reported by the re-run (0 = a true no-op)


@dataclass
class Results:
    measurements: list[Measurement] = field(default_factory=list)

    def get(self, scenario: str, n: int) -> Measurement | None:
        for item in self.measurements:
            if item.scenario == scenario and item.n == n:
                return item
        return None

    def sizes(self) -> list[int]:
        return sorted({item.n for item in self.measurements})


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def per_extra_service_ms(results: Results, scenario: str, low: int, high: int, phase: str = "noop") -> float | None:
    """Cost in milliseconds of each service added between N=low and N=high."""
    a, b = results.get(scenario, low), results.get(scenario, high)
    if a is None or b is None or high == low:
        return None
    return (getattr(b, phase) - getattr(a, phase)) / (high - low) * 1000.0


@dataclass(frozen=True)
class Verdict:
    name: str
    value: str
    target: str
    holds: bool


def evaluate_targets(results: Results, n: int = TARGET_N, low: int = 50, high: int = 200) -> list[Verdict]:
    module, anchor, floor = (results.get(s, n) for s in SCENARIOS)
    verdicts: list[Verdict] = []
    if module and anchor:
        speedup = ratio(anchor.first, module.first)
        verdicts.append(Verdict(f"first run, N={n}: anchor / module", f"{speedup:.1f}x",
                                f">= {TARGET_FIRST_VS_ANCHOR:g}x", speedup >= TARGET_FIRST_VS_ANCHOR))
        speedup = ratio(anchor.noop, module.noop)
        verdicts.append(Verdict(f"no-op re-run, N={n}: anchor / module", f"{speedup:.1f}x",
                                f">= {TARGET_NOOP_VS_ANCHOR:g}x", speedup >= TARGET_NOOP_VS_ANCHOR))
    if module and floor:
        slowdown = ratio(module.first, floor.first)
        verdicts.append(Verdict(f"first run, N={n}: module / floor", f"{slowdown:.2f}x",
                                f"<= {TARGET_FIRST_VS_FLOOR:g}x", slowdown <= TARGET_FIRST_VS_FLOOR))
    cost = per_extra_service_ms(results, "module", low, high)
    if cost is not None:
        verdicts.append(Verdict(f"no-op re-run cost per extra service, N={low}..{high}", f"{cost:.2f} ms",
                                f"~0 (< {TARGET_PER_SERVICE_NOOP_MS:g} ms)", cost < TARGET_PER_SERVICE_NOOP_MS))
    return verdicts


def render_markdown(results: Results, machine: dict[str, str], when: str, repeat: int = 1,
                    notes: list[str] | None = None) -> str:
    lines = [
        "# Benchmark: `service_databases` vs. `community.postgresql` vs. raw `psql`",
        "",
        f"Measured {when} with `make bench` (`tests/benchmarks/bench_service_databases.py`).",
        "",
        "Each scenario runs on its own fresh PostgreSQL 15 server (throwaway, `tests/support/pgserver.py`) and creates",
        "N databases, each owned by its own login role with a password, then runs again with the same input",
        "(no-op re-run). Times are wall-clock seconds of whole `ansible-playbook` / `psql` runs"
        f"{'' if repeat <= 1 else f' (fastest of {repeat} runs, each on a fresh server)'}.",
        "",
        "- **module**: one `ansible-playbook` run with one `microservices.postgres.service_databases` task",
        "  (one catalog read, one write batch, SCRAM verifiers computed on the controller).",
        "- **anchor**: `ansible-playbook` with a loop of `community.postgresql.postgresql_user` + "
        "`community.postgresql.postgresql_db` (the way it is done today).",
        "- **floor**: the same SQL (CREATE ROLE with a SCRAM verifier, CREATE DATABASE, REVOKE CONNECT) through one",
        "  `psql` session, plus one `ansible-playbook` run of a single `ansible.builtin.debug` task; its no-op",
        "  re-run is one catalog read through `psql` plus the same no-op task.",
        "",
        "| N | scenario | first run (s) | no-op re-run (s) | first: anchor / this | first: this / floor "
        "| re-run: anchor / this | re-run: this / floor |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in results.sizes():
        anchor, floor = results.get("anchor", n), results.get("floor", n)
        for scenario in SCENARIOS:
            item = results.get(scenario, n)
            if item is None:
                continue
            noop = f"{item.noop:.2f}" + (f" (changed={item.noop_changed})" if item.noop_changed else "")
            cells = [str(n), scenario, f"{item.first:.2f}", noop]
            cells += [
                f"{ratio(anchor.first, item.first):.1f}x" if anchor else "-",
                f"{ratio(item.first, floor.first):.2f}x" if floor else "-",
                f"{ratio(anchor.noop, item.noop):.1f}x" if anchor else "-",
                f"{ratio(item.noop, floor.noop):.2f}x" if floor else "-",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    sizes = results.sizes()
    if len(sizes) >= 2:
        low, high = (50, 200) if {50, 200} <= set(sizes) else (sizes[-2], sizes[-1])
        lines += ["", f"Cost per extra service between N={low} and N={high} (milliseconds):", "",
                  "| scenario | first run | no-op re-run |", "|---|---:|---:|"]
        for scenario in SCENARIOS:
            first = per_extra_service_ms(results, scenario, low, high, "first")
            noop = per_extra_service_ms(results, scenario, low, high, "noop")
            if first is not None and noop is not None:
                lines.append(f"| {scenario} | {first:.1f} | {noop:.1f} |")
    verdicts = evaluate_targets(results)
    if verdicts:
        lines += ["", "## Targets (issue 2)", "", "| target | measured | wanted | holds |", "|---|---:|---:|---|"]
        lines += [f"| {v.name} | {v.value} | {v.target} | {'yes' if v.holds else '**no**'} |" for v in verdicts]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    lines += ["", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    lines += ["", "Re-run the benchmark with `make bench`; numbers vary with the machine and its load.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------

def services(n: int) -> list[dict[str, str]]:
    return [
        {"database": f"bench{i:03d}db", "owner": f"bench{i:03d}service", "password": f"bench-only-password-{i:03d}"}
        for i in range(n)
    ]


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """SCRAM-SHA-256 verifier as PostgreSQL stores it (ASCII passwords: SASLprep is the identity)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def floor_sql(items: list[dict[str, str]]) -> str:
    """What the module runs on an empty server, for the same services (names are plain identifiers)."""
    statements = []
    for item in items:
        statements.append(f"CREATE ROLE \"{item['owner']}\" LOGIN PASSWORD '{scram_verifier(item['password'])}';")
    for item in items:
        db, owner = item["database"], item["owner"]
        statements.append(f"CREATE DATABASE \"{db}\" OWNER \"{owner}\" TEMPLATE template0 ENCODING 'UTF8';")
        statements.append(f"REVOKE CONNECT ON DATABASE \"{db}\" FROM PUBLIC;")
    return "\n".join(statements) + "\n"


def floor_catalog_sql(items: list[dict[str, str]]) -> str:
    """One catalog read of the named roles, their verifiers and databases (what a no-op needs to know)."""
    roles = ", ".join(f"'{item['owner']}'" for item in items)
    dbs = ", ".join(f"'{item['database']}'" for item in items)
    return (
        "SELECT json_build_object("
        "'roles', (SELECT json_agg(json_build_object('name', a.rolname, 'login', a.rolcanlogin, "
        f"'superuser', a.rolsuper, 'verifier', a.rolpassword)) FROM pg_authid a WHERE a.rolname IN ({roles})), "
        "'databases', (SELECT json_agg(json_build_object('name', d.datname, 'owner', pg_get_userbyid(d.datdba), "
        "'encoding', pg_encoding_to_char(d.encoding), 'connection_limit', d.datconnlimit, 'acl', d.datacl::text[])) "
        f"FROM pg_database d WHERE d.datname IN ({dbs})));\n"
    )


MODULE_PLAY = """---
- name: Benchmark - service_databases
  hosts: bench
  gather_facts: false
  tasks:
    - name: Converge the service databases
      microservices.postgres.service_databases:
        services: "{{ bench_services }}"
"""

ANCHOR_PLAY = """---
- name: Benchmark - community.postgresql loop
  hosts: bench
  gather_facts: false
  tasks:
    - name: Ensure the owner roles
      community.postgresql.postgresql_user:
        name: "{{ item.owner }}"
        password: "{{ item.password }}"
        login_host: "{{ lookup('ansible.builtin.env', 'PGHOST') }}"
        login_port: "{{ lookup('ansible.builtin.env', 'PGPORT') }}"
        login_user: "{{ lookup('ansible.builtin.env', 'PGUSER') }}"
        login_password: "{{ lookup('ansible.builtin.env', 'PGPASSWORD') }}"
      loop: "{{ bench_services }}"
      loop_control:
        label: "{{ item.owner }}"
    - name: Ensure the databases
      community.postgresql.postgresql_db:
        name: "{{ item.database }}"
        owner: "{{ item.owner }}"
        encoding: UTF8
        template: template0
        login_host: "{{ lookup('ansible.builtin.env', 'PGHOST') }}"
        login_port: "{{ lookup('ansible.builtin.env', 'PGPORT') }}"
        login_user: "{{ lookup('ansible.builtin.env', 'PGUSER') }}"
        login_password: "{{ lookup('ansible.builtin.env', 'PGPASSWORD') }}"
      loop: "{{ bench_services }}"
      loop_control:
        label: "{{ item.database }}"
"""

NOOP_PLAY = """---
- name: Benchmark - one no-op task
  hosts: bench
  gather_facts: false
  tasks:
    - name: Do nothing
      ansible.builtin.debug:
        msg: noop
"""


class Bench:
    def __init__(self, workdir: Path, verbose: bool = True) -> None:
        self.workdir = workdir
        self.verbose = verbose
        self.venv_bin = Path(sys.executable).parent
        inventory = workdir / "inventory.ini"
        inventory.write_text(
            "[bench]\nbench-host ansible_connection=local "
            f"ansible_python_interpreter={sys.executable}\n"
        )
        self.inventory = inventory
        for name, text in (("module.yml", MODULE_PLAY), ("anchor.yml", ANCHOR_PLAY), ("noop.yml", NOOP_PLAY)):
            (workdir / name).write_text(text)

    def log(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)

    def _env(self, server_env: dict[str, str]) -> dict[str, str]:
        env = {**os.environ, **server_env}
        env.pop("ANSIBLE_CONFIG", None)
        env["PATH"] = f"{self.venv_bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def playbook(self, name: str, server_env: dict[str, str], extra_vars: Path | None = None) -> tuple[float, int]:
        """Run a playbook from the repository root (its ansible.cfg applies); return (seconds, changed)."""
        argv = [str(self.venv_bin / "ansible-playbook"), "-i", str(self.inventory), str(self.workdir / name)]
        if extra_vars is not None:
            argv += ["-e", f"@{extra_vars}"]
        started = time.perf_counter()
        proc = run_command(argv, cwd=REPO_ROOT, env=self._env(server_env))
        elapsed = time.perf_counter() - started
        match = RECAP_LINE.search(proc.stdout)
        if proc.returncode != 0 or match is None:
            raise RuntimeError(f"{name} failed (exit code {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        return elapsed, int(match["changed"])

    def psql_file(self, server, sql: str, name: str) -> float:
        path = self.workdir / name
        path.write_text(sql)
        argv = [str(Path(server.info.bindir) / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres",
                "-f", str(path)]
        started = time.perf_counter()
        proc = run_command(argv, env=self._env(server.info.env()))
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"psql {name} failed: {proc.stderr[-2000:]}")
        return elapsed

    @staticmethod
    def count_databases(server, items: list[dict[str, str]]) -> int:
        names = ", ".join(f"'{item['database']}'" for item in items)
        out = server.psql(f"SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                          f"WHERE d.datname IN ({names}) AND r.rolname LIKE 'bench%service' AND r.rolcanlogin")
        return int(out.strip())

    def run(self, scenario: str, n: int) -> Measurement:
        from tests.support.pgserver import PgServer  # pylint: disable=import-outside-toplevel

        items = services(n)
        extra_vars = self.workdir / f"services-{n}.json"
        extra_vars.write_text(json.dumps({"bench_services": items}))
        server = PgServer(15, base_dir=Path(tempfile.mkdtemp(prefix=f"bench-{scenario}-{n}-")), log_statements=False)
        server.start()
        try:
            env = server.info.env()
            if scenario == "module":
                first, changed_first = self.playbook("module.yml", env, extra_vars)
                noop, changed = self.playbook("module.yml", env, extra_vars)
            elif scenario == "anchor":
                first, changed_first = self.playbook("anchor.yml", env, extra_vars)
                noop, changed = self.playbook("anchor.yml", env, extra_vars)
            else:
                sql = floor_sql(items)  # verifiers computed before the clock starts: a strict floor
                first = self.psql_file(server, sql, f"floor-{n}.sql")
                seconds, changed_first = self.playbook("noop.yml", env)
                first += seconds
                noop = self.psql_file(server, floor_catalog_sql(items), f"floor-catalog-{n}.sql")
                seconds, changed = self.playbook("noop.yml", env)
                noop += seconds
                changed_first = 1
            if scenario != "floor" and not changed_first:
                raise RuntimeError(f"{scenario} N={n}: the first run reported no change")
            found = self.count_databases(server, items)
            if found != n:
                raise RuntimeError(f"{scenario} N={n}: {found} of {n} databases exist with their login owner")
        finally:
            server.stop()
        self.log(f"  {scenario:>6} N={n:<3}  first {first:7.2f} s   no-op re-run {noop:7.2f} s"
                 + (f"  (re-run reported changed={changed})" if changed else ""))
        return Measurement(scenario, n, first, noop, changed)


def run_command(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run in its own process group, so an interrupted benchmark leaves no ansible workers behind."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                          **kwargs) as proc:
        try:
            stdout, stderr = proc.communicate()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def machine_facts() -> dict[str, str]:
    def cpu_model() -> str:
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or "unknown"

    def memory() -> str:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        except OSError:
            pass
        return "unknown"

    def version_of(argv: list[str]) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "unknown"

    def collection_version(name: str) -> str:
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "list", name,
                               "--format", "json"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        try:
            for found in json.loads(proc.stdout).values():
                if name in found:
                    return found[name]["version"]
        except (ValueError, AttributeError):
            pass
        return "unknown"

    from importlib.metadata import version  # pylint: disable=import-outside-toplevel
    from tests.support.pgserver import bindir_for  # pylint: disable=import-outside-toplevel

    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "load average (1/5/15 min) when the report was written": load,
        "CPU": f"{cpu_model()} ({os.cpu_count()} logical CPUs, `nproc` {version_of(['nproc'])})",
        "memory": memory(),
        "OS": f"{platform.platform()} ({version_of(['cat', '/etc/debian_version'])} Debian)"
        if Path("/etc/debian_version").exists() else platform.platform(),
        "Python": platform.python_version(),
        "ansible-core": version("ansible-core"),
        "ansible": version("ansible"),
        "psycopg": version("psycopg"),
        "community.postgresql": collection_version("community.postgresql"),
        "PostgreSQL": version_of([str(bindir_for(15) / "postgres"), "--version"]),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each scenario this many times (fresh server each) and keep the fastest")
    args = parser.parse_args(argv)
    # `kill` of the benchmark still stops the throwaway servers (the `finally` in Bench.run).
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))

    workroot = REPO_ROOT / ".work"
    workroot.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=workroot))
    bench = Bench(workdir)
    results = Results()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Benchmark ({', '.join(args.scenarios)}) for N = {', '.join(map(str, args.sizes))}; work dir {workdir}",
          flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = ""
    busiest = os.getloadavg()[0]
    for n in args.sizes:
        for scenario in args.scenarios:
            runs = [bench.run(scenario, n) for _attempt in range(max(1, args.repeat))]
            results.measurements.append(min(runs, key=lambda item: item.first + item.noop))
            busiest = max(busiest, os.getloadavg()[0])
            notes = []
            if busiest > (os.cpu_count() or 1):
                notes.append(f"The machine was busy during the run (1-minute load average up to {busiest:.1f} on "
                             f"{os.cpu_count()} CPUs, from other work): absolute times are inflated and the ratios "
                             "are noisy. Re-run `make bench` on an idle machine for representative numbers.")
            # Written after every measurement, so an interrupted run still leaves what it measured.
            report = render_markdown(results, machine_facts(), when, args.repeat, notes)
            args.output.write_text(report)
    print()
    print(report)
    print(f"Written to {args.output}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
