"""Role input rules: secret-looking keys refused, postgresql.conf names checked and values escaped."""

from __future__ import annotations

import hashlib

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.microservices.postgres.plugins.filter.checksums import sha256_mismatches
from ansible_collections.microservices.postgres.plugins.filter.role_inputs import (
    operator_config_secret_errors,
    postgresql_conf,
    postgresql_conf_errors,
    postgresql_conf_value,
    secret_config_errors,
    secret_env_errors,
)

VALUE = "do-not-show-7f2"


@pytest.mark.parametrize("key", ["AWS_SECRET_ACCESS_KEY", "aws_access_key_id", "db_Password", "API_TOKEN",
                                 "monkey", "SecretName"])
def test_secret_like_keys_are_refused_without_their_values(key):
    errors = secret_config_errors({key: VALUE, "WAL_S3_BUCKET": "b"}, "some_input", "use the Secret input")
    assert len(errors) == 1 and f"some_input key {key!r} looks like a secret" in errors[0]
    assert errors[0].endswith("use the Secret input") and VALUE not in errors[0]


def test_the_operators_non_secret_settings_pass_and_its_secret_ones_do_not():
    config = {"enable_password_rotation": True, "pod_environment_secret": "x", "secret_name_template": "t",
              "logical_backup_s3_secret_access_key": VALUE, "logical_backup_azure_storage_account_key": VALUE}
    errors = operator_config_secret_errors(config, "postgres_prod_operator_config", "use X")
    refused = [e.split("'")[1] for e in errors]
    assert refused == ["logical_backup_azure_storage_account_key", "logical_backup_s3_secret_access_key"]
    assert secret_config_errors({"enable_password_rotation": True}, "i", "u") != []


def test_env_entries_with_literal_secret_values_are_refused_but_secret_refs_pass():
    env = [{"name": "TZ", "value": "UTC"}, {"name": "PGPASSWORD", "value": VALUE},
           {"name": "S3_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    errors = secret_env_errors(env, "postgres_dev_extra_env")
    assert len(errors) == 1 and errors[0].startswith("postgres_dev_extra_env[1] 'PGPASSWORD' looks like a secret")
    assert "valueFrom: {secretKeyRef: {name: <secret>, key: <key>}}" in errors[0] and VALUE not in errors[0]
    assert secret_env_errors(None, "x") == []


@pytest.mark.parametrize("name, fragment", [
    ("work_mem\nhba_file", "is not a setting name"), ("Work_Mem", "is not a setting name"),
    ("work-mem", "is not a setting name"), ("x = 1 #", "is not a setting name"), ("", "is not a setting name"),
    ("include", "is a directive"), ("include_if_exists", "is a directive"),
])
def test_setting_names_are_checked(name, fragment):
    errors = postgresql_conf_errors({name: "1", "max_connections": 5}, "postgres_dev_server_settings")
    assert len(errors) == 1 and fragment in errors[0] and repr(name) in errors[0]
    with pytest.raises(AnsibleFilterError, match="postgres_dev_server_settings name"):
        postgresql_conf({name: "1"}, "postgres_dev_server_settings")


@pytest.mark.parametrize("value, rendered", [
    (100, "'100'"), (True, "'on'"), (False, "'off'"), ("it's", "'it''s'"), ("a\\b", "'a\\\\b'"),
    ("l1\nhba_file = '/x'", "'l1\\nhba_file = ''/x'''"), ("tab\there\r", "'tab\\there\\r'"), ("\x01", "'\\001'"),
])
def test_values_are_escaped_onto_one_line(value, rendered):
    assert postgresql_conf_value(value) == rendered
    assert "\n" not in postgresql_conf_value(value)


def test_conf_lines_are_sorted_and_leave_out_fixed_names():
    text = postgresql_conf({"shared_buffers": "128MB", "port": 1, "max_connections": 5}, "s", ["port"])
    assert text == "max_connections = '5'\nshared_buffers = '128MB'\n"


def test_sha256_mismatches_name_each_file_and_both_sums():
    good = "apiVersion: v1\n"
    pinned = {"a.yaml": hashlib.sha256(good.encode()).hexdigest(), "b.yaml": "unused"}
    assert sha256_mismatches([good], ["a.yaml"], pinned) == []
    messages = sha256_mismatches([good + "#", good], ["a.yaml", "c.yaml"], pinned)
    assert messages[0].startswith("a.yaml: sha256 ") and f"but {pinned['a.yaml']} is pinned" in messages[0]
    assert messages[1] == f"c.yaml: no pinned sha256 (its sha256 is {pinned['a.yaml']})"
