"""Shopper tokens through GraphQL: minting with the merchant key, acting for the token's
shopper with the storefront key, identify's session rule, and the messages that say what to send."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shopfront.platform.store import Store
from shopfront.shoppers.identity import ShopperTokens
from shopfront.testing import GraphQLCall, ShopperTokenFactory, test_settings

from tests.security.conftest import running_service

MINT = """
mutation($u: ID!, $s: ID, $ttl: Int! = 3600) {
  createShopperToken(input: {userId: $u, sessionId: $s, ttlSeconds: $ttl}) { token expiresAt }
}
"""
PREFS = """
mutation($u: ID) {
  setPreferences(input: {userId: $u, preferences: {brands: ["Stride"]}}) { brands }
}
"""
IDENTIFY = "mutation($s: ID) { identify(input: {sessionId: $s}) { sessionId userId linked } }"
PAGE = "query($s: ID) { storefront(input: {sessionId: $s, page: HOME}) { requestId } }"
TRACK = """
mutation($e: [EventInput!]!) { trackEvents(input: {events: $e}) { results { status reason } } }
"""


def error(body: dict[str, Any]) -> tuple[str, str]:
    [first] = body["errors"]
    return first["extensions"]["code"], first["message"]


async def test_a_minted_token_lets_the_storefront_act_for_that_shopper(
    graphql: GraphQLCall, storefront_key: str, store: Store
) -> None:
    minted = (await graphql(MINT, {"u": "u1", "ttl": 600}))["data"]["createShopperToken"]
    expires = datetime.fromisoformat(minted["expiresAt"])
    assert 590 <= (expires - datetime.now(UTC)).total_seconds() <= 600
    # userId left out: the token's shopper.
    res = await graphql(PREFS, {}, key=storefront_key, token=minted["token"])
    assert res["data"]["setPreferences"]["brands"] == ["Stride"]
    assert await store.collection("profiles").count_documents({"_id": "u1"}) == 1

    code, message = error(
        await graphql(PREFS, {"u": "u2"}, key=storefront_key, token=minted["token"])
    )
    assert code == "FORBIDDEN" and "another shopper" in message and "leave userId out" in message
    code, message = error(await graphql(PREFS, {"u": "u1"}, key=storefront_key))
    assert code == "UNAUTHENTICATED" and "X-Shopper-Token" in message
    code, message = error(await graphql(PREFS, {}, key=storefront_key))
    assert code == "UNAUTHENTICATED" and "X-Shopper-Token" in message

    # Only the merchant key mints, within 1 second to 24 hours.
    code, _ = error(await graphql(MINT, {"u": "u1"}, key=storefront_key))
    assert code == "FORBIDDEN"
    for ttl in (0, 86_401):
        code, message = error(await graphql(MINT, {"u": "u1", "ttl": ttl}))
        assert code == "BAD_USER_INPUT" and "ttlSeconds" in message
    code, message = error(await graphql(MINT, {"u": "u1", "s": "s1"}))
    assert code == "BAD_USER_INPUT" and "128 random bits" in message


async def test_identify_links_only_the_session_in_the_token(
    graphql: GraphQLCall, storefront_key: str, shopper_token: ShopperTokenFactory
) -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    code, message = error(
        await graphql(IDENTIFY, {"s": mine}, key=storefront_key, token=shopper_token("u1"))
    )
    assert code == "FORBIDDEN" and "sid" in message
    token = shopper_token("u1", mine)
    code, message = error(await graphql(IDENTIFY, {"s": other}, key=storefront_key, token=token))
    assert code == "FORBIDDEN" and "another session" in message
    res = await graphql(IDENTIFY, {}, key=storefront_key, token=token)
    assert res["data"]["identify"] == {"sessionId": mine, "userId": "u1", "linked": True}


async def test_guessable_sessions_are_refused_with_what_to_send(
    graphql: GraphQLCall, storefront_key: str
) -> None:
    code, message = error(await graphql(PAGE, {"s": "s1"}, key=storefront_key))
    assert code == "BAD_USER_INPUT" and "sessionId" in message and "UUIDv4" in message
    assert "errors" not in await graphql(PAGE, {"s": str(uuid.uuid4())}, key=storefront_key)
    event = {"eventId": "e1", "type": "SEARCH", "query": "x", "sessionId": "12345"}
    event["timestamp"] = datetime.now(UTC).isoformat()
    res = await graphql(TRACK, {"e": [event]}, key=storefront_key)
    [result] = res["data"]["trackEvents"]["results"]
    assert result["status"] == "REJECTED" and "128 random bits" in result["reason"]
    # The merchant key's own session ids are its business.
    res = await graphql(TRACK, {"e": [event]})
    assert res["data"]["trackEvents"]["results"][0]["status"] == "ACCEPTED"


async def test_without_a_secret_no_token_is_minted_or_believed(mongo_uri: str) -> None:
    async with running_service(mongo_uri, shopper_token_secrets=()) as svc:
        body = await svc.gql(MINT, {"u": "u1"}, key=svc.merchant)
        code, message = error(body)
        assert code == "NOT_CONFIGURED" and "SHOPFRONT_SHOPPER_TOKEN_SECRETS" in message
        secrets = test_settings(mongo_uri).shopper_token_secrets
        kid, _, secret = secrets[0].partition(":")
        token, _ = ShopperTokens({kid: secret}).mint("u1")
        body = await svc.gql(PREFS, {"u": "u1"}, key=svc.storefront, token=token)
        code, message = error(body)
        assert code == "UNAUTHENTICATED" and "SHOPFRONT_SHOPPER_TOKEN_SECRETS" in message
