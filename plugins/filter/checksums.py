# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checksums of downloaded files against pinned values, before anything made of them is applied.

Documentation of the filter is in ``sha256_mismatches.yml`` next to this file.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping


def sha256_mismatches(texts: Iterable[Any], names: Iterable[str], pinned: Mapping[str, str] | None) -> list[str]:
    """One message per file whose sha256 differs from its pinned sum or that has no pinned sum.

    Texts are hashed as UTF-8, the bytes the release serves (the manifests are UTF-8 YAML).
    """
    pinned = {str(name): str(value).lower() for name, value in (pinned or {}).items()}
    messages = []
    for name, text in zip(names, texts):
        data = text if isinstance(text, bytes) else str(text).encode("utf-8")
        actual = hashlib.sha256(data).hexdigest()
        expected = pinned.get(name)
        if expected is None:
            messages.append(f"{name}: no pinned sha256 (its sha256 is {actual})")
        elif actual != expected:
            messages.append(f"{name}: sha256 {actual}, but {expected} is pinned")
    return messages


class FilterModule:
    """Checksum filters."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function."""
        return {"sha256_mismatches": sha256_mismatches}
