"""The resource types the simulator serves, described once.

Discovery, URL routing, the store and the OpenAPI documents all need the same facts about
a resource (group, version, plural, kind, scope, short names, subresources); keeping them in
one table means a kind can never be routable but undiscoverable, or the other way round.
Custom resources are added to the same registry when their CRD becomes Established.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource (e.g. apps/v1 deployments) and how the server treats it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    has_generation: bool = False
    verbs: tuple[str, ...] = ALL_VERBS
    schema_ref: str = ""
    crd_schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)

    @property
    def group_version(self) -> str:
        """``apiVersion`` as written in objects: ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: group and plural (one stored version per resource)."""
        return (self.group, self.plural)

    @property
    def is_custom(self) -> bool:
        return self.crd_schema is not None

    def base_path(self) -> str:
        return f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"


def _core(plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType(group="", version="v1", plural=plural, kind=kind, namespaced=namespaced,
                        singular=kind.lower(), schema_ref=f"io.k8s.api.core.v1.{kind}", **kw)


def _grouped(group: str, version: str, plural: str, kind: str, api_pkg: str, namespaced: bool = True,
             **kw: Any) -> ResourceType:
    return ResourceType(group=group, version=version, plural=plural, kind=kind, namespaced=namespaced,
                        singular=kind.lower(), schema_ref=f"{api_pkg}.{kind}", **kw)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", namespaced=False, short_names=("ns",), subresources=("status",),
          verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _core("secrets", "Secret"),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("services", "Service", short_names=("svc",), categories=("all",), subresources=("status",),
          verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _core("endpoints", "Endpoints", short_names=("ep",)),
    _core("pods", "Pod", short_names=("po",), categories=("all",), subresources=("status", "exec", "log")),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",), subresources=("status",)),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _core("events", "Event", short_names=("ev",)),
    _grouped("apps", "v1", "deployments", "Deployment", "io.k8s.api.apps.v1", short_names=("deploy",),
             categories=("all",), subresources=("status", "scale"), has_generation=True),
    _grouped("apps", "v1", "statefulsets", "StatefulSet", "io.k8s.api.apps.v1", short_names=("sts",),
             categories=("all",), subresources=("status", "scale"), has_generation=True),
    _grouped("batch", "v1", "jobs", "Job", "io.k8s.api.batch.v1", categories=("all",), subresources=("status",),
             has_generation=True),
    _grouped("batch", "v1", "cronjobs", "CronJob", "io.k8s.api.batch.v1", short_names=("cj",), categories=("all",),
             subresources=("status",), has_generation=True),
    _grouped("rbac.authorization.k8s.io", "v1", "roles", "Role", "io.k8s.api.rbac.v1"),
    _grouped("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", "io.k8s.api.rbac.v1"),
    _grouped("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", "io.k8s.api.rbac.v1",
             namespaced=False),
    _grouped("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", "io.k8s.api.rbac.v1",
             namespaced=False),
    _grouped("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", "io.k8s.api.policy.v1",
             short_names=("pdb",), subresources=("status",), has_generation=True),
    _grouped("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", "io.k8s.api.networking.v1",
             short_names=("netpol",), has_generation=True),
    _grouped("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
             "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1", namespaced=False, short_names=("crd", "crds"),
             categories=("api-extensions",), subresources=("status",), has_generation=True),
)

# Order in which /apis lists the built-in groups (as a real server does: by priority).
BUILTIN_GROUP_ORDER = ("apps", "batch", "rbac.authorization.k8s.io", "policy", "networking.k8s.io",
                       "apiextensions.k8s.io")


class Registry:
    """Thread-safe set of served resource types; custom resources come and go with their CRDs."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in BUILTIN_TYPES:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def add(self, rtype: ResourceType) -> None:
        with self._lock:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def remove_group_resource(self, group: str, plural: str) -> None:
        with self._lock:
            for key in [k for k in self._types if k[0] == group and k[2] == plural]:
                del self._types[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_key(self, key: tuple[str, str]) -> ResourceType | None:
        with self._lock:
            for rtype in self._types.values():
                if rtype.key == key:
                    return rtype
        return None

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Group name -> served versions, built-in groups first in their canonical order."""
        with self._lock:
            groups: dict[str, list[str]] = {}
            for rtype in self._types.values():
                if rtype.group:
                    versions = groups.setdefault(rtype.group, [])
                    if rtype.version not in versions:
                        versions.append(rtype.version)
        ordered = {g: groups[g] for g in BUILTIN_GROUP_ORDER if g in groups}
        ordered.update({g: v for g, v in sorted(groups.items()) if g not in ordered})
        return ordered

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        with self._lock:
            return [t for t in self._types.values() if t.group == group and t.version == version]
