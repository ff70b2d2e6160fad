"""Simulated controllers, run by one loop that wakes on every store change.

Each controller is level-triggered: ``sync()`` looks at the whole current state and makes
one step towards the desired state, writing through the REST layer (so its writes get
resourceVersions, events for watchers, managedFields). Re-running a converged controller
writes nothing, which is what lets the loop settle.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import ApiError

if TYPE_CHECKING:
    from ..server import KubeSim

LOG = logging.getLogger("kubesim.controllers")
RESYNC_SECONDS = 0.5


class Controller(Protocol):
    def sync(self) -> None: ...


class ControllerLoop:
    def __init__(self, sim: "KubeSim", operator_crd_path: Path) -> None:
        from .kubelet import Kubelet, VolumeBinder  # noqa: PLC0415 - avoid import cycles at package load
        from .lifecycle import GarbageCollector, NamespaceController
        from .workloads import DeploymentController, JobController, StatefulSetController
        from ..operator_sim import ZalandoOperator

        self.controllers: list[Controller] = [
            NamespaceController(sim), GarbageCollector(sim), DeploymentController(sim),
            StatefulSetController(sim), JobController(sim), VolumeBinder(sim), Kubelet(sim),
            ZalandoOperator(sim, operator_crd_path),
        ]
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        sim.store.add_listener(self._wake.set)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kubesim-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def kick(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(RESYNC_SECONDS)
            self._wake.clear()
            for controller in self.controllers:
                if self._stop.is_set():
                    return
                try:
                    controller.sync()
                except ApiError as exc:
                    # A write raced with another writer (409) or its object just went away
                    # (404): level-triggered controllers simply try again on the next pass.
                    log = LOG.debug if exc.code in (404, 409) else LOG.warning
                    log("controller %s: %s", type(controller).__name__, exc.message)
                except Exception:  # noqa: BLE001 - one failing controller must not stop the others
                    LOG.exception("controller %s failed", type(controller).__name__)
