"""Unit tests of the pieces whose rules come from the API server: selectors, patches,
field ownership, validation wording and SCRAM checks."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from tests.kubesim.errors import ApiError
from tests.kubesim.managed_fields import apply_merge, field_paths, format_path, to_fields_v1
from tests.kubesim.patching import json_patch, merge_patch, strategic_merge_patch
from tests.kubesim.resources import Registry
from tests.kubesim.schemas import Schema
from tests.kubesim.scram import verifier_matches
from tests.kubesim.selectors import labels_match, parse_field_selector, parse_label_selector
from tests.kubesim.validation import validate_object

DEPLOYMENT = Schema.for_definition("io.k8s.api.apps.v1.Deployment")


def _deployment(containers: list[dict]) -> dict:
    return {"spec": {"template": {"spec": {"containers": containers}}}}


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("app=web", {"app": "web"}, True),
    ("app==web,tier!=db", {"app": "web", "tier": "db"}, False),
    ("env in (dev, prod),!legacy", {"env": "prod"}, True),
    ("env notin (dev),app", {"env": "dev", "app": "x"}, False),
    ("app", {}, False),
])
def test_label_selectors_match_like_the_api_server(selector: str, labels: dict, expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), labels) is expected


def test_unsupported_field_selector_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as caught:
        parse_field_selector("spec.replicas=1", "Deployment")
    assert caught.value.code == 400
    assert caught.value.message == "field label not supported: spec.replicas"
    assert parse_field_selector("status.phase=Running", "Pod")({"status": {"phase": "Running"}})


def test_strategic_merge_patch_merges_containers_and_env_by_name() -> None:
    live = _deployment([{"name": "db", "image": "postgres:15", "env": [{"name": "A", "value": "1"}]},
                        {"name": "exporter", "image": "exporter:1"}])
    patch = _deployment([{"name": "db", "env": [{"name": "B", "value": "2"}]}])
    merged = strategic_merge_patch(live, patch, DEPLOYMENT)
    containers = merged["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["db", "exporter"]
    assert containers[0]["image"] == "postgres:15"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


def test_strategic_merge_patch_delete_directive_and_null() -> None:
    live = _deployment([{"name": "db", "image": "a"}, {"name": "side", "image": "b"}])
    live["metadata"] = {"labels": {"a": "1", "b": "2"}}
    patch = _deployment([{"name": "side", "$patch": "delete"}])
    patch["metadata"] = {"labels": {"a": None}}
    merged = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["db"]
    assert merged["metadata"]["labels"] == {"b": "2"}


def test_merge_patch_replaces_lists_and_json_patch_test_failure_is_422() -> None:
    live = _deployment([{"name": "db", "image": "a"}, {"name": "side", "image": "b"}])
    merged = merge_patch(live, _deployment([{"name": "db", "image": "c"}]))
    assert merged["spec"]["template"]["spec"]["containers"] == [{"name": "db", "image": "c"}]
    with pytest.raises(ApiError) as caught:
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert caught.value.code == 422


def test_apply_merge_matches_ports_by_key_with_protocol_default() -> None:
    live = _deployment([{"name": "db", "image": "a", "ports": [{"containerPort": 5432, "protocol": "TCP"}]}])
    config = _deployment([{"name": "db", "ports": [{"containerPort": 5432}]}])
    merged = apply_merge(live, config, DEPLOYMENT)
    assert merged["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 5432, "protocol": "TCP"}]


def test_field_paths_render_as_fields_v1() -> None:
    obj = {"metadata": {"labels": {"app": "x"}}, **_deployment([{"name": "db", "image": "a"}])}
    paths = field_paths(obj, DEPLOYMENT)
    tree = to_fields_v1(paths)
    item = tree["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"db"}']
    assert item == {".": {}, "f:image": {}, "f:name": {}}
    assert tree["f:metadata"] == {"f:labels": {"f:app": {}}}
    path = next(p for p in paths if p[-1] == "f:image")
    assert format_path(path) == '.spec.template.spec.containers[name="db"].image'


def test_crd_schema_errors_are_worded_like_apiextensions() -> None:
    from tests.kubesim.crds import resource_types  # noqa: PLC0415

    crd = {"spec": {"group": "example.com", "names": {"kind": "Db", "plural": "dbs"}, "scope": "Namespaced",
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {
                            "type": "object", "required": ["size"],
                            "properties": {"size": {"type": "integer", "minimum": 1},
                                           "tier": {"type": "string", "enum": ["a", "b"]}}}}}}}]}}
    rtype = resource_types(crd)[0]
    with pytest.raises(ApiError) as caught:
        validate_object(rtype, {"metadata": {"name": "x"}, "spec": {"tier": "c"}})
    assert caught.value.code == 422
    assert caught.value.message == ('Db.example.com "x" is invalid: [spec.size: Required value, '
                                    'spec.tier: Unsupported value: "c": supported values: "a", "b"]')
    with pytest.raises(ApiError) as caught:
        validate_object(rtype, {"metadata": {"name": "x"}, "spec": {"size": "big"}})
    assert caught.value.details["causes"][0] == {
        "reason": "FieldValueTypeInvalid", "field": "spec.size",
        "message": 'Invalid value: "string": spec.size in body must be of type integer: "string"'}


def test_deployment_selector_must_match_template_labels() -> None:
    rtype = Registry().get("apps", "v1", "deployments")
    with pytest.raises(ApiError) as caught:
        validate_object(rtype, {"metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "other"}},
                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    assert caught.value.details["causes"][0]["field"] == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in caught.value.message


def test_scram_verifier_check_uses_the_stored_salt() -> None:
    salt, iterations = b"0123456789abcdef", 4096
    salted = hashlib.pbkdf2_hmac("sha256", b"secret", salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = base64.b64encode(hashlib.sha256(client_key).digest()).decode()
    server = base64.b64encode(hmac.new(salted, b"Server Key", hashlib.sha256).digest()).decode()
    verifier = f"SCRAM-SHA-256${iterations}:{base64.b64encode(salt).decode()}${stored}:{server}"
    assert verifier_matches(verifier, "secret")
    assert not verifier_matches(verifier, "other")
    assert not verifier_matches("md5abc", "secret")
