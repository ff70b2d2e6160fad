"""Claims become folders: the test bed's default StorageClass and its provisioner.

A claim of class ``localcluster`` (the default, so claims that name none get it) is given a
PersistentVolume whose hostPath is ``volumes/<namespace>-<claim>`` in the state folder, and the
controller-manager binds the two as it would any pre-bound volume. The folder outlives the pods
that use it, which is what lets a recreated StatefulSet pod find its data again.
"""

from __future__ import annotations

import json
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

STORAGE_CLASS = "localcluster"
PROVISIONER = "localcluster.test/hostpath"


class ClaimProvisioner:
    def __init__(self, core: client.CoreV1Api, root: Path) -> None:
        self.core = core
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.storage = client.StorageV1Api(core.api_client)

    def ensure_default_class(self) -> None:
        body = {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
        }
        try:
            self.storage.create_storage_class(body)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def folder_for(self, namespace: str, claim: str) -> Path:
        folder = self.root / f"{namespace}-{claim}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def sync(self) -> None:
        claims = json.loads(self.core.list_persistent_volume_claim_for_all_namespaces(_preload_content=False).data)["items"]
        for claim in claims:
            spec, meta = claim["spec"], claim["metadata"]
            if claim.get("status", {}).get("phase") != "Pending" or spec.get("volumeName"):
                continue
            if spec.get("storageClassName") != STORAGE_CLASS:
                continue
            name = f"pv-{meta['uid']}"
            body = {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                "spec": {
                    "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                    "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": str(self.folder_for(meta["namespace"], meta["name"])), "type": "DirectoryOrCreate"},
                    "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                },
            }
            try:
                self.core.create_persistent_volume(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
