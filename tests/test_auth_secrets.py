"""Hashing of passwords, API tokens and session ids (no database needed)."""

from __future__ import annotations

import hashlib

from assay.auth import secrets as sec


def test_password_hash_is_argon2id_salted_and_verifies() -> None:
    h1 = sec.hash_password("correct horse battery staple")
    h2 = sec.hash_password("correct horse battery staple")
    assert h1.startswith("$argon2id$")
    assert h1 != h2  # a fresh salt each time
    assert "correct horse" not in h1
    assert sec.verify_password(h1, "correct horse battery staple")
    assert not sec.verify_password(h1, "correct horse battery stapl")
    assert not sec.verify_password(None, "anything")
    assert not sec.verify_password("not-a-hash", "anything")


def test_token_round_trip_and_only_salted_hash_is_needed() -> None:
    key_id, secret, token = sec.new_token()
    assert token == f"assay_{key_id}_{secret}"
    assert sec.split_token(token) == (key_id, secret)
    salt = sec.new_salt()
    stored = sec.hash_token_secret(salt, secret)
    assert stored == hashlib.sha256((salt + secret).encode()).hexdigest()
    assert secret not in stored
    assert sec.token_secret_matches(salt, stored, secret)
    assert not sec.token_secret_matches(salt, stored, secret[:-1] + "x")
    assert not sec.token_secret_matches(sec.new_salt(), stored, secret)


def test_secrets_that_contain_underscores_still_split() -> None:
    assert sec.split_token("assay_0123456789ab_a_b_c") == ("0123456789ab", "a_b_c")


def test_malformed_tokens_are_refused() -> None:
    for bad in ("", "assay", "assay_short_x", "other_0123456789ab_x", "assay_0123456789ab_",
                "Bearer assay_0123456789ab_x"):
        assert sec.split_token(bad) is None, bad


def test_session_ids_are_random_and_stored_as_digest() -> None:
    raw1, d1 = sec.new_session_id()
    raw2, d2 = sec.new_session_id()
    assert raw1 != raw2 and d1 != d2
    assert d1 == sec.session_digest(raw1) and raw1 not in d1
    assert len(raw1) >= 40


def test_generated_passwords_are_long_and_distinct() -> None:
    pws = {sec.generate_password() for _ in range(50)}
    assert len(pws) == 50
    assert all(len(p) >= 24 for p in pws)
