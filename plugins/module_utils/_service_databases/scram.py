# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SCRAM-SHA-256 verifiers computed on the controller, byte-compatible with PostgreSQL.

Sending a verifier instead of the password means the plaintext never reaches the server,
its logs or pg_stat_statements. Checking an existing password means re-deriving with the
stored salt and iteration count, exactly as the server would when the client logs in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stringprep
import unicodedata
from dataclasses import dataclass

DEFAULT_ITERATIONS = 4096
SALT_BYTES = 16
PREFIX = "SCRAM-SHA-256"

_PROHIBITED_TABLES = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,
)


class SaslprepError(ValueError):
    """The string is not allowed by RFC 4013 (PostgreSQL then hashes the raw bytes instead)."""


@dataclass(frozen=True)
class ScramVerifier:
    """The parts of a stored ``SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`` value."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes


def saslprep(text: str) -> str:
    """Normalise a password per RFC 4013 (SASLprep), the way PostgreSQL's pg_saslprep() does.

    Like PostgreSQL, pure ASCII is returned unchanged, and an empty result is refused.
    Raises SaslprepError on prohibited characters or a bidirectional-text violation.
    """
    if text.isascii():
        return text
    mapped = "".join(" " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch))
    if not mapped:
        raise SaslprepError("password is empty after SASLprep mapping")
    normalized = unicodedata.normalize("NFKC", mapped)
    for ch in normalized:
        if any(table(ch) for table in _PROHIBITED_TABLES):
            raise SaslprepError(f"prohibited character U+{ord(ch):04X}")
    _check_bidi(normalized)
    return normalized


def _check_bidi(text: str) -> None:
    """RFC 3454 section 6: right-to-left text must be entirely RTL and start and end with RTL."""
    if not any(stringprep.in_table_d1(ch) for ch in text):
        return
    if any(stringprep.in_table_d2(ch) for ch in text):
        raise SaslprepError("mixes right-to-left and left-to-right characters")
    if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
        raise SaslprepError("right-to-left text must start and end with a right-to-left character")


def prepare_password(password: str) -> bytes:
    """The bytes PostgreSQL feeds to PBKDF2: SASLprep'd when allowed, otherwise the raw UTF-8.

    PostgreSQL (scram_build_secret and the login check alike) falls back to the unnormalised
    password when SASLprep rejects it, so doing the same keeps such passwords usable.
    """
    try:
        return saslprep(password).encode("utf-8")
    except SaslprepError:
        return password.encode("utf-8")


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """StoredKey and ServerKey per RFC 5802 / RFC 7677."""
    salted = hashlib.pbkdf2_hmac("sha256", prepare_password(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def make_verifier(password: str, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS) -> str:
    """Build a verifier PostgreSQL stores as is when given to CREATE/ALTER ROLE ... PASSWORD.

    A fresh random salt is used unless one is given (tests use fixed salts for known vectors).
    """
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    stored_key, server_key = _keys(password, salt, iterations)
    return f"{PREFIX}${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def parse_verifier(value: str | None) -> ScramVerifier | None:
    """Split a stored SCRAM verifier; None for anything else (md5 hashes, plaintext, NULL)."""
    if not value or not value.startswith(PREFIX + "$"):
        return None
    try:
        params, keys = value[len(PREFIX) + 1:].split("$")
        iterations_text, salt_text = params.split(":")
        stored_text, server_text = keys.split(":")
        verifier = ScramVerifier(
            iterations=int(iterations_text),
            salt=base64.b64decode(salt_text, validate=True),
            stored_key=base64.b64decode(stored_text, validate=True),
            server_key=base64.b64decode(server_text, validate=True),
        )
    except (ValueError, binascii.Error):
        return None
    if verifier.iterations < 1 or len(verifier.stored_key) != 32 or len(verifier.server_key) != 32:
        return None
    return verifier


def is_scram_verifier(value: str | None) -> bool:
    """True when the value is a well-formed SCRAM-SHA-256 verifier."""
    return parse_verifier(value) is not None


def verifier_matches(verifier: str | None, password: str) -> bool:
    """True when ``password`` logs in against ``verifier`` (re-derived with its own salt/iterations).

    Non-SCRAM values never match, so an md5 hash or a missing password is replaced by a
    proper verifier. Both keys are compared in constant time.
    """
    parsed = parse_verifier(verifier)
    if parsed is None:
        return False
    stored_key, server_key = _keys(password, parsed.salt, parsed.iterations)
    return hmac.compare_digest(stored_key + server_key, parsed.stored_key + parsed.server_key)
