"""In-memory AWX objects: validation of writes the way AWX's serializers do it, list filters, surveys, associations.

One global id counter, as AWX's unified job templates (projects, inventory sources, job templates,
workflow job templates) share one table and so one id space: a workflow node's `unified_job_template`
is an id of any of them.
"""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

from .resources import RESOURCES, UNIFIED_JOB_TEMPLATE_SOURCES, Field, Resource

API = "/api/v2"
ENCRYPTED = "$encrypted$"
SURVEY_TYPES = ("text", "textarea", "password", "multiplechoice", "multiselect", "integer", "float")
# List parameters that are not field filters.
PAGING = {"page", "page_size", "order_by"}


class ApiError(Exception):
    """An error response: HTTP status and its JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def _bad(field_name: str, message: str) -> ApiError:
    return ApiError(400, {field_name: [message]})


class Store:
    """Every object the stand-in holds; all methods are safe to call from the HTTP server's threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.objects: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in RESOURCES}
        self.surveys: dict[tuple[str, int], dict[str, Any]] = {}
        self.associated: dict[tuple[str, int, str], list[int]] = {}
        self.project_updates: dict[int, dict[str, Any]] = {}
        # (method, path) of every write, in order: what a run changed.
        self.writes: list[tuple[str, str]] = []
        self.create("organizations", {"name": "Default"})
        self.writes.clear()

    # ---- reads --------------------------------------------------------------------------------
    def list(self, resource_name: str, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            if resource_name == "unified_job_templates":
                candidates = [(name, obj) for name in UNIFIED_JOB_TEMPLATE_SOURCES for obj in self.objects[name].values()]
            else:
                candidates = [(resource_name, obj) for obj in self._objects(resource_name).values()]
            either = {key.removeprefix("or__"): value for key, value in query.items() if key.startswith("or__")}
            exact = {key: value for key, value in query.items() if not key.startswith("or__") and key not in PAGING}
            results = [self.render(name, obj) for name, obj in candidates
                       if self._matches(name, obj, exact, all) and (not either or self._matches(name, obj, either, any))]
            return {"count": len(results), "next": None, "previous": None, "results": results}

    def get(self, resource_name: str, object_id: int) -> dict[str, Any]:
        with self._lock:
            return self.render(resource_name, self._object(resource_name, object_id))

    def project_update(self, update_id: int) -> dict[str, Any]:
        with self._lock:
            if update_id not in self.project_updates:
                raise ApiError(404, {"detail": "Not found."})
            return copy.deepcopy(self.project_updates[update_id])

    def survey(self, resource_name: str, object_id: int) -> dict[str, Any]:
        with self._lock:
            self._object(resource_name, object_id)
            spec = copy.deepcopy(self.surveys.get((resource_name, object_id), {}))
            for question in spec.get("spec", []):
                if question["type"] == "password" and question.get("default", "") != "":
                    question["default"] = ENCRYPTED
            return spec

    def associations(self, resource_name: str, object_id: int, association: str) -> dict[str, Any]:
        with self._lock:
            target = self._association_target(resource_name, object_id, association)
            ids = self.associated.get((resource_name, object_id, association), [])
            results = [self.render(target, self.objects[target][member]) for member in ids]
            return {"count": len(results), "next": None, "previous": None, "results": results}

    # ---- writes -------------------------------------------------------------------------------
    def create(self, resource_name: str, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            resource = self._resource(resource_name)
            values = self._validated(resource, data)
            missing = [name for name in resource.required if values.get(name) in (None, "")]
            if missing:
                raise ApiError(400, {name: ["This field is required."] for name in missing})
            obj = {name: copy.deepcopy(spec.default) for name, spec in resource.fields.items()}
            obj.update(values)
            self._check_unique(resource, obj, None)
            obj["id"] = next(self._ids)
            self.objects[resource_name][obj["id"]] = obj
            self.writes.append(("POST", f"{API}/{resource_name}/"))
            started = self._start_project_update(obj) if resource_name == "projects" else None
            return self.render(resource_name, obj, started)

    def update(self, resource_name: str, object_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            resource = self._resource(resource_name)
            obj = self._object(resource_name, object_id)
            values = self._validated(resource, data)
            merged = {**obj, **values}
            self._check_unique(resource, merged, object_id)
            scm_changed = any(obj.get(name) != merged.get(name) for name in merged if name.startswith("scm_"))
            obj.update(values)
            self.writes.append(("PATCH", f"{API}/{resource_name}/{object_id}/"))
            started = self._start_project_update(obj) if resource_name == "projects" and scm_changed else None
            return self.render(resource_name, obj, started)

    def set_survey(self, resource_name: str, object_id: int, spec: Any) -> None:
        with self._lock:
            self._object(resource_name, object_id)
            self.surveys[(resource_name, object_id)] = _validated_survey(spec)
            self.writes.append(("POST", f"{API}/{resource_name}/{object_id}/survey_spec/"))

    def delete_survey(self, resource_name: str, object_id: int) -> None:
        with self._lock:
            self._object(resource_name, object_id)
            self.surveys.pop((resource_name, object_id), None)
            self.writes.append(("DELETE", f"{API}/{resource_name}/{object_id}/survey_spec/"))

    def associate(self, resource_name: str, object_id: int, association: str, data: dict[str, Any]) -> None:
        with self._lock:
            target = self._association_target(resource_name, object_id, association)
            member = data.get("id")
            if not isinstance(member, int) or isinstance(member, bool) or member not in self.objects[target]:
                raise _bad("id", f"{association}: no {target} object with id {member!r}")
            members = self.associated.setdefault((resource_name, object_id, association), [])
            if data.get("disassociate"):
                if member in members:
                    members.remove(member)
            elif member not in members:
                members.append(member)
            self.writes.append(("POST", f"{API}/{resource_name}/{object_id}/{association}/"))

    # ---- rendering ----------------------------------------------------------------------------
    def render(self, resource_name: str, obj: dict[str, Any], started_update: int | None = None) -> dict[str, Any]:
        """An object as AWX returns it: its fields, type, url, related links and summary fields."""
        resource = RESOURCES[resource_name]
        url = f"{API}/{resource_name}/{obj['id']}/"
        shown = copy.deepcopy(obj)
        if resource_name == "credentials":
            shown["inputs"] = self._masked_inputs(obj)
        shown.update(type=resource.type, url=url,
                     related={name: f"{url}{name}/" for name in (*resource.associations, *resource.extra_related)},
                     summary_fields={})
        if resource_name == "projects":
            shown["scm_revision"] = obj.get("scm_revision", "")
            if started_update is not None:
                shown["summary_fields"]["current_update"] = {"id": started_update, "status": "pending"}
        if resource_name == "workflow_job_template_nodes" and obj.get("unified_job_template"):
            shown["related"]["unified_job_template"] = self._unified_url(obj["unified_job_template"])
        return shown

    # ---- internals ----------------------------------------------------------------------------
    def _resource(self, resource_name: str) -> Resource:
        if resource_name not in RESOURCES:
            raise ApiError(404, {"detail": "Not found."})
        return RESOURCES[resource_name]

    def _objects(self, resource_name: str) -> dict[int, dict[str, Any]]:
        return self.objects[self._resource(resource_name).name]

    def _object(self, resource_name: str, object_id: int) -> dict[str, Any]:
        objects = self._objects(resource_name)
        if object_id not in objects:
            raise ApiError(404, {"detail": "Not found."})
        return objects[object_id]

    def _association_target(self, resource_name: str, object_id: int, association: str) -> str:
        self._object(resource_name, object_id)
        resource = RESOURCES[resource_name]
        if association not in resource.associations:
            raise ApiError(404, {"detail": "Not found."})
        return resource.associations[association]

    def _matches(self, resource_name: str, obj: dict[str, Any], filters: dict[str, str], combine: Any) -> bool:
        if not filters:
            return True
        resource = RESOURCES[resource_name]
        known = {"id", resource.identity, *resource.fields}
        unknown = sorted(set(filters) - known)
        if unknown:
            raise ApiError(400, {"detail": f"Invalid field name(s) for filtering {resource_name}: {unknown}"})
        return combine(str(obj.get(name)) == value if obj.get(name) is not None else value in ("", "None")
                       for name, value in filters.items())

    def _validated(self, resource: Resource, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ApiError(400, {"detail": "JSON object expected."})
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == resource.identity:
                if not isinstance(value, str) or not value:
                    raise _bad(name, "A non-empty string is required.")
                values[name] = value
                continue
            if name not in resource.fields:
                raise _bad(name, f"Unknown field for {resource.name} (AWX would ignore it silently).")
            values[name] = self._value(name, resource.fields[name], value)
        if resource.name == "inventories" and values.get("kind", "") is None:
            values["kind"] = ""
        return values

    def _value(self, name: str, spec: Field, value: Any) -> Any:
        kind = spec.kind
        if kind.startswith("fk:"):
            target = kind.removeprefix("fk:")
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                raise _bad(name, f"Incorrect type. Expected pk value, received {type(value).__name__}.")
            exists = (any(value in self.objects[source] for source in UNIFIED_JOB_TEMPLATE_SOURCES)
                      if target == "unified_job_templates" else value in self.objects.get(target, {}))
            if not exists:
                raise _bad(name, f'Invalid pk "{value}" - object does not exist.')
            return value
        checks = {
            "str": lambda: isinstance(value, str),
            "text": lambda: value is None or isinstance(value, str),
            "bool": lambda: isinstance(value, bool),
            "int": lambda: isinstance(value, int) and not isinstance(value, bool),
            "json": lambda: isinstance(value, dict),
            "choice": lambda: value in spec.choices and type(value) in {type(choice) for choice in spec.choices},
        }
        if not checks[kind]():
            expected = f"one of {list(spec.choices)}" if kind == "choice" else kind
            raise _bad(name, f"{value!r} is not valid: expected {expected}.")
        return copy.deepcopy(value)

    def _check_unique(self, resource: Resource, obj: dict[str, Any], own_id: int | None) -> None:
        key = (obj.get(resource.identity), *(obj.get(name) for name in resource.unique_with))
        for other in self.objects[resource.name].values():
            if other["id"] != own_id and (other.get(resource.identity),
                                          *(other.get(name) for name in resource.unique_with)) == key:
                raise ApiError(400, {"__all__": [f"{resource.type} with this {resource.identity} already exists."]})

    def _masked_inputs(self, credential: dict[str, Any]) -> dict[str, Any]:
        credential_type = self.objects["credential_types"].get(credential["credential_type"], {})
        secret = {item["id"] for item in credential_type.get("inputs", {}).get("fields", []) if item.get("secret")}
        return {name: (ENCRYPTED if name in secret and value != "" else value) for name, value in credential["inputs"].items()}

    def _start_project_update(self, project: dict[str, Any]) -> int:
        """AWX syncs a project when it is created or its SCM settings change; here the sync succeeds at once."""
        update_id = next(self._ids)
        revision = f"{update_id:040x}"
        self.project_updates[update_id] = {"id": update_id, "type": "project_update", "status": "successful",
                                           "failed": False, "finished": "2026-01-01T00:00:00Z", "scm_revision": revision,
                                           "url": f"{API}/project_updates/{update_id}/"}
        project["scm_revision"] = revision
        return update_id

    def _unified_url(self, object_id: int) -> str:
        source = next(name for name in UNIFIED_JOB_TEMPLATE_SOURCES if object_id in self.objects[name])
        return f"{API}/{source}/{object_id}/"


def _validated_survey(spec: Any) -> dict[str, Any]:
    """AWX's checks of a survey spec (JobTemplateSurveySpec): the shape, each question's keys, types and defaults."""
    if not isinstance(spec, dict):
        raise ApiError(400, {"error": "Survey spec must be an object."})
    for key, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(spec.get(key), kind):
            raise ApiError(400, {"error": f"'{key}' missing from survey spec or of the wrong type."})
    seen: set[str] = set()
    for index, question in enumerate(spec["spec"]):
        if not isinstance(question, dict):
            raise ApiError(400, {"error": f"Survey question {index} is not a json object."})
        for key in ("type", "question_name", "variable", "required"):
            if key not in question:
                raise ApiError(400, {"error": f"'{key}' missing from survey question {index}."})
        if question["type"] not in SURVEY_TYPES:
            raise ApiError(400, {"error": f"'{question['type']}' in survey question {index} is not one of {SURVEY_TYPES}."})
        if question["variable"] in seen:
            raise ApiError(400, {"error": f"'variable' '{question['variable']}' duplicated in survey question {index}."})
        seen.add(question["variable"])
        _check_question_default(index, question)
    return copy.deepcopy(spec)


def _check_question_default(index: int, question: dict[str, Any]) -> None:
    kind, default = question["type"], question.get("default")
    if kind in ("multiplechoice", "multiselect"):
        choices = question.get("choices")
        if isinstance(choices, str):
            choices = choices.split("\n")
        if not isinstance(choices, list) or not choices:
            raise ApiError(400, {"error": f"Survey question {index} of type {kind} needs choices."})
        if default not in (None, "") and any(item not in choices for item in str(default).split("\n")):
            raise ApiError(400, {"error": f"Default choice must be answered from the choices listed (question {index})."})
    elif kind == "integer":
        for key in ("min", "max", "default"):
            value = question.get(key)
            if value not in (None, "") and (isinstance(value, bool) or not isinstance(value, int)):
                raise ApiError(400, {"error": f"Value {value!r} for '{key}' expected to be an integer (question {index})."})
        if isinstance(default, int) and not question.get("min", default) <= default <= question.get("max", default):
            raise ApiError(400, {"error": f"Default {default} out of min/max range (question {index})."})
    elif default not in (None, "") and kind in ("text", "textarea", "password") and not isinstance(default, str):
        raise ApiError(400, {"error": f"Value {default!r} for 'default' expected to be a string (question {index})."})
