# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How every module of the collection reaches PostgreSQL: the shared connection options and the
transport they select, so modules never repeat the option list or the choice between psycopg and
psql-in-a-pod. The options are documented by the doc fragment ``microservices.postgres.connection``.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import env_fallback

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.direct import (
    ConnectionParams,
    DirectTransport,
    psycopg_import_error,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.kubernetes_exec import (
    KubernetesPodExec,
    PodTarget,
    kubernetes_import_error,
)
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.psql import PsqlTransport
from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.transport import Transport

CONNECTION_ARGUMENT_SPEC = dict(
    transport=dict(type="str", choices=["direct", "kubernetes"], default="direct"),
    login_host=dict(type="str", default="", fallback=(env_fallback, ["PGHOST"])),
    login_port=dict(type="int", default=5432, fallback=(env_fallback, ["PGPORT"])),
    login_user=dict(type="str", default="postgres", fallback=(env_fallback, ["PGUSER"])),
    login_password=dict(type="str", no_log=True, fallback=(env_fallback, ["PGPASSWORD"])),
    login_db=dict(type="str", default="postgres", fallback=(env_fallback, ["PGDATABASE"])),
    ssl_mode=dict(type="str", fallback=(env_fallback, ["PGSSLMODE"]),
                  choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
    ssl_rootcert=dict(type="path", fallback=(env_fallback, ["PGSSLROOTCERT"])),
    connect_timeout=dict(type="int", default=10),
    namespace=dict(type="str"),
    pod=dict(type="str"),
    pod_selector=dict(type="str"),
    container=dict(type="str"),
    kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
    context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
    exec_timeout=dict(type="int", default=300),
)
CONNECTION_REQUIRED_IF = [("transport", "kubernetes", ("namespace",)),
                          ("transport", "kubernetes", ("pod", "pod_selector"), True)]
CONNECTION_MUTUALLY_EXCLUSIVE = [("pod", "pod_selector")]


def missing_library(params: dict[str, Any]) -> tuple[str, str | None]:
    """The Python library the chosen transport needs, and its import error (None when importable)."""
    if params["transport"] == "kubernetes":
        return "kubernetes", kubernetes_import_error()
    return "psycopg", psycopg_import_error()


def pod_target(params: dict[str, Any]) -> PodTarget:
    """The pod named or selected by the options, for modules that exec into it themselves."""
    return PodTarget(
        namespace=params["namespace"],
        pod=params["pod"],
        pod_selector=params["pod_selector"],
        container=params["container"],
        kubeconfig=params["kubeconfig"],
        context=params["context"],
        exec_timeout=params["exec_timeout"],
    )


def open_transport(params: dict[str, Any]) -> Transport:
    """The transport chosen by the options; nothing past this point knows which one it is."""
    if params["transport"] == "kubernetes":
        return PsqlTransport(KubernetesPodExec(pod_target(params)), user=params["login_user"],
                             login_db=params["login_db"])
    return DirectTransport(ConnectionParams(
        host=params["login_host"] or "",
        port=params["login_port"],
        user=params["login_user"],
        password=params["login_password"],
        login_db=params["login_db"],
        ssl_mode=params["ssl_mode"],
        connect_timeout=params["connect_timeout"],
        ssl_rootcert=params["ssl_rootcert"],
    ))
