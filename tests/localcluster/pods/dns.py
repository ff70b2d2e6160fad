"""Cluster DNS as a hosts file: each Service name to the address of a ready endpoint behind it.

A Service with endpoints resolves to its first ready address (sorted, so the choice is stable;
for a selector-less Service such as the Zalando master Service, whatever address Patroni wrote
into its Endpoints); a headless Service's pods also get ``<hostname>.<service>`` names. Names
come in every form a pod may use: ``svc``-less short forms are left to search domains, which
this stand-in does not have, so ``<svc>.<ns>``, ``<svc>.<ns>.svc`` and the fully qualified name
are written.
"""

from __future__ import annotations

from typing import Any


def _forms(name: str, namespace: str, domain: str) -> list[str]:
    return [f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.{domain}"]


def service_hosts(services: list[dict[str, Any]], endpoints: list[dict[str, Any]], domain: str) -> dict[str, str]:
    """Host name -> address, for the hosts file of the pods' namespace."""
    by_key = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints}
    names: dict[str, str] = {}
    for service in services:
        meta = service["metadata"]
        endpoint = by_key.get((meta["namespace"], meta["name"]))
        ready = sorted(
            (address for subset in (endpoint or {}).get("subsets") or [] for address in subset.get("addresses") or []),
            key=lambda a: a["ip"],
        )
        if not ready:
            continue
        for form in _forms(meta["name"], meta["namespace"], domain):
            names[form] = ready[0]["ip"]
        if service["spec"].get("clusterIP") == "None":
            for address in ready:
                if address.get("hostname"):
                    for form in _forms(f"{address['hostname']}.{meta['name']}", meta["namespace"], domain):
                        names[form] = address["ip"]
    return names
