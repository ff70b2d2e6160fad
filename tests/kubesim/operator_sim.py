"""The Zalando postgres-operator (v2.0.1), as far as the collection relies on it.

Behaviour modelled (upstream docs and the v2.0.1 manifests in ../shared/fixtures):
- When the pod of Deployment ``postgres-operator`` runs (so before the Deployment reports
  Available), the operator registers the ``postgresql`` CRD from the fixture file — the
  kustomization ships no CRD.
- For each ``postgresql`` resource X in namespace N: credential Secrets
  ``{user}.X.credentials.postgresql.acid.zalan.do`` (underscores -> dashes) with generated
  passwords for every declared user plus ``postgres`` and ``standby`` (and ``pooler``); a
  StatefulSet X of Spilo pods labelled ``application=spilo``, ``cluster-name=X``,
  ``spilo-role=master`` (pod 0) or ``replica``; Services X (master, with Endpoints) and
  X-repl; PDB ``postgres-X-pdb``; with the pooler, Deployments and Services X-pooler
  (and X-pooler-repl); with logical backups, CronJob ``logical-backup-X``; roles (with the
  Secrets' passwords and declared flags) and databases (with owners) in the cluster's one
  real PostgreSQL; ``status.PostgresClusterStatus`` Creating -> Running, Updating -> Running
  on spec changes, Invalid / CreateFailed for what the real operator rejects; events.
- Role passwords are re-asserted from the Secrets on every sync (every few seconds).
- Deleting the resource deletes what the operator made (it sets no owner references by
  default, ``enable_owner_references: false``), PVCs included.

- ``spec.clone``: the new cluster is seeded from the source cluster's current contents before
  its roles and databases are synced, or fails to be created as the real one would
  (``clone_sim``).

Simplification: all pods of a cluster share ONE PostgreSQL server (the "master's"); replicas
are not separate read-only servers, there is no Patroni, no failover, no WAL archiving.
"""

from __future__ import annotations

import base64
import datetime
import logging
import re
import secrets
import string
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import clone_sim, events
from .controllers.base import ControllerBase, owned_by, pod_ready
from .controllers.kubelet import Kubelet
from .errors import ApiError
from .postgres_pods import major_version
from .rest import Options
from .scram import verifier_matches
from .validation import DNS1035_LABEL

if TYPE_CHECKING:
    from .server import KubeSim

LOG = logging.getLogger("kubesim.operator")
GROUP, PLURAL = "acid.zalan.do", "postgresqls"
COMPONENT = "postgres-operator"
RESYNC_SECONDS = 3.0
_USER_FLAGS = {"superuser", "inherit", "login", "nologin", "createrole", "createdb", "replication", "bypassrls",
               "noinherit", "nosuperuser", "nocreaterole", "nocreatedb", "noreplication", "nobypassrls"}
_USER_NAME = re.compile(r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*$")
_DEFAULT_CONFIG = {
    "docker_image": "ghcr.io/zalando/spilo-18:4.1-p2",
    "connection_pooler_image": "ghcr.io/zalando/postgres-operator/pgbouncer:v2.0.1",
    "connection_pooler_number_of_instances": "2", "connection_pooler_mode": "transaction",
    "connection_pooler_user": "pooler",
    "logical_backup_docker_image": "ghcr.io/zalando/postgres-operator/logical-backup:v2.0.1",
    "logical_backup_schedule": "30 00 * * *", "super_username": "postgres", "replication_username": "standby",
}


def secret_name(user: str, cluster: str) -> str:
    return f"{user.replace('_', '-')}.{cluster}.credentials.postgresql.{GROUP}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class ZalandoOperator(ControllerBase):
    manager = "postgres-operator"

    def __init__(self, sim: "KubeSim", crd_path: Path) -> None:
        super().__init__(sim)
        self.crd_path = crd_path
        self._known: dict[tuple[str, str], str] = {}
        # uid -> the generation last synced. Kept in memory, as the operator does: the CRD's status
        # schema has only PostgresClusterStatus, so there is no observedGeneration to write.
        self._observed: dict[str, int] = {}
        self._last_sync: dict[str, float] = {}
        self._role_sync_lock = threading.Lock()
        self._role_syncs: set[str] = set()
        # uids of clones already seeded from their source: a clone is bootstrapped once, whatever
        # happens to its source afterwards.
        self._seeded: set[str] = set()
        self._kubelet_hooked = False

    # ---- operator presence and CRD registration -----------------------------------------------------
    def _operator_config(self) -> dict[str, str] | None:
        """The running operator's configuration, or None while no operator pod is Ready.

        The real operator registers its CRD as its process starts, i.e. once its pod runs;
        the Deployment reports Available only after that. The Kubelet simulation marks pods
        Ready in the same controller pass that runs this, before the Deployment controller's
        next pass, so the CRD exists by the time ``kubectl wait --for=condition=Available``
        returns, as clients of the real operator may expect.
        """
        for deploy in self.store.list(("apps", "deployments")):
            if deploy["metadata"]["name"] != "postgres-operator":
                continue
            pods = self.store.list(("", "pods"), deploy["metadata"]["namespace"])
            if any(owned_by(p, deploy) and pod_ready(p) for p in pods):
                cm = self.store.get(("", "configmaps"), deploy["metadata"]["namespace"], "postgres-operator") or {}
                return {**_DEFAULT_CONFIG, **(cm.get("data") or {})}
        return None

    def _register_crd(self) -> None:
        crd_type = self.rtype("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        if self.store.get(crd_type.key, "", f"{PLURAL}.{GROUP}") is not None:
            return
        docs = [d for d in yaml.safe_load_all(self.crd_path.read_text()) if d]
        crd = next(d for d in docs if d.get("kind") == "CustomResourceDefinition")
        self.create(crd_type, crd)

    def sync(self) -> None:
        if not self._kubelet_hooked:
            for controller in self.sim.controllers.controllers:
                if isinstance(controller, Kubelet):
                    controller.job_runners.append(self._run_logical_backup)
            self._kubelet_hooked = True
        config = self._operator_config()
        if config is None:
            return
        self._register_crd()
        pg_type = self.sim.registry.get(GROUP, "v1", PLURAL)
        if pg_type is None:
            return
        present = {}
        for pg in self.store.list(pg_type.key):
            key = (pg["metadata"]["namespace"], pg["metadata"]["name"])
            present[key] = pg["metadata"]["uid"]
            if not pg["metadata"].get("deletionTimestamp"):
                self._sync_cluster(pg_type, pg, config)
        for key, uid in list(self._known.items()):
            if present.get(key) != uid:
                self._delete_cluster(*key)
                del self._known[key]
                self._observed.pop(uid, None)
                self._seeded.discard(uid)
        self._known.update(present)

    # ---- one cluster --------------------------------------------------------------------------------
    def _problems(self, pg: dict[str, Any]) -> tuple[str, str] | None:
        """(status, message) for what the real operator refuses, else None."""
        name = pg["metadata"]["name"]
        spec = pg.get("spec") or {}
        if len(name) > 58 or not DNS1035_LABEL.match(name):
            return "Invalid", (f'cluster name "{name}" must be a DNS-1035 label (lowercase letters, digits, "-", '
                               f"starting with a letter) of at most 58 characters")
        users = spec.get("users") or {}
        for user, flags in users.items():
            if not _USER_NAME.match(user):
                return "CreateFailed", f'invalid username: "{user}"'
            lowered = [str(f).lower() for f in flags or []]
            unknown = [f for f in lowered if f not in _USER_FLAGS]
            if unknown:
                return "CreateFailed", f'invalid flags for user "{user}": {unknown}'
            if "login" in lowered and "nologin" in lowered:
                return "CreateFailed", f'conflicting user flags for user "{user}": LOGIN and NOLOGIN'
        for database, owner in (spec.get("databases") or {}).items():
            if owner not in users and owner not in ("postgres",):
                return "CreateFailed", (f'could not sync databases: database "{database}" owner "{owner}" is not '
                                        f"defined in the users section")
        return None

    def _sync_cluster(self, pg_type: Any, pg: dict[str, Any], config: dict[str, str]) -> None:
        meta, spec = pg["metadata"], pg.get("spec") or {}
        name, ns = meta["name"], meta["namespace"]
        status = (pg.get("status") or {}).get("PostgresClusterStatus")
        problem = self._problems(pg)
        if problem is None and clone_sim.source_name(pg) and meta["uid"] not in self._seeded:
            clone_failure = clone_sim.clone_problem(self.store, pg_type.key, pg, config,
                                                    datetime.datetime.now(datetime.timezone.utc))
            problem = None if clone_failure is None else ("CreateFailed", clone_failure)
        if problem is not None:
            if status != problem[0]:
                self.set_status(pg_type, pg, {"PostgresClusterStatus": problem[0]})
                events.record(self.store, pg, "Create" if problem[0] == "CreateFailed" else "Sync", problem[1],
                              COMPONENT, "Warning")
            return
        generation = int(meta.get("generation", 1))
        observed = self._observed.get(meta["uid"])
        self._observed[meta["uid"]] = generation
        if status in (None, "", "Invalid", "CreateFailed"):
            self.set_status(pg_type, pg, {"PostgresClusterStatus": "Creating"})
            events.record(self.store, pg, "Create", "Started creation of new cluster resources", COMPONENT)
            status = "Creating"
        elif observed is not None and observed != generation and status == "Running":
            self.set_status(pg_type, pg, {"PostgresClusterStatus": "Updating"})
            events.record(self.store, pg, "Update", "Started update of the cluster", COMPONENT)
            status = "Updating"
        pg = self.store.get(pg_type.key, ns, name) or pg
        version = major_version("", str((spec.get("postgresql") or {}).get("version", "")))
        backend = self.sim.pods.ensure_backend(("cluster", ns, name), version)
        passwords = self._secrets(pg, config)
        self._statefulset(pg, config, passwords)
        self._services(pg)
        self._pdb(pg)
        self._pooler(pg, config)
        self._logical_backup(pg, config)
        self._label_pods(pg)
        if backend is not None and backend.ready.is_set() and backend.info is not None and not backend.error:
            self._schedule_role_sync(pg, passwords, backend.info)
        sts = self.store.get(("apps", "statefulsets"), ns, name) or {}
        instances = int(spec.get("numberOfInstances", 1))
        sts_status = sts.get("status") or {}
        settled = (sts_status.get("readyReplicas", 0) == instances and sts_status.get("replicas", 0) == instances
                   and sts_status.get("observedGeneration") == (sts.get("metadata") or {}).get("generation"))
        if settled and status in ("Creating", "Updating") and self._roles_done(pg):
            self.set_status(pg_type, pg, {"PostgresClusterStatus": "Running"})
            verb = "Create" if status == "Creating" else "Update"
            message = "Cluster has been created" if verb == "Create" else "Update of the cluster completed"
            events.record(self.store, pg, verb, message, COMPONENT)

    def _labels(self, pg: dict[str, Any]) -> dict[str, str]:
        return {"application": "spilo", "cluster-name": pg["metadata"]["name"],
                "team": str((pg.get("spec") or {}).get("teamId", ""))}

    def _apply(self, plural: str, group: str, obj: dict[str, Any]) -> None:
        """Create, or update when the operator-managed content differs (the operator's sync)."""
        rtype = self.rtype(group, "v1", plural)
        meta = obj["metadata"]
        current = self.store.get(rtype.key, meta["namespace"], meta["name"])
        if current is None:
            self.create(rtype, obj)
            return
        desired = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
        merged = {**current, **desired}
        labels = {**(current["metadata"].get("labels") or {}), **(meta.get("labels") or {})}
        merged["metadata"] = {**current["metadata"], "labels": labels}
        if rtype.kind == "Service":
            merged["spec"] = {**(current.get("spec") or {}), **desired.get("spec", {})}
        try:
            self.rest.write_update(rtype, current, merged, self.opts(), "")
        except ApiError as exc:
            LOG.warning("operator could not update %s %s: %s", plural, meta["name"], exc.message)

    def _secrets(self, pg: dict[str, Any], config: dict[str, str]) -> dict[str, str]:
        name, ns = pg["metadata"]["name"], pg["metadata"]["namespace"]
        spec = pg.get("spec") or {}
        users = [config["super_username"], config["replication_username"], *(spec.get("users") or {})]
        if spec.get("enableConnectionPooler") or spec.get("enableReplicaConnectionPooler"):
            users.append((spec.get("connectionPooler") or {}).get("user") or config["connection_pooler_user"])
        passwords = {}
        secret_type = self.rtype("", "v1", "secrets")
        for user in dict.fromkeys(users):
            existing = self.store.get(secret_type.key, ns, secret_name(user, name))
            if existing is not None and "password" in (existing.get("data") or {}):
                passwords[user] = base64.b64decode(existing["data"]["password"]).decode()
                continue
            password = "".join(secrets.choice(string.ascii_letters + string.digits) for _index in range(64))
            self.create(secret_type, {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": secret_name(user, name), "namespace": ns, "labels": self._labels(pg)},
                "data": {"username": base64.b64encode(user.encode()).decode(),
                         "password": base64.b64encode(password.encode()).decode()}})
            passwords[user] = password
        return passwords

    def _statefulset(self, pg: dict[str, Any], config: dict[str, str], passwords: dict[str, str]) -> None:
        name, ns = pg["metadata"]["name"], pg["metadata"]["namespace"]
        spec = pg.get("spec") or {}
        labels = self._labels(pg)
        version = str((spec.get("postgresql") or {}).get("version", ""))
        env = [{"name": "SCOPE", "value": name}, {"name": "PGROOT", "value": "/home/postgres/pgdata/pgroot"},
               {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
               {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                                    "fieldPath": "metadata.namespace"}}},
               {"name": "PGUSER_SUPERUSER", "value": config["super_username"]},
               {"name": "KUBERNETES_SCOPE_LABEL", "value": "cluster-name"},
               {"name": "KUBERNETES_ROLE_LABEL", "value": "spilo-role"},
               {"name": "PGPASSWORD_SUPERUSER", "valueFrom": {"secretKeyRef": {
                   "name": secret_name(config["super_username"], name), "key": "password"}}},
               {"name": "PGUSER_STANDBY", "value": config["replication_username"]},
               {"name": "PGPASSWORD_STANDBY", "valueFrom": {"secretKeyRef": {
                   "name": secret_name(config["replication_username"], name), "key": "password"}}},
               {"name": "PGVERSION", "value": version}]
        postgres = {"name": "postgres", "image": spec.get("dockerImage") or config["docker_image"],
                    "ports": [{"containerPort": 8008, "protocol": "TCP"}, {"containerPort": 5432, "protocol": "TCP"},
                              {"containerPort": 8080, "protocol": "TCP"}],
                    "env": env, "resources": spec.get("resources") or {},
                    "volumeMounts": [{"name": "pgdata", "mountPath": "/home/postgres/pgdata"}]}
        sidecars = []
        for sidecar in spec.get("sidecars") or []:
            # The operator's variables come first, so that the sidecar's own entries can refer to
            # them ($(POSTGRES_USER)); a sidecar entry of the same name is dropped, as upstream does.
            operator_env = [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                                     "fieldPath": "metadata.namespace"}}},
                {"name": "POSTGRES_USER", "value": config["super_username"]},
                {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {
                    "name": secret_name(config["super_username"], name), "key": "password"}}}]
            reserved = {e["name"] for e in operator_env}
            sidecar = dict(sidecar)
            sidecar["env"] = [*operator_env, *(e for e in sidecar.get("env") or [] if e.get("name") not in reserved)]
            sidecars.append(sidecar)
        sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": name, "namespace": ns, "labels": labels},
               "spec": {"replicas": int(spec.get("numberOfInstances", 1)), "serviceName": name,
                        "selector": {"matchLabels": {"application": "spilo", "cluster-name": name}},
                        "podManagementPolicy": "OrderedReady",
                        "updateStrategy": {"type": "OnDelete"},
                        "template": {"metadata": {"labels": labels},
                                     "spec": {"serviceAccountName": "postgres-pod",
                                              "containers": [postgres, *sidecars]}},
                        "volumeClaimTemplates": [{"metadata": {"name": "pgdata", "labels": labels},
                                                  "spec": {"accessModes": ["ReadWriteOnce"], "resources": {
                                                      "requests": {"storage": (spec.get("volume") or {}).get(
                                                          "size", "1Gi")}}}}]}}
        current = self.store.get(("apps", "statefulsets"), ns, name)
        if current is not None:
            # Only what may change on a live StatefulSet; claim templates are immutable.
            sts["spec"]["volumeClaimTemplates"] = current["spec"].get("volumeClaimTemplates")
        self._apply("statefulsets", "apps", sts)
        for account in ("postgres-pod",):
            if self.store.get(("", "serviceaccounts"), ns, account) is None:
                self.create(self.rtype("", "v1", "serviceaccounts"), {"metadata": {"name": account, "namespace": ns}})

    def _services(self, pg: dict[str, Any]) -> None:
        name, ns = pg["metadata"]["name"], pg["metadata"]["namespace"]
        labels = self._labels(pg)
        port = [{"name": "postgresql", "port": 5432, "protocol": "TCP", "targetPort": 5432}]
        self._apply("services", "", {"apiVersion": "v1", "kind": "Service",
                                     "metadata": {"name": name, "namespace": ns,
                                                  "labels": {**labels, "spilo-role": "master"}},
                                     "spec": {"type": "ClusterIP", "ports": port}})
        self._apply("services", "", {"apiVersion": "v1", "kind": "Service",
                                     "metadata": {"name": f"{name}-repl", "namespace": ns,
                                                  "labels": {**labels, "spilo-role": "replica"}},
                                     "spec": {"type": "ClusterIP", "ports": port,
                                              "selector": {"application": "spilo", "cluster-name": name,
                                                           "spilo-role": "replica"}}})
        master = self.store.get(("", "pods"), ns, f"{name}-0")
        ip = ((master or {}).get("status") or {}).get("podIP")
        subsets = [{"addresses": [{"ip": ip}], "ports": [{"name": "postgresql", "port": 5432, "protocol": "TCP"}]}] \
            if ip and pod_ready(master or {"metadata": {"deletionTimestamp": "x"}}) else []
        endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": name, "namespace": ns, "labels": {**labels, "spilo-role": "master"}}}
        if subsets:
            endpoints["subsets"] = subsets
        self._apply("endpoints", "", endpoints)

    def _pdb(self, pg: dict[str, Any]) -> None:
        name, ns = pg["metadata"]["name"], pg["metadata"]["namespace"]
        pdb_type = self.rtype("policy", "v1", "poddisruptionbudgets")
        if self.store.get(pdb_type.key, ns, f"postgres-{name}-pdb") is None:
            self.create(pdb_type, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                   "metadata": {"name": f"postgres-{name}-pdb", "namespace": ns,
                                                "labels": self._labels(pg)},
                                   "spec": {"minAvailable": 1, "selector": {"matchLabels": {
                                       "cluster-name": name, "spilo-role": "master"}}}})

    def _pooler(self, pg: dict[str, Any], config: dict[str, str]) -> None:
        name, ns = pg["metadata"]["name"], pg["metadata"]["namespace"]
        spec = pg.get("spec") or {}
        pooler = spec.get("connectionPooler") or {}
        user = pooler.get("user") or config["connection_pooler_user"]
        for suffix, enabled, role in (("pooler", spec.get("enableConnectionPooler"), "master"),
                                      ("pooler-repl", spec.get("enableReplicaConnectionPooler"), "replica")):
            pooler_name = f"{name}-{suffix}"
            if not enabled:
                for plural, group in (("deployments", "apps"), ("services", "")):
                    existing = self.store.get((group, plural), ns, pooler_name)
                    if existing is not None:
                        self.delete(self.rtype(group, "v1", plural), existing)
                continue
            labels = {"application": "db-connection-pooler", "connection-pooler": pooler_name,
                      "cluster-name": name, "spilo-role": role}
            env = [{"name": "PGHOST", "value": name if role == "master" else f"{name}-repl"},
                   {"name": "PGPORT", "value": "5432"}, {"name": "PGUSER", "value": user},
                   {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": secret_name(user, name),
                                                                         "key": "password"}}},
                   {"name": "CONNECTION_POOLER_MODE", "value": pooler.get("mode")
                    or config["connection_pooler_mode"]},
                   {"name": "CONNECTION_POOLER_PORT", "value": "5432"}]
            self._apply("deployments", "apps", {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": pooler_name, "namespace": ns, "labels": labels},
                "spec": {"replicas": int(pooler.get("numberOfInstances")
                                         or config["connection_pooler_number_of_instances"]),
                         "selector": {"matchLabels": {"connection-pooler": pooler_name}},
                         "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                             "name": "connection-pooler",
                             "image": pooler.get("dockerImage") or config["connection_pooler_image"],
                             "ports": [{"containerPort": 5432, "protocol": "TCP"}], "env": env,
                             "resources": pooler.get("resources") or {}}]}}}})
            self._apply("services", "", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": pooler_name, "namespace": ns, "labels": labels},
                "spec": {"type": "ClusterIP", "ports": [{"name": pooler_name, "port": 5432, "protocol": "TCP",
                                                         "targetPort": 5432}],
                         "selector": {"connection-pooler": pooler_name}}})

    def _logical_backup(self, pg: dict[str, Any], config: dict[str, str]) -> None:
        name, ns = pg["metadata"]["name"], pg["metadata"]["namespace"]
        spec = pg.get("spec") or {}
        cron_name = f"logical-backup-{name}"
        existing = self.store.get(("batch", "cronjobs"), ns, cron_name)
        if not spec.get("enableLogicalBackup"):
            if existing is not None:
                self.delete(self.rtype("batch", "v1", "cronjobs"), existing)
            return
        labels = {"application": "spilo-logical-backup", "cluster-name": name, "team": str(spec.get("teamId", ""))}
        self._apply("cronjobs", "batch", {
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": cron_name, "namespace": ns, "labels": self._labels(pg)},
            "spec": {"schedule": spec.get("logicalBackupSchedule") or config["logical_backup_schedule"],
                     "concurrencyPolicy": "Forbid",
                     "jobTemplate": {"spec": {"backoffLimit": 0, "template": {
                         "metadata": {"labels": labels},
                         "spec": {"restartPolicy": "Never", "serviceAccountName": "postgres-pod",
                                  "containers": [{"name": "logical-backup",
                                                  "image": config["logical_backup_docker_image"],
                                                  "env": [{"name": "SCOPE", "value": name},
                                                          {"name": "PGHOST", "value": name},
                                                          {"name": "PGPORT", "value": "5432"},
                                                          {"name": "PGUSER", "value": config["super_username"]}]}]}}}}}})

    def _label_pods(self, pg: dict[str, Any]) -> None:
        """What Patroni does: pod 0 is the master, the others replicas."""
        name, ns = pg["metadata"]["name"], pg["metadata"]["namespace"]
        pod_type = self.rtype("", "v1", "pods")
        for pod in self.store.list(("", "pods"), ns):
            labels = pod["metadata"].get("labels") or {}
            if labels.get("cluster-name") != name or labels.get("application") != "spilo":
                continue
            role = "master" if pod["metadata"]["name"] == f"{name}-0" else "replica"
            if labels.get("spilo-role") != role and (pod.get("status") or {}).get("phase") == "Running":
                updated = dict(pod)
                updated["metadata"] = {**pod["metadata"], "labels": {**labels, "spilo-role": role}}
                self.rest.write_update(pod_type, pod, updated, Options(manager="patroni", field_validation="Ignore"),
                                       "")

    # ---- roles and databases in the real server ----------------------------------------------------
    def _schedule_role_sync(self, pg: dict[str, Any], passwords: dict[str, str], info: Any) -> None:
        uid = pg["metadata"]["uid"]
        key = f"{uid}:{pg['metadata'].get('generation')}"
        if time.monotonic() - self._last_sync.get(key, 0.0) < RESYNC_SECONDS:
            return
        with self._role_sync_lock:
            if uid in self._role_syncs:
                return
            self._role_syncs.add(uid)
        self._last_sync[key] = time.monotonic()

        def run() -> None:
            try:
                self._seed_clone(pg, info)
                self._sync_roles(pg, passwords, info)
                self._last_sync[f"done:{key}"] = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - reported as an event, retried next sync
                LOG.warning("role sync for %s failed: %s", pg["metadata"]["name"], exc)
                events.record(self.store, pg, "Sync", f"could not sync roles: {exc}", COMPONENT, "Warning")
            finally:
                with self._role_sync_lock:
                    self._role_syncs.discard(uid)
                self.sim.controllers.kick()

        threading.Thread(target=run, daemon=True, name=f"roles-{pg['metadata']['name']}").start()

    def _seed_clone(self, pg: dict[str, Any], info: Any) -> None:
        """A clone's first sync: its server gets the source's data before any role is created."""
        source = clone_sim.source_name(pg)
        if not source or pg["metadata"]["uid"] in self._seeded:
            return
        backend = self.sim.pods.backend(("cluster", pg["metadata"]["namespace"], source))
        if backend is None or backend.info is None:
            raise RuntimeError(f'the clone source "{source}" has no running server yet')
        clone_sim.seed(backend.info, info)
        self._seeded.add(pg["metadata"]["uid"])
        events.record(self.store, pg, "Create", f'Cluster bootstrapped as a clone of "{source}"', COMPONENT)

    def _roles_done(self, pg: dict[str, Any]) -> bool:
        return f"done:{pg['metadata']['uid']}:{pg['metadata'].get('generation')}" in self._last_sync

    def _sync_roles(self, pg: dict[str, Any], passwords: dict[str, str], info: Any) -> None:
        spec = pg.get("spec") or {}
        admin = self.sim.pods.admin_sql
        existing = {}
        for line in admin(info, "SELECT rolname, coalesce(rolpassword, '') FROM pg_authid").splitlines():
            role, _sep, verifier = line.partition("|")
            existing[role] = verifier
        declared: dict[str, list[str]] = {u: [str(f).upper() for f in flags or []]
                                          for u, flags in (spec.get("users") or {}).items()}
        for user, password in passwords.items():
            flags = declared.get(user, [])
            if user == "standby":
                flags = ["REPLICATION"]
            if user == "postgres":
                flags = ["SUPERUSER"]
            if "NOLOGIN" not in flags and "LOGIN" not in flags:
                flags = [*flags, "LOGIN"]
            options = " ".join(flags)
            if user not in existing:
                admin(info, f"CREATE ROLE {_ident(user)} {options} PASSWORD {_literal(password)}")
                continue
            if options:
                admin(info, f"ALTER ROLE {_ident(user)} {options}")
            if not verifier_matches(existing[user], password):
                admin(info, f"ALTER ROLE {_ident(user)} PASSWORD {_literal(password)}")
        owners = dict(line.split("|", 1) for line in
                      admin(info, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database").splitlines())
        for database, owner in (spec.get("databases") or {}).items():
            if database not in owners:
                admin(info, f"CREATE DATABASE {_ident(database)} OWNER {_ident(owner)}")
            elif owners[database] != owner:
                admin(info, f"ALTER DATABASE {_ident(database)} OWNER TO {_ident(owner)}")
        for database in (spec.get("preparedDatabases") or {}):
            for suffix in ("owner", "reader", "writer"):
                role = f"{database}_{suffix}"
                if role not in existing:
                    admin(info, f"CREATE ROLE {_ident(role)} NOLOGIN")
            if database not in owners:
                admin(info, f"CREATE DATABASE {_ident(database)} OWNER {_ident(database + '_owner')}")

    def _run_logical_backup(self, pod: dict[str, Any]) -> tuple[int, str] | None:
        labels = pod["metadata"].get("labels") or {}
        if labels.get("application") != "spilo-logical-backup":
            return None
        backend = self.sim.pods.backend(("cluster", pod["metadata"]["namespace"], labels.get("cluster-name", "")))
        if backend is None or backend.info is None:
            return 1, "logical backup: the cluster's master is not reachable\n"
        info = backend.info
        proc = subprocess.run([str(Path(info.bindir) / "pg_dumpall"), "-h", info.socket_dir, "-p", str(info.port),
                               "-U", "postgres"], capture_output=True, check=False)
        if proc.returncode != 0:
            return proc.returncode, proc.stderr.decode(errors="replace")
        return 0, (f"logical backup of {labels.get('cluster-name')}: pg_dumpall wrote {len(proc.stdout)} bytes "
                   f"(kept nowhere: no object storage in kubesim)\n")

    # ---- deletion -----------------------------------------------------------------------------------
    def _delete_cluster(self, ns: str, name: str) -> None:
        for group, plural in (("apps", "statefulsets"), ("apps", "deployments"), ("", "services"),
                              ("", "endpoints"), ("", "secrets"), ("policy", "poddisruptionbudgets"),
                              ("batch", "cronjobs"), ("", "persistentvolumeclaims"), ("", "pods")):
            rtype = self.rtype(group, "v1", plural)
            for obj in self.store.list(rtype.key, ns):
                if (obj["metadata"].get("labels") or {}).get("cluster-name") == name:
                    self.delete(rtype, obj)
        self.sim.pods.release(("cluster", ns, name))
