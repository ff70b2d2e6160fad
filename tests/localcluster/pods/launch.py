"""Start one container process the way a container runtime would, short of an image.

``python -m tests.localcluster.pods.launch SPEC.json``: join the pod's network namespace, take a
private mount namespace, bind the pod's volumes (ConfigMaps, Secrets, claims, the service-account
token) at their mount paths, drop to the container's user and exec the program. The process then
sees its files where its manifest says, listens on its pod's address and loopback only, and runs
as a non-root user; the machine's other files stay visible (there is no image filesystem).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MS_RDONLY = 1
_MS_REMOUNT = 32
_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


def _bind(source: str, target: str, read_only: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "a", encoding="utf-8").close()
    _check(_libc.mount(source.encode(), target.encode(), None, _MS_BIND | _MS_REC, None), f"bind {source} on {target}")
    if read_only:
        flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
        _check(_libc.mount(None, target.encode(), None, flags, None), f"read-only {target}")


def main(spec_path: str) -> None:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    fd = os.open(spec["netns"], os.O_RDONLY)
    _check(_libc.setns(fd, _CLONE_NEWNET), f"join {spec['netns']}")
    os.close(fd)
    _check(_libc.unshare(_CLONE_NEWNS), "unshare mounts")
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    for mount in spec["mounts"]:
        _bind(mount["source"], mount["target"], mount.get("readOnly", False))
    os.chdir(spec.get("workingDir") or "/")
    os.setgroups(spec.get("groups", []))
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    os.execvpe(spec["argv"][0], spec["argv"], spec["env"])


if __name__ == "__main__":
    main(sys.argv[1])
