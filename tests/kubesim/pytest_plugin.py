"""pytest fixtures for any test that needs the simulated cluster.

Use from a conftest.py (or a test module)::

    from tests.kubesim.pytest_plugin import kubesim, kubesim_kubeconfig  # noqa: F401

``kubesim`` is one running ``KubeSim`` per test session (per xdist worker), stopped — with
all its PostgreSQL servers — at the end of the session; ``kubesim_kubeconfig`` is the path
of its kubeconfig, for ``KUBECONFIG``/``K8S_AUTH_KUBECONFIG`` or ``--kubeconfig``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from .server import KubeSim


@pytest.fixture(scope="session")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSim]:
    with KubeSim(tmp_path_factory.mktemp("kubesim")) as running:
        yield running


@pytest.fixture(scope="session")
def kubesim_kubeconfig(kubesim: KubeSim) -> Path:
    return kubesim.kubeconfig_path
