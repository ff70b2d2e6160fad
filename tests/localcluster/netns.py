"""The test bed's own network: one network namespace holding every address the cluster uses.

Kubernetes refuses loopback addresses for Endpoints (Patroni writes its leader there), and the
machine's rules allow test traffic only to loopback or to namespaces the tests create. So the
control plane, kwok and the pod runner live in a namespace of their own (``lc-<hex>``): the API
server's and the node's addresses sit on its loopback interface (this kernel has no dummy
interfaces; an address on ``lo`` is not a loopback-range address, so the API server takes it),
pods hang off a bridge there (``pods/network.py``), nothing routes out, and two test beds on one
machine never see each other's ports. The host reaches the API server only through the
loopback listener that ``serve`` opens before it enters the namespace (see ``forward.py``).

``/etc/netns/<name>/hosts`` is the namespace's ``/etc/hosts`` (bind-mounted by ``enter``): it
maps Service DNS names to the pods behind them, which is what stands in for cluster DNS.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
INTERFACE = "lo"


class NetnsError(RuntimeError):
    """A namespace operation failed; the message carries the command and what it printed."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")


class NetworkNamespace:
    """A named namespace with loopback up, carrying the cluster's own addresses."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.etc_dir = Path("/etc/netns") / name
        self.hosts_file = self.etc_dir / "hosts"

    def create(self) -> None:
        _ip("netns", "add", self.name)
        _ip("-n", self.name, "link", "set", INTERFACE, "up")
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        self.write_hosts({})

    def add_address(self, address: str) -> None:
        _ip("-n", self.name, "addr", "add", f"{address}/32", "dev", INTERFACE)

    def remove_address(self, address: str) -> None:
        _ip("-n", self.name, "addr", "del", f"{address}/32", "dev", INTERFACE)

    def write_hosts(self, names: dict[str, str]) -> None:
        """Rewrite the hosts file in place: the bind mount follows the inode, not the path."""
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        lines += [f"{address} {name}" for name, address in sorted(names.items())]
        with open(self.hosts_file, "r+" if self.hosts_file.exists() else "w", encoding="ascii") as handle:
            handle.seek(0)
            handle.write("\n".join(lines) + "\n")
            handle.truncate()

    def enter(self) -> None:
        """Move the calling process into the namespace, with its hosts file as /etc/hosts.

        Must run before the process starts any thread: namespaces are per thread, and threads
        (and children) created afterwards inherit them. The private mount namespace keeps the
        hosts bind mount away from the rest of the machine.
        """
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise NetnsError(f"setns into {self.name}: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(fd)
        if _libc.unshare(_CLONE_NEWNS) != 0:
            raise NetnsError(f"unshare mount namespace: {os.strerror(ctypes.get_errno())}")
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        subprocess.run(["mount", "--bind", str(self.hosts_file), "/etc/hosts"], check=True)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, check=False)
        if self.hosts_file.exists():
            self.hosts_file.unlink()
        if self.etc_dir.exists():
            self.etc_dir.rmdir()
