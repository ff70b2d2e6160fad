"""Each pod's own network namespace, joined to the cluster's by a bridge, as a CNI plugin does.

Pods get their own loopback and an ``eth0`` with their address, so two pods can both listen on
5432 and probes of 127.0.0.1 reach the pod's own server. The bridge's address in the cluster's
namespace is every pod's gateway: through it pods reach the API server and each other.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass

from ..addresses import POD_CIDR, POD_GATEWAY, PodAddresses
from ..netns import NetnsError

BRIDGE = "cbr0"
_PREFIX = ipaddress.ip_network(POD_CIDR).prefixlen


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")


@dataclass(frozen=True)
class PodInterface:
    address: str
    netns: str

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"


class PodNetwork:
    """Runs in the cluster's namespace; makes and removes the pods' namespaces."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.addresses = PodAddresses()
        self._counter = 0
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{POD_GATEWAY}/{_PREFIX}", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")

    def attach(self) -> PodInterface:
        self._counter += 1
        name = f"{self.prefix}-{self._counter}"
        veth = f"lcv{self._counter}"
        address = self.addresses.take()
        _ip("netns", "add", name)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("link", "set", veth, "master", BRIDGE)
        _ip("link", "set", veth, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "addr", "add", f"{address}/{_PREFIX}", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "route", "add", "default", "via", POD_GATEWAY)
        return PodInterface(address, name)

    def detach(self, interface: PodInterface) -> None:
        """Deleting the namespace removes its veth end, and with it the bridge's."""
        subprocess.run(["ip", "netns", "delete", interface.netns], capture_output=True, check=False)
        self.addresses.give_back(interface.address)
