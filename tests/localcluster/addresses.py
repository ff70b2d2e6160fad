"""The address plan of the test bed's network namespace (nothing here is routed outside it)."""

from __future__ import annotations

import ipaddress

# The API server's own address, and the ClusterIP of the `kubernetes` Service (first of the range).
API_SERVER_IP = "10.245.0.1"
SERVICE_CIDR = "10.96.0.0/16"
API_CLUSTER_IP = "10.96.0.1"
# kwok's kubelet endpoint: every fake node reports this InternalIP.
NODE_IP = "10.245.0.2"
KUBELET_PORT = 10250
# Pod addresses the test bed hands out itself, on a bridge whose address is the pods' gateway;
# kwok is given a range apart, which it never uses (it has no pod stages).
POD_CIDR = "10.244.0.0/17"
POD_GATEWAY = "10.244.0.1"
KWOK_POD_CIDR = "10.244.128.0/17"


class PodAddresses:
    """Hands out pod addresses from POD_CIDR (after the gateway) and takes them back when a pod goes."""

    def __init__(self) -> None:
        self._free = (str(ip) for ip in ipaddress.ip_network(POD_CIDR).hosts() if str(ip) != POD_GATEWAY)
        self._returned: list[str] = []

    def take(self) -> str:
        return self._returned.pop() if self._returned else next(self._free)

    def give_back(self, address: str) -> None:
        self._returned.append(address)
