"""Inputs refused before anything runs, each naming itself and what to use instead, with no secret
in the output (at -vvv); postgresql.conf values escaped; render-only files private; operator
manifests that differ from the pinned release refused before anything is applied."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from .helpers import output, run_deploy
from .prod_helpers import FIXTURES, run_prod

pytestmark = pytest.mark.slow

SENTINEL = "Sentinel-7c41e9-NotForLogs"


def flat(proc) -> str:
    return " ".join(output(proc).split())


def write_vars(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(data))
    return f"@{path}"


def dev_render(tmp_path: Path, data: dict):
    out = tmp_path / "out"
    proc = run_deploy("-vvv", "-e", "postgres_dev_render_only=true", "-e", f"postgres_dev_render_dir={out}",
                      "-e", write_vars(tmp_path, data), kubeconfig=tmp_path / "no-such-kubeconfig")
    return proc, out


def assert_refused(proc, out: Path | None, *fragments: str) -> str:
    text = flat(proc)
    assert proc.returncode != 0, text[-4000:]
    assert "Invalid input, nothing was applied" in text, text[-4000:]
    for fragment in fragments:
        assert fragment in text, text[-4000:]
    assert "Traceback" not in text and "censored" not in text.split("Invalid input")[1][:2000]
    assert SENTINEL not in output(proc), "the secret value reached the output"
    if out is not None:
        assert not out.exists(), "something was rendered"
    return text


def test_dev_secret_env_with_a_literal_value_is_refused(tmp_path):
    proc, out = dev_render(tmp_path, {"postgres_dev_extra_env": [
        {"name": "TZ", "value": "UTC"},
        {"name": "AWS_SECRET_ACCESS_KEY", "value": SENTINEL},
        {"name": "api_token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]})
    text = assert_refused(proc, out, "postgres_dev_extra_env[1] 'AWS_SECRET_ACCESS_KEY' looks like a secret",
                          "valueFrom: {secretKeyRef:")
    assert "api_token" not in text, "an entry taken from a Secret is fine"


def test_dev_setting_names_are_checked_and_values_escaped(tmp_path):
    proc, out = dev_render(tmp_path, {"postgres_dev_server_settings": {
        "max_connections": 50, "work_mem\nhba_file": "/tmp/evil_hba.conf", "include_dir": "/etc"}})
    assert_refused(proc, out, "postgres_dev_server_settings name 'work_mem\\nhba_file' is not a setting name",
                   "^[a-z_.]+$", "name 'include_dir' is a directive")

    value = "x' \nhba_file = '/tmp/evil_hba.conf"
    proc, out = dev_render(tmp_path, {"postgres_dev_server_settings": {"application_name": value}})
    assert proc.returncode == 0, output(proc)[-4000:]
    config = next(yaml.safe_load(path.read_text()) for path in out.glob("*-configmap.yaml"))
    conf = config["data"]["postgresql.conf"]
    assert [line for line in conf.splitlines() if line.startswith("application_name")] == [
        "application_name = 'x'' \\nhba_file = ''/tmp/evil_hba.conf'"]
    assert not [line for line in conf.splitlines() if line.startswith("hba_file")]


def test_dev_render_files_are_private(tmp_path):
    proc, out = dev_render(tmp_path, {"postgres_dev_extra_env": [{"name": "TZ", "value": "UTC"}]})
    assert proc.returncode == 0, output(proc)[-4000:]
    assert out.stat().st_mode & 0o777 == 0o700
    assert {path.stat().st_mode & 0o777 for path in out.iterdir()} == {0o600}


def prod(tmp_path: Path, extra_vars: dict, manifests_dir: Path = FIXTURES, render: bool = True):
    out = tmp_path / "out"
    render_vars = {"postgres_prod_render_only": True, "postgres_prod_render_dir": str(out)} if render else {}
    proc = run_prod("-vvv", kubeconfig="/nonexistent/kubeconfig", manifests_dir=manifests_dir, timeout=600,
                    extra_vars={**render_vars, **extra_vars})
    return proc, out


def test_prod_secret_operator_config_and_pod_environment_are_refused(tmp_path):
    proc, out = prod(tmp_path, {
        "postgres_prod_operator_config": {"logical_backup_s3_secret_access_key": SENTINEL,
                                          "enable_password_rotation": False},
        "postgres_prod_pod_environment": {"WAL_S3_BUCKET": "wal", "AWS_SECRET_ACCESS_KEY": SENTINEL},
    })
    text = assert_refused(proc, out,
                          "postgres_prod_operator_config key 'logical_backup_s3_secret_access_key' looks like a secret",
                          "postgres_prod_pod_environment key 'AWS_SECRET_ACCESS_KEY' looks like a secret",
                          "postgres_prod_backup_credentials")
    assert "enable_password_rotation" not in text, "the operator's non-secret settings are allowed"


def test_prod_render_files_are_private_and_allowed_settings_pass(tmp_path):
    proc, out = prod(tmp_path, {"postgres_prod_operator_config": {"enable_password_rotation": True,
                                                                  "pod_environment_secret": "my-backup-secret"}})
    assert proc.returncode == 0, output(proc)[-4000:]
    assert out.stat().st_mode & 0o777 == 0o700
    assert {path.stat().st_mode & 0o777 for path in out.iterdir()} == {0o600}


def test_a_tampered_operator_manifest_is_refused_before_anything_is_applied(tmp_path):
    tampered = tmp_path / "manifests"
    shutil.copytree(FIXTURES, tampered)
    rbac = tampered / "operator-service-account-rbac.yaml"
    rbac.write_text(rbac.read_text().replace("- get\n", "- get\n  - escalate\n", 1))
    proc, _out = prod(tmp_path, {}, manifests_dir=tampered, render=False)
    text = flat(proc)
    assert proc.returncode != 0, text[-4000:]
    assert "are not those of postgres-operator v2.0.1 pinned in postgres_prod_operator_manifest_sha256" in text
    assert ("operator-service-account-rbac.yaml: sha256" in text
            and "but e2afc6cb25d38bcd3720ba7469d0f917deaec2189eedb85275e1b2024dfa650c is pinned" in text), text[-4000:]
    assert "configmap.yaml:" not in text, "only the changed file is named"
    assert "nothing was applied" in text and "Apply the operator" not in text
