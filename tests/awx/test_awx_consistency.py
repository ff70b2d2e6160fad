"""The AWX configuration (playbooks/vars/awx.yml) against the repository it launches.

Every job template must point at a playbook and an inventory that exist, the playbook must have a play for
that inventory's group, and every survey question must name a variable the playbook's roles declare in
meta/argument_specs.yml, with a survey type whose answers (as AWX sends them: strings for text and choices,
integers for integers) pass Ansible's own argument-spec validator. The accepted variables are derived from
the roles' argument specs, never from a list kept here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from tests.awx.helpers import (AWX_INVENTORY, AWX_PLAYBOOK, DAY2_PLAYBOOKS, JOB_TEMPLATE_NAMES, PLAYBOOKS, WORKFLOW_NAME,
                               inventory_group_hosts, load_yaml, play_roles, plays_for_group, raw_config, resolved_config,
                               role_dir, role_options)
from tests.roles.helpers import REPO_ROOT, VENV_BIN, base_env

RAW = raw_config()
TEMPLATE_NAMES = [template["name"] for template in RAW["awx_configure__job_templates"]]
# What AWX accepts in a survey spec (awx/main/models/mixins.py, SurveyJobTemplateMixin).
SURVEY_TYPES = {"text", "textarea", "password", "multiplechoice", "multiselect", "integer", "float"}
TEXT_TYPES = {"text", "textarea", "password"}
# Argument-spec types a survey answer of each kind can satisfy.
SPEC_TYPES_BY_SURVEY_TYPE = {
    "integer": {"int", "raw"},
    "float": {"float", "raw"},
    "text": {"str", "path", "raw"},
    "textarea": {"str", "raw"},
    "password": {"str", "raw"},
    "multiplechoice": {"str", "bool", "raw"},
    "multiselect": {"list"},
}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return resolved_config(tmp_path_factory.mktemp("awx"))


@pytest.fixture(scope="module")
def templates(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {template["name"]: template for template in config["job_templates"]}


def accepted_options(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Options of every role the template's playbook runs for its inventory's group."""
    group = f"postgres_{template['environment']}"
    options: dict[str, dict[str, Any]] = {}
    for play in plays_for_group(REPO_ROOT / template["playbook"], group):
        for role in play_roles(play):
            options.update(role_options(role))
    return options


def answers(question: dict[str, Any]) -> list[Any]:
    """Every kind of value AWX can put in extra_vars for this question (bounds, default, each choice)."""
    kind = question["type"]
    if kind == "integer":
        return sorted({question["min"], question["max"], *([question["default"]] if "default" in question else [])})
    if kind == "multiplechoice":
        return list(question["choices"])
    if kind in TEXT_TYPES:
        sample = question.get("default") or "x" * max(int(question.get("min", 1)), 1)
        return [sample]
    raise AssertionError(f"no sample answers for survey type {kind}")


def test_exactly_the_agreed_job_templates_and_workflow() -> None:
    assert len(TEMPLATE_NAMES) == len(set(TEMPLATE_NAMES)), TEMPLATE_NAMES
    assert set(TEMPLATE_NAMES) == JOB_TEMPLATE_NAMES
    assert RAW["awx_configure__workflow"]["name"] == WORKFLOW_NAME
    assert {env["inventory"] for env in RAW["awx_configure__environments"].values()} == {"postgres dev", "postgres prod"}
    assert RAW["awx_configure__project"] == "microservices-postgres"


@pytest.mark.parametrize("playbook", DAY2_PLAYBOOKS)
def test_every_day2_playbook_has_its_job_templates(playbook: str) -> None:
    launched = {template["environment"] for template in RAW["awx_configure__job_templates"]
                if template["playbook"] == f"playbooks/{playbook}.yml"}
    # scale refuses dev by design (single instance), so it has a prod template only.
    assert launched == ({"prod"} if playbook == "scale" else {"dev", "prod"})


def test_inventories_are_the_projects_own(config: dict[str, Any]) -> None:
    for name, environment in config["environments"].items():
        assert environment["source_path"] == f"inventories/{name}"
        hosts = inventory_group_hosts(environment["source_path"], f"postgres_{name}")
        assert len(hosts) == 1, (name, hosts)
        assert environment["credential"] == f"postgres {name} kubeconfig"


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_job_template_points_at_a_playbook_and_inventory_that_exist(name: str, templates: dict[str, dict[str, Any]],
                                                                    config: dict[str, Any]) -> None:
    template = templates[name]
    environment = config["environments"][template["environment"]]
    assert template["environment"] in name
    playbook = REPO_ROOT / template["playbook"]
    assert playbook.is_file(), f"{name}: {template['playbook']} does not exist"
    assert (REPO_ROOT / environment["source_path"] / "hosts.yml").is_file()
    plays = plays_for_group(playbook, f"postgres_{template['environment']}")
    assert plays, f"{name}: no play of {template['playbook']} runs on group postgres_{template['environment']}"
    for play in plays:
        assert play.get("gather_facts") is False, (name, play.get("name"))
        for role in play_roles(play):
            assert (role_dir(role) / "meta" / "argument_specs.yml").is_file(), (name, role)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_survey_is_valid_for_awx(name: str, templates: dict[str, dict[str, Any]]) -> None:
    survey = templates[name]["survey"]
    variables = [question["variable"] for question in survey]
    assert len(variables) == len(set(variables)), variables
    for question in survey:
        assert {"question_name", "variable", "type", "required"} <= set(question), question
        assert question["type"] in SURVEY_TYPES, question
        assert isinstance(question["required"], bool), question
        if question["type"] == "integer":
            assert isinstance(question["min"], int) and isinstance(question["max"], int), question
            assert question["min"] <= question.get("default", question["min"]) <= question["max"], question
        if question["type"] == "multiplechoice":
            assert question["choices"] and all(isinstance(choice, str) for choice in question["choices"]), question
            assert question.get("default", question["choices"][0]) in question["choices"], question
        if question["type"] == "password":
            # AWX shows a password default back as $encrypted$: the job template module could never be idempotent.
            assert "default" not in question, question


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_survey_variables_are_accepted_by_the_playbook(name: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[name]
    options = accepted_options(template)
    validator = ArgumentSpecValidator(options)
    for question in template["survey"]:
        variable = question["variable"]
        assert variable in options, f"{name}: survey variable {variable} is not an option of the playbook's roles {sorted(options)}"
        spec = options[variable]
        spec_type = spec.get("type", "str")
        assert spec_type in SPEC_TYPES_BY_SURVEY_TYPE[question["type"]], (name, variable, question["type"], spec_type)
        if spec.get("required"):
            assert question["required"] or "default" in question, (name, variable)
        if "default" in spec and "default" in question and spec_type != "bool":
            assert question["default"] == spec["default"], (name, variable, question["default"], spec["default"])
    # One launch per possible answer: that answer, and the first answer of every other question.
    baseline = {question["variable"]: answers(question)[0] for question in template["survey"]}
    for question in template["survey"]:
        for value in answers(question):
            launch = baseline | {question["variable"]: value}
            result = validator.validate(launch)
            assert not result.error_messages, f"{name}: AWX would send {launch!r}: {result.error_messages}"


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_required_role_options_are_asked(name: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[name]
    options = accepted_options(template)
    asked = {question["variable"] for question in template["survey"]}
    missing = {option for option, spec in options.items() if spec.get("required") and option not in asked}
    assert not missing, f"{name}: the role requires {sorted(missing)} but the survey does not ask for it"


def test_confirm_restore_answers_map_to_booleans(templates: dict[str, dict[str, Any]]) -> None:
    """The survey sends the strings "yes"/"no"; the restore role's bool option must read them as true/false."""
    for name in ("postgres restore (dev)", "postgres restore (prod)"):
        question = next(question for question in templates[name]["survey"] if question["variable"] == "confirm_restore")
        assert question["default"] == "no"
        options = accepted_options(templates[name])
        assert options["confirm_restore"].get("type") == "bool", options["confirm_restore"]
        validator = ArgumentSpecValidator({"confirm_restore": options["confirm_restore"]})
        converted = {choice: validator.validate({"confirm_restore": choice}).validated_parameters["confirm_restore"]
                     for choice in question["choices"]}
        assert converted == {"no": False, "yes": True}


def test_scale_survey_bounds_match_the_prod_role(templates: dict[str, dict[str, Any]], config: dict[str, Any]) -> None:
    question = templates["postgres scale (prod)"]["survey"][0]
    prod_defaults = load_yaml(REPO_ROOT / "roles" / "postgres_prod" / "defaults" / "main.yml")
    prod_inventory = load_yaml(REPO_ROOT / "inventories" / "prod" / "group_vars" / "postgres_prod.yml")
    maximum = prod_inventory.get("postgres_prod_max_instances", prod_defaults["postgres_prod_max_instances"])
    assert config["max_instances"] == maximum == 10
    assert (question["variable"], question["type"], question["min"], question["max"]) == ("instances", "integer", 1, maximum)


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_rotate_password_offers_the_inventory_services(environment: str, templates: dict[str, dict[str, Any]]) -> None:
    inventory = load_yaml(REPO_ROOT / "inventories" / environment / "group_vars" / f"postgres_{environment}.yml")
    databases = [service["database"] for service in inventory[f"postgres_{environment}_services"]]
    survey = {question["variable"]: question for question in templates[f"postgres rotate password ({environment})"]["survey"]}
    assert survey["service"]["choices"] == databases == ["userdb", "paymentdb", "settlementdb", "partnerdb", "accountingdb"]
    assert survey["new_password"]["type"] == "password" and survey["new_password"]["required"] is False


def test_workflow_runs_status_after_a_successful_prod_deploy(config: dict[str, Any]) -> None:
    nodes = {node["identifier"]: node for node in config["workflow"]["nodes"]}
    assert {node["unified_job_template"] for node in nodes.values()} <= JOB_TEMPLATE_NAMES
    assert nodes["deploy-prod"]["unified_job_template"] == "postgres deploy (prod)"
    assert nodes["deploy-prod"]["success_nodes"] == ["status-prod"]
    assert nodes["status-prod"]["unified_job_template"] == "postgres status (prod)"
    # Nodes that are a success target must be created before the node pointing at them.
    order = list(nodes)
    for identifier, node in nodes.items():
        assert all(order.index(target) < order.index(identifier) for target in node["success_nodes"]), order


def test_kubeconfig_credential_type_injects_the_file_both_ways(config: dict[str, Any]) -> None:
    assert config["credential_type_inputs"]["fields"][0] | {"help_text": None} == {
        "id": "kubeconfig", "type": "string", "label": "Kubeconfig", "secret": True, "multiline": True, "help_text": None}
    assert config["credential_type_injectors"] == {
        "file": {"template.kubeconfig": "{{ kubeconfig }}"},
        "env": {"K8S_AUTH_KUBECONFIG": "{{ tower.filename.kubeconfig }}", "KUBECONFIG": "{{ tower.filename.kubeconfig }}"},
    }


def _referenced_playbooks() -> list[tuple[str, str]]:
    return sorted({(template["playbook"], template["environment"]) for template in RAW["awx_configure__job_templates"]})


@pytest.mark.parametrize(("playbook", "environment"), _referenced_playbooks())
def test_referenced_playbook_passes_syntax_check(playbook: str, environment: str) -> None:
    assert (REPO_ROOT / playbook).is_file(), f"{playbook} does not exist"
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", playbook, "-i", f"inventories/{environment}"],
                          cwd=REPO_ROOT, env=base_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_awx_configure_passes_syntax_check() -> None:
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", str(AWX_PLAYBOOK), "-i", str(AWX_INVENTORY)],
                          cwd=REPO_ROOT, env=base_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_ansible_lint_production_profile_on_the_awx_files() -> None:
    paths = sorted({str(AWX_PLAYBOOK.relative_to(REPO_ROOT)), "playbooks/vars/awx.yml", "inventories/awx",
                    "collections/requirements.yml", "execution-environment.yml", "execution-environment/requirements.yml",
                    *(template["playbook"] for template in RAW["awx_configure__job_templates"])})
    missing = [path for path in paths if not (REPO_ROOT / path).exists()]
    assert not missing, f"missing: {missing}"
    proc = subprocess.run([str(VENV_BIN / "ansible-lint"), "--offline", "--nocolor", *paths],
                          cwd=REPO_ROOT, env=base_env(), capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]
    assert "profile 'production' was required, and it passed" in (proc.stdout + proc.stderr).lower()


def test_playbooks_directory_holds_no_unlaunched_day2_playbook() -> None:
    """A playbook added under playbooks/ needs a job template (or to be deploy/awx_configure)."""
    launched = {Path(template["playbook"]).stem for template in RAW["awx_configure__job_templates"]}
    present = {path.stem for path in PLAYBOOKS.glob("*.yml")}
    assert present - launched <= {"awx_configure"}, sorted(present - launched)
