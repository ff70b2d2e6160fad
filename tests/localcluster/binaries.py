"""Where the built programs of the test bed are, by what they are called in a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import build


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    postgres_operator: Path
    postgres_exporter: Path

    @classmethod
    def locate(cls) -> "Binaries":
        """The binaries of the current pins; raises naming the command that builds what is missing."""
        env = build.go_env()
        control = build.bin_dir("controlplane", env)
        found = cls(
            # etcd's main package is the module root go.etcd.io/etcd/server/v3, so go names it `server`.
            etcd=control / "server",
            kube_apiserver=control / "kube-apiserver",
            kube_controller_manager=control / "kube-controller-manager",
            kube_scheduler=control / "kube-scheduler",
            kubectl=control / "kubectl",
            kwok=build.bin_dir("kwok", env) / "kwok",
            # The operator's main package is github.com/zalando/postgres-operator/cmd.
            postgres_operator=build.bin_dir("postgres-operator", env) / "cmd",
            postgres_exporter=build.bin_dir("postgres_exporter", env) / "postgres_exporter",
        )
        missing = [str(path) for path in vars(found).values() if not path.exists()]
        if missing:
            raise FileNotFoundError(
                f"test bed binaries missing: {', '.join(missing)}; build them with `make localcluster-build`"
            )
        return found
