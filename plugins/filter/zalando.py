# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the Zalando postgres-operator: its naming rules, its install manifests and cluster checks.

Documentation of each filter is in the ``<filter name>.yml`` file next to this one.
Pure functions without Ansible imports at call time, so they are unit-testable with plain pytest.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any, Iterable, Mapping

# The operator's default ``secret_name_template``: {username}.{cluster}.credentials.{tprkind}.{tprgroup}
_SECRET_SUFFIX = "credentials.postgresql.acid.zalan.do"
# Kubernetes DNS-1035 label (what the operator requires of a cluster name), and its length limit.
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
CLUSTER_NAME_MAX = 58
# User names the operator accepts (it rejects anything else with "invalid username").
_OPERATOR_USER = re.compile(r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*$")
# Annotation on the operator's pod template: a new value (changed settings) restarts the operator,
# which reads its ConfigMap only at start-up.
CONFIG_HASH_ANNOTATION = "microservices.postgres/operator-config-sha256"
# Kinds in the operator's manifests that are cluster-scoped (they get no namespace).
_CLUSTER_SCOPED = frozenset({
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace", "PriorityClass",
    "StorageClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
})


def _fail(message: str) -> None:
    """Raise the error Ansible reports for a filter (imported lazily: keeps the module importable alone)."""
    try:
        from ansible.errors import AnsibleFilterError  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover - only without ansible installed
        raise ValueError(message) from None
    raise AnsibleFilterError(message)


def operator_secret_name(user: str, cluster: str) -> str:
    """Name of the Secret the operator generates for ``user`` of ``cluster`` (underscores -> dashes)."""
    if not isinstance(user, str) or not user:
        _fail(f"operator_secret_name: the user must be a non-empty string, got {user!r}")
    if not isinstance(cluster, str) or not cluster:
        _fail(f"operator_secret_name: the cluster must be a non-empty string, got {cluster!r}")
    return f"{user.replace('_', '-')}.{cluster}.{_SECRET_SUFFIX}"


def _config_value(value: Any) -> str:
    """ConfigMap data values are strings; booleans the operator's way (``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(_config_value(item) for item in value)
    if isinstance(value, Mapping):
        return ",".join(f"{key}:{_config_value(item)}" for key, item in value.items())
    return str(value)


def zalando_operator_manifests(documents: Iterable[Any], namespace: str, config: Mapping[str, Any] | None = None,
                               image: str = "") -> list[dict[str, Any]]:
    """The operator's install manifests, rewritten for ``namespace`` with ``config`` merged into its ConfigMap.

    * every namespaced object gets ``metadata.namespace: <namespace>``; cluster-scoped ones get none;
    * ServiceAccount subjects of (Cluster)RoleBindings that point at a ServiceAccount of these manifests
      are moved to ``namespace`` (upstream hard-codes ``default``);
    * the ConfigMap ``postgres-operator`` gets ``config`` merged over its data (values as strings);
    * Deployment ``postgres-operator`` gets ``image`` (when given) and, on its pod template, an annotation
      with the hash of the ConfigMap's data, so that changed settings restart the operator.

    Empty documents (``---`` separators, comments) are dropped; the input is not modified.
    """
    if not isinstance(namespace, str) or not namespace:
        _fail("zalando_operator_manifests: the namespace must be a non-empty string")
    accounts: set[str] = set()
    result: list[dict[str, Any]] = []
    config_data: dict[str, str] = {}
    for document in documents or []:
        if not document:
            continue
        if not isinstance(document, Mapping) or "kind" not in document:
            _fail(f"zalando_operator_manifests: not a Kubernetes object: {str(document)[:120]!r}")
        obj = copy.deepcopy(dict(document))
        obj["metadata"] = dict(obj.get("metadata") or {})
        if obj["kind"] in _CLUSTER_SCOPED:
            obj["metadata"].pop("namespace", None)
        else:
            obj["metadata"]["namespace"] = namespace
        if obj["kind"] == "ServiceAccount":
            accounts.add(obj["metadata"].get("name", ""))
        if obj["kind"] == "ConfigMap" and obj["metadata"].get("name") == "postgres-operator":
            data = {str(key): _config_value(value) for key, value in (obj.get("data") or {}).items()}
            data.update({str(key): _config_value(value) for key, value in (config or {}).items()})
            obj["data"] = config_data = data
        result.append(obj)
    digest = hashlib.sha256(json.dumps(config_data, sort_keys=True).encode()).hexdigest()
    for obj in result:
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            subjects = []
            for subject in obj.get("subjects") or []:
                subject = dict(subject)
                if subject.get("kind") == "ServiceAccount" and subject.get("name") in accounts:
                    subject["namespace"] = namespace
                subjects.append(subject)
            if subjects:
                obj["subjects"] = subjects
        if obj["kind"] == "Deployment" and obj["metadata"].get("name") == "postgres-operator":
            template = obj.setdefault("spec", {}).setdefault("template", {})
            meta = template.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), CONFIG_HASH_ANNOTATION: digest}
            if image:
                for container in template.get("spec", {}).get("containers") or []:
                    if container.get("name") == "postgres-operator":
                        container["image"] = image
    return result


def zalando_cluster_errors(spec: Mapping[str, Any], name: str, supported_versions: Iterable[Any],
                           max_instances: int = 10) -> list[str]:
    """What the operator (or the platform's rules) would refuse in a ``postgresql`` resource, as messages.

    Checks the cluster name (DNS-1035 label, at most 58 characters), ``postgresql.version`` against
    ``supported_versions``, ``numberOfInstances`` (1 .. ``max_instances``), user names and that every
    database owner is a declared user. Returns an empty list when nothing is wrong.
    """
    errors: list[str] = []
    spec = spec or {}
    if not isinstance(name, str) or not _DNS1035_LABEL.match(name) or len(name) > CLUSTER_NAME_MAX:
        errors.append(
            f"postgres_prod_cluster_name {name!r} is not a valid cluster name: it must be a DNS-1035 label "
            f"(lowercase letters, digits and '-', starting with a letter and ending with a letter or digit) "
            f"of at most {CLUSTER_NAME_MAX} characters (it has {len(name) if isinstance(name, str) else 0})")
    supported = [str(version) for version in supported_versions or []]
    version = str((spec.get("postgresql") or {}).get("version", ""))
    if version not in supported:
        errors.append(f"postgres_prod_postgres_version {version!r} is not supported by this operator version; "
                      f"supported: {', '.join(supported) or 'none known'}")
    instances = spec.get("numberOfInstances")
    if isinstance(instances, bool) or not isinstance(instances, int) or not 1 <= instances <= int(max_instances):
        errors.append(f"postgres_prod_instances {instances!r} is out of range: it must be an integer from 1 to "
                      f"{max_instances} (postgres_prod_max_instances)")
    users = spec.get("users") or {}
    for user in users:
        if not isinstance(user, str) or not _OPERATOR_USER.match(user):
            errors.append(f"user {user!r} is not a name the operator accepts (lowercase letters, digits, '_', '-' "
                          f"and '.', starting and ending with a letter or digit)")
    for database, owner in (spec.get("databases") or {}).items():
        if owner not in users and owner != "postgres":
            errors.append(f"database {database!r} has owner {owner!r}, which is not declared among the users "
                          f"({', '.join(sorted(map(str, users))) or 'none'}); declare it in postgres_prod_services "
                          f"or in postgres_prod_cluster_extra_spec.users")
    return errors


def _ready(pod: Mapping[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _not_ready_reason(pod: Mapping[str, Any]) -> str:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "terminating"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting = state.get("waiting") or state.get("terminated")
        if waiting and waiting.get("reason"):
            message = f": {waiting['message']}" if waiting.get("message") else ""
            return f"container {container.get('name')} {waiting['reason']}{message}"
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True" and condition.get("message"):
            return f"{condition.get('type')}: {condition['message']}"
    return f"phase {status.get('phase') or 'Pending'}, not Ready"


def k8s_pod_summary(pods: Iterable[Mapping[str, Any]], role_label: str = "spilo-role") -> dict[str, Any]:
    """Readiness of a list of pods (as ``k8s_info`` returns them), with each role's pods and a one-line text."""
    pods = sorted(pods or [], key=lambda p: (p.get("metadata") or {}).get("name", ""))
    ready, not_ready, masters, replicas = [], [], [], []
    for pod in pods:
        meta = pod.get("metadata") or {}
        name = meta.get("name", "")
        role = (meta.get("labels") or {}).get(role_label)
        if _ready(pod):
            ready.append(name)
            if role == "master":
                masters.append(name)
            elif role == "replica":
                replicas.append(name)
        else:
            not_ready.append(f"{name}: {_not_ready_reason(pod)}")
    text = (f"{len(pods)} pod(s), {len(ready)} Ready, master: {', '.join(masters) or 'none'}, "
            f"replicas: {', '.join(replicas) or 'none'}"
            + (f"; not Ready: {'; '.join(not_ready)}" if not_ready else ""))
    return {"total": len(pods), "ready": ready, "not_ready": not_ready, "masters": masters,
            "replicas": replicas, "text": text}


def k8s_last_event(events: Iterable[Mapping[str, Any]]) -> str:
    """The most recent of a list of Events (as ``k8s_info`` returns them), as ``Type Reason: message``."""
    def when(event: Mapping[str, Any]) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime")
                   or (event.get("metadata") or {}).get("creationTimestamp") or "")

    events = [e for e in events or [] if e]
    if not events:
        return "no event recorded"
    last = max(enumerate(events), key=lambda pair: (when(pair[1]), pair[0]))[1]
    return f"{last.get('type', 'Normal')} {last.get('reason', '')}: {last.get('message', '')}".strip()


class FilterModule:
    """Zalando postgres-operator filters."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function."""
        return {
            "operator_secret_name": operator_secret_name,
            "zalando_operator_manifests": zalando_operator_manifests,
            "zalando_cluster_errors": zalando_cluster_errors,
            "k8s_pod_summary": k8s_pod_summary,
            "k8s_last_event": k8s_last_event,
        }
