# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules for role inputs that end up in plain-text places: ConfigMaps, pod specs, postgresql.conf.

One implementation of each rule, used by every role through these filters (never re-typed as
regexes in YAML):

* a key that looks like a secret (``key``, ``secret``, ``password``, ``token`` in its name) has no
  place in a ConfigMap or a literal env value: it is refused, naming the Secret-based input to use;
* a postgresql.conf setting name must be a plain name, and its value is escaped for the file, so
  no input can add a line (a newline in a name once added an ``hba_file`` line).

Error messages name inputs and keys, never values. Documentation of each filter is in the
``<filter name>.yml`` file next to this one.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

SECRET_LIKE = re.compile(r"key|secret|password|token", re.IGNORECASE)
SETTING_NAME = re.compile(r"^[a-z_.]+$")

OPERATOR_NON_SECRET_SETTINGS = frozenset({
    "additional_secret_mount", "additional_secret_mount_path", "delete_annotation_date_key",
    "delete_annotation_name_key", "enable_cross_namespace_secret", "enable_password_rotation",
    "enable_secrets_deletion", "ignore_instance_limits_annotation_key", "ignore_resources_limits_annotation_key",
    "infrastructure_roles_secret_name", "infrastructure_roles_secrets", "logical_backup_cronjob_environment_secret",
    "oauth_token_secret_name", "password_rotation_interval", "password_rotation_user_retention",
    "pod_antiaffinity_topology_key", "pod_environment_secret", "secret_name_template",
})
"""postgres-operator settings whose names match the secret pattern but whose values are not secrets:
names of Secrets, annotation or label keys, flags and intervals (the operator's own configmap.yaml)."""

CONF_DIRECTIVES = frozenset({"include", "include_dir", "include_if_exists"})
"""postgresql.conf directives, not settings: they would make the server read another file."""

_CONF_ESCAPES = {"\\": "\\\\", "'": "''", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def secret_like(name: Any) -> bool:
    """Whether a key's name says it holds a credential (case-insensitive)."""
    return bool(SECRET_LIKE.search(str(name)))


def secret_config_errors(config: Mapping[str, Any] | None, input_name: str, use_instead: str,
                         allowed: Iterable[str] = ()) -> list[str]:
    """Messages for each secret-looking key of a mapping bound for a ConfigMap (values are never shown).

    ``allowed`` names keys that match the pattern but are known not to hold secrets.
    """
    allowed = frozenset(allowed)
    return [f"{input_name} key {key!r} looks like a secret and would be stored in plain text in a ConfigMap: "
            f"{use_instead}"
            for key in sorted(map(str, (config or {}).keys())) if secret_like(key) and key not in allowed]


def operator_config_secret_errors(config: Mapping[str, Any] | None, input_name: str, use_instead: str) -> list[str]:
    """secret_config_errors for the postgres-operator's ConfigMap, knowing its non-secret settings."""
    return secret_config_errors(config, input_name, use_instead, OPERATOR_NON_SECRET_SETTINGS)


def secret_env_errors(env: Iterable[Mapping[str, Any]] | None, input_name: str) -> list[str]:
    """Messages for env entries (Pod spec shape) with a secret-looking name and a literal ``value``.

    The same entry given as ``valueFrom.secretKeyRef`` is fine: the value then stays in a Secret.
    """
    errors = []
    for index, entry in enumerate(env or []):
        name = str((entry or {}).get("name", ""))
        if secret_like(name) and "value" in (entry or {}):
            errors.append(
                f"{input_name}[{index}] {name!r} looks like a secret and its literal value would be stored in "
                f"plain text in the pod spec: put it in a Secret and give it as "
                f"{{name: {name}, valueFrom: {{secretKeyRef: {{name: <secret>, key: <key>}}}}}} instead")
    return errors


def postgresql_conf_errors(settings: Mapping[str, Any] | None, input_name: str) -> list[str]:
    """Messages for setting names that are not plain names, or that are directives reading other files."""
    errors = []
    for name in sorted((settings or {}).keys(), key=str):
        shown = repr(str(name))
        if not isinstance(name, str) or not SETTING_NAME.match(name):
            errors.append(f"{input_name} name {shown} is not a setting name: use lowercase letters, '_' and '.' only "
                          "(^[a-z_.]+$)")
        elif name in CONF_DIRECTIVES:
            errors.append(f"{input_name} name {shown} is a directive that reads another file, not a setting: "
                          "give the settings themselves")
    return errors


def postgresql_conf_value(value: Any) -> str:
    """A value as a quoted postgresql.conf string: quotes doubled, backslashes and control characters
    escaped (the file's lexer decodes \\n, \\t, ... and octal), so it can never end the line."""
    if isinstance(value, bool):
        value = "on" if value else "off"
    text = str(value)
    out = []
    for char in text:
        if char in _CONF_ESCAPES:
            out.append(_CONF_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):03o}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def postgresql_conf(settings: Mapping[str, Any] | None, input_name: str, fixed: Iterable[str] = ()) -> str:
    """``name = 'value'`` lines sorted by name, leaving out ``fixed`` (names the role writes itself);
    refuses what postgresql_conf_errors reports."""
    errors = postgresql_conf_errors(settings, input_name)
    if errors:
        _fail("; ".join(errors))
    fixed = frozenset(fixed)
    return "".join(f"{name} = {postgresql_conf_value(value)}\n"
                   for name, value in sorted((settings or {}).items()) if name not in fixed)


def _fail(message: str) -> None:
    """Raise the error Ansible reports for a filter (imported lazily: keeps the module importable alone)."""
    try:
        from ansible.errors import AnsibleFilterError  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover - only without ansible installed
        raise ValueError(message) from None
    raise AnsibleFilterError(message)


class FilterModule:
    """Role input rules."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function."""
        return {
            "secret_config_errors": secret_config_errors,
            "operator_config_secret_errors": operator_config_secret_errors,
            "secret_env_errors": secret_env_errors,
            "postgresql_conf_errors": postgresql_conf_errors,
            "postgresql_conf": postgresql_conf,
        }
