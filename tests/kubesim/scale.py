"""The ``scale`` subresource (autoscaling/v1 Scale) of Deployments and StatefulSets.

``kubectl scale`` and kubernetes.core's ``k8s_scale`` talk to it rather than to the object,
so it maps a Scale read/write onto ``spec.replicas`` of the parent.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import bad_request
from .patching import json_patch, merge_patch
from .resources import ResourceType
from .rest import JSON_PATCH, Options, Rest


class ScaleSubresource:
    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.rest.get(rtype, namespace, name)
        return self._scale_of(obj)

    @staticmethod
    def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        match = (spec.get("selector") or {}).get("matchLabels") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                  "creationTimestamp") if k in meta},
                "spec": {"replicas": spec.get("replicas", 1)},
                "status": {"replicas": status.get("replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in sorted(match.items()))}}

    def set(self, rtype: ResourceType, namespace: str, name: str, method: str, content_type: str, raw: bytes,
            opts: Options) -> dict[str, Any]:
        current = self.get(rtype, namespace, name)
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            raise bad_request(f"error decoding body: {exc}") from exc
        if method == "PUT":
            scale = body
        elif content_type.startswith(JSON_PATCH):
            scale = json_patch(current, body)
        else:
            scale = merge_patch(current, body)
        replicas = ((scale or {}).get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise bad_request("spec.replicas must be a non-negative integer")
        obj = self.rest.get(rtype, namespace, name)
        obj["spec"]["replicas"] = replicas
        updated = self.rest.write_update(rtype, self.rest.get(rtype, namespace, name), obj, opts, "scale")
        return self._scale_of(updated)
