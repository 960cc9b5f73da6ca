"""Abuse that costs: query cost reflects work, batches x aliases are charged in full, rate
buckets per key and address (IPv6 by /64) and per shopper, a byte-order mark does not hide a
batch, and X-Forwarded-For is believed only from trusted proxies. Each refusal happens before
any resolver runs: the storefront composer counts its calls."""

from __future__ import annotations

import codecs
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from shopfront.platform.client_address import ClientAddresses, bucket_key, parse_trusted
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.ratelimit import tokens_for
from shopfront.schema.limits import FIELD_COSTS
from shopfront.testing import test_settings

from tests.security.conftest import Service, ServiceFactory

pytestmark = pytest.mark.security

SESSION = uuid.uuid4().hex  # session ids are unguessable
STOREFRONT = 'storefront(input: {page: HOME, sessionId: "' + SESSION + '"}) { requestId }'
PRODUCT = "products(first: 1) { nodes { id } }"
SLOW = 0.001  # tokens per second: a bucket that does not refill during a test


def aliased(field: str, n: int) -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(n)) + " }"


def storefront_for(session: str) -> str:
    return '{ storefront(input: {page: HOME, sessionId: "' + session + '"}) { requestId } }'


class ComposeCounter:
    """Counts storefront compositions (the resolver's work) on a running app."""

    def __init__(self, svc: Service) -> None:
        composer = svc.app.state.runtime.storefront
        self.calls = 0
        original = composer.compose

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await original(*args, **kwargs)

        composer.compose = counting


@asynccontextmanager
async def client_at(svc: Service, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests arrive from ``address``."""
    transport = httpx.ASGITransport(app=svc.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://shopfront.test") as c:
        yield c


async def post(client: httpx.AsyncClient, key: str, query: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query},
        headers={"authorization": f"Bearer {key}", **headers},
    )


def code_of(resp: httpx.Response) -> str | None:
    body = resp.json()
    first = body[0] if isinstance(body, list) else body
    errors = first.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


# -- cost --------------------------------------------------------------------------------


def test_work_costs_far_more_than_a_product_field() -> None:
    assert FIELD_COSTS[("Query", "storefront")] >= 100
    assert FIELD_COSTS[("Mutation", "redeemCoupon")] >= 100
    assert FIELD_COSTS[("Mutation", "trackEvents")] >= 100
    assert tokens_for(1, 100) == 1 and tokens_for(1500, 100) == 15


async def test_many_aliased_storefronts_are_too_costly_before_any_composition(
    service: Service,
) -> None:
    counter = ComposeCounter(service)
    resp = await service.post(aliased(STOREFRONT, 15), key=service.storefront)
    assert code_of(resp) == "QUERY_TOO_COSTLY"
    assert counter.calls == 0
    # The same number of aliased product reads is cheap.
    ok = await service.post(aliased(PRODUCT, 15), key=service.storefront)
    assert code_of(ok) is None, ok.json()
    one = await service.post("{ " + STOREFRONT + " }", key=service.storefront)
    assert code_of(one) is None and counter.calls == 1, one.json()


async def test_batched_operations_times_aliases_are_charged_in_full(
    service_with: ServiceFactory,
) -> None:
    async with service_with(
        rate_limit_storefront_per_s=SLOW, rate_limit_storefront_burst=15
    ) as svc:
        counter = ComposeCounter(svc)
        batch = [{"query": aliased(STOREFRONT, 5)}] * 3  # 15 storefronts, 5 tokens an operation
        headers = {"authorization": f"Bearer {svc.storefront}"}
        first = await svc.client.post("/graphql", json=batch, headers=headers)
        assert first.status_code == 200 and counter.calls == 15
        again = await svc.client.post("/graphql", json=batch[:1], headers=headers)
        assert again.status_code == 429 and code_of(again) == "RATE_LIMITED"
        assert counter.calls == 15  # refused before any storefront was composed


# -- buckets -----------------------------------------------------------------------------


async def test_one_address_cannot_starve_the_other_shoppers_of_a_key(
    service_with: ServiceFactory,
) -> None:
    async with service_with(rate_limit_storefront_per_s=SLOW, rate_limit_storefront_burst=3) as svc:
        counter = ComposeCounter(svc)
        async with (
            client_at(svc, "203.0.113.5") as flooder,
            client_at(svc, "198.51.100.9") as other,
        ):
            for _ in range(3):
                assert (
                    code_of(await post(flooder, svc.storefront, "{ " + STOREFRONT + " }")) is None
                )
            refused = await post(flooder, svc.storefront, "{ " + STOREFRONT + " }")
            assert refused.status_code == 429 and "storefront key" in refused.text
            assert counter.calls == 3
            served = await post(other, svc.storefront, "{ " + STOREFRONT + " }")
            assert served.status_code == 200 and counter.calls == 4


async def test_ipv6_addresses_are_bucketed_by_their_64_network(
    service_with: ServiceFactory,
) -> None:
    async with service_with(rate_limit_address_per_s=SLOW, rate_limit_address_burst=2) as svc:
        counter = ComposeCounter(svc)
        query = "{ " + STOREFRONT + " }"
        async with (
            client_at(svc, "2001:db8:1:2::1") as one,
            client_at(svc, "2001:db8:1:2:ffff:ffff:ffff:fffe") as same_64,
            client_at(svc, "2001:db8:1:3::1") as next_64,
        ):
            assert (await post(one, svc.storefront, query)).status_code == 200
            assert (await post(same_64, svc.storefront, query)).status_code == 200
            refused = await post(one, svc.storefront, query)
            assert refused.status_code == 429 and "client address" in refused.text
            assert (await post(same_64, svc.storefront, query)).status_code == 429
            assert counter.calls == 2
            assert (await post(next_64, svc.storefront, query)).status_code == 200


async def test_each_shopper_has_a_budget_of_their_own(service_with: ServiceFactory) -> None:
    one, other = uuid.uuid4().hex, uuid.uuid4().hex
    async with service_with(rate_limit_shopper_per_s=SLOW, rate_limit_shopper_burst=2) as svc:
        counter = ComposeCounter(svc)
        for _ in range(2):
            assert code_of(await svc.post(storefront_for(one), key=svc.storefront)) is None
        refused = await svc.post(storefront_for(one), key=svc.storefront)
        assert refused.status_code == 429 and "shopper" in refused.json()["errors"][0]["message"]
        # Named through a variable or a fragment, the shopper is still charged.
        via_variable = await svc.post(
            "query($s: ID) { storefront(input: {page: HOME, sessionId: $s}) { requestId } }",
            {"s": one},
            key=svc.storefront,
        )
        assert via_variable.status_code == 429
        via_fragment = await svc.post(
            "query { ...F } fragment F on Query { "
            'storefront(input: {page: HOME, sessionId: "' + one + '"}) { requestId } }',
            key=svc.storefront,
        )
        assert via_fragment.status_code == 429
        assert counter.calls == 2
        assert code_of(await svc.post(storefront_for(other), key=svc.storefront)) is None


# -- the batch check and the client address -----------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: codecs.BOM_UTF8 + text.encode(),
        lambda text: (" \n" * 100 + text).encode(),
        lambda text: text.encode("utf-16"),
        lambda text: text.encode("utf-32-le"),
    ],
    ids=["utf8-bom", "leading-whitespace", "utf16-bom", "utf32"],
)
async def test_a_batch_is_counted_whatever_its_encoding(
    service_with: ServiceFactory, encode: Any
) -> None:
    async with service_with(max_operations_per_batch=2) as svc:
        counter = ComposeCounter(svc)
        body = encode(json.dumps([{"query": "{ " + STOREFRONT + " }"}] * 3))
        resp = await svc.client.post(
            "/graphql",
            content=body,
            headers={
                "authorization": f"Bearer {svc.storefront}",
                "content-type": "application/json",
            },
        )
        assert resp.status_code == 400 and code_of(resp) == "TOO_MANY_OPERATIONS"
        assert counter.calls == 0


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    service_with: ServiceFactory,
) -> None:
    query = "{ " + STOREFRONT + " }"
    for trusted, shared in (((), True), (("10.0.0.0/8",), False)):
        async with (
            service_with(
                rate_limit_address_per_s=SLOW, rate_limit_address_burst=1, trusted_proxies=trusted
            ) as svc,
            client_at(svc, "10.1.2.3") as proxy,
        ):
            first = await post(proxy, svc.storefront, query, **{"x-forwarded-for": "192.0.2.1"})
            assert first.status_code == 200
            # A client writing its own X-Forwarded-For before the proxy appends the real
            # address does not choose its bucket.
            spoof = "192.0.2.99, 192.0.2.1"
            again = await post(proxy, svc.storefront, query, **{"x-forwarded-for": spoof})
            assert again.status_code == 429
            other = await post(proxy, svc.storefront, query, **{"x-forwarded-for": "192.0.2.2"})
            assert (other.status_code == 429) is shared


def test_client_address_resolution() -> None:
    proxies = ClientAddresses.of(["10.0.0.0/8", "fd00::/8"])
    headers = {"x-forwarded-for": "198.51.100.1, 203.0.113.7, 10.9.9.9"}
    assert proxies.resolve("10.1.1.1", headers) == "203.0.113.7"  # right-most untrusted hop
    assert proxies.resolve("192.0.2.5", headers) == "192.0.2.5"  # not a trusted peer
    assert proxies.resolve("10.1.1.1", {}) == "10.1.1.1"
    assert proxies.resolve("10.1.1.1", {"x-forwarded-for": "junk"}) == "10.1.1.1"
    assert proxies.resolve("fd00::1", {"x-forwarded-for": "[2001:db8::5]:443"}) == "2001:db8::5"
    assert ClientAddresses.of([]).resolve("10.1.1.1", headers) == "10.1.1.1"
    assert bucket_key("2001:db8:a:b:c:d:e:f") == "2001:db8:a:b::/64"
    assert bucket_key("::ffff:192.0.2.4") == "192.0.2.4"
    assert bucket_key("192.0.2.4") == "192.0.2.4"


@pytest.mark.parametrize("blocks", [("*",), ("0.0.0.0/0",), ("::/0",), ("not-a-cidr",)])
def test_trusting_every_address_is_refused_at_start_up(blocks: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        parse_trusted(blocks)
    with pytest.raises(ConfigError, match="SHOPFRONT_TRUSTED_PROXIES"):
        test_settings("mongodb://localhost", trusted_proxies=blocks)
    assert Settings.from_env(
        {"SHOPFRONT_TRUSTED_PROXIES": "172.17.0.0/16,fd00::/8"}
    ).trusted_proxies == ("172.17.0.0/16", "fd00::/8")
