"""Fixtures of the role tests: a Kubernetes test bed (tests/kubesim) per test module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def kubesim(tmp_path_factory):
    """A running kubesim; its kubeconfig path is ``sim.kubeconfig_path``."""
    server = pytest.importorskip("tests.kubesim.server")
    with server.KubeSim(tmp_path_factory.mktemp("kubesim")) as sim:
        yield sim
