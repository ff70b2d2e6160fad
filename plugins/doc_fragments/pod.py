# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options that pick the database pod, for the modules that always run inside it."""

from __future__ import annotations


class ModuleDocFragment:
    """Mirrors POD_ARGUMENT_SPEC in plugins/module_utils/_logical_backup/pod.py, except exec_timeout and
    login_user, which each module describes for what it runs."""

    DOCUMENTATION = r"""
options:
  namespace:
    description:
      - Namespace of the database pod.
    type: str
    required: true
  pod:
    description:
      - Name of the database pod. Exactly one of O(pod) and O(pod_selector) is required.
    type: str
  pod_selector:
    description:
      - Label selector that must match exactly one Ready pod, for example
        C(application=spilo,cluster-name=postgres-cluster,spilo-role=master).
    type: str
  container:
    description:
      - Container of the pod to run in; the pod's only or default container when omitted.
    type: str
  kubeconfig:
    description:
      - Path of the kubeconfig file.
      - Falls back to E(K8S_AUTH_KUBECONFIG), then to the Kubernetes client's own default (E(KUBECONFIG), else
        C(~/.kube/config)), then to the in-cluster service account.
    type: path
  context:
    description:
      - Context of the kubeconfig to use. Falls back to E(K8S_AUTH_CONTEXT), then to the current context.
    type: str
"""
