"""Validation the API server performs before storing an object.

Three layers, as on a real server: (1) decoding against the kind's schema — unknown fields
are rejected (``fieldValidation=Strict``), reported as warnings (``Warn``) or silently pruned,
and wrong JSON types fail decoding (400); (2) for custom resources, the CRD's OpenAPI v3
schema (required, enum, type, pattern, bounds) yields 422 ``Invalid`` with one cause per
field, worded like apiextensions-apiserver; (3) a few semantic checks of built-in kinds the
collection can trip over (names, selectors matching template labels, containers).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from .errors import ApiError, bad_request, field_cause, invalid
from .resources import ResourceType
from .schemas import Schema
from .selectors import selector_object_matches

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME_KINDS = {"Namespace"}
_DNS1035_KINDS = {"Service"}
_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
               "object": "object", "array": "array"}


def go_value(value: Any) -> str:
    """Render a value the way field errors quote it (Go's %#v for simple values)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(expected: str, value: Any) -> bool:
    actual = json_type(value)
    if expected == "number":
        return actual in ("number", "integer")
    if expected == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == expected


def object_schema(rtype: ResourceType) -> Schema:
    """The schema an object of this type is decoded with (CRDs: their schema + real ObjectMeta)."""
    if rtype.crd_schema is not None:
        node = dict(rtype.crd_schema)
        props = dict(node.get("properties") or {})
        props["metadata"] = {"$ref": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        node["properties"] = props
        return Schema(node)
    return Schema.for_definition(rtype.schema_ref)


def prune_unknown(value: Any, schema: Schema, path: str, unknown: list[str]) -> Any:
    """Drop fields the schema does not declare, recording their paths (``spec.foo``)."""
    if not schema.known or schema.preserves_unknown:
        return value
    if isinstance(value, dict):
        props = (schema.node or {}).get("properties")
        additional = (schema.node or {}).get("additionalProperties")
        if props is None and additional is None:
            return value
        out = {}
        for key, child in value.items():
            sub = schema.child(key)
            child_path = f"{path}.{key}" if path else key
            if not sub.known:
                unknown.append(child_path)
                continue
            out[key] = prune_unknown(child, sub, child_path, unknown)
        return out
    if isinstance(value, list):
        items = schema.items()
        return [prune_unknown(v, items, f"{path}[{n}]", unknown) for n, v in enumerate(value)]
    return value


def decode(rtype: ResourceType, obj: dict[str, Any], field_validation: str,
           apply_patch: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Decode a request body: prune unknown fields, fail or warn per ``fieldValidation``.

    Returns the pruned object and the warnings to send back in ``Warning`` headers.
    """
    unknown: list[str] = []
    pruned = prune_unknown(obj, object_schema(rtype), "", unknown)
    if rtype.crd_schema is None:
        _check_builtin_types(rtype, pruned, object_schema(rtype), "")
    if not unknown:
        return pruned, []
    mode = (field_validation or "").lower()
    if mode == "strict":
        if apply_patch:
            meta = obj.get("metadata") or {}
            raise bad_request(
                f"failed to create typed patch object ({meta.get('namespace', '')}/{meta.get('name', '')}; "
                f"{rtype.group_version}, Kind={rtype.kind}): "
                + ", ".join(f".{u}: field not declared in schema" for u in unknown))
        raise bad_request(f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
                          f"strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
    if mode == "ignore":
        return pruned, []
    return pruned, [f'unknown field "{u}"' for u in unknown]


def _check_builtin_types(rtype: ResourceType, value: Any, schema: Schema, path: str) -> None:
    """Built-in kinds are Go structs: a JSON type mismatch is a decoding error (400)."""
    node = schema.node
    if node is None or schema.preserves_unknown or value is None:
        return
    expected = node.get("type")
    if isinstance(expected, str) and expected in _JSON_TYPES and not _type_ok(expected, value):
        if not (node.get("format") == "byte" and isinstance(value, str)):
            go_type = {"integer": "int32", "number": "float64", "boolean": "bool", "string": "string",
                       "object": "object", "array": "array"}[expected]
            raise bad_request(f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
                              f"json: cannot unmarshal {json_type(value)} into Go struct field .{path} "
                              f"of type {go_type}")
    if isinstance(value, dict):
        for key, child in value.items():
            _check_builtin_types(rtype, child, schema.child(key), f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for child in value:
            _check_builtin_types(rtype, child, schema.items(), path)


def validate_schema(value: Any, schema: dict[str, Any], path: str, causes: list[dict[str, str]]) -> None:
    """Structural OpenAPI v3 validation of a custom resource, errors worded as on a real server."""
    if value is None:
        if schema.get("nullable"):
            return
        expected = schema.get("type")
        if expected:
            causes.append(field_cause("FieldValueTypeInvalid", path,
                                      f'Invalid value: "null": {path} in body must be of type {expected}: "null"'))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            causes.append(field_cause("FieldValueTypeInvalid", path,
                                      f'Invalid value: "{json_type(value)}": {path} in body must be of type '
                                      f'integer-or-string: "{json_type(value)}"'))
        return
    expected = schema.get("type")
    if expected and not _type_ok(expected, value):
        causes.append(field_cause("FieldValueTypeInvalid", path,
                                  f'Invalid value: "{json_type(value)}": {path} in body must be of type {expected}: '
                                  f'"{json_type(value)}"'))
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(go_value(v) for v in schema["enum"])
        causes.append(field_cause("FieldValueNotSupported", path,
                                  f"Unsupported value: {go_value(value)}: supported values: {supported}"))
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(field_cause("FieldValueInvalid", path,
                                      f"Invalid value: {go_value(value)}: {path} in body should match "
                                      f"'{schema['pattern']}'"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(field_cause("FieldValueTooLong", path,
                                      f"Too long: may not be more than {schema['maxLength']} bytes"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(field_cause("FieldValueInvalid", path,
                                      f"Invalid value: {go_value(value)}: {path} in body should be at least "
                                      f"{schema['minLength']} chars long"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            causes.append(field_cause("FieldValueInvalid", path,
                                      f"Invalid value: {go_value(value)}: {path} in body should be greater than "
                                      f"or equal to {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            causes.append(field_cause("FieldValueInvalid", path,
                                      f"Invalid value: {go_value(value)}: {path} in body should be less than "
                                      f"or equal to {schema['maximum']}"))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(field_cause("FieldValueInvalid", path,
                                      f"Invalid value: {len(value)}: {path} in body should have at least "
                                      f"{schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(field_cause("FieldValueTooMany", path,
                                      f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
        for n, item in enumerate(value):
            if isinstance(schema.get("items"), dict):
                validate_schema(item, schema["items"], f"{path}[{n}]", causes)
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                causes.append(field_cause("FieldValueRequired", f"{path}.{key}" if path else key, "Required value"))
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            if key in props:
                validate_schema(child, props[key], child_path, causes)
            elif isinstance(additional, dict):
                validate_schema(child, additional, child_path, causes)


def _name_causes(rtype: ResourceType, name: str | None, generate: bool) -> list[dict[str, str]]:
    if not name:
        return [] if generate else [field_cause("FieldValueRequired", "metadata.name",
                                                "Required value: name or generateName is required")]
    if rtype.kind in _DNS1035_KINDS:
        pattern, words = DNS1035_LABEL, ("RFC 1035 label", "must consist of lower case alphanumeric characters or "
                                         "'-', start with an alphabetic character, and end with an alphanumeric "
                                         "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                                         "'[a-z]([-a-z0-9]*[a-z0-9])?')")
        limit = 63
    elif rtype.kind in _LABEL_NAME_KINDS:
        pattern, words = DNS1123_LABEL, ("RFC 1123 label", "must consist of lower case alphanumeric characters or "
                                         "'-', and must start and end with an alphanumeric character (e.g. "
                                         "'my-name',  or '123-abc', regex used for validation is "
                                         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
        limit = 63
    else:
        pattern, words = DNS1123_SUBDOMAIN, ("RFC 1123 subdomain", "must consist of lower case alphanumeric "
                                             "characters, '-' or '.', and must start and end with an alphanumeric "
                                             "character (e.g. 'example.com', regex used for validation is "
                                             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
        limit = 253
    causes = []
    if len(name) > limit:
        causes.append(field_cause("FieldValueInvalid", "metadata.name",
                                  f'Invalid value: "{name}": must be no more than {limit} characters'))
    if not pattern.match(name):
        causes.append(field_cause("FieldValueInvalid", "metadata.name",
                                  f'Invalid value: "{name}": a lowercase {words[0]} {words[1]}'))
    return causes


def _pod_template_causes(spec: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    causes = []
    containers = spec.get("containers")
    if not containers:
        causes.append(field_cause("FieldValueRequired", f"{prefix}.containers", "Required value"))
    for n, container in enumerate(containers or []):
        if not container.get("name"):
            causes.append(field_cause("FieldValueRequired", f"{prefix}.containers[{n}].name", "Required value"))
        if not container.get("image"):
            causes.append(field_cause("FieldValueRequired", f"{prefix}.containers[{n}].image", "Required value"))
    return causes


def _workload_causes(obj: dict[str, Any]) -> list[dict[str, str]]:
    spec = obj.get("spec") or {}
    causes: list[dict[str, str]] = []
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append(field_cause("FieldValueRequired", "spec.selector", "Required value"))
    elif not selector_object_matches(selector, labels):
        rendered = "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"
        causes.append(field_cause("FieldValueInvalid", "spec.template.metadata.labels",
                                  f"Invalid value: {rendered}: `selector` does not match template `labels`"))
    causes.extend(_pod_template_causes(template.get("spec") or {}, "spec.template.spec"))
    return causes


def validate_object(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Raise 422 ``Invalid`` for what the real server rejects for this kind."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes = _name_causes(rtype, meta.get("name"), bool(meta.get("generateName")))
    if rtype.crd_schema is not None:
        envelope = ("apiVersion", "kind", "metadata")
        body = {k: v for k, v in obj.items() if k not in envelope}
        top = {**rtype.crd_schema,
               "properties": {k: v for k, v in (rtype.crd_schema.get("properties") or {}).items() if k not in envelope},
               "required": [k for k in rtype.crd_schema.get("required") or [] if k not in envelope]}
        validate_schema(body, top, "", causes)
    elif rtype.kind in ("Deployment", "StatefulSet"):
        causes.extend(_workload_causes(obj))
    elif rtype.kind == "Pod":
        causes.extend(_pod_template_causes(obj.get("spec") or {}, "spec"))
    elif rtype.kind == "Job":
        causes.extend(_pod_template_causes(((obj.get("spec") or {}).get("template") or {}).get("spec") or {},
                                           "spec.template.spec"))
    elif rtype.kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise bad_request(f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data '
                                  f"at input byte 0 (key {key!r})") from None
    elif rtype.kind == "Service":
        spec = obj.get("spec") or {}
        if not spec.get("ports") and spec.get("clusterIP") != "None" and spec.get("type") != "ExternalName":
            causes.append(field_cause("FieldValueRequired", "spec.ports", "Required value"))
    if causes:
        raise invalid(rtype, name, causes)


def ensure_dict_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "Object 'Kind' is missing in request body")
    return body
