"""Fuzzing the identity inputs end to end: whatever a browser puts in X-Shopper-Token, userId and
sessionId, the storefront key never serves a known shopper without that shopper's valid token,
and never fails with an internal error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shopfront.platform.config import token_secrets
from shopfront.shoppers.identity import ShopperTokens, session_id_problem
from shopfront.testing import TEST_TOKEN_SECRETS

from tests.security.conftest import Service, running_service

pytestmark = pytest.mark.security

HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STOREFRONT = """
query($u: ID, $s: ID) {
  storefront(input: {userId: $u, sessionId: $s, page: HOME}) { requestId }
}
"""
SIGNER = ShopperTokens(token_secrets(TEST_TOKEN_SECRETS))
ALLOWED = {"UNAUTHENTICATED", "FORBIDDEN", "BAD_USER_INPUT"}

# Header-safe text (HTTP headers are latin-1, without control characters).
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
ids = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.sampled_from(["shopper-a", "shopper-b", "", " ", '{"$ne": null}', "a@b.example"]),
)
sessions = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.uuids(version=4).map(str),
    st.uuids(version=1).map(str),
)


@pytest.fixture
async def svc(mongo_uri: str) -> AsyncIterator[Service]:
    async with running_service(mongo_uri, rate_limit_enabled=False) as service:
        yield service


def codes(body: dict[str, Any]) -> set[str]:
    return {str(e.get("extensions", {}).get("code")) for e in body.get("errors") or []}


def tampered(token: str, position: int, char: str) -> str:
    i = position % len(token)
    return token[:i] + char + token[i + 1 :]


tokens = st.one_of(
    st.none(),
    header_text,
    st.builds(lambda u: SIGNER.mint(u)[0], st.sampled_from(["shopper-a", "shopper-b"])),
    st.builds(
        tampered,
        st.just(SIGNER.mint("shopper-a")[0]),
        st.integers(0, 400),
        st.sampled_from("AaZz09-_."),
    ),
)


@HYPOTHESIS
@given(user=ids, session=sessions, token=tokens)
async def test_the_storefront_key_serves_only_the_token_holder(
    svc: Service, user: str | None, session: str | None, token: str | None
) -> None:
    body = await svc.gql(
        STOREFRONT, {"u": user, "s": session}, key=svc.storefront, token=token or None
    )
    found = codes(body)
    assert found <= ALLOWED, body
    served = (body.get("data") or {}).get("storefront") is not None
    if not served:
        return
    # Served: then the caller proved who it is, or asked anonymously with a good session.
    claims = None
    if token:
        claims = SIGNER.verify(token)  # raises (failing the test) if a bad token was served
    if claims is not None:
        assert user is None or user.strip() in ("", claims.user_id), (user, claims)
    else:
        assert user is None or not user.strip(), (user, body)
        assert session is not None and session_id_problem(session.strip()) is None, session
