"""kubesim: a Kubernetes API server test double with simulated controllers and real PostgreSQL.

Test infrastructure only (never imported by the collection). Start it with::

    from tests.kubesim import KubeSim
    with KubeSim(state_dir) as sim:
        run("kubectl", "--kubeconfig", sim.kubeconfig_path, ...)

or ``python -m tests.kubesim serve --port PORT --state-dir DIR``. See README.md for what it
models and what it does not.
"""

from .server import KubeSim

__all__ = ["KubeSim"]
