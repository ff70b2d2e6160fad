"""Scheduling, volume binding and the pod lifecycle a kubelet would report.

Pods are bound to the single fake node at once; containers "start" immediately, except
PostgreSQL containers, which are Running/Ready only once their real server accepts
connections; Job pods run to completion (a registered runner may do real work, e.g. the
logical backup's pg_dumpall). Missing Secret/ConfigMap references leave the pod waiting with
``CreateContainerConfigError`` as a kubelet would.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable

from ..managed_fields import now_iso
from ..postgres_pods import ConfigError, is_postgres_image
from .base import ControllerBase

NODE_NAME = "kubesim-node"
PODS_KEY = ("", "pods")
PVC_KEY = ("", "persistentvolumeclaims")
JobRunner = Callable[[dict[str, Any]], "tuple[int, str] | None"]


class VolumeBinder(ControllerBase):
    """Binds every pending claim to a made-up volume of the requested size."""

    manager = "persistentvolume-binder"

    def sync(self) -> None:
        rtype = self.rtype("", "v1", "persistentvolumeclaims")
        for pvc in self.store.list(PVC_KEY):
            if (pvc.get("status") or {}).get("phase") == "Bound" or pvc["metadata"].get("deletionTimestamp"):
                continue
            spec = pvc.get("spec") or {}
            if not spec.get("volumeName"):
                current = self.store.get(PVC_KEY, pvc["metadata"]["namespace"], pvc["metadata"]["name"])
                if current is None:
                    continue
                updated = dict(current)
                updated["spec"] = {**spec, "volumeName": f"pvc-{pvc['metadata']['uid']}"}
                annotations = updated["metadata"].setdefault("annotations", {})
                annotations.update({"pv.kubernetes.io/bind-completed": "yes",
                                    "pv.kubernetes.io/bound-by-controller": "yes"})
                pvc = self.rest.write_update(rtype, current, updated, self.opts(), "")
            requested = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            self.set_status(rtype, pvc, {"phase": "Bound", "accessModes": spec.get("accessModes") or
                                         ["ReadWriteOnce"], "capacity": {"storage": requested}})


class Kubelet(ControllerBase):
    manager = "kubelet"

    def __init__(self, sim: Any) -> None:
        super().__init__(sim)
        self._ips = itertools.count(2)
        self._lock = threading.Lock()
        self._jobs_running: set[str] = set()
        self.job_runners: list[JobRunner] = []

    def sync(self) -> None:
        pod_type = self.rtype("", "v1", "pods")
        for pod in self.store.list(PODS_KEY):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            if not (pod.get("spec") or {}).get("nodeName"):
                pod = self._bind(pod_type, pod)
                if pod is None:
                    continue
            self._step(pod_type, pod)
        self._release_orphaned_backends()

    def _bind(self, pod_type: Any, pod: dict[str, Any]) -> dict[str, Any] | None:
        current = self.store.get(PODS_KEY, pod["metadata"]["namespace"], pod["metadata"]["name"])
        if current is None:
            return None
        updated = dict(current)
        updated["spec"] = {**current["spec"], "nodeName": NODE_NAME}
        bound = self.rest.write_update(pod_type, current, updated, self.opts(), "", track=False)
        self.set_status(pod_type, bound, {**(bound.get("status") or {}), "conditions": [
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now_iso()}]})
        return self.store.get(PODS_KEY, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _step(self, pod_type: Any, pod: dict[str, Any]) -> None:
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        containers = (pod.get("spec") or {}).get("containers") or []
        try:
            envs = [self.sim.pods.resolve_env(pod, c) for c in containers]
        except ConfigError as exc:
            self._write(pod_type, pod, "Pending", ready=False, waiting=("CreateContainerConfigError", str(exc)))
            return
        labels = pod["metadata"].get("labels") or {}
        if "job-name" in labels or "batch.kubernetes.io/job-name" in labels:
            self._run_job_pod(pod_type, pod)
            return
        found = self.sim.pods.backend_key(pod)
        if found is None:
            self._write(pod_type, pod, "Running", ready=True)
            return
        key, version = found
        backend = self.sim.pods.backend(key)
        if backend is None and key[0] != "cluster":
            main = next(n for n, c in enumerate(containers) if is_postgres_image(c.get("image", "")))
            backend = self.sim.pods.ensure_backend(key, version, self.sim.pods.first_start_sql(envs[main]))
        if backend is None or not backend.ready.is_set():
            self._write(pod_type, pod, "Pending", ready=False, waiting=("ContainerCreating", ""))
        elif backend.error:
            self._write(pod_type, pod, "Running", ready=False, waiting=("CrashLoopBackOff", backend.error))
        else:
            self._write(pod_type, pod, "Running", ready=True)

    def _run_job_pod(self, pod_type: Any, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        with self._lock:
            if uid in self._jobs_running:
                return
            self._jobs_running.add(uid)
        self._write(pod_type, pod, "Running", ready=True)

        def run() -> None:
            outcome = None
            for runner in self.job_runners:
                outcome = runner(pod)
                if outcome is not None:
                    break
            code, log = outcome if outcome is not None else (0, "")
            self.sim.pods.record_log(pod, log)
            current = self.store.get(PODS_KEY, pod["metadata"]["namespace"], pod["metadata"]["name"])
            if current is not None:
                self._write(pod_type, current, "Succeeded" if code == 0 else "Failed", ready=False, exit_code=code)
            self.sim.controllers.kick()

        threading.Thread(target=run, daemon=True, name=f"job-pod-{pod['metadata']['name']}").start()

    def _write(self, pod_type: Any, pod: dict[str, Any], phase: str, ready: bool,
               waiting: tuple[str, str] | None = None, exit_code: int | None = None) -> None:
        old = pod.get("status") or {}
        now = now_iso()
        started = old.get("startTime") or now
        ip = old.get("podIP") or f"10.244.0.{next(self._ips) % 250 + 2}"
        statuses = []
        for container in (pod.get("spec") or {}).get("containers") or []:
            previous = next((s for s in old.get("containerStatuses") or [] if s.get("name") == container["name"]), {})
            running_since = ((previous.get("state") or {}).get("running") or {}).get("startedAt") or now
            if waiting is not None:
                state: dict[str, Any] = {"waiting": {"reason": waiting[0], **({"message": waiting[1]}
                                                                              if waiting[1] else {})}}
            elif exit_code is not None:
                state = {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                                        "startedAt": running_since, "finishedAt": now}}
            else:
                state = {"running": {"startedAt": running_since}}
            statuses.append({"name": container["name"], "image": container.get("image", ""),
                             "imageID": f"docker.io/library/{container.get('image', '')}",
                             "containerID": f"containerd://{pod['metadata']['uid'].replace('-', '')}",
                             "ready": ready, "started": waiting is None and exit_code is None,
                             "restartCount": 0, "state": state})
        flag = "True" if ready else "False"
        previous_conditions = old.get("conditions") or []

        def cond(ctype: str, value: str) -> dict[str, Any]:
            prior = next((c for c in previous_conditions if c.get("type") == ctype), None)
            since = prior["lastTransitionTime"] if prior and prior.get("status") == value else now
            return {"type": ctype, "status": value, "lastProbeTime": None, "lastTransitionTime": since}

        initialized = "True" if waiting is None or waiting[0] != "PodInitializing" else "False"
        status = {
            "phase": phase,
            "conditions": [cond("PodReadyToStartContainers", "True"), cond("Initialized", initialized),
                           cond("Ready", flag), cond("ContainersReady", flag), cond("PodScheduled", "True")],
            "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}], "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": started, "containerStatuses": statuses, "qosClass": old.get("qosClass", "BestEffort"),
        }
        self.set_status(pod_type, pod, status)

    def _release_orphaned_backends(self) -> None:
        for key in self.sim.pods.keys():
            if key[0] == "pvc" and self.store.get(PVC_KEY, key[1], key[2]) is None:
                self.sim.pods.release(key)
            elif key[0] == "pod":
                pod = self.store.get(PODS_KEY, key[1], key[2])
                if pod is None or pod["metadata"].get("uid", "")[:8] != key[3]:
                    self.sim.pods.release(key)
