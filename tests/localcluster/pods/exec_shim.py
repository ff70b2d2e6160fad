"""Run a ``kubectl exec`` command inside its container, as a container runtime does.

kwok runs an exec's command as a local process in its own namespaces. It finds the program on
its PATH, whose first folder holds a link named after every program on this machine, all to one
small script that runs this file with the name it was called by (``kwok.exec_shims``): so this
runs first, as root, with ``LOCALCLUSTER_PID`` (the container's main
process, from the pod's ``Exec`` object) in its environment. It takes that process's network and
mount namespaces, its environment, user and group, and then runs the program the caller named.
The command thus sees the pod's address and loopback, its volumes at their paths, and the env of
the container; nothing of the container's env travels through the API.
"""

import ctypes
import os
import sys

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000


def _ids(pid: str) -> tuple[int, int]:
    uid = gid = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("Gid:"):
                gid = int(line.split()[1])
    return uid, gid


def main() -> None:
    name = os.path.basename(sys.argv[1])
    pid = os.environ.get("LOCALCLUSTER_PID", "")
    if not pid:
        sys.exit(f"localcluster: this container runs no process (its image has no local stand-in), so {name} cannot run in it")
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            env = dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
        uid, gid = _ids(pid)
        net = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        mnt = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
    except OSError as exc:
        sys.exit(f"localcluster: the container's process {pid} is gone ({exc.strerror}); it is restarting or stopped")
    _setns(net, _CLONE_NEWNET)
    _setns(mnt, _CLONE_NEWNS)
    os.chdir("/")
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    environment = {k.decode(errors="surrogateescape"): v.decode(errors="surrogateescape") for k, v in env.items()}
    try:
        os.execvpe(name, [name, *sys.argv[2:]], environment)
    except FileNotFoundError:
        sys.exit(f'exec: "{name}": executable file not found in $PATH')


def _setns(fd: int, kind: int) -> None:
    """os.setns exists from Python 3.12 on; the machine's python3 is 3.11."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, kind) != 0:
        sys.exit(f"localcluster: setns: {os.strerror(ctypes.get_errno())}")


if __name__ == "__main__":
    main()
