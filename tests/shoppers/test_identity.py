"""Shopper tokens and anonymous session ids (shopfront.shoppers.identity), without a server."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shopfront.platform.config import ConfigError, Settings, token_secrets
from shopfront.shoppers.identity import (
    MAX_TTL_S,
    ShopperTokens,
    TokenError,
    TokenExpired,
    TokensNotConfigured,
    session_bits,
    session_id_problem,
)

OLD = "old-secret-0123456789abcdefghijklmnop"
NEW = "new-secret-0123456789abcdefghijklmnop"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SESSION = "0d7c6f1e-3b5a-4c2d-9e8f-7a6b5c4d3e2f"


def tokens(*pairs: tuple[str, str]) -> ShopperTokens:
    return ShopperTokens(dict(pairs))


def offline(claims: dict[str, object], secret: str = NEW, kid: str | None = "k2") -> str:
    """A token signed the way a merchant's backend does with any JWT library."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers)


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def test_minted_token_carries_the_shopper_session_and_lifetime() -> None:
    signer = tokens(("k2", NEW), ("k1", OLD))
    token, expires = signer.mint("u1", SESSION, 600, now=NOW)
    assert expires == NOW + timedelta(seconds=600)
    claims = signer.verify(token, now=NOW + timedelta(seconds=599))
    assert (claims.user_id, claims.session_id, claims.kid) == ("u1", SESSION, "k2")
    assert claims.expires_at == expires and claims.issued_at == NOW
    assert jwt.get_unverified_header(token)["kid"] == "k2"  # the first secret signs


def test_default_lifetime_is_an_hour_and_at_most_a_day() -> None:
    signer = tokens(("k2", NEW))
    _, expires = signer.mint("u1", now=NOW)
    assert expires - NOW == timedelta(hours=1)
    with pytest.raises(TokenError, match="ttlSeconds"):
        signer.mint("u1", ttl_seconds=MAX_TTL_S + 1)
    with pytest.raises(TokenError, match="ttlSeconds"):
        signer.mint("u1", ttl_seconds=0)


def test_rotation_keeps_old_tokens_valid_until_their_secret_is_removed() -> None:
    before = tokens(("k1", OLD))
    token, _ = before.mint("u1", now=NOW)
    during = tokens(("k2", NEW), ("k1", OLD))
    assert during.verify(token, now=NOW).user_id == "u1"
    after = tokens(("k2", NEW))
    with pytest.raises(TokenError, match="kid names no configured secret"):
        after.verify(token, now=NOW)


def test_offline_signed_tokens_verify() -> None:
    claims = {"sub": "u7", "iat": ts(NOW), "exp": ts(NOW + timedelta(minutes=5))}
    assert tokens(("k2", NEW)).verify(offline(claims), now=NOW).user_id == "u7"


@pytest.mark.parametrize(
    ("token", "error", "message"),
    [
        (offline({"sub": "u1", "iat": ts(NOW), "exp": ts(NOW)}), TokenExpired, "expired"),
        (
            offline({"sub": "u1", "iat": ts(NOW), "exp": ts(NOW + timedelta(hours=25))}),
            TokenError,
            "at most 24 hours",
        ),
        (
            offline(
                {
                    "sub": "u1",
                    "iat": ts(NOW + timedelta(hours=1)),
                    "exp": ts(NOW + timedelta(hours=2)),
                }
            ),
            TokenError,
            "iat is in the future",
        ),
        (offline({"sub": "u1", "exp": ts(NOW)}), TokenError, "iat"),
        (offline({"iat": ts(NOW), "exp": ts(NOW)}), TokenError, "sub"),
        (offline({"sub": "a@b.example", "iat": ts(NOW), "exp": ts(NOW)}), TokenError, "sub"),
        (
            offline({"sub": "u1", "iat": ts(NOW), "exp": ts(NOW) + 60}, secret=OLD),
            TokenError,
            "signature",
        ),
        (
            offline({"sub": "u1", "iat": ts(NOW), "exp": ts(NOW) + 60}, kid="nope"),
            TokenError,
            "unknown",
        ),
        (offline({"sub": "u1", "iat": ts(NOW), "exp": ts(NOW) + 60}, kid=None), TokenError, "kid"),
        ("not.a.jwt", TokenError, "not a JWT"),
        ("", TokenError, "1-4096"),
    ],
    ids=[
        "expired",
        "too-long-lived",
        "issued-in-future",
        "no-iat",
        "no-sub",
        "personal-data-sub",
        "wrong-secret",
        "unknown-kid",
        "no-kid",
        "garbage",
        "empty",
    ],
)
def test_unusable_tokens_say_why(token: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        tokens(("k2", NEW)).verify(token, now=NOW + timedelta(seconds=31))


def test_unsigned_and_other_algorithms_are_refused() -> None:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"sub": "u1", "iat": ts(NOW), "exp": ts(NOW) + 60}
    unsigned = f"{part({'alg': 'none', 'kid': 'k2'})}.{part(claims)}."
    with pytest.raises(TokenError, match="HS256"):
        tokens(("k2", NEW)).verify(unsigned, now=NOW)
    hs512 = jwt.encode(claims, NEW * 2, algorithm="HS512", headers={"kid": "k2"})
    with pytest.raises(TokenError, match="HS256"):
        tokens(("k2", NEW)).verify(hs512, now=NOW)


def test_without_secrets_nothing_is_minted_or_believed() -> None:
    with pytest.raises(TokensNotConfigured, match="SHOPFRONT_SHOPPER_TOKEN_SECRETS"):
        tokens().mint("u1")
    with pytest.raises(TokensNotConfigured):
        tokens().verify(offline({"sub": "u1", "iat": ts(NOW), "exp": ts(NOW) + 60}))


def test_secrets_setting_is_validated_without_echoing_secrets() -> None:
    good = Settings.from_env({"SHOPFRONT_SHOPPER_TOKEN_SECRETS": f"k2:{NEW}, k1:{OLD}"})
    assert list(token_secrets(good.shopper_token_secrets)) == ["k2", "k1"]
    for bad, message in [
        ("k1", "KID:SECRET"),
        ("k1:short", "at least 32"),
        (f"k1:{NEW},k1:{OLD}", "given twice"),
        (f"bad kid:{NEW}", "key id"),
    ]:
        with pytest.raises(ConfigError, match=message) as caught:
            Settings.from_env({"SHOPFRONT_SHOPPER_TOKEN_SECRETS": bad})
        assert NEW not in str(caught.value) and "short" not in str(caught.value).split(":")[-1]


# -- anonymous session ids -----------------------------------------------------------------


def test_unguessable_session_ids_pass_and_guessable_ones_say_how() -> None:
    for good in (str(uuid.uuid4()), uuid.uuid4().hex, secrets.token_urlsafe(16)):
        assert session_id_problem(good) is None, good
    for bad in ("s1", "session-42", "0" * 32, "a" * 64, str(uuid.uuid1()), "12345678901234567890"):
        problem = session_id_problem(bad)
        assert problem is not None and "128 random bits" in problem and "UUIDv4" in problem, bad
    assert session_id_problem("x@y.example") == (
        "looks like an e-mail address; send an opaque id, never personal data"
    )


@given(st.uuids(version=4))
def test_every_uuid4_is_accepted(value: uuid.UUID) -> None:
    assert session_id_problem(str(value)) is None


@given(st.text(max_size=21))
def test_nothing_shorter_than_22_characters_is_accepted(text: str) -> None:
    # 22 symbols of a 64-letter alphabet is the shortest way to write 128 bits.
    assert session_id_problem(text) is not None


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_session_checks_never_crash(text: str) -> None:
    assert session_bits(text) >= 0
    problem = session_id_problem(text)
    assert problem is None or problem


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode()),
        st.lists(st.text(alphabet="abcXYZ012-_=", max_size=40), min_size=3, max_size=3).map(
            ".".join
        ),
    )
)
def test_any_text_as_a_token_is_refused_with_a_token_error(text: str) -> None:
    with pytest.raises(TokenError):
        tokens(("k2", NEW)).verify(text, now=NOW)


@settings(max_examples=100)
@given(
    sub=st.one_of(st.text(max_size=50), st.integers(), st.none()),
    sid=st.one_of(st.text(max_size=50), st.integers(), st.none()),
    iat=st.one_of(st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=5)),
    exp=st.one_of(st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=5)),
)
def test_signed_but_odd_claims_never_crash(
    sub: object, sid: object, iat: object, exp: object
) -> None:
    claims = {"sub": sub, "sid": sid, "iat": iat, "exp": exp}
    try:
        token = offline({k: v for k, v in claims.items() if v is not None})
    except (TypeError, ValueError):
        return  # not even encodable as JSON (nan): no backend can send it
    try:
        found = tokens(("k2", NEW)).verify(token, now=NOW)
    except TokenError:
        return
    assert found.user_id == sub and found.expires_at > NOW - timedelta(seconds=31)
