"""The AWX stand-in refuses what AWX refuses, so a passing awx_configure.yml run against it means something.

Plain HTTP requests, the way awx.awx's ControllerAPIModule sends them (JSON bodies, Bearer token).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest

from tests.awxsim.server import AwxSim


@pytest.fixture(name="sim")
def fixture_sim() -> Iterator[AwxSim]:
    with AwxSim() as running:
        yield running


def call(sim: AwxSim, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(f"{sim.url}/api/v2/{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {sim.token if token is None else token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def organization(sim: AwxSim) -> int:
    return sim.by_name("organizations", "Default")["id"]


def test_only_its_token_is_accepted(sim: AwxSim) -> None:
    assert call(sim, "GET", "ping/", token="wrong")[0] == 401
    status, body = call(sim, "GET", "ping/")
    assert (status, body["version"]) == (200, "24.6.1")


def test_unknown_field_wrong_type_and_missing_field_are_400(sim: AwxSim) -> None:
    org = organization(sim)
    assert call(sim, "POST", "inventories/", {"name": "a", "organization": org, "varibles": "{}"}) == (
        400, {"varibles": ["Unknown field for inventories (AWX would ignore it silently)."]})
    status, body = call(sim, "POST", "inventories/", {"name": "a", "organization": str(org)})
    assert (status, list(body)) == (400, ["organization"])
    assert call(sim, "POST", "inventories/", {"name": "a"})[0] == 400
    status, body = call(sim, "POST", "projects/", {"name": "p", "scm_type": "git", "scm_clean": "yes"})
    assert (status, list(body)) == (400, ["scm_clean"])
    assert call(sim, "POST", "job_templates/", {"name": "t", "project": 999, "playbook": "x.yml"})[0] == 400
    assert sim.store.writes == []


def test_names_are_unique_per_organization_and_lookups_filter(sim: AwxSim) -> None:
    org = organization(sim)
    status, created = call(sim, "POST", "inventories/", {"name": "postgres dev", "organization": org, "kind": None})
    assert (status, created["kind"], created["url"]) == (201, "", f"/api/v2/inventories/{created['id']}/")
    assert call(sim, "POST", "inventories/", {"name": "postgres dev", "organization": org})[0] == 400
    assert call(sim, "GET", "inventories/?name=postgres+dev")[1]["count"] == 1
    assert call(sim, "GET", "inventories/?name=other")[1]["count"] == 0
    assert call(sim, "GET", f"inventories/?or__id={created['id']}&or__name=nothing")[1]["count"] == 1
    assert call(sim, "GET", "inventories/?nmae=postgres+dev")[0] == 400


def test_secret_inputs_are_never_shown(sim: AwxSim) -> None:
    status, kind = call(sim, "POST", "credential_types/", {
        "name": "Kubeconfig", "kind": "cloud", "managed": False,
        "inputs": {"fields": [{"id": "kubeconfig", "type": "string", "label": "K", "secret": True}]}, "injectors": {}})
    assert status == 201
    status, credential = call(sim, "POST", "credentials/", {"name": "c", "credential_type": kind["id"],
                                                            "organization": organization(sim), "inputs": {"kubeconfig": "s3cr3t"}})
    assert (status, credential["inputs"]) == (201, {"kubeconfig": "$encrypted$"})
    assert call(sim, "GET", f"credentials/{credential['id']}/")[1]["inputs"] == {"kubeconfig": "$encrypted$"}
    assert sim.store.objects["credentials"][credential["id"]]["inputs"] == {"kubeconfig": "s3cr3t"}


def test_surveys_are_checked_like_awx(sim: AwxSim) -> None:
    org = organization(sim)
    project = call(sim, "POST", "projects/", {"name": "p", "scm_type": "git", "scm_url": "https://x/y.git", "organization": org})[1]
    assert project["summary_fields"]["current_update"]["id"] > 0
    template = call(sim, "POST", "job_templates/", {"name": "t", "project": project["id"], "playbook": "playbooks/scale.yml"})[1]
    spec_url = template["related"]["survey_spec"].removeprefix("/api/v2/")
    assert call(sim, "GET", spec_url) == (200, {})
    question = {"question_name": "Q", "variable": "confirm", "type": "multiplechoice", "choices": ["no", "yes"], "required": True}
    bad = [
        {"name": "t", "description": "", "spec": [question | {"default": "maybe"}]},
        {"name": "t", "description": "", "spec": [question, question]},
        {"name": "t", "description": "", "spec": [{key: value for key, value in question.items() if key != "required"}]},
        {"name": "t", "description": "", "spec": [question | {"type": "integer", "min": 1, "max": 10, "default": 11}]},
        {"name": "t", "description": "", "spec": [question | {"type": "boolean"}]},
        {"name": "t", "spec": [question]},
    ]
    for spec in bad:
        status, body = call(sim, "POST", spec_url, spec)
        assert status == 400 and "error" in body, spec
    password = {"question_name": "P", "variable": "pw", "type": "password", "required": False, "default": "hunter2"}
    assert call(sim, "POST", spec_url, {"name": "t", "description": "", "spec": [question, password]}) == (200, {})
    shown = call(sim, "GET", spec_url)[1]
    assert [item.get("default") for item in shown["spec"]] == [None, "$encrypted$"]
    assert call(sim, "DELETE", spec_url) == (200, {})
    assert call(sim, "GET", spec_url) == (200, {})


def test_associations_and_unified_job_templates(sim: AwxSim) -> None:
    org = organization(sim)
    project = call(sim, "POST", "projects/", {"name": "p", "scm_type": "git", "scm_url": "https://x/y.git", "organization": org})[1]
    template = call(sim, "POST", "job_templates/", {"name": "deploy", "project": project["id"], "playbook": "d.yml"})[1]
    workflow = call(sim, "POST", "workflow_job_templates/", {"name": "w", "organization": org})[1]
    found = call(sim, "GET", "unified_job_templates/?name=deploy")[1]
    assert [(item["id"], item["type"]) for item in found["results"]] == [(template["id"], "job_template")]
    nodes = [call(sim, "POST", "workflow_job_template_nodes/", {
        "identifier": identifier, "workflow_job_template": workflow["id"], "unified_job_template": template["id"],
        "type": "workflow_job_template_node"})[1] for identifier in ("one", "two")]
    assert call(sim, "POST", "workflow_job_template_nodes/", {"identifier": "one", "workflow_job_template": workflow["id"]})[0] == 400
    assert call(sim, "POST", "workflow_job_template_nodes/", {"identifier": "x", "workflow_job_template": workflow["id"],
                                                              "unified_job_template": org + 1000})[0] == 400
    success = nodes[0]["related"]["success_nodes"].removeprefix("/api/v2/")
    assert call(sim, "POST", success, {"id": nodes[1]["id"]}) == (204, None)
    assert [item["identifier"] for item in call(sim, "GET", success)[1]["results"]] == ["two"]
    assert call(sim, "POST", success, {"id": nodes[1]["id"], "disassociate": True}) == (204, None)
    assert call(sim, "GET", success)[1]["count"] == 0
    assert call(sim, "POST", success, {"id": 424242})[0] == 400
