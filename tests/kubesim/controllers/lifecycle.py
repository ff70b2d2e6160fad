"""Namespace lifecycle and garbage collection.

Namespaces: every namespace gets its ``default`` ServiceAccount and ``kube-root-ca.crt``
ConfigMap; a deleted namespace is emptied, then removed. Garbage collection: objects whose
owners (by uid) are all gone are deleted (background propagation), and owners waiting in
foreground deletion are removed once their dependents are gone.
"""

from __future__ import annotations

from typing import Any

from .base import ControllerBase

NS_KEY = ("", "namespaces")


class NamespaceController(ControllerBase):
    def sync(self) -> None:
        ns_type = self.rtype("", "v1", "namespaces")
        for ns in self.store.list(NS_KEY):
            name = ns["metadata"]["name"]
            if ns["metadata"].get("deletionTimestamp"):
                self._empty(name)
                if not any(self.store.list(key, name) for key in self.store.keys() if self._namespaced(key)):
                    self.rest.finalize_removal(ns_type, ns)
                continue
            self._ensure_defaults(name)

    def _namespaced(self, key: tuple[str, str]) -> bool:
        rtype = self.sim.registry.by_key(key)
        return rtype is not None and rtype.namespaced

    def _empty(self, namespace: str) -> None:
        for key in self.store.keys():
            rtype = self.sim.registry.by_key(key)
            if rtype is None or not rtype.namespaced:
                continue
            for obj in self.store.list(key, namespace):
                if obj["metadata"].get("finalizers"):
                    continue
                self.store.remove(key, namespace, obj["metadata"]["name"])

    def _ensure_defaults(self, namespace: str) -> None:
        if self.store.get(("", "serviceaccounts"), namespace, "default") is None:
            self.create(self.rtype("", "v1", "serviceaccounts"),
                        {"metadata": {"name": "default", "namespace": namespace}})
        if self.store.get(("", "configmaps"), namespace, "kube-root-ca.crt") is None:
            self.create(self.rtype("", "v1", "configmaps"), {
                "metadata": {"name": "kube-root-ca.crt", "namespace": namespace,
                             "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used "
                                             "to verify the kube-apiserver when using internal endpoints such as "
                                             "the internal service IP or kubernetes.default.svc. No other usage is "
                                             "guaranteed across distributions of Kubernetes clusters."}},
                "data": {"ca.crt": "kubesim serves plain HTTP; there is no certificate authority\n"}})


class GarbageCollector(ControllerBase):
    def sync(self) -> None:
        live_uids: set[str] = set()
        everything: list[tuple[tuple[str, str], dict[str, Any]]] = []
        for key in self.store.keys():
            for obj in self.store.list(key):
                live_uids.add(obj["metadata"].get("uid", ""))
                everything.append((key, obj))
        dependents: dict[str, int] = {}
        for key, obj in everything:
            refs = obj["metadata"].get("ownerReferences") or []
            if not refs:
                continue
            alive = [r for r in refs if r.get("uid") in live_uids]
            rtype = self.sim.registry.by_key(key)
            if rtype is None:
                continue
            if not alive:
                if not obj["metadata"].get("deletionTimestamp"):
                    self.delete(rtype, obj)
                continue
            for ref in alive:
                dependents[ref["uid"]] = dependents.get(ref["uid"], 0) + 1
        for key, obj in everything:
            meta = obj["metadata"]
            if not meta.get("deletionTimestamp") or "foregroundDeletion" not in (meta.get("finalizers") or []):
                continue
            rtype = self.sim.registry.by_key(key)
            if rtype is None:
                continue
            for dep_key, dep in everything:
                if any(r.get("uid") == meta["uid"] for r in dep["metadata"].get("ownerReferences") or []) \
                        and not dep["metadata"].get("deletionTimestamp"):
                    dep_type = self.sim.registry.by_key(dep_key)
                    if dep_type is not None:
                        self.delete(dep_type, dep)
            if not dependents.get(meta["uid"]):
                meta["finalizers"] = [f for f in meta["finalizers"] if f != "foregroundDeletion"]
                current = self.store.get(key, meta.get("namespace", ""), meta["name"])
                if current is not None:
                    self.rest.write_update(rtype, current, obj, self.opts(), "", track=False)
