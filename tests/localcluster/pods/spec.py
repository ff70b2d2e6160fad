"""What a kubelet works out from a pod spec before it starts a container: env and volume files.

Env values come from literals, Secrets, ConfigMaps and the Downward API; volumes become folders
under the pod's folder (ConfigMap, Secret, emptyDir, projected service-account token) or the
claim's folder (persistentVolumeClaim), owned by the user the container runs as. A reference to
a missing Secret or key raises ``ConfigError``, which the runner reports as the kubelet does
(``CreateContainerConfigError``).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

# Reads one object: (kind, namespace, name) -> the object as a dict, or None when it is absent.
Reader = Callable[[str, str, str], "dict[str, Any] | None"]
TokenIssuer = Callable[[dict[str, Any], str, int], str]


class ConfigError(Exception):
    """The pod refers to a Secret, ConfigMap or key that does not exist."""


def _data(obj: dict[str, Any], kind: str) -> dict[str, bytes]:
    if kind == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    items = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    items.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return items


def _field(pod: dict[str, Any], path: str, address: str) -> str:
    meta = pod["metadata"]
    fields = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.podIP": address,
        "status.hostIP": address,
    }
    if path.startswith("metadata.labels['"):
        return (meta.get("labels") or {}).get(path[len("metadata.labels['"):-2], "")
    if path.startswith("metadata.annotations['"):
        return (meta.get("annotations") or {}).get(path[len("metadata.annotations['"):-2], "")
    return fields.get(path, "")


def _ref(read: Reader, kind: str, namespace: str, ref: dict[str, Any]) -> bytes | None:
    obj = read(kind, namespace, ref["name"])
    optional = ref.get("optional", False)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
    data = _data(obj, kind)
    if ref["key"] not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return data[ref["key"]]


def expand(value: str, env: dict[str, str]) -> str:
    """``$(NAME)`` is replaced by an earlier variable's value, ``$$`` stands for ``$``; an unknown
    reference stays as written, as the kubelet does it."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def container_env(pod: dict[str, Any], container: dict[str, Any], read: Reader, address: str, base: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet resolves it (later entries win); ``base`` holds the
    variables the kubelet sets first (the ``kubernetes`` Service's), which references may use."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = ("Secret", source["secretRef"]) if "secretRef" in source else ("ConfigMap", source["configMapRef"])
        obj = read(kind, namespace, ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
        env.update({source.get("prefix", "") + k: v.decode() for k, v in _data(obj, kind).items()})
    for item in container.get("env") or []:
        value_from = item.get("valueFrom")
        if value_from is None:
            env[item["name"]] = expand(item.get("value", ""), {**base, **env})
        elif "secretKeyRef" in value_from:
            value = _ref(read, "Secret", namespace, value_from["secretKeyRef"])
            if value is not None:
                env[item["name"]] = value.decode()
        elif "configMapKeyRef" in value_from:
            value = _ref(read, "ConfigMap", namespace, value_from["configMapKeyRef"])
            if value is not None:
                env[item["name"]] = value.decode()
        elif "fieldRef" in value_from:
            env[item["name"]] = _field(pod, value_from["fieldRef"]["fieldPath"], address)
        elif "resourceFieldRef" in value_from:
            env[item["name"]] = "0"
    return env


def _write_items(folder: Path, data: dict[str, bytes], items: list[dict[str, Any]] | None, gid: int) -> None:
    """Files as the kubelet writes them: root's, the fsGroup's group, mode 0644 (the default mode)."""
    selected = {item["key"]: item["path"] for item in items} if items else {k: k for k in data}
    for key, relative in selected.items():
        if key not in data:
            continue
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[key])
        os.chown(target, 0, gid)
        target.chmod(0o644)


class PodVolumes:
    """Materialise a pod's volumes; ``claims`` maps a claim name to its folder (from the provisioner)."""

    def __init__(self, pod_dir: Path, read: Reader, issue_token: TokenIssuer, claims: Callable[[str, str], Path]) -> None:
        self.pod_dir = pod_dir
        self.read = read
        self.issue_token = issue_token
        self.claims = claims

    def prepare(self, pod: dict[str, Any], gid: int) -> dict[str, Path]:
        """Volume name -> folder on this machine, made once per pod (``gid``: the pod's fsGroup)."""
        namespace = pod["metadata"]["namespace"]
        folders: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            name = volume["name"]
            if "persistentVolumeClaim" in volume:
                folders[name] = self.claims(namespace, volume["persistentVolumeClaim"]["claimName"])
                continue
            folder = self.pod_dir / "volumes" / name
            if folder.exists() and "emptyDir" not in volume:
                shutil.rmtree(folder)
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, 0, gid)
            folder.chmod(0o777 if "emptyDir" in volume else 0o755)
            if "configMap" in volume or "secret" in volume:
                kind, ref = ("ConfigMap", volume["configMap"]) if "configMap" in volume else ("Secret", volume["secret"])
                obj = self.read(kind, namespace, ref.get("name") or ref.get("secretName"))
                if obj is None and not ref.get("optional"):
                    raise ConfigError(f'{kind.lower()} "{ref.get("name") or ref.get("secretName")}" not found')
                _write_items(folder, _data(obj, kind) if obj else {}, ref.get("items"), gid)
            elif "projected" in volume:
                self._projected(pod, volume["projected"], folder, gid)
            folders[name] = folder
        return folders

    def _projected(self, pod: dict[str, Any], projected: dict[str, Any], folder: Path, gid: int) -> None:
        namespace = pod["metadata"]["namespace"]
        for source in projected.get("sources") or []:
            if "serviceAccountToken" in source:
                spec = source["serviceAccountToken"]
                token = self.issue_token(pod, spec.get("audience", ""), int(spec.get("expirationSeconds", 3607)))
                _write_items(folder, {spec["path"]: token.encode()}, None, gid)
            elif "configMap" in source or "secret" in source:
                kind, ref = ("ConfigMap", source["configMap"]) if "configMap" in source else ("Secret", source["secret"])
                obj = self.read(kind, namespace, ref["name"])
                if obj is None and not ref.get("optional"):
                    raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
                _write_items(folder, _data(obj, kind) if obj else {}, ref.get("items"), gid)
            elif "downwardAPI" in source:
                items = [item for item in source["downwardAPI"].get("items", []) if "fieldRef" in item]
                data = {item["path"]: _field(pod, item["fieldRef"]["fieldPath"], "").encode() for item in items}
                _write_items(folder, data, None, gid)
