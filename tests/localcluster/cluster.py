"""The test bed inside its network namespace: control plane, kwok, pod runner, host forwarder.

Runs in the child process that ``serve`` starts (``python -m tests.localcluster.cluster``): it
enters the namespace before any thread exists, starts everything in order, writes the host's
kubeconfig last (its existence means "ready") and, on SIGTERM, stops what it started in reverse.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .binaries import Binaries
from .controlplane import API_PORT, start_control_plane
from .forward import forward_forever
from .kubeconfig import write_kubeconfig
from .kwok import start_kwok
from .netns import NetworkNamespace
from .pki import PKI
from .pods.runner import PodRunner
from .processes import Supervisor

LOG = logging.getLogger("localcluster")
COMPONENTS = Path(__file__).resolve().parent / "components"


class Kubectl:
    """The pinned kubectl with the administrator's kubeconfig; raises with kubectl's message."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, input_data: Any = None) -> str:
        result = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            input=None if input_data is None else json.dumps(input_data),
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout


def run(state: Path, netns_name: str, listen_fd: int) -> int:
    netns = NetworkNamespace(netns_name)
    netns.enter()
    listener = socket.socket(fileno=listen_fd)
    host_port = listener.getsockname()[1]
    binaries = Binaries.locate()
    from .addresses import API_CLUSTER_IP, API_SERVER_IP, NODE_IP  # noqa: PLC0415 - after the namespace exists

    for address in (API_SERVER_IP, API_CLUSTER_IP, NODE_IP):
        netns.add_address(address)
    supervisor = Supervisor(state / "logs")
    # The handler only appends to a list: setting a threading.Event from a handler can deadlock on
    # the lock of the very Event the main thread is waiting on. (Blocking the signals instead would
    # pass the blocked mask on to every process started here.)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: stopping.append(signum))
    runner: PodRunner | None = None
    try:
        pki = PKI(state / "pki")
        plane = start_control_plane(state, binaries, pki, supervisor, extra_sans=())
        kubectl = Kubectl(binaries.kubectl, plane.admin_kubeconfig)
        start_kwok(state, binaries, pki, supervisor, plane.server, COMPONENTS, kubectl)
        runner = PodRunner(state, netns, binaries, plane, kubectl)
        runner.start()
        forward_forever(listener, ("127.0.0.1", API_PORT))
        host_kubeconfig = state / "kubeconfig"
        (state / "kubectl").unlink(missing_ok=True)
        (state / "kubectl").symlink_to(binaries.kubectl)
        write_kubeconfig(state / "kubeconfig.partial", f"https://127.0.0.1:{host_port}", pki.ca.cert, plane.admin)
        (state / "kubeconfig.partial").rename(host_kubeconfig)
        LOG.info("ready: export KUBECONFIG=%s", host_kubeconfig)
        while not stopping:
            supervisor.check_all()
            time.sleep(1.0)
    except Exception:  # noqa: BLE001 - logged for the parent, which reports the failure
        LOG.exception("test bed failed")
        return 1
    finally:
        listener.close()
        if runner is not None:
            runner.stop()
        supervisor.stop_all()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--netns", required=True)
    parser.add_argument("--listen-fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    return run(args.state_dir.resolve(), args.netns, args.listen_fd)


if __name__ == "__main__":
    sys.exit(main())
