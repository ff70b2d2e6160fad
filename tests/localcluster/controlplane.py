"""etcd, kube-apiserver, kube-controller-manager and kube-scheduler, set up as a real cluster's are.

Serving certificates from the test bed's CA, client certificates per component, service-account
token signing, RBAC and Node authorization, the default admission plugins plus NodeRestriction.
Everything listens inside the test bed's network namespace; the API server also answers on the
ClusterIP of the ``kubernetes`` Service (an address of the namespace), so in-cluster clients
reach it the usual way.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .addresses import API_CLUSTER_IP, API_SERVER_IP, SERVICE_CIDR
from .binaries import Binaries
from .kubeconfig import write_kubeconfig
from .pki import PKI, KeyPair
from .processes import Managed, ProcessError, Supervisor

API_PORT = 443
ETCD_CLIENT = "http://127.0.0.1:2379"
CLUSTER_DOMAIN = "cluster.local"


@dataclass
class ControlPlane:
    """The running control plane: where its API server is and which credentials reach it."""

    server: str
    admin: KeyPair
    ca: Path
    admin_kubeconfig: Path


def _wait_ready(url: str, ca: Path | None, client: KeyPair | None, supervisor: Supervisor, managed: Managed, timeout: float) -> None:
    """Poll a health URL; ``ca=None`` for the self-signed serving certificates of the controllers."""
    if ca is None:
        context = ssl._create_unverified_context()  # noqa: S323 - loopback health probe of a self-signed endpoint
    else:
        context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        supervisor.check(managed)
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise ProcessError(f"{managed.name} not ready at {url} after {timeout:.0f} s: {last}")


def _wait_etcd(supervisor: Supervisor, managed: Managed, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.check(managed)
        try:
            with urllib.request.urlopen(f"{ETCD_CLIENT}/health", timeout=2) as response:
                if b'"true"' in response.read():
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise ProcessError(f"etcd not healthy after {timeout:.0f} s")


def start_control_plane(state: Path, binaries: Binaries, pki: PKI, supervisor: Supervisor, extra_sans: tuple[str, ...]) -> ControlPlane:
    """Start the four components in order, each waited for, and return how to reach the API."""
    sa = pki.service_account_keys()
    apiserver_tls = pki.issue(
        "apiserver", "kube-apiserver", server=True,
        dns_names=("kubernetes", "kubernetes.default", "kubernetes.default.svc", f"kubernetes.default.svc.{CLUSTER_DOMAIN}", "localhost"),
        ips=("127.0.0.1", API_SERVER_IP, API_CLUSTER_IP, *extra_sans),
    )
    kubelet_client = pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", organizations=("kubeadm:cluster-admins",))
    admin = pki.issue("admin", "localcluster-admin", organizations=("system:masters",))
    local_server = f"https://127.0.0.1:{API_PORT}"
    kubeconfigs = state / "kubeconfigs"
    kubeconfigs.mkdir(exist_ok=True)

    etcd = supervisor.start("etcd", [
        str(binaries.etcd), "--name", "localcluster", "--data-dir", str(state / "etcd"),
        "--listen-client-urls", ETCD_CLIENT, "--advertise-client-urls", ETCD_CLIENT,
        "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        "--initial-cluster", "localcluster=http://127.0.0.1:2380",
        # Throwaway data on a shared 2-core machine: fsync would only slow every write.
        "--unsafe-no-fsync", "--log-level", "warn",
    ])
    _wait_etcd(supervisor, etcd, 60)

    apiserver = supervisor.start("kube-apiserver", [
        str(binaries.kube_apiserver),
        f"--etcd-servers={ETCD_CLIENT}",
        "--bind-address=0.0.0.0", f"--secure-port={API_PORT}", f"--advertise-address={API_SERVER_IP}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--tls-cert-file={apiserver_tls.cert}", f"--tls-private-key-file={apiserver_tls.key}",
        f"--client-ca-file={pki.ca.cert}",
        f"--kubelet-client-certificate={kubelet_client.cert}", f"--kubelet-client-key={kubelet_client.key}",
        f"--kubelet-certificate-authority={pki.ca.cert}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
        f"--service-account-key-file={sa.cert}", f"--service-account-signing-key-file={sa.key}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ])
    _wait_ready(f"{local_server}/readyz", pki.ca.cert, admin, supervisor, apiserver, 180)

    admin_kubeconfig = write_kubeconfig(kubeconfigs / "admin.kubeconfig", local_server, pki.ca.cert, admin)

    def identity(component: str, user: str) -> list[str]:
        """A component's own client certificate, for its API calls and for checking its callers."""
        kubeconfig = write_kubeconfig(kubeconfigs / f"{component}.kubeconfig", local_server, pki.ca.cert, pki.issue(component, user))
        return [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}"]

    kcm = supervisor.start("kube-controller-manager", [
        str(binaries.kube_controller_manager),
        *identity("kube-controller-manager", "system:kube-controller-manager"),
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={sa.key}", f"--root-ca-file={pki.ca.cert}",
        f"--cluster-signing-cert-file={pki.ca.cert}", f"--cluster-signing-key-file={pki.ca.key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # No cloud, no real kubelets: node IPAM and routes are the test bed's business.
        "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
        "--profiling=false",
        "--v=1",
    ])
    scheduler = supervisor.start("kube-scheduler", [
        str(binaries.kube_scheduler),
        *identity("kube-scheduler", "system:kube-scheduler"),
        "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false", "--v=1",
    ])
    _wait_ready("https://127.0.0.1:10257/healthz", None, None, supervisor, kcm, 120)
    _wait_ready("https://127.0.0.1:10259/healthz", None, None, supervisor, scheduler, 120)
    return ControlPlane(local_server, admin, pki.ca.cert, admin_kubeconfig)
