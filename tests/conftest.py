"""Test-wide set-up: make the checkout importable the way Ansible sees it.

``<repo>/.collections`` holds ``ansible_collections/microservices/postgres`` (a link to the
repository root, made by ``make venv``), so tests import the collection's code as
``ansible_collections.microservices.postgres.plugins...``; ``<repo>`` itself makes
``tests.support...`` importable.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS_DIR = REPO_ROOT / ".collections"
COLLECTION_LINK = COLLECTIONS_DIR / "ansible_collections" / "microservices" / "postgres"

if not COLLECTION_LINK.exists():  # normally made by `make venv`; pytest-xdist workers may race here
    COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
    try:
        COLLECTION_LINK.symlink_to(Path("..", "..", ".."), target_is_directory=True)
    except FileExistsError:
        pass

for _path in (str(REPO_ROOT), str(COLLECTIONS_DIR)):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
    """Start the slow static checks first so they overlap with the rest of the run (stable order otherwise)."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)
