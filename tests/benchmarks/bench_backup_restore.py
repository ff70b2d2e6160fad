"""Benchmark: dev backup.yml and restore.yml against `kubectl exec ... pg_dumpall | gzip` (and its reverse).

One kubesim test bed, dev deployed once; userdb grows to each size in turn (a table of md5 rows). For each
size, four timed runs, each under GNU time (`%e %M`: wall seconds and the peak resident memory of the
largest process of the run, ansible's module process included):

- floor backup: `kubectl exec postgresql-0 -- pg_dumpall --clean --if-exists | gzip > file`
- backup.yml:   `ansible-playbook playbooks/backup.yml -i inventories/dev`
- floor restore: `gunzip -c file | kubectl exec -i postgresql-0 -- psql -f -` (replays over the live server)
- restore.yml:  `ansible-playbook playbooks/restore.yml -i inventories/dev` (load, verify, safety dump, swap),
  followed by an untimed cleanup=true run that drops the replaced copy.

The results replace the section between the markers in docs/benchmarks.md (the service_databases benchmark
writes the rest of the file).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.day2.helpers import INVENTORIES, PLAYBOOKS, run_playbook  # noqa: E402  pylint: disable=wrong-import-position
from tests.roles.helpers import VENV_BIN, base_env, kubectl_path  # noqa: E402  pylint: disable=wrong-import-position

START, END = "<!-- bench_backup_restore:start -->", "<!-- bench_backup_restore:end -->"
POD = ["-n", "microservices", "postgresql-0", "-c", "postgresql"]
BYTES_PER_ROW = 110
"""Rough on-disk size of one generated row (bigint, two md5 texts, timestamptz, tuple header)."""


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of the largest process of ``argv``'s run, measured by GNU time."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".time") as report:
        proc = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%e %M", *argv], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)[:200]} failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-3000:]}")
        seconds, kib = report.read().split()[-2:]
    return float(seconds), int(kib)


def psql(kubeconfig: Path, sql: str, database: str = "userdb") -> str:
    proc = subprocess.run([kubectl_path(), "--kubeconfig", str(kubeconfig), "exec", *POD, "--", "psql", "-X", "-q", "-A",
                           "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", database, "-c", sql],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def grow(kubeconfig: Path, megabytes: int) -> int:
    """Grow userdb's bench table until the database is about ``megabytes`` large; returns its size in bytes."""
    psql(kubeconfig, "CREATE TABLE IF NOT EXISTS bench_rows (id bigint PRIMARY KEY, a text, b text, at timestamptz)")
    have = int(psql(kubeconfig, "SELECT coalesce(max(id), 0) FROM bench_rows"))
    size = int(psql(kubeconfig, "SELECT pg_database_size(current_database())"))
    missing = max(megabytes * 1024 * 1024 - size, 0) // BYTES_PER_ROW
    step = 2_000_000
    for first in range(have + 1, have + missing + 1, step):
        last = min(first + step - 1, have + missing)
        psql(kubeconfig, f"INSERT INTO bench_rows SELECT g, md5(g::text), md5((g * 7)::text), "
                         f"timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series({first}, {last}) g")
    psql(kubeconfig, "VACUUM ANALYZE bench_rows")
    return int(psql(kubeconfig, "SELECT pg_database_size(current_database())"))


def measure(kubeconfig: Path, work: Path, megabytes: int) -> dict[str, tuple[float, int]]:
    env = base_env(K8S_AUTH_KUBECONFIG=str(kubeconfig), KUBECONFIG=str(kubeconfig))
    kubectl = f"{kubectl_path()} --kubeconfig {kubeconfig}"
    floor_file = work / f"floor-{megabytes}.sql.gz"
    backups = work / f"backups-{megabytes}"
    results: dict[str, tuple[float, int]] = {}
    seconds, kib = timed(["sh", "-c", f"{kubectl} exec {' '.join(POD)} -- pg_dumpall --clean --if-exists -U postgres"
                                      f" | gzip > {floor_file}"], env)
    results["floor backup"] = (seconds, kib)
    long_exec = '{"postgres_dev_exec_timeout": 7200}'
    seconds, kib = timed([str(VENV_BIN / "ansible-playbook"), str(PLAYBOOKS / "backup.yml"), "-i",
                          str(INVENTORIES["dev"]), "-e", f"backup_dir={backups}", "-e", long_exec], env)
    results["backup.yml"] = (seconds, kib)
    (backup,) = sorted(backups.glob("dev-postgres-2*.sql.gz"))
    seconds, kib = timed(["sh", "-c", f"gunzip -c {floor_file} | {kubectl} exec -i {' '.join(POD)} -- "
                                      f"psql -X -q -U postgres -d postgres -f - > /dev/null 2>&1"], env)
    results["floor restore"] = (seconds, kib)
    seconds, kib = timed([str(VENV_BIN / "ansible-playbook"), str(PLAYBOOKS / "restore.yml"), "-i",
                          str(INVENTORIES["dev"]), "-e", f"backup_file={backup}", "-e", "confirm_restore=true",
                          "-e", "restore_timeout=7200", "-e", long_exec], env)
    results["restore.yml"] = (seconds, kib)
    cleanup = run_playbook("restore", "dev", kubeconfig, extra_vars={"cleanup": True, "confirm_restore": True})
    if cleanup.returncode != 0:
        raise RuntimeError(f"cleanup failed: {(cleanup.stdout + cleanup.stderr)[-3000:]}")
    for path in [floor_file, *backups.iterdir()]:
        path.unlink()
    return results


def report(rows: list[tuple[int, int, dict[str, tuple[float, int]]]], note: str) -> str:
    lines = [START, "", "# Benchmark: dev backup and restore vs. `kubectl exec ... pg_dumpall | gzip`", "",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `make bench` "
             "(`tests/benchmarks/bench_backup_restore.py`), on the kubesim test bed (dev deployed once; userdb grown "
             "to each size with a table of md5 rows), on a shared 2-core machine.", "",
             "Wall seconds and peak resident memory of the largest process of each run (GNU time `%M`: for the "
             "playbooks that is the module's process or ansible-playbook itself). Floor backup: `kubectl exec "
             "postgresql-0 -- pg_dumpall --clean --if-exists | gzip > file`; floor restore: `gunzip -c file | "
             "kubectl exec -i postgresql-0 -- psql -f -` over the live server. restore.yml loads beside the live "
             "databases, verifies row counts, takes a safety dump (a second full dump) and swaps; its figure includes "
             "all of that. Target: within 2x of the floor, memory flat in the size.", "",
             "| database | run | wall (s) | peak RSS (MiB) | time / floor | memory / floor |",
             "|---:|---|---:|---:|---:|---:|"]
    for megabytes, size, results in rows:
        for kind in ("backup", "restore"):
            floor_s, floor_kib = results[f"floor {kind}"]
            for name in (f"floor {kind}", f"{kind}.yml"):
                seconds, kib = results[name]
                lines.append(f"| {megabytes} MB ({size / 1048576:.0f} MiB) | {name} | {seconds:.1f} | {kib / 1024:.0f} | "
                             f"{seconds / floor_s:.2f}x | {kib / floor_kib:.2f}x |")
    lines += ["", note, "", END, ""]
    return "\n".join(lines)


def write_section(output: Path, section: str) -> None:
    text = output.read_text() if output.exists() else ""
    if START in text and END in text:
        text = text[:text.index(START)] + section + text[text.index(END) + len(END) + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    output.write_text(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--sizes", default="64,256,1024", help="database sizes in MB, comma-separated")
    args = parser.parse_args(argv)
    from tests.kubesim.server import KubeSim  # pylint: disable=import-outside-toplevel

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp, KubeSim(Path(tmp) / "kubesim") as sim:
        kubeconfig = Path(sim.kubeconfig_path)
        deploy = run_playbook("deploy", "dev", kubeconfig)
        if deploy.returncode != 0:
            raise RuntimeError(f"deploy failed: {(deploy.stdout + deploy.stderr)[-3000:]}")
        for megabytes in (int(size) for size in args.sizes.split(",")):
            started = time.monotonic()
            size = grow(kubeconfig, megabytes)
            print(f"{megabytes} MB: database {size} bytes, grown in {time.monotonic() - started:.0f} s", flush=True)
            results = measure(kubeconfig, Path(tmp), megabytes)
            print(f"{megabytes} MB: {results}", flush=True)
            rows.append((megabytes, size, results))
            write_section(args.output, report(rows, "Sizes not listed were not reached in this run."))
    write_section(args.output, report(rows, ""))
    print(f"Written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
