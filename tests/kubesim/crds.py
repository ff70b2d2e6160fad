"""CustomResourceDefinitions: serving their resources as soon as they are established.

A real apiextensions server marks a CRD ``Established`` within moments and starts serving
its group/version; here that happens synchronously on create/update, so a client that
waits for ``condition=Established`` (or simply retries discovery) sees the new kind.
"""

from __future__ import annotations

import copy
from typing import Any

from .managed_fields import now_iso
from .resources import Registry, ResourceType
from .store import Store

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        schema = ((version.get("schema") or {}).get("openAPIV3Schema")
                  or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
        types.append(ResourceType(
            group=spec.get("group", ""), version=version["name"], plural=names.get("plural", ""),
            kind=names.get("kind", ""), namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names.get("kind", "").lower(),
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            subresources=tuple(s for s in ("status", "scale") if s in (version.get("subresources") or {})),
            has_generation=True, crd_schema=copy.deepcopy(schema),
            printer_columns=tuple(version.get("additionalPrinterColumns") or ())))
    return types


class CrdController:
    """Registers or unregisters a CRD's resources and writes its status conditions."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    def changed(self, crd: dict[str, Any], present: bool) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        self.registry.remove_group_resource(group, plural)
        if not present:
            self.store.drop_resource((group, plural))
            return
        for rtype in resource_types(crd):
            self.registry.add(rtype)
        current = self.store.get(CRD_KEY, "", crd["metadata"]["name"])
        if current is None:
            return
        now = now_iso()
        names = spec.get("names") or {}
        accepted = dict(names)
        accepted.setdefault("singular", names.get("kind", "").lower())
        accepted.setdefault("listKind", f"{names.get('kind', '')}List")
        status = {
            "acceptedNames": accepted,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
        }
        old = current.get("status") or {}
        if {k: v for k, v in old.items() if k != "conditions"} == {k: v for k, v in status.items()
                                                                   if k != "conditions"} and old.get("conditions"):
            return
        current["status"] = status
        self.store.put(CRD_KEY, current)
