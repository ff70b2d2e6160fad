"""The AWX API v2 resources the stand-in serves: their writable fields, types, defaults and uniqueness.

Only what the awx.awx 24.x modules used by playbooks/awx_configure.yml send is modelled (read in
awx/awx/plugins/modules/*.py). Types follow AWX's serializers: a field given the wrong type is a 400,
as it is in AWX. Unlike AWX (Django REST framework ignores unknown keys), an unknown field is also a
400: a misspelt field would otherwise be dropped silently here and in AWX alike, and the tests should
see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Field:
    """One writable field: `kind` is str, text (str, may be null), bool, int, json (a dict), fk:<resource> or choice."""

    kind: str
    default: Any = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Resource:
    """A collection under /api/v2/<name>/."""

    name: str
    type: str
    fields: dict[str, Field]
    required: tuple[str, ...] = ("name",)
    # The field that names an object (what awx.awx looks objects up by).
    identity: str = "name"
    # Fields that, with the identity, must be unique (AWX: name unique per organization, per inventory, ...).
    unique_with: tuple[str, ...] = ()
    # Association sub-collections (POST {"id": n} / {"id": n, "disassociate": true}) -> the resource they hold.
    associations: dict[str, str] = field(default_factory=dict)
    # related endpoints that are not associations (survey_spec, update, ...).
    extra_related: tuple[str, ...] = ()


def _str(default: str = "") -> Field:
    return Field("str", default)


def _bool(default: bool = False) -> Field:
    return Field("bool", default)


def _int(default: int = 0) -> Field:
    return Field("int", default)


def _fk(resource: str) -> Field:
    return Field(f"fk:{resource}")


ASK_ON_LAUNCH = ("ask_scm_branch_on_launch", "ask_diff_mode_on_launch", "ask_variables_on_launch", "ask_limit_on_launch",
                 "ask_tags_on_launch", "ask_skip_tags_on_launch", "ask_job_type_on_launch", "ask_verbosity_on_launch",
                 "ask_inventory_on_launch", "ask_credential_on_launch", "ask_execution_environment_on_launch",
                 "ask_forks_on_launch", "ask_instance_groups_on_launch", "ask_job_slice_count_on_launch",
                 "ask_labels_on_launch", "ask_timeout_on_launch")
NOTIFICATIONS = {"notification_templates_started": "notification_templates",
                 "notification_templates_success": "notification_templates",
                 "notification_templates_error": "notification_templates"}

RESOURCES: dict[str, Resource] = {resource.name: resource for resource in (
    Resource("organizations", "organization", {"description": _str(), "max_hosts": _int()}),
    Resource("labels", "label", {"organization": _fk("organizations")}, unique_with=("organization",)),
    Resource("instance_groups", "instance_group", {}),
    Resource("notification_templates", "notification_template", {"description": _str(), "organization": _fk("organizations")}),
    Resource("execution_environments", "execution_environment", {
        "description": _str(), "image": _str(), "organization": _fk("organizations"), "credential": _fk("credentials"),
        "pull": Field("choice", "", ("", "always", "missing", "never"))}, required=("name", "image")),
    Resource("credential_types", "credential_type", {
        "description": _str(), "kind": Field("choice", "cloud", ("cloud", "net")), "managed": Field("choice", False, (False,)),
        "inputs": Field("json", {}), "injectors": Field("json", {})}),
    Resource("credentials", "credential", {
        "description": _str(), "organization": _fk("organizations"), "credential_type": _fk("credential_types"),
        "inputs": Field("json", {}), "user": _fk("users"), "team": _fk("teams")},
        required=("name", "credential_type"), unique_with=("organization", "credential_type")),
    Resource("projects", "project", {
        "description": _str(), "organization": _fk("organizations"),
        "scm_type": Field("choice", "", ("", "git", "svn", "insights", "archive")), "scm_url": _str(), "scm_branch": _str(),
        "scm_refspec": _str(), "scm_clean": _bool(), "scm_delete_on_update": _bool(), "scm_track_submodules": _bool(),
        "scm_update_on_launch": _bool(), "scm_update_cache_timeout": _int(), "allow_override": _bool(), "timeout": _int(),
        "local_path": _str(), "custom_virtualenv": Field("text"), "default_environment": _fk("execution_environments"),
        "credential": _fk("credentials"), "signature_validation_credential": _fk("credentials")},
        unique_with=("organization",), associations=dict(NOTIFICATIONS), extra_related=("update", "project_updates")),
    Resource("inventories", "inventory", {
        "description": _str(), "organization": _fk("organizations"), "variables": _str(),
        "kind": Field("choice", "", ("", "smart", "constructed", None)), "host_filter": Field("text"),
        "prevent_instance_group_fallback": _bool()},
        required=("name", "organization"), unique_with=("organization",),
        associations={"instance_groups": "instance_groups", "input_inventories": "inventories"}),
    Resource("inventory_sources", "inventory_source", {
        "description": _str(), "inventory": _fk("inventories"), "source_project": _fk("projects"),
        "source": Field("choice", "", ("", "scm", "ec2", "gce", "azure_rm", "vmware", "satellite6", "openstack", "rhv",
                                       "controller", "insights", "terraform", "openshift_virtualization")),
        "source_path": _str(), "source_vars": _str(), "credential": _fk("credentials"),
        "execution_environment": _fk("execution_environments"), "overwrite": _bool(), "overwrite_vars": _bool(),
        "custom_virtualenv": Field("text"), "timeout": _int(), "verbosity": Field("choice", 1, (0, 1, 2)),
        "update_on_launch": _bool(), "update_cache_timeout": _int(), "enabled_var": _str(), "enabled_value": _str(),
        "host_filter": _str(), "scm_branch": _str(), "limit": _str()},
        required=("name", "inventory"), unique_with=("inventory",), associations=dict(NOTIFICATIONS)),
    Resource("job_templates", "job_template", {
        "description": _str(), "organization": _fk("organizations"), "job_type": Field("choice", "run", ("run", "check")),
        "inventory": _fk("inventories"), "project": _fk("projects"), "playbook": _str(), "scm_branch": _str(),
        "forks": _int(), "limit": _str(), "verbosity": Field("choice", 0, (0, 1, 2, 3, 4, 5)), "extra_vars": _str(),
        "job_tags": _str(), "force_handlers": _bool(), "skip_tags": _str(), "start_at_task": _str(), "timeout": _int(),
        "use_fact_cache": _bool(), "host_config_key": _str(), "survey_enabled": _bool(), "become_enabled": _bool(),
        "diff_mode": _bool(), "allow_simultaneous": _bool(), "custom_virtualenv": Field("text"), "job_slice_count": _int(1),
        "webhook_service": Field("choice", "", ("", "github", "gitlab")), "webhook_credential": _fk("credentials"),
        "execution_environment": _fk("execution_environments"), "prevent_instance_group_fallback": _bool(),
        **{name: _bool() for name in ASK_ON_LAUNCH}},
        required=("name", "project", "playbook"), unique_with=("organization",),
        associations={"credentials": "credentials", "labels": "labels", "instance_groups": "instance_groups", **NOTIFICATIONS},
        extra_related=("survey_spec",)),
    Resource("workflow_job_templates", "workflow_job_template", {
        "description": _str(), "organization": _fk("organizations"), "inventory": _fk("inventories"), "limit": _str(),
        "scm_branch": _str(), "extra_vars": _str(), "survey_enabled": _bool(), "allow_simultaneous": _bool(),
        "job_tags": _str(), "skip_tags": _str(), "webhook_service": Field("choice", "", ("", "github", "gitlab")),
        "webhook_credential": _fk("credentials"),
        **{name: _bool() for name in ("ask_inventory_on_launch", "ask_scm_branch_on_launch", "ask_limit_on_launch",
                                      "ask_variables_on_launch", "ask_labels_on_launch", "ask_tags_on_launch",
                                      "ask_skip_tags_on_launch")}},
        unique_with=("organization",), associations={"labels": "labels", **NOTIFICATIONS}, extra_related=("survey_spec",)),
    Resource("workflow_job_template_nodes", "workflow_job_template_node", {
        "workflow_job_template": _fk("workflow_job_templates"), "unified_job_template": Field("fk:unified_job_templates"),
        "identifier": _str(), "inventory": _fk("inventories"), "extra_data": Field("json", {}), "scm_branch": Field("text"),
        "job_type": Field("text"), "job_tags": Field("text"), "skip_tags": Field("text"), "limit": Field("text"),
        "diff_mode": Field("text"), "verbosity": Field("text"), "all_parents_must_converge": _bool(),
        "forks": Field("text"), "job_slice_count": Field("text"), "timeout": Field("text"),
        "execution_environment": _fk("execution_environments"),
        "type": Field("choice", "workflow_job_template_node", ("workflow_job_template_node",))},
        required=("workflow_job_template", "identifier"), identity="identifier", unique_with=("workflow_job_template",),
        associations={"success_nodes": "workflow_job_template_nodes", "failure_nodes": "workflow_job_template_nodes",
                      "always_nodes": "workflow_job_template_nodes", "credentials": "credentials",
                      "instance_groups": "instance_groups", "labels": "labels"}),
)}
# What GET /api/v2/unified_job_templates/ lists: every launchable template, by its own resource.
UNIFIED_JOB_TEMPLATE_SOURCES = ("projects", "inventory_sources", "job_templates", "workflow_job_templates")
