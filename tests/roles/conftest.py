"""Fixtures of the role tests: a Kubernetes test bed per test module, the real one
(tests/localcluster, fixture ``localcluster``) or the simulated API (tests/kubesim, ``kubesim``)."""

from __future__ import annotations

import pytest

# `localcluster` is a fixture: importing it makes it available here.
from tests.localcluster.pytest_plugin import localcluster  # noqa: F401 pylint: disable=unused-import


@pytest.fixture(scope="module")
def kubesim(tmp_path_factory):
    """A running kubesim; its kubeconfig path is ``sim.kubeconfig_path``."""
    server = pytest.importorskip("tests.kubesim.server")
    with server.KubeSim(tmp_path_factory.mktemp("kubesim")) as sim:
        yield sim
