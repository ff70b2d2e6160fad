"""One deployed dev and one deployed prod environment per pytest worker, shared by the day-2 tests.

Deploying takes half a minute or more, so each environment is deployed once per worker process
that runs a test needing it (with `make test`'s two workers, at most twice per session). Tests on
one worker run one after the other against the same deployment, in no fixed order, so a test that
changes the deployment (scale, rotate, restore) puts back what the others rely on, or changes only
what it owns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import FIXTURES, Deployment, output, run_playbook


def _deploy(environment: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    server = pytest.importorskip("tests.kubesim.server")
    if environment == "prod" and not FIXTURES.is_dir():
        pytest.skip(f"operator fixtures not found at {FIXTURES}")
    work_dir = tmp_path_factory.mktemp(f"day2-{environment}")
    with server.KubeSim(work_dir / "kubesim") as sim:
        proc = run_playbook("deploy", environment, sim.kubeconfig_path)
        assert proc.returncode == 0, output(proc)[-8000:]
        yield Deployment(environment, Path(sim.kubeconfig_path), work_dir)


@pytest.fixture(scope="session")
def dev_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """inventories/dev deployed into a kubesim of its own."""
    yield from _deploy("dev", tmp_path_factory)


@pytest.fixture(scope="session")
def prod_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """inventories/prod (operator + cluster) deployed into a kubesim of its own."""
    yield from _deploy("prod", tmp_path_factory)
