"""Helpers shared by the controllers: typed access to resources, owner references, status writes."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..resources import ResourceType
from ..rest import Options

if TYPE_CHECKING:
    from ..server import KubeSim

MANAGER = "kube-controller-manager"


class ControllerBase:
    """Gives a controller the simulator and short-hands for the writes controllers make."""

    manager = MANAGER

    def __init__(self, sim: "KubeSim") -> None:
        self.sim = sim
        self.store = sim.store
        self.rest = sim.rest

    def rtype(self, group: str, version: str, plural: str) -> ResourceType:
        rtype = self.sim.registry.get(group, version, plural)
        assert rtype is not None, f"{group}/{version} {plural} is not registered"
        return rtype

    def opts(self) -> Options:
        return Options(manager=self.manager, field_validation="Ignore")

    def create(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create, tolerating a race with an identical create or a namespace being deleted."""
        try:
            return self.rest.create(rtype, obj["metadata"].get("namespace", ""), obj, self.opts())
        except ApiError as exc:
            if exc.code in (403, 404, 409):
                return None
            raise

    def set_status(self, rtype: ResourceType, obj: dict[str, Any], status: dict[str, Any]) -> None:
        """Write ``status`` if it differs (no write, no new resourceVersion otherwise)."""
        if (obj.get("status") or {}) == status:
            return
        meta = obj["metadata"]
        with self.store.lock:
            current = self.store.get(rtype.key, meta.get("namespace", ""), meta["name"])
            if current is None:
                return
            updated = {**current, "status": status}
            self.rest.write_update(rtype, current, updated, self.opts(),
                                   "status" if "status" in rtype.subresources else "")

    def delete(self, rtype: ResourceType, obj: dict[str, Any], propagation: str = "Background") -> None:
        meta = obj["metadata"]
        try:
            self.rest.delete(rtype, meta.get("namespace", ""), meta["name"], self.opts(), propagation)
        except ApiError as exc:
            if exc.code != 404:
                raise


def owner_reference(owner: dict[str, Any], controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": True}


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(ref.get("uid") == owner["metadata"]["uid"] for ref in obj["metadata"].get("ownerReferences") or [])


def template_hash(template: dict[str, Any]) -> str:
    """Stable short hash of a pod template (pod-template-hash / controller-revision-hash)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return "".join(c for c in digest if c in "bcdfghjklmnpqrstvwxz2456789")[:10].ljust(10, "b")


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def condition(ctype: str, status: str, reason: str, message: str, now: str,
              previous: list[dict[str, Any]] | None = None, update_time: bool = False) -> dict[str, Any]:
    """A condition whose lastTransitionTime only moves when its status changes (as controllers do)."""
    old = next((c for c in previous or [] if c.get("type") == ctype), None)
    transition = old["lastTransitionTime"] if old and old.get("status") == status and \
        old.get("lastTransitionTime") else now
    result = {"type": ctype, "status": status, "reason": reason, "message": message,
              "lastTransitionTime": transition}
    if update_time:
        keep = old and old.get("status") == status and old.get("reason") == reason
        result["lastUpdateTime"] = old.get("lastUpdateTime", now) if keep else now
    return result
