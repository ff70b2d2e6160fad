"""Kubernetes Events (core/v1) that the simulated controllers and the operator record.

``kubectl describe`` and people debugging a failed run read these; recording them through
the store makes them listable and watchable like any other object.
"""

from __future__ import annotations

import uuid
from typing import Any

from .managed_fields import now_iso
from .store import Store

EVENTS_KEY = ("", "events")


def record(store: Store, involved: dict[str, Any], reason: str, message: str, component: str,
           event_type: str = "Normal") -> None:
    """Record an event about ``involved`` in its namespace (``default`` for cluster-scoped objects)."""
    meta = involved["metadata"]
    namespace = meta.get("namespace") or "default"
    if store.get(("", "namespaces"), "", namespace) is None:
        return
    now = now_iso()
    name = f"{meta['name']}.{uuid.uuid4().hex[:16]}"
    store.put(EVENTS_KEY, {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "creationTimestamp": now},
        "involvedObject": {"apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                           "name": meta["name"], "namespace": meta.get("namespace", ""), "uid": meta.get("uid"),
                           "resourceVersion": meta.get("resourceVersion")},
        "reason": reason, "message": message, "type": event_type, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now, "source": {"component": component},
        "reportingComponent": component, "reportingInstance": "",
    })
