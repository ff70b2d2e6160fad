"""playbooks/awx_configure.yml against the local AWX API stand-in (tests/awxsim): twice, then in check mode.

The first run creates every object; the stored objects are checked field by field against what the job
templates must hold (playbook, inventory, project, credential, survey). The second run must report
changed=0 and write nothing, and so must a --check run. No run may print the kubeconfig content or the
API token.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.awx.helpers import AWX_INVENTORY, AWX_PLAYBOOK, JOB_TEMPLATE_NAMES, WORKFLOW_NAME, resolved_config
from tests.awxsim.server import AwxSim
from tests.roles.helpers import REPO_ROOT, VENV_BIN, base_env, output, recap

SCM_URL = "https://git.example.com/platform/microservices-postgres.git"
EE_IMAGE = "registry.example.com/platform/microservices-postgres-ee:1.0.0"
# Secret-looking markers inside the kubeconfig files: they must reach AWX and never the output.
MARKERS = {"dev": "dev-kubeconfig-marker-6f1c2a", "prod": "prod-kubeconfig-marker-93be07"}


@dataclass
class Runs:
    """The stand-in after two identical runs and a check-mode run, and what each printed and wrote."""

    sim: AwxSim
    kubeconfigs: dict[str, Path]
    first: subprocess.CompletedProcess[str]
    first_writes: list[tuple[str, str]]
    second: subprocess.CompletedProcess[str]
    second_writes: list[tuple[str, str]]
    check: subprocess.CompletedProcess[str]
    check_writes: list[tuple[str, str]]


def configure(sim: AwxSim, *extra: str) -> subprocess.CompletedProcess[str]:
    env = base_env(CONTROLLER_HOST=sim.url, CONTROLLER_OAUTH_TOKEN=sim.token)
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), str(AWX_PLAYBOOK), "-i", str(AWX_INVENTORY), *extra],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)


def write_kubeconfigs(directory: Path) -> dict[str, Path]:
    files = {}
    for environment, marker in MARKERS.items():
        path = directory / f"{environment}.kubeconfig"
        path.write_text(f"apiVersion: v1\nkind: Config\nclusters: []\nusers:\n  - name: {marker}\n", encoding="utf-8")
        path.chmod(0o600)
        files[environment] = path
    return files


def inputs(kubeconfigs: dict[str, Path]) -> list[str]:
    return ["-e", f"awx_project_scm_url={SCM_URL}", "-e", f"awx_execution_environment_image={EE_IMAGE}",
            "-e", f"awx_kubeconfig_dev_file={kubeconfigs['dev']}", "-e", f"awx_kubeconfig_prod_file={kubeconfigs['prod']}"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    kubeconfigs = write_kubeconfigs(tmp_path_factory.mktemp("kubeconfigs"))
    with AwxSim() as sim:
        first = configure(sim, *inputs(kubeconfigs))
        first_writes = list(sim.store.writes)
        sim.store.writes.clear()
        second = configure(sim, *inputs(kubeconfigs))
        second_writes = list(sim.store.writes)
        sim.store.writes.clear()
        check = configure(sim, *inputs(kubeconfigs), "--check")
        yield Runs(sim, kubeconfigs, first, first_writes, second, second_writes, check, list(sim.store.writes))


def assert_first_run_creates_everything(runs: Runs) -> None:
    assert runs.first.returncode == 0, output(runs.first)
    assert recap(runs.first)["awx"]["failed"] == 0
    created = sorted({path.split("/")[3] for method, path in runs.first_writes if method == "POST" and path.count("/") == 4})
    assert created == ["credential_types", "credentials", "execution_environments", "inventories", "inventory_sources",
                       "job_templates", "projects", "workflow_job_template_nodes", "workflow_job_templates"]
    counts = {name: len(objects) for name, objects in runs.sim.store.objects.items() if objects}
    assert counts == {"organizations": 1, "execution_environments": 1, "credential_types": 1, "credentials": 2, "projects": 1,
                      "inventories": 2, "inventory_sources": 2, "job_templates": 13, "workflow_job_templates": 1,
                      "workflow_job_template_nodes": 2}


def assert_second_run_changes_nothing(runs: Runs) -> None:
    assert runs.second.returncode == 0, output(runs.second)
    assert recap(runs.second)["awx"]["changed"] == 0, output(runs.second)
    assert runs.second_writes == []


def assert_check_mode_on_a_configured_awx_reports_and_writes_nothing(runs: Runs) -> None:
    assert runs.check.returncode == 0, output(runs.check)
    assert recap(runs.check)["awx"]["changed"] == 0, output(runs.check)
    assert runs.check_writes == []


def assert_no_secret_in_any_output(runs: Runs) -> None:
    for proc in (runs.first, runs.second, runs.check):
        text = output(proc)
        for marker in MARKERS.values():
            assert marker not in text
        assert runs.sim.token not in text


def assert_project_and_inventories_come_from_this_repository(runs: Runs) -> None:
    sim = runs.sim
    organization = sim.by_name("organizations", "Default")["id"]
    ee = sim.by_name("execution_environments", "microservices-postgres")
    assert (ee["image"], ee["pull"]) == (EE_IMAGE, "missing")
    project = sim.by_name("projects", "microservices-postgres")
    assert {key: project[key] for key in ("scm_type", "scm_url", "scm_branch", "scm_update_on_launch", "organization",
                                          "default_environment")} == {
        "scm_type": "git", "scm_url": SCM_URL, "scm_branch": "main", "scm_update_on_launch": True,
        "organization": organization, "default_environment": ee["id"]}
    for environment in ("dev", "prod"):
        inventory = sim.by_name("inventories", f"postgres {environment}")
        assert inventory["organization"] == organization
        source = sim.store.list("inventory_sources", {"inventory": str(inventory["id"])})["results"]
        assert [(item["source"], item["source_project"], item["source_path"], item["update_on_launch"], item["overwrite"])
                for item in source] == [("scm", project["id"], f"inventories/{environment}", True, True)]
        assert (REPO_ROOT / source[0]["source_path"] / "hosts.yml").is_file()


def assert_kubeconfig_credentials_hold_the_files_and_inject_both_variables(runs: Runs) -> None:
    sim = runs.sim
    credential_type = sim.by_name("credential_types", "Kubeconfig")
    assert credential_type["kind"] == "cloud"
    assert credential_type["injectors"]["env"] == {"K8S_AUTH_KUBECONFIG": "{{ tower.filename.kubeconfig }}",
                                                   "KUBECONFIG": "{{ tower.filename.kubeconfig }}"}
    assert credential_type["injectors"]["file"] == {"template.kubeconfig": "{{ kubeconfig }}"}
    for environment, path in runs.kubeconfigs.items():
        shown = sim.by_name("credentials", f"postgres {environment} kubeconfig")
        assert shown["inputs"] == {"kubeconfig": "$encrypted$"}
        assert shown["credential_type"] == credential_type["id"]
        stored = sim.store.objects["credentials"][shown["id"]]
        assert stored["inputs"]["kubeconfig"] == path.read_text(encoding="utf-8").rstrip("\n")


@pytest.fixture(scope="module")
def wanted_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The job templates of playbooks/vars/awx.yml, resolved as the play resolves them."""
    return {template["name"]: template for template in resolved_config(tmp_path_factory.mktemp("awx"))["job_templates"]}


def assert_job_template_as_stored(name: str, runs: Runs, wanted: dict[str, Any]) -> None:
    sim = runs.sim
    environment = wanted["environment"]
    template = sim.by_name("job_templates", name)
    assert (template["playbook"], template["project"], template["inventory"], template["job_type"]) == (
        wanted["playbook"], sim.by_name("projects", "microservices-postgres")["id"],
        sim.by_name("inventories", f"postgres {environment}")["id"], "run")
    assert (REPO_ROOT / template["playbook"]).is_file(), template["playbook"]
    assert template["execution_environment"] == sim.by_name("execution_environments", "microservices-postgres")["id"]
    credentials = sim.store.associations("job_templates", template["id"], "credentials")["results"]
    assert [credential["name"] for credential in credentials] == [f"postgres {environment} kubeconfig"]
    survey = sim.store.survey("job_templates", template["id"])
    assert template["survey_enabled"] is bool(wanted["survey"]) is bool(survey), name
    if survey:
        assert survey == {"name": name, "description": wanted["description"], "spec": wanted["survey"]}


def assert_surveys_as_awx_holds_them(runs: Runs) -> None:
    sim = runs.sim

    def survey(name: str) -> dict[str, dict[str, Any]]:
        spec = sim.store.survey("job_templates", sim.by_name("job_templates", name)["id"])
        return {question["variable"]: question for question in spec["spec"]}

    scale = survey("postgres scale (prod)")["instances"]
    assert (scale["type"], scale["min"], scale["max"], scale["required"]) == ("integer", 1, 10, True)
    for environment in ("dev", "prod"):
        restore = survey(f"postgres restore ({environment})")
        assert (restore["confirm_restore"]["choices"], restore["confirm_restore"]["default"]) == (["no", "yes"], "no")
        rotate = survey(f"postgres rotate password ({environment})")
        assert rotate["service"]["choices"] == ["userdb", "paymentdb", "settlementdb", "partnerdb", "accountingdb"]
        assert (rotate["new_password"]["type"], rotate["new_password"]["required"]) == ("password", False)
        assert survey(f"postgres backup ({environment})")["backup_keep"]["default"] == 7
    assert set(survey("postgres restore (dev)")) == {"backup_file", "confirm_restore"}
    assert set(survey("postgres restore (prod)")) == {"restore_timestamp", "restore_cluster", "restore_instances",
                                                      "confirm_restore"}
    assert survey("postgres restore (prod)")["restore_instances"]["max"] == 10
    assert set(survey("postgres backup (dev)")) == {"backup_dir", "backup_keep"}
    assert set(survey("postgres backup (prod)")) == {"backup_keep"}
    assert set(survey("postgres status (dev)")) == {"backup_dir"}
    for environment in ("dev", "prod"):
        assert set(survey(f"postgres diagnose ({environment})")) == {"diagnose_dir", "diagnose_log_lines", "diagnose_since"}
    for name in ("postgres deploy (dev)", "postgres deploy (prod)", "postgres status (prod)"):
        assert sim.store.survey("job_templates", sim.by_name("job_templates", name)["id"]) == {}
        assert sim.by_name("job_templates", name)["survey_enabled"] is False


def assert_workflow_deploys_prod_then_reports_status(runs: Runs) -> None:
    sim = runs.sim
    workflow = sim.by_name("workflow_job_templates", WORKFLOW_NAME)
    listed = sim.store.list("workflow_job_template_nodes", {"workflow_job_template": str(workflow["id"])})
    nodes = {node["identifier"]: node for node in listed["results"]}
    assert set(nodes) == {"deploy-prod", "status-prod"}
    assert nodes["deploy-prod"]["unified_job_template"] == sim.by_name("job_templates", "postgres deploy (prod)")["id"]
    assert nodes["status-prod"]["unified_job_template"] == sim.by_name("job_templates", "postgres status (prod)")["id"]
    following = sim.store.associations("workflow_job_template_nodes", nodes["deploy-prod"]["id"], "success_nodes")["results"]
    assert [node["identifier"] for node in following] == ["status-prod"]
    assert sim.store.associations("workflow_job_template_nodes", nodes["status-prod"]["id"], "success_nodes")["count"] == 0


def test_configure_twice_then_check(runs: Runs, wanted_templates: dict[str, dict[str, Any]]) -> None:
    """One test over the three runs, so that the runs happen once per session whichever worker gets it."""
    assert_first_run_creates_everything(runs)
    assert_second_run_changes_nothing(runs)
    assert_check_mode_on_a_configured_awx_reports_and_writes_nothing(runs)
    assert_no_secret_in_any_output(runs)
    assert_project_and_inventories_come_from_this_repository(runs)
    assert_kubeconfig_credentials_hold_the_files_and_inject_both_variables(runs)
    assert set(wanted_templates) == JOB_TEMPLATE_NAMES
    for name, wanted in sorted(wanted_templates.items()):
        assert_job_template_as_stored(name, runs, wanted)
    assert_surveys_as_awx_holds_them(runs)
    assert_workflow_deploys_prod_then_reports_status(runs)


def test_refuses_a_missing_kubeconfig_before_changing_anything(tmp_path: Path) -> None:
    kubeconfigs = write_kubeconfigs(tmp_path)
    with AwxSim() as sim:
        proc = configure(sim, "-e", f"awx_project_scm_url={SCM_URL}", "-e", f"awx_kubeconfig_dev_file={kubeconfigs['dev']}",
                         "-e", f"awx_kubeconfig_prod_file={tmp_path / 'absent.kubeconfig'}")
        assert proc.returncode == 2, output(proc)
        assert "not a readable file: awx_kubeconfig_prod_file" in output(proc)
        assert sim.store.writes == []


def test_without_a_url_uses_the_origin_remote_or_refuses(tmp_path: Path) -> None:
    kubeconfigs = write_kubeconfigs(tmp_path)
    origin = subprocess.run(["git", "-C", str(REPO_ROOT), "remote", "get-url", "origin"], capture_output=True, text=True,
                            check=False)
    with AwxSim() as sim:
        proc = configure(sim, "-e", f"awx_kubeconfig_dev_file={kubeconfigs['dev']}",
                         "-e", f"awx_kubeconfig_prod_file={kubeconfigs['prod']}", "-e", "awx_execution_environment=")
        if origin.returncode == 0:
            assert proc.returncode == 0, output(proc)
            assert sim.by_name("projects", "microservices-postgres")["scm_url"] == origin.stdout.strip()
        else:
            assert proc.returncode == 2, output(proc)
            assert "awx_project_scm_url is not set and" in output(proc)
            assert sim.store.writes == []
