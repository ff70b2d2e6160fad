"""Kubeconfig files for the components, the pods' service accounts and the host's clients."""

from __future__ import annotations

from pathlib import Path

import yaml

from .pki import KeyPair


def write_kubeconfig(path: Path, server: str, ca: Path, client: KeyPair | None = None, token: str | None = None) -> Path:
    """Write a one-context kubeconfig (0600: it holds a key or a token)."""
    user: dict[str, str] = {}
    if client is not None:
        user = {"client-certificate": str(client.cert), "client-key": str(client.key)}
    if token is not None:
        user = {"token": token}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "localcluster", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "localcluster", "user": user}],
        "contexts": [{"name": "localcluster", "context": {"cluster": "localcluster", "user": "localcluster"}}],
        "current-context": "localcluster",
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
