"""The kubelet of the test bed's nodes: runs each pod's containers as local processes.

For every pod scheduled to a kwok node it gives the pod a network namespace and address, makes
its volume files, starts one process per container (``images.py`` says which), registers the
pod's ``Exec`` and ``Logs`` objects with kwok, and keeps the pod's status true: Running with its
address, Ready when each container's readiness probe passes (run in the pod's namespaces, every
second), Succeeded or Failed when the processes of a run-to-completion pod end. A deleted pod's
processes are stopped before the pod object goes; a recreated pod finds its claim's data again.

It also provisions claims of the default StorageClass as folders (``volumes/<ns>-<claim>``) and
keeps the namespace's hosts file in step with Services and their Endpoints, which is how names
such as ``postgres-cluster.microservices.svc.cluster.local`` reach the right pod, also after a
failover.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from ..addresses import API_CLUSTER_IP
from ..controlplane import API_PORT, CLUSTER_DOMAIN
from ..kwok import NODE_NAMES
from ..netns import NetworkNamespace
from .images import StandIn, stand_in
from .network import PodInterface, PodNetwork
from .spec import ConfigError, PodVolumes, container_env
from .storage import ClaimProvisioner
from .dns import service_hosts

LOG = logging.getLogger("localcluster.pods")
POLL_SECONDS = 1.0
LAUNCH = [sys.executable, "-m", "tests.localcluster.pods.launch"]
REPO_ROOT = Path(__file__).resolve().parents[3]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    name: str
    image: str
    stand_in: StandIn
    spec_file: Path
    log_file: Path
    process: subprocess.Popen | None = None
    started_at: str = ""
    restarts: int = 0
    ready: bool = False
    exit_code: int | None = None
    waiting: tuple[str, str] | None = None
    restart_at: float = 0.0


@dataclass
class RunningPod:
    key: tuple[str, str]
    uid: str
    owner: list[dict[str, str]]
    interface: PodInterface
    folder: Path
    restart_policy: str
    containers: list[Container] = field(default_factory=list)
    phase: str = "Pending"
    started_at: str = ""


class PodRunner:
    def __init__(self, state: Path, netns: NetworkNamespace, binaries, plane, kubectl) -> None:
        self.state = state
        self.netns = netns
        self.binaries = binaries
        self.kubectl = kubectl
        api_client = config.new_client_from_config(str(plane.admin_kubeconfig))
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.network = PodNetwork(netns.name.replace("lc-", "lcp-"))
        self.storage = ClaimProvisioner(self.core, state / "volumes")
        # Sockets live apart from the state folder, which may sit under a private (0700) temp
        # folder: an exec runs as the container's user and must be able to reach them.
        self.runtime = Path("/run") / f"localcluster-{netns.name}"
        self.runtime.mkdir(mode=0o711)
        self.pods: dict[tuple[str, str], RunningPod] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pod-runner", daemon=True)
        self._hosts: dict[str, str] = {}

    def start(self) -> None:
        self.storage.ensure_default_class()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for pod in list(self.pods.values()):
            self._stop_pod(pod)
        shutil.rmtree(self.runtime, ignore_errors=True)

    # -- the loop -------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except Exception:  # noqa: BLE001 - one bad pass must not end the kubelet; it is logged
                LOG.exception("pod runner pass failed")
            self._stop.wait(POLL_SECONDS)

    def _sync(self) -> None:
        self.storage.sync()
        listed = self.core.list_pod_for_all_namespaces(_preload_content=False)
        objects = {
            (p["metadata"]["namespace"], p["metadata"]["name"]): p
            for p in json.loads(listed.data)["items"]
            if p["spec"].get("nodeName") in NODE_NAMES
        }
        for key, running in list(self.pods.items()):
            obj = objects.get(key)
            if obj is None or obj["metadata"]["uid"] != running.uid:
                self._stop_pod(running)
        for key, obj in objects.items():
            running = self.pods.get(key)
            if obj["metadata"].get("deletionTimestamp"):
                if running is not None:
                    self._stop_pod(running)
                self._finalize(obj)
                continue
            if running is None:
                if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                running = self._start_pod(obj)
                if running is None:
                    continue
            self._watch_pod(running, obj)
        self._sync_hosts()

    # -- pod lifecycle ------------------------------------------------------------------

    def _read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            if kind == "Secret":
                response = self.core.read_namespaced_secret(name, namespace, _preload_content=False)
            else:
                response = self.core.read_namespaced_config_map(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return json.loads(response.data)

    def _issue_token(self, pod: dict[str, Any], audience: str, seconds: int) -> str:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else None,
                "expirationSeconds": max(seconds, 600),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
            },
        }
        response = self.core.create_namespaced_service_account_token(
            pod["spec"].get("serviceAccountName") or "default", pod["metadata"]["namespace"], body, _preload_content=False
        )
        return json.loads(response.data)["status"]["token"]

    def _start_pod(self, obj: dict[str, Any]) -> RunningPod | None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        folder = self.state / "pods" / meta["namespace"] / meta["name"]
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        runtime = self.runtime / meta["namespace"] / meta["name"]
        shutil.rmtree(runtime, ignore_errors=True)
        runtime.mkdir(parents=True, mode=0o711)
        runtime.parent.chmod(0o711)
        interface = self.network.attach()
        owner = [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}]
        running = RunningPod(key, meta["uid"], owner, interface, folder, obj["spec"].get("restartPolicy", "Always"), started_at=_now())
        self.pods[key] = running
        security = obj["spec"].get("securityContext") or {}
        pod_uid = int(security.get("runAsUser", 0))
        pod_gid = int(security.get("fsGroup", security.get("runAsGroup", 0)))
        try:
            folders = PodVolumes(folder, self._read, self._issue_token, self.storage.folder_for).prepare(obj, pod_gid)
            volume_error = None
        except ConfigError as exc:
            folders, volume_error = {}, str(exc)
        for spec in obj["spec"]["containers"]:
            log_file = folder / f"{spec['name']}.log"
            log_file.touch()
            standin = stand_in(spec["image"], spec, runtime, self.binaries)
            container = Container(spec["name"], spec["image"], standin, folder / f"{spec['name']}.json", log_file)
            running.containers.append(container)
            uid = container.stand_in.uid if container.stand_in.uid is not None else int((spec.get("securityContext") or {}).get("runAsUser", pod_uid))
            gid = container.stand_in.gid if container.stand_in.gid is not None else pod_gid
            try:
                if volume_error:
                    raise ConfigError(volume_error)
                env = self._environment(obj, spec, interface.address, container.stand_in)
            except ConfigError as exc:
                container.waiting = ("CreateContainerConfigError", str(exc))
                continue
            mounts = [
                {"source": str(folders[m["name"]] / m.get("subPath", "")), "target": m["mountPath"], "readOnly": bool(m.get("readOnly"))}
                for m in spec.get("volumeMounts") or [] if m["name"] in folders
            ]
            if container.stand_in.tools:
                tools = runtime / container.name / "bin"
                tools.mkdir(parents=True, exist_ok=True, mode=0o755)
                (runtime / container.name).chmod(0o711)
                for tool, script in container.stand_in.tools.items():
                    (tools / tool).write_text(script)
                    (tools / tool).chmod(0o755)
            for source, target in container.stand_in.extra_mounts.items():
                Path(source).mkdir(parents=True, exist_ok=True)
                os.chown(source, uid, gid)
                mounts.append({"source": source, "target": target})
            for folder_path in {m["source"] for m in mounts}:
                _own(Path(folder_path), uid, gid)
            mounts += [{"source": source, "target": target, "readOnly": True} for source, target in container.stand_in.tool_mounts.items()]
            launch_spec = {
                "netns": interface.netns_path, "mounts": mounts, "uid": uid, "gid": gid, "groups": [gid],
                "workingDir": spec.get("workingDir", ""), "argv": container.stand_in.argv, "env": env,
            }
            container.spec_file.touch(mode=0o600)
            container.spec_file.write_text(json.dumps(launch_spec))
            if container.stand_in.note:
                _append_log(log_file, f"localcluster: {container.stand_in.note}".encode())
            if container.stand_in.argv:
                self._launch(container)
            else:
                container.started_at = _now()
        self._register_kwok(running)
        running.phase = "Running"
        return running

    def _environment(self, pod: dict[str, Any], spec: dict[str, Any], address: str, standin: StandIn) -> dict[str, str]:
        """The service variables every kubelet injects, the pod's own env, then the stand-in's needs."""
        env = {
            "HOSTNAME": pod["metadata"]["name"],
            "KUBERNETES_SERVICE_HOST": API_CLUSTER_IP,
            "KUBERNETES_SERVICE_PORT": str(API_PORT),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(API_PORT),
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/tmp",
        }
        env.update(container_env(pod, spec, self._read, address, env))
        env.update(standin.env)
        return env

    def _launch(self, container: Container) -> None:
        container.process = subprocess.Popen(
            [*LAUNCH, str(container.spec_file)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT)}, start_new_session=True,
        )
        threading.Thread(target=_copy_log, args=(container.process.stdout, container.log_file), daemon=True).start()
        container.started_at = _now()
        container.exit_code = None
        container.ready = False

    def _register_kwok(self, running: RunningPod) -> None:
        """kwok's kubelet API runs exec and serves logs as these objects say (one of each per pod).

        An exec finds its container through the container's process id (see exec_shim.py), so
        the ``Exec`` object is written again whenever a container is started anew.
        """
        namespace, name = running.key
        execs, logs = [], []
        for container in running.containers:
            pid = str(container.process.pid) if container.process is not None else ""
            execs.append({"containers": [container.name], "local": {"workDir": "/", "envs": [{"name": "LOCALCLUSTER_PID", "value": pid}]}})
            logs.append({"containers": [container.name], "logsFile": str(container.log_file), "follow": True})
        for plural, kind, spec in (("execs", "Exec", {"execs": execs}), ("logs", "Logs", {"logs": logs})):
            body = {
                "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": kind, "spec": spec,
                "metadata": {"name": name, "namespace": namespace, "ownerReferences": running.owner},
            }
            try:
                self.custom.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", namespace, plural, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                self.custom.patch_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", namespace, plural, name, {"spec": spec})

    def _probe(self, running: RunningPod, container: Container, spec: dict[str, Any]) -> bool:
        if container.waiting or (container.stand_in.argv and (container.process is None or container.process.poll() is not None)):
            return False
        probe = spec.get("readinessProbe")
        if not probe and container.stand_in.ready is not None:
            return container.stand_in.ready(running.interface.address)
        if not probe or not container.stand_in.argv:
            return True
        if "exec" in probe:
            launch_spec = json.loads(container.spec_file.read_text())
            launch_spec["argv"] = probe["exec"]["command"]
            probe_file = container.spec_file.with_suffix(".probe.json")
            probe_file.touch(mode=0o600)
            probe_file.write_text(json.dumps(launch_spec))
            try:
                result = subprocess.run([*LAUNCH, str(probe_file)], capture_output=True, timeout=int(probe.get("timeoutSeconds", 5)),
                                        cwd=REPO_ROOT, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT)}, check=False)
            except subprocess.TimeoutExpired:
                return False
            return result.returncode == 0
        port = (probe.get("tcpSocket") or probe.get("httpGet") or {}).get("port")
        if isinstance(port, str):
            port = next((p["containerPort"] for p in spec.get("ports", []) if p.get("name") == port), None)
        if port is None:
            return True
        import socket  # noqa: PLC0415

        try:
            with socket.create_connection((running.interface.address, int(port)), timeout=2):
                return True
        except OSError:
            return False

    def _watch_pod(self, running: RunningPod, obj: dict[str, Any]) -> None:
        specs = {c["name"]: c for c in obj["spec"]["containers"]}
        for container in running.containers:
            if container.process is not None and container.process.poll() is not None and container.exit_code is None:
                container.exit_code = container.process.returncode
                container.ready = False
                if running.restart_policy == "Always" or (running.restart_policy == "OnFailure" and container.exit_code != 0):
                    # The kubelet's crash-loop back-off: 10 s, doubling, at most 5 minutes.
                    delay = min(10 * 2 ** container.restarts, 300)
                    container.restart_at = time.monotonic() + delay
                    container.waiting = ("CrashLoopBackOff", f"back-off {delay}s restarting failed container={container.name}")
            if container.waiting and container.waiting[0] == "CrashLoopBackOff" and time.monotonic() >= container.restart_at:
                container.waiting = None
                container.restarts += 1
                self._launch(container)
                self._register_kwok(running)
            container.ready = self._probe(running, container, specs[container.name])
        runnable = [c for c in running.containers if c.stand_in.argv]
        if running.restart_policy != "Always" and runnable and all(c.exit_code is not None for c in runnable):
            running.phase = "Succeeded" if all(c.exit_code == 0 for c in runnable) else "Failed"
        self._patch_status(running, obj)

    def _patch_status(self, running: RunningPod, obj: dict[str, Any]) -> None:
        ready = running.phase == "Running" and all(c.ready for c in running.containers)
        statuses = []
        for container in running.containers:
            state: dict[str, Any]
            if container.waiting:
                state = {"waiting": {"reason": container.waiting[0], "message": container.waiting[1]}}
            elif container.exit_code is not None and running.phase in ("Succeeded", "Failed"):
                state = {"terminated": {
                    "exitCode": container.exit_code, "reason": "Completed" if container.exit_code == 0 else "Error",
                    "startedAt": container.started_at, "finishedAt": _now(),
                }}
            else:
                state = {"running": {"startedAt": container.started_at}}
            statuses.append({
                "name": container.name, "image": container.image, "imageID": f"localcluster://{container.stand_in.kind}",
                "containerID": f"localcluster://{running.uid}/{container.name}",
                "ready": container.ready, "started": "running" in state, "restartCount": container.restarts, "state": state,
            })
        condition = "True" if ready else "False"
        status = {
            "phase": running.phase, "podIP": running.interface.address, "podIPs": [{"ip": running.interface.address}],
            "hostIP": obj.get("status", {}).get("hostIP") or running.interface.address, "startTime": running.started_at,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": condition},
                {"type": "Ready", "status": condition},
                {"type": "PodScheduled", "status": "True"},
            ],
            "containerStatuses": statuses,
        }
        if _summary(status) == _summary(obj.get("status") or {}):
            return
        now = _now()
        for item in status["conditions"]:
            item["lastTransitionTime"] = now
        try:
            self.core.patch_namespaced_pod_status(running.key[1], running.key[0], {"status": status})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _stop_pod(self, running: RunningPod) -> None:
        for container in running.containers:
            if container.process is not None and container.process.poll() is None:
                try:
                    os.killpg(container.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for container in running.containers:
            if container.process is None:
                continue
            try:
                container.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(container.process.pid, signal.SIGKILL)
                container.process.wait()
        self.network.detach(running.interface)
        self.pods.pop(running.key, None)

    def _finalize(self, obj: dict[str, Any]) -> None:
        """The kubelet's last word on a deleted pod: remove it now that nothing of it runs."""
        meta = obj["metadata"]
        body = client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"]))
        try:
            self.core.delete_namespaced_pod(meta["name"], meta["namespace"], body=body)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _sync_hosts(self) -> None:
        services = json.loads(self.core.list_service_for_all_namespaces(_preload_content=False).data)["items"]
        endpoints = json.loads(self.core.list_endpoints_for_all_namespaces(_preload_content=False).data)["items"]
        names = service_hosts(services, endpoints, CLUSTER_DOMAIN)
        if names != self._hosts:
            self.netns.write_hosts(names)
            self._hosts = names


def _summary(status: dict[str, Any]) -> tuple:
    """What a status says, without its timestamps: the runner writes when this differs from the
    pod's, so a status changed by someone else (the node lifecycle controller) is put right, as a
    kubelet's periodic status sync does."""
    return (
        status.get("phase"),
        status.get("podIP"),
        tuple(sorted((c["type"], c["status"]) for c in status.get("conditions") or [])),
        tuple((c["name"], c.get("ready"), c.get("restartCount"), tuple(sorted(c.get("state") or {}))) for c in status.get("containerStatuses") or []),
    )


def _append_log(path: Path, line: bytes, stream: str = "stdout") -> None:
    """One line in the CRI log format, which kwok's Logs reads (``<time> <stream> F <text>``)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with open(path, "ab") as log:
        log.write(f"{stamp} {stream} F ".encode() + line.rstrip(b"\n") + b"\n")


def _copy_log(pipe, path: Path) -> None:
    for line in iter(pipe.readline, b""):
        _append_log(path, line)
    pipe.close()


def _own(path: Path, uid: int, gid: int) -> None:
    """A folder still owned by root goes to the container's user, as fsGroup makes it usable.

    Only root's folders: a sidecar mounting the same claim must not take it from the user the
    database runs as.
    """
    if path.is_dir() and path.stat().st_uid == 0:
        os.chown(path, uid, gid)
