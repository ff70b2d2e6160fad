"""The verbs of the API (create, get, list, update, patch, delete) with the server's rules.

This layer owns what happens between a decoded request and the store: namespace checks,
defaulting, validation, status-subresource separation, ``generation`` bumps on spec changes
only, no-op writes that keep the ``resourceVersion``, optimistic concurrency, immutable
fields, ``managedFields`` bookkeeping, finalizers and deletion propagation. The HTTP layer
and the simulated controllers both call it, so controllers obey the same rules as clients.
"""

from __future__ import annotations

import copy
import functools
import json
import secrets
import string
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from . import defaults
from .errors import (ApiError, already_exists, bad_request, conflict, field_cause, invalid, namespace_not_found,
                     not_found, unsupported_media_type)
from .managed_fields import (FieldManagers, apply_merge, changed_paths, field_paths, format_path, now_iso,
                             remove_at, value_at)
from .patching import json_patch, merge_patch, strategic_merge_patch
from .resources import Registry, ResourceType
from .selectors import labels_match, parse_field_selector, parse_label_selector
from .store import Store
from .validation import decode, ensure_dict_body, object_schema, validate_object

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
_SERVER_META = ("uid", "creationTimestamp", "resourceVersion", "generation", "deletionTimestamp",
                "deletionGracePeriodSeconds", "selfLink")
_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds", "revisionHistoryLimit")
# batch/v1 Jobs keep the legacy default of orphaning their pods when deleted without a policy.
_ORPHAN_BY_DEFAULT = {("batch", "jobs"), ("batch", "cronjobs")}


@dataclass
class Options:
    """Per-request options from the query string."""

    manager: str = ""
    dry_run: bool = False
    field_validation: str = ""
    force: bool = False
    warnings: list[str] = field(default_factory=list)


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a read-modify-write verb under the store's lock: etcd's compare-and-swap, in effect,
    so a controller's status write and a client's patch can never overwrite each other."""

    @functools.wraps(method)
    def wrapper(self: "Rest", *args: Any, **kwargs: Any) -> Any:
        with self.store.lock:
            return method(self, *args, **kwargs)

    return wrapper


class Rest:
    """The API's semantics over a Store; raises ApiError for everything a client can get wrong."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.on_crd_change: Callable[[dict[str, Any], bool], None] | None = None

    # ---- helpers ---------------------------------------------------------------------------
    def _check_namespace(self, rtype: ResourceType, namespace: str, creating: bool) -> None:
        if not rtype.namespaced:
            return
        ns = self.store.get(("", "namespaces"), "", namespace)
        if ns is None:
            raise namespace_not_found(namespace)
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden",
                           f'{rtype.plural} "" is forbidden: unable to create new content in namespace {namespace} '
                           f"because it is being terminated",
                           {"kind": rtype.plural, "causes": [{
                               "reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                               "field": "metadata.namespace"}]})

    def _fix_identity(self, rtype: ResourceType, namespace: str, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        api_version = obj.get("apiVersion")
        if api_version and api_version != rtype.group_version:
            raise bad_request(f"the API version in the data ({api_version}) does not match the expected API "
                              f"version ({rtype.group_version})")
        kind = obj.get("kind")
        if kind and kind != rtype.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})")
        obj["apiVersion"] = rtype.group_version
        obj["kind"] = rtype.kind

    def _default(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        if not rtype.is_custom:
            defaults.apply_defaults(rtype.kind, obj)

    def _decode(self, rtype: ResourceType, obj: dict[str, Any], opts: Options, apply_patch: bool = False
                ) -> dict[str, Any]:
        decoded, warnings = decode(rtype, obj, opts.field_validation, apply_patch)
        opts.warnings.extend(warnings)
        return decoded

    @staticmethod
    def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}

    def _track(self, rtype: ResourceType, old: dict[str, Any] | None, new: dict[str, Any], manager: str,
               subresource: str) -> None:
        """Move ownership of the fields an Update changed to its manager."""
        schema = object_schema(rtype)
        status = subresource == "status"
        managers = FieldManagers((old or {}).get("metadata", {}).get("managedFields"))
        given = new.get("metadata", {}).get("managedFields")
        if old is not None and given not in (None, []) and given != old["metadata"].get("managedFields"):
            managers = FieldManagers(given)
        changed, removed = changed_paths(old or {}, new, schema, status)
        if removed:
            managers.release(removed)
        if changed:
            managers.release(changed, keep=(manager, "Update", subresource))
            owned = managers.owned_by(manager, "Update", subresource) | changed
            managers.set_owned(manager, "Update", subresource, owned, rtype.group_version)
        rendered = managers.render()
        if rendered:
            new["metadata"]["managedFields"] = rendered
        else:
            new["metadata"].pop("managedFields", None)

    # ---- read --------------------------------------------------------------------------------
    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.key, namespace if rtype.namespaced else "", name)
        if obj is None:
            raise not_found(rtype, name)
        return obj

    def list(self, rtype: ResourceType, namespace: str | None, label_selector: str | None = None,
             field_selector: str | None = None) -> dict[str, Any]:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, rtype.kind)
        items = [o for o in self.store.list(rtype.key, namespace if rtype.namespaced else None)
                 if labels_match(labels, o["metadata"].get("labels")) and fields(o)]
        for item in items:
            item.setdefault("apiVersion", rtype.group_version)
            item.setdefault("kind", rtype.kind)
        return {"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": items}

    # ---- create ------------------------------------------------------------------------------
    @_serialized
    def create(self, rtype: ResourceType, namespace: str, body: Any, opts: Options,
               managers: FieldManagers | None = None) -> dict[str, Any]:
        """Create an object; ``managers`` (server-side apply) replaces Update-style field tracking."""
        obj = ensure_dict_body(copy.deepcopy(body))
        self._fix_identity(rtype, namespace, obj)
        self._check_namespace(rtype, namespace, creating=True)
        obj = self._decode(rtype, obj, opts)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            alphabet = string.ascii_lowercase + string.digits
            meta["name"] = meta["generateName"] + "".join(secrets.choice(alphabet) for _index in range(5))
        self._default(rtype, obj)
        if rtype.kind == "Job":
            self._job_selector(obj)
        validate_object(rtype, obj)
        if self.store.get(rtype.key, meta.get("namespace", ""), meta["name"]) is not None:
            raise already_exists(rtype, meta["name"])
        if "status" in rtype.subresources:
            obj.pop("status", None)
        self._initial_status(rtype, obj)
        for key in _SERVER_META:
            meta.pop(key, None)
        meta.pop("managedFields", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        if rtype.has_generation:
            meta["generation"] = 1
        if managers is not None:
            meta["managedFields"] = managers.render()
        else:
            self._track(rtype, None, obj, opts.manager, "")
        if opts.dry_run:
            return obj
        stored = self.store.put(rtype.key, obj)
        if rtype.kind == "CustomResourceDefinition" and self.on_crd_change:
            self.on_crd_change(stored, True)
            stored = self.store.get(rtype.key, "", meta["name"]) or stored
        return stored

    def _job_selector(self, obj: dict[str, Any]) -> None:
        """Jobs get a generated controller-uid selector and template labels, as the server does."""
        spec = obj.setdefault("spec", {})
        uid = obj["metadata"].get("uid") or str(uuid.uuid4())
        obj["metadata"]["uid"] = uid
        if spec.get("manualSelector"):
            return
        name = obj["metadata"]["name"]
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                  "controller-uid": uid, "job-name": name}
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
        template_meta.setdefault("labels", {}).update(labels)

    @staticmethod
    def _initial_status(rtype: ResourceType, obj: dict[str, Any]) -> None:
        if rtype.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        elif rtype.kind == "PersistentVolumeClaim":
            obj["status"] = {"phase": "Pending"}
        elif rtype.kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif rtype.kind == "Service":
            obj["status"] = {"loadBalancer": {}}
        elif rtype.kind == "StatefulSet":
            # Not omitempty in the Go type: present, as zeros, from the start.
            obj["status"] = {"replicas": 0, "availableReplicas": 0}
        elif rtype.kind == "PodDisruptionBudget":
            obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
        elif rtype.kind in ("Deployment", "Job", "CronJob"):
            obj["status"] = {}

    # ---- update ------------------------------------------------------------------------------
    @_serialized
    def update(self, rtype: ResourceType, namespace: str, name: str, body: Any, opts: Options,
               subresource: str = "") -> dict[str, Any]:
        obj = ensure_dict_body(copy.deepcopy(body))
        self._fix_identity(rtype, namespace, obj)
        if obj["metadata"].get("name") not in (None, name):
            raise bad_request(f"the name of the object ({obj['metadata']['name']}) does not match the name on the "
                              f"URL ({name})")
        obj["metadata"]["name"] = name
        self._check_namespace(rtype, namespace, creating=False)
        old = self.get(rtype, namespace, name)
        return self.write_update(rtype, old, self._decode(rtype, obj, opts), opts, subresource)

    @_serialized
    def write_update(self, rtype: ResourceType, old: dict[str, Any], new: dict[str, Any], opts: Options,
                     subresource: str, track: bool = True) -> dict[str, Any]:
        stored = self.store.get(rtype.key, old["metadata"].get("namespace", ""), old["metadata"]["name"])
        if stored is None:
            raise not_found(rtype, old["metadata"]["name"])
        old = stored
        meta, old_meta = new["metadata"], old["metadata"]
        name = old_meta["name"]
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != old_meta.get("resourceVersion"):
            raise conflict(rtype, name, "the object has been modified; please apply your changes to the latest "
                                        "version and try again")
        if subresource == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status", {})
            new = merged
        else:
            if "status" in rtype.subresources:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            for key in _SERVER_META:
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            self._preserve_allocated(rtype, old, new)
            self._default(rtype, new)
            self._check_immutable(rtype, old, new)
            validate_object(rtype, new)
            if rtype.has_generation and self._spec_part(old) != self._spec_part(new):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
        new["metadata"]["resourceVersion"] = old_meta.get("resourceVersion")
        if track:
            self._track(rtype, old, new, opts.manager, subresource)
        if new == old:
            return old
        if opts.dry_run:
            return new
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self.store.remove(rtype.key, meta.get("namespace", ""), name) or new
        stored = self.store.put(rtype.key, new)
        if rtype.kind == "CustomResourceDefinition" and self.on_crd_change:
            self.on_crd_change(stored, True)
        return stored

    @staticmethod
    def _preserve_allocated(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Service IPs allocated by the server survive updates that leave them unset."""
        if rtype.kind == "Service":
            old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
            for key in ("clusterIP", "clusterIPs"):
                if key in old_spec and new_spec.get(key) in (None, "", []):
                    new_spec[key] = copy.deepcopy(old_spec[key])
            if new_spec.get("clusterIPs") and new_spec.get("clusterIP") and \
                    new_spec["clusterIPs"][0] != new_spec["clusterIP"]:
                new_spec["clusterIPs"] = [new_spec["clusterIP"]]

    @staticmethod
    def _check_immutable(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        name = old["metadata"]["name"]
        if rtype.kind == "StatefulSet":
            if {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE} != \
                    {k: v for k, v in new_spec.items() if k not in _STS_MUTABLE}:
                raise invalid(rtype, name, [field_cause(
                    "FieldValueForbidden", "spec",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                    "are forbidden")])
        if rtype.kind in ("Deployment", "StatefulSet") and old_spec.get("selector") != new_spec.get("selector"):
            raise invalid(rtype, name, [field_cause(
                "FieldValueInvalid", "spec.selector",
                f"Invalid value: {json.dumps(new_spec.get('selector'))}: field is immutable")])
        if rtype.kind == "Service" and old_spec.get("clusterIP") not in (None, new_spec.get("clusterIP")):
            raise invalid(rtype, name, [field_cause("FieldValueInvalid", "spec.clusterIPs[0]",
                                                    "Invalid value: []string{...}: may not change once set")])
        if rtype.kind in ("Secret", "ConfigMap") and old.get("immutable"):
            immutable_keys = ("data", "binaryData", "stringData")
            if {k: old.get(k) for k in immutable_keys} != {k: new.get(k) for k in immutable_keys}:
                raise invalid(rtype, name, [field_cause("FieldValueForbidden", "data",
                                                        "Forbidden: field is immutable when `immutable` is set")])

    # ---- patch -------------------------------------------------------------------------------
    @_serialized
    def patch(self, rtype: ResourceType, namespace: str, name: str, content_type: str, raw: bytes, opts: Options,
              subresource: str = "") -> tuple[dict[str, Any], bool]:
        """Returns (object, created); only server-side apply can create."""
        content_type = content_type.split(";")[0].strip()
        if content_type in (APPLY_PATCH, APPLY_PATCH_CBOR):
            return self._apply(rtype, namespace, name, raw, opts, subresource)
        accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH] + ([] if rtype.is_custom else [STRATEGIC_PATCH])
        if content_type not in accepted:
            raise unsupported_media_type(content_type, accepted)
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            raise bad_request(f"error decoding patch: {exc}") from exc
        self._check_namespace(rtype, namespace, creating=False)
        old = self.get(rtype, namespace, name)
        if content_type == JSON_PATCH:
            new = json_patch(old, body)
        elif content_type == MERGE_PATCH:
            new = merge_patch(old, body)
        else:
            new = strategic_merge_patch(old, body, object_schema(rtype))
        if not isinstance(new, dict):
            raise bad_request("patch result is not an object")
        meta = new.setdefault("metadata", {})
        if meta.get("name") != name:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                              f"({name})")
        if isinstance(body, dict) and "resourceVersion" not in (body.get("metadata") or {}):
            meta["resourceVersion"] = old["metadata"].get("resourceVersion")
        self._fix_identity(rtype, namespace, new)
        return self.write_update(rtype, old, self._decode(rtype, new, opts), opts, subresource), False

    def _apply(self, rtype: ResourceType, namespace: str, name: str, raw: bytes, opts: Options,
               subresource: str) -> tuple[dict[str, Any], bool]:
        if not opts.manager:
            raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
        try:
            config = yaml.safe_load(raw.decode() if raw else "")
        except yaml.YAMLError as exc:
            raise bad_request(f"error decoding YAML: {exc}") from exc
        config = ensure_dict_body(config)
        if not config.get("apiVersion") or not config.get("kind"):
            raise bad_request("invalid object type: /, Kind=")
        config.setdefault("metadata", {})
        if config["metadata"].get("name") not in (None, name):
            raise bad_request(f"the name of the object ({config['metadata']['name']}) does not match the name "
                              f"on the URL ({name})")
        config["metadata"]["name"] = name
        self._fix_identity(rtype, namespace, config)
        self._check_namespace(rtype, namespace, creating=False)
        config = self._decode(rtype, config, opts, apply_patch=True)
        schema = object_schema(rtype)
        status = subresource == "status"
        applied = field_paths(config, schema, status)
        old = self.store.get(rtype.key, namespace if rtype.namespaced else "", name)
        if old is None:
            managers = FieldManagers([])
            managers.set_owned(opts.manager, "Apply", subresource, applied, rtype.group_version)
            created_opts = Options(manager=opts.manager, dry_run=opts.dry_run, field_validation="Ignore")
            return self.create(rtype, namespace, config, created_opts, managers), True
        managers = FieldManagers(old["metadata"].get("managedFields"))
        conflicts = []
        for entry, owned in managers.others(opts.manager, "Apply", subresource):
            for path in sorted(applied & owned):
                if path[-1].startswith("k:"):
                    continue
                if value_at(old, path) != value_at(config, path):
                    conflicts.append((entry, path))
        if conflicts and not opts.force:
            self._raise_conflicts(rtype, name, conflicts)
        if conflicts:
            managers.release({conflict[1] for conflict in conflicts}, keep=(opts.manager, "Apply", subresource))
        new = apply_merge(old, {k: v for k, v in config.items() if k not in ("apiVersion", "kind")}, schema)
        previously = managers.owned_by(opts.manager, "Apply", subresource)
        others = set().union(*[pair[1] for pair in managers.others(opts.manager, "Apply", subresource)]) \
            if managers.entries else set()
        for path in sorted(previously - applied, key=len, reverse=True):
            if not any(o[:len(path)] == path for o in others) and not any(a[:len(path)] == path for a in applied):
                remove_at(new, path)
        managers.set_owned(opts.manager, "Apply", subresource, applied, rtype.group_version)
        new["metadata"]["managedFields"] = managers.render()
        new["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
        return self.write_update(rtype, old, new, opts, subresource, track=False), False

    @staticmethod
    def _raise_conflicts(rtype: ResourceType, name: str, conflicts: list[tuple[dict[str, Any], Any]]) -> None:
        causes = []
        for entry, path in conflicts:
            who = f'conflict with "{entry.get("manager")}"'
            if entry.get("operation") == "Update":
                who += f' using {entry.get("apiVersion")}'
            causes.append({"reason": "FieldManagerConflict", "message": who, "field": format_path(path)})
        lines = [f"{c['message']}: {c['field']}" for c in causes]
        plural = "conflict" if len(lines) == 1 else "conflicts"
        message = f"Apply failed with {len(lines)} {plural}: " + (lines[0] if len(lines) == 1 else "\n".join(lines))
        details = {"name": name, "kind": rtype.plural, "causes": causes}
        if rtype.group:
            details["group"] = rtype.group
        raise ApiError(409, "Conflict", message, details)

    # ---- delete ------------------------------------------------------------------------------
    @_serialized
    def delete(self, rtype: ResourceType, namespace: str, name: str, opts: Options,
               propagation: str | None = None, preconditions: dict[str, Any] | None = None) -> dict[str, Any]:
        self._check_namespace(rtype, namespace, creating=False)
        obj = self.get(rtype, namespace, name)
        meta = obj["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise conflict(rtype, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                                        f"meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise conflict(rtype, name, "the object has been modified; please apply your changes to the latest "
                                        "version and try again")
        if propagation is None:
            propagation = "Orphan" if rtype.key in _ORPHAN_BY_DEFAULT else "Background"
        if opts.dry_run:
            return obj
        if propagation == "Orphan":
            self._orphan_dependents(meta["uid"])
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if rtype.kind == "Namespace" or finalizers:
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_iso()
                meta["deletionGracePeriodSeconds"] = 0
                meta["finalizers"] = finalizers
                if rtype.kind == "Namespace":
                    obj["status"] = {"phase": "Terminating"}
                obj = self.store.put(rtype.key, obj)
            return obj
        removed = self.store.remove(rtype.key, meta.get("namespace", ""), name) or obj
        if rtype.kind == "CustomResourceDefinition" and self.on_crd_change:
            self.on_crd_change(removed, False)
        if rtype.kind == "Pod":
            return removed
        details = {"name": name, "kind": rtype.plural, "uid": meta.get("uid")}
        if rtype.group:
            details["group"] = rtype.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _orphan_dependents(self, owner_uid: str) -> None:
        for key in self.store.keys():
            for obj in self.store.list(key):
                refs = obj["metadata"].get("ownerReferences") or []
                kept = [r for r in refs if r.get("uid") != owner_uid]
                if len(kept) != len(refs):
                    if kept:
                        obj["metadata"]["ownerReferences"] = kept
                    else:
                        obj["metadata"].pop("ownerReferences")
                    self.store.put(key, obj)

    @_serialized
    def finalize_removal(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        """Remove an object whose deletion was pending once its finalizers are gone (controllers call this)."""
        meta = obj["metadata"]
        self.store.remove(rtype.key, meta.get("namespace", ""), meta["name"])
        if rtype.kind == "CustomResourceDefinition" and self.on_crd_change:
            self.on_crd_change(obj, False)
