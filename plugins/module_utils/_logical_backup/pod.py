# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pod options of the backup modules: the kubernetes subset of the shared connection options.

Backups and restores always run pg_dumpall/psql inside the database pod (the dump must stream
through the exec API, and only the pod's local socket is sure to accept the superuser), so the
modules take only the options that pick the pod and the role, with the shared definitions.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.microservices.postgres.plugins.module_utils._postgres_connection import (
    CONNECTION_ARGUMENT_SPEC,
    pod_target,
)
from ansible_collections.microservices.postgres.plugins.module_utils._pod_exec.pod import PodStreamer

POD_OPTION_NAMES = ("namespace", "pod", "pod_selector", "container", "kubeconfig", "context", "exec_timeout", "login_user")
POD_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    name: {**CONNECTION_ARGUMENT_SPEC[name], **({"required": True} if name == "namespace" else {})}
    for name in POD_OPTION_NAMES
}
POD_REQUIRED_ONE_OF = [("pod", "pod_selector")]
POD_MUTUALLY_EXCLUSIVE = [("pod", "pod_selector")]


def pod_streamer(params: dict[str, Any], timeout_name: str = "exec_timeout") -> PodStreamer:
    """The streaming exec runner for the pod the options name or select, under the timeout ``timeout_name`` gives."""
    return PodStreamer(pod_target(params), params[timeout_name], timeout_name)
