"""``python -m tests.localcluster serve --state-dir DIR``: run the test bed in the foreground.

The parent stays in the host's namespaces: it makes the network namespace and the loopback
listener, starts the cluster in a child that enters the namespace, and after the child ends (on
SIGTERM/SIGINT, or when it fails) kills whatever process is still in the namespace and deletes
it. So no process outlives ``serve``, even when the child dies abruptly. ``DIR/kubeconfig``
appears once the API server answers and the nodes are Ready; two test beds never share a port
or a namespace.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .netns import NetworkNamespace

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class ProcessGroup:
    """A cgroup holding the child and everything it starts, so all of it can be ended at once.

    Pod processes live in network and mount namespaces of their own and in sessions of their
    own; the cgroup is the one handle that finds every one of them, even when the child died
    without stopping them.
    """

    ROOT = Path("/sys/fs/cgroup/unified")

    def __init__(self, name: str) -> None:
        self.path = self.ROOT / name
        self.path.mkdir()

    def join(self) -> None:
        """Runs in the forked child before exec: move it into the cgroup."""
        (self.path / "cgroup.procs").write_text("0")

    def kill_all(self) -> None:
        if not self.path.exists():
            return
        (self.path / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + 20
        while (self.path / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.path.rmdir()


def serve(state: Path, host_port: int) -> int:
    if os.geteuid() != 0:
        print("localcluster: needs root (network namespaces, mounts, running PostgreSQL as postgres)", file=sys.stderr)
        return 2
    state.mkdir(parents=True, exist_ok=True)
    for stale in ("kubeconfig", "kubeconfig.partial"):
        (state / stale).unlink(missing_ok=True)
    netns = NetworkNamespace(f"lc-{secrets.token_hex(4)}")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", host_port))
    listener.listen(64)
    group = ProcessGroup(f"localcluster-{netns.name}")
    try:
        netns.create()
        (state / "netns").write_text(netns.name + "\n")
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.localcluster.cluster", "--state-dir", str(state), "--netns", netns.name, "--listen-fd", str(listener.fileno())],
            pass_fds=(listener.fileno(),), cwd=REPO_ROOT, preexec_fn=group.join,
        )
        listener.close()

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return child.wait()
    finally:
        listener.close()
        group.kill_all()
        netns.delete()
        shutil.rmtree(Path("/run") / f"localcluster-{netns.name}", ignore_errors=True)
        (state / "kubeconfig").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.localcluster")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="run the test bed in the foreground until SIGTERM")
    serve_cmd.add_argument("--state-dir", type=Path, required=True)
    serve_cmd.add_argument("--port", type=int, default=0, help="host loopback port of the API server (0: a free one)")
    args = parser.parse_args(argv)
    return serve(args.state_dir.resolve(), args.port)


if __name__ == "__main__":
    sys.exit(main())
