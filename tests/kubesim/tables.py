"""Server-side printing (``as=Table``), which ``kubectl get`` asks for by default.

Columns follow the real printers for the kinds people look at (pods, deployments,
statefulsets, services, secrets, jobs...) and the CRD's ``additionalPrinterColumns`` for
custom resources, so ``kubectl get pods`` output reads like a real cluster's.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable

from .resources import ResourceType

Column = tuple[str, str, Callable[[dict[str, Any]], Any]]


def human_age(timestamp: str | None) -> str:
    """kubectl's HumanDuration: 45s, 3m10s, 25m, 5h, 3d..."""
    if not timestamp:
        return "<unknown>"
    created = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _age(obj: dict[str, Any]) -> str:
    return human_age(obj["metadata"].get("creationTimestamp"))


def _pod_ready(obj: dict[str, Any]) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(obj: dict[str, Any]) -> str:
    if obj["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            return waiting.get("reason", "Waiting")
    return status.get("reason") or status.get("phase", "Pending")


def _ports(obj: dict[str, Any]) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _json_path(obj: dict[str, Any], path: str) -> Any:
    current: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


_COLUMNS: dict[str, list[Column]] = {
    "Pod": [("Ready", "string", _pod_ready), ("Status", "string", _pod_status),
            ("Restarts", "string", lambda o: str(sum(s.get("restartCount", 0)
                                                     for s in (o.get("status") or {}).get("containerStatuses") or [])))],
    "Deployment": [("Ready", "string", lambda o: f"{(o.get('status') or {}).get('readyReplicas', 0)}/"
                                                 f"{(o.get('spec') or {}).get('replicas', 1)}"),
                   ("Up-to-date", "integer", lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
                   ("Available", "integer", lambda o: (o.get("status") or {}).get("availableReplicas", 0))],
    "StatefulSet": [("Ready", "string", lambda o: f"{(o.get('status') or {}).get('readyReplicas', 0)}/"
                                                  f"{(o.get('spec') or {}).get('replicas', 1)}")],
    "Service": [("Type", "string", lambda o: (o.get("spec") or {}).get("type", "ClusterIP")),
                ("Cluster-IP", "string", lambda o: (o.get("spec") or {}).get("clusterIP", "<none>")),
                ("External-IP", "string", lambda o: "<none>"), ("Port(s)", "string", _ports)],
    "Secret": [("Type", "string", lambda o: o.get("type", "Opaque")),
               ("Data", "string", lambda o: str(len(o.get("data") or {})))],
    "ConfigMap": [("Data", "string", lambda o: str(len(o.get("data") or {}) + len(o.get("binaryData") or {})))],
    "Namespace": [("Status", "string", lambda o: (o.get("status") or {}).get("phase", "Active"))],
    "PersistentVolumeClaim": [("Status", "string", lambda o: (o.get("status") or {}).get("phase", "Pending")),
                              ("Volume", "string", lambda o: (o.get("spec") or {}).get("volumeName", "")),
                              ("Capacity", "string",
                               lambda o: ((o.get("status") or {}).get("capacity") or {}).get("storage", "")),
                              ("StorageClass", "string", lambda o: (o.get("spec") or {}).get("storageClassName", ""))],
    "Job": [("Status", "string", lambda o: next((c["type"] for c in (o.get("status") or {}).get("conditions") or []
                                                if c.get("status") == "True"), "Running")),
            ("Completions", "string", lambda o: f"{(o.get('status') or {}).get('succeeded', 0)}/"
                                                f"{(o.get('spec') or {}).get('completions', 1)}")],
    "CronJob": [("Schedule", "string", lambda o: (o.get("spec") or {}).get("schedule", "")),
                ("Suspend", "boolean", lambda o: bool((o.get("spec") or {}).get("suspend"))),
                ("Active", "integer", lambda o: len((o.get("status") or {}).get("active") or []))],
}


def _event_object(obj: dict[str, Any]) -> str:
    involved = obj.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


# Events print without a Name column (it is priority 1: shown with -o wide only).
_EVENT_COLUMNS: list[Column] = [
    ("Last Seen", "string", lambda o: human_age(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp"))),
    ("Type", "string", lambda o: o.get("type", "")), ("Reason", "string", lambda o: o.get("reason", "")),
    ("Object", "string", _event_object), ("Message", "string", lambda o: o.get("message", ""))]


def to_table(rtype: ResourceType, items: list[dict[str, Any]], resource_version: str,
             include_object: str) -> dict[str, Any]:
    if rtype.kind == "Event" and not rtype.group:
        return _table([(n, t, fn, 0) for n, t, fn in _EVENT_COLUMNS]
                      + [("Name", "string", lambda o: o["metadata"]["name"], 1)], items, resource_version,
                      include_object)
    if rtype.is_custom:
        columns: list[Column] = [
            (c["name"], c.get("type", "string"), (lambda o, p=c["jsonPath"]: _json_path(o, p)))
            for c in rtype.printer_columns if c.get("jsonPath") != ".metadata.creationTimestamp"]
    else:
        columns = list(_COLUMNS.get(rtype.kind, []))
    return _table([("Name", "string", lambda o: o["metadata"]["name"], 0), *[(n, t, fn, 0) for n, t, fn in columns],
                   ("Age", "string", _age, 0)], items, resource_version, include_object)


def _table(columns: list[tuple[str, str, Callable[[dict[str, Any]], Any], int]], items: list[dict[str, Any]],
           resource_version: str, include_object: str) -> dict[str, Any]:
    definitions = [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": n, "priority": p}
                   for n, t, _fn, p in columns]
    rows = []
    for obj in items:
        cells = [column[2](obj) for column in columns]
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}
