"""What playbooks/awx_configure.yml configures, resolved the way the play resolves it, and what the playbooks accept.

The AWX objects live in playbooks/vars/awx.yml, partly as Jinja (survey bounds and choices read from the
inventories and the prod role's defaults). Rather than re-implementing that in Python, ``resolved_config``
lets Ansible itself template the same file with the same ``playbook_dir``, so the tests check the values AWX
really receives.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.roles.helpers import REPO_ROOT, VENV_BIN, base_env

PLAYBOOKS = REPO_ROOT / "playbooks"
AWX_VARS = PLAYBOOKS / "vars" / "awx.yml"
AWX_PLAYBOOK = PLAYBOOKS / "awx_configure.yml"
AWX_INVENTORY = REPO_ROOT / "inventories" / "awx"
ROLES = REPO_ROOT / "roles"
COLLECTION_PREFIX = "microservices.postgres."
# The names every engineer's docs use (issue 6): fixed, and exactly these.
JOB_TEMPLATE_NAMES = {
    "postgres deploy (dev)", "postgres deploy (prod)", "postgres backup (dev)", "postgres backup (prod)",
    "postgres restore (dev)", "postgres restore (prod)", "postgres scale (prod)", "postgres status (dev)",
    "postgres status (prod)", "postgres rotate password (dev)", "postgres rotate password (prod)",
    "postgres diagnose (dev)", "postgres diagnose (prod)",
}
WORKFLOW_NAME = "postgres deploy prod then status"
# The day-2 playbooks of issue 6: each must be launched by a job template.
DAY2_PLAYBOOKS = ("backup", "restore", "scale", "status", "rotate_password", "diagnose")
RESOLVED_KEYS = {
    "job_templates": "awx_configure__job_templates",
    "environments": "awx_configure__environments",
    "workflow": "awx_configure__workflow",
    "max_instances": "awx_configure__max_instances",
    "service_choices": "awx_configure__service_choices",
    "credential_type_inputs": "awx_configure__credential_type_inputs",
    "credential_type_injectors": "awx_configure__credential_type_injectors",
}


class _AnsibleVarsLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """SafeLoader that reads Ansible's `!unsafe` tag as the plain string it marks."""


_AnsibleVarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def raw_config() -> dict[str, Any]:
    """playbooks/vars/awx.yml as YAML, untemplated (the job template names are literal there)."""
    return yaml.load(AWX_VARS.read_text(encoding="utf-8"), Loader=_AnsibleVarsLoader)  # nosec B506 - a SafeLoader


def resolved_config(work_dir: Path) -> dict[str, Any]:
    """The AWX objects with every Jinja expression resolved by Ansible, as the play sees them."""
    target = work_dir / "awx-resolved.json"
    content = "{{ {" + ", ".join(f"'{key}': {name}" for key, name in RESOLVED_KEYS.items()) + "} | to_json }}"
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), "awx", "-i", str(AWX_INVENTORY), "--playbook-dir", str(PLAYBOOKS),
         "-e", f"@{AWX_VARS}", "-m", "ansible.builtin.copy", "-a", json.dumps({"content": content, "dest": str(target)})],
        cwd=REPO_ROOT, env=base_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(target.read_text(encoding="utf-8"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def role_dir(reference: str) -> Path:
    """roles/<name> of a role named as `microservices.postgres.<name>` or `<name>`."""
    return ROLES / reference.removeprefix(COLLECTION_PREFIX)


def plays_for_group(playbook: Path, group: str) -> list[dict[str, Any]]:
    """The plays of a playbook whose `hosts` pattern names the inventory group (what runs with that inventory)."""
    plays = load_yaml(playbook) or []
    return [play for play in plays
            if group in [part.strip() for part in str(play.get("hosts", "")).replace(",", ":").split(":")]]


def play_roles(play: dict[str, Any]) -> list[str]:
    """Roles a play runs: its `roles:` plus include_role/import_role tasks."""
    names = [entry if isinstance(entry, str) else entry.get("role", entry.get("name")) for entry in play.get("roles", [])]
    for section in ("pre_tasks", "tasks", "post_tasks"):
        for task in play.get(section, []) or []:
            for module in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
                if module in task:
                    names.append(task[module]["name"])
    return names


def role_options(role: str) -> dict[str, dict[str, Any]]:
    """The `main` entry point's options of a role's meta/argument_specs.yml (the variables it accepts)."""
    specs = load_yaml(role_dir(role) / "meta" / "argument_specs.yml")
    return specs["argument_specs"]["main"].get("options") or {}


def inventory_group_hosts(source_path: str, group: str) -> dict[str, Any]:
    """Hosts of a group in <source_path>/hosts.yml."""
    hosts = load_yaml(REPO_ROOT / source_path / "hosts.yml")
    return (hosts.get(group) or {}).get("hosts") or {}
