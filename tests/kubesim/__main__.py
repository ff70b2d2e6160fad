"""Command line: ``python -m tests.kubesim serve --port PORT --state-dir DIR``.

Runs in the foreground; ``DIR/kubeconfig`` appears once requests are accepted; SIGTERM or
SIGINT stops the server, its controllers and every PostgreSQL server it started.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .server import KubeSim


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kubesim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the simulated API on 127.0.0.1 until SIGTERM")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    serve.add_argument("--state-dir", required=True, help="where kubeconfig and pod data are written")
    serve.add_argument("--token", help="bearer token clients must send (default: generated)")
    serve.add_argument("--postgres-version", type=int, choices=(15, 18),
                       help="force this PostgreSQL major for every database pod")
    serve.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim = KubeSim(args.state_dir, port=args.port, token=args.token, postgres_version=args.postgres_version)
    sim.start()
    print(f"kubesim serving on {sim.url}; kubeconfig: {sim.kubeconfig_path}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
