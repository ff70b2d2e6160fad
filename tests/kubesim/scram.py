"""Checking a password against a stored SCRAM-SHA-256 verifier (RFC 5802 / PostgreSQL's format).

The operator simulation re-asserts role passwords from their Secrets; re-deriving with the
stored salt and iteration count tells it whether a role already has the Secret's password, so
it only runs ALTER ROLE when something (or someone) changed it — no churn of verifiers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_VERIFIER = re.compile(r"^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$")


def verifier_matches(verifier: str | None, password: str) -> bool:
    match = _VERIFIER.match(verifier or "")
    if not match:
        return False
    iterations, salt, stored_key, server_key = match.groups()
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    expected_stored = base64.b64encode(hashlib.sha256(client_key).digest()).decode()
    expected_server = base64.b64encode(hmac.new(salted, b"Server Key", hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected_stored, stored_key) and hmac.compare_digest(expected_server, server_key)
