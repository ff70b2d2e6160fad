"""Deployment, StatefulSet and Job controllers.

Simplifications (see the README): Deployments own their pods directly (no ReplicaSet
objects) and roll by replacing old-template pods once new ones are Ready; StatefulSets
create ``NAME-0..N-1`` in order, each only after the previous is Ready (OrderedReady),
make their claims ``<template>-<name>-<ordinal>``, scale down from the highest ordinal and
roll updates from the highest ordinal one pod at a time; a Job runs one pod to completion.
"""

from __future__ import annotations

import copy
import secrets
import string
from typing import Any

from ..managed_fields import now_iso
from ..selectors import selector_object_matches
from .base import ControllerBase, condition, owned_by, owner_reference, pod_ready, template_hash

PODS_KEY = ("", "pods")
_SUFFIX = string.ascii_lowercase + string.digits


def _pod_from_template(owner: dict[str, Any], name: str, extra_labels: dict[str, str]) -> dict[str, Any]:
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    meta = template.get("metadata") or {}
    labels = {**(meta.get("labels") or {}), **extra_labels}
    pod_meta = {"name": name, "namespace": owner["metadata"]["namespace"], "labels": labels,
                "ownerReferences": [owner_reference(owner)]}
    if meta.get("annotations"):
        pod_meta["annotations"] = meta["annotations"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}


def _drop_zero(status: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Integer status fields are ``omitempty`` in the API types: zeros are not serialised."""
    return {k: v for k, v in status.items() if k in keep or not (isinstance(v, int) and v == 0)}


class DeploymentController(ControllerBase):
    def sync(self) -> None:
        rtype = self.rtype("apps", "v1", "deployments")
        pod_type = self.rtype("", "v1", "pods")
        for deploy in self.store.list(rtype.key):
            if deploy["metadata"].get("deletionTimestamp"):
                continue
            spec = deploy.get("spec") or {}
            ns = deploy["metadata"]["namespace"]
            desired = int(spec.get("replicas", 1))
            revision = template_hash(spec.get("template") or {})
            pods = [p for p in self.store.list(PODS_KEY, ns) if owned_by(p, deploy)
                    and not p["metadata"].get("deletionTimestamp")]
            new = [p for p in pods if (p["metadata"].get("labels") or {}).get("pod-template-hash") == revision]
            old = [p for p in pods if p not in new]
            recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
            if recreate and old:
                for pod in old:
                    self.delete(pod_type, pod)
                continue
            for _pod_index in range(desired - len(new)):
                suffix = "".join(secrets.choice(_SUFFIX) for _index in range(5))
                pod = _pod_from_template(deploy, f"{deploy['metadata']['name']}-{revision}-{suffix}",
                                         {"pod-template-hash": revision})
                self.create(pod_type, pod)
            for pod in sorted(new, key=lambda p: p["metadata"]["name"])[desired:]:
                self.delete(pod_type, pod)
            ready_new = [p for p in new[:desired] if pod_ready(p)]
            if len(ready_new) >= desired:
                for pod in old:
                    self.delete(pod_type, pod)
            self._status(rtype, deploy, desired, pods, new, revision)

    def _status(self, rtype: Any, deploy: dict[str, Any], desired: int, pods: list[dict[str, Any]],
                new: list[dict[str, Any]], revision: str) -> None:
        ready = [p for p in pods if pod_ready(p)]
        available = len(ready)
        now = now_iso()
        previous = (deploy.get("status") or {}).get("conditions")
        name = deploy["metadata"]["name"]
        complete = len(new) == desired and all(pod_ready(p) for p in new) and len(pods) == desired
        conditions = [
            condition("Available", "True" if available >= desired else "False",
                      "MinimumReplicasAvailable" if available >= desired else "MinimumReplicasUnavailable",
                      "Deployment has minimum availability." if available >= desired
                      else "Deployment does not have minimum availability.", now, previous, update_time=True),
            condition("Progressing", "True", "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                      f'ReplicaSet "{name}-{revision}" has successfully progressed.' if complete
                      else f'ReplicaSet "{name}-{revision}" is progressing.', now, previous, update_time=True),
        ]
        status = _drop_zero({
            "observedGeneration": deploy["metadata"].get("generation", 1), "replicas": len(pods),
            "updatedReplicas": len(new), "readyReplicas": len(ready), "availableReplicas": available,
            "unavailableReplicas": max(desired - available, 0), "conditions": conditions,
        })
        self.set_status(rtype, deploy, status)


class StatefulSetController(ControllerBase):
    def sync(self) -> None:
        rtype = self.rtype("apps", "v1", "statefulsets")
        for sts in self.store.list(rtype.key):
            if not sts["metadata"].get("deletionTimestamp"):
                self._sync_one(rtype, sts)

    def _sync_one(self, rtype: Any, sts: dict[str, Any]) -> None:
        pod_type = self.rtype("", "v1", "pods")
        pvc_type = self.rtype("", "v1", "persistentvolumeclaims")
        spec = sts.get("spec") or {}
        name, ns = sts["metadata"]["name"], sts["metadata"]["namespace"]
        desired = int(spec.get("replicas", 1))
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        pods = {p["metadata"]["name"]: p for p in self.store.list(PODS_KEY, ns) if owned_by(p, sts)}
        ordered = (spec.get("podManagementPolicy") or "OrderedReady") == "OrderedReady"
        for ordinal in range(desired):
            pod_name = f"{name}-{ordinal}"
            pod = pods.get(pod_name)
            if pod is None:
                self._claims(pvc_type, sts, ordinal)
                self.create(pod_type, self._pod(sts, ordinal, revision))
                if ordered:
                    break
                continue
            if ordered and not pod_ready(pod):
                break
        extra = sorted((p for p in pods.values() if self._ordinal(name, p) >= desired),
                       key=lambda p: -self._ordinal(name, p))
        if extra and all(pod_ready(p) for p in pods.values() if self._ordinal(name, p) < desired):
            self.delete(pod_type, extra[0])
            return
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        current = [p for p in pods.values() if self._ordinal(name, p) < desired]
        stale = sorted((p for p in current if (p["metadata"].get("labels") or {}).get("controller-revision-hash")
                        != revision), key=lambda p: -self._ordinal(name, p))
        partition = int(((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition", 0))
        stale = [p for p in stale if self._ordinal(name, p) >= partition]
        if strategy == "RollingUpdate" and stale and len(current) == desired and all(pod_ready(p) for p in current):
            self.delete(pod_type, stale[0])
        self._status(rtype, sts, desired, current, revision)

    @staticmethod
    def _ordinal(name: str, pod: dict[str, Any]) -> int:
        suffix = pod["metadata"]["name"][len(name) + 1:]
        return int(suffix) if suffix.isdigit() else -1

    def _pod(self, sts: dict[str, Any], ordinal: int, revision: str) -> dict[str, Any]:
        name = sts["metadata"]["name"]
        spec = sts.get("spec") or {}
        pod = _pod_from_template(sts, f"{name}-{ordinal}", {
            "controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": f"{name}-{ordinal}",
            "apps.kubernetes.io/pod-index": str(ordinal)})
        pod["spec"]["hostname"] = f"{name}-{ordinal}"
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        volumes = list(pod["spec"].get("volumes") or [])
        names = {v.get("name") for v in volumes}
        for claim in spec.get("volumeClaimTemplates") or []:
            tmpl = claim["metadata"]["name"]
            if tmpl not in names:
                volumes.append({"name": tmpl, "persistentVolumeClaim": {"claimName": f"{tmpl}-{name}-{ordinal}"}})
        if volumes:
            pod["spec"]["volumes"] = volumes
        return pod

    def _claims(self, pvc_type: Any, sts: dict[str, Any], ordinal: int) -> None:
        name, ns = sts["metadata"]["name"], sts["metadata"]["namespace"]
        spec = sts.get("spec") or {}
        retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        for claim in spec.get("volumeClaimTemplates") or []:
            claim_name = f"{claim['metadata']['name']}-{name}-{ordinal}"
            if self.store.get(pvc_type.key, ns, claim_name) is not None:
                continue
            labels = {**((claim.get("metadata") or {}).get("labels") or {}),
                      **((spec.get("selector") or {}).get("matchLabels") or {})}
            meta: dict[str, Any] = {"name": claim_name, "namespace": ns, "labels": labels}
            if retention.get("whenDeleted") == "Delete":
                meta["ownerReferences"] = [owner_reference(sts)]
            self.create(pvc_type, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
                                   "spec": copy.deepcopy(claim.get("spec") or {})})

    def _status(self, rtype: Any, sts: dict[str, Any], desired: int, pods: list[dict[str, Any]],
                revision: str) -> None:
        updated = [p for p in pods if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == revision]
        ready = [p for p in pods if pod_ready(p)]
        previous = sts.get("status") or {}
        complete = len(updated) == desired and len(ready) == desired
        current_revision = revision if complete or not previous.get("currentRevision") \
            else previous["currentRevision"]
        current_count = len([p for p in pods if (p["metadata"].get("labels") or {}).get("controller-revision-hash")
                             == current_revision])
        status = _drop_zero({
            "observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(pods),
            "readyReplicas": len(ready), "currentReplicas": current_count, "updatedReplicas": len(updated),
            "availableReplicas": len(ready), "currentRevision": current_revision, "updateRevision": revision,
            "collisionCount": 0,
        }, keep=("replicas", "availableReplicas", "collisionCount"))
        self.set_status(rtype, sts, status)


class JobController(ControllerBase):
    def sync(self) -> None:
        rtype = self.rtype("batch", "v1", "jobs")
        pod_type = self.rtype("", "v1", "pods")
        for job in self.store.list(rtype.key):
            if job["metadata"].get("deletionTimestamp"):
                continue
            ns = job["metadata"]["namespace"]
            status = dict(job.get("status") or {})
            if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in status.get("conditions") or []):
                continue
            spec = job.get("spec") or {}
            if spec.get("suspend"):
                continue
            selector = spec.get("selector")
            pods = [p for p in self.store.list(PODS_KEY, ns) if owned_by(p, job)
                    and selector_object_matches(selector, p["metadata"].get("labels"))]
            now = now_iso()
            if not pods:
                suffix = "".join(secrets.choice(_SUFFIX) for _index in range(5))
                self.create(pod_type, _pod_from_template(job, f"{job['metadata']['name']}-{suffix}", {}))
                self.set_status(rtype, job, {"startTime": status.get("startTime") or now, "active": 1, "ready": 0,
                                             "terminating": 0, "uncountedTerminatedPods": {}})
                continue
            phases = [(p.get("status") or {}).get("phase") for p in pods]
            if "Succeeded" in phases:
                self.set_status(rtype, job, {
                    "startTime": status.get("startTime") or now, "completionTime": now, "succeeded": 1,
                    "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
                    "conditions": [
                        {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                         "message": "Reached expected number of succeeded pods", "lastProbeTime": now,
                         "lastTransitionTime": now},
                        {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                         "message": "Reached expected number of succeeded pods", "lastProbeTime": now,
                         "lastTransitionTime": now}]})
            elif "Failed" in phases:
                self.set_status(rtype, job, {
                    "startTime": status.get("startTime") or now, "failed": 1, "ready": 0, "terminating": 0,
                    "uncountedTerminatedPods": {},
                    "conditions": [
                        {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                         "message": "Job has reached the specified backoff limit", "lastProbeTime": now,
                         "lastTransitionTime": now},
                        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                         "message": "Job has reached the specified backoff limit", "lastProbeTime": now,
                         "lastTransitionTime": now}]})
            else:
                ready = sum(1 for p in pods if pod_ready(p))
                self.set_status(rtype, job, {"startTime": status.get("startTime") or now, "active": len(pods),
                                             "ready": ready, "terminating": 0, "uncountedTerminatedPods": {}})
