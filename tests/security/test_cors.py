"""Browsers: CORS for an explicit allowlist only, no credentials; storefront only over POST."""

from __future__ import annotations

import pytest
from shopfront.platform.config import ConfigError, Settings

from tests.security.conftest import ServiceFactory

pytestmark = pytest.mark.security

SHOP = "https://shop.example"
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type, x-shopper-token",
}
PRODUCTS = "{ products(first: 1) { nodes { id } } }"


async def test_allowed_origins_get_preflight_and_headers_others_do_not(
    service_with: ServiceFactory,
) -> None:
    async with service_with(cors_origins=(SHOP, "http://localhost:*")) as svc:
        for origin in (SHOP, "http://localhost:3000", "http://localhost:5173"):
            pre = await svc.client.options("/graphql", headers={"origin": origin, **PREFLIGHT})
            assert pre.status_code == 200, (origin, pre.text)
            assert pre.headers["access-control-allow-origin"] == origin
            allowed = {
                h.strip().lower() for h in pre.headers["access-control-allow-headers"].split(",")
            }
            assert {"authorization", "x-shopper-token", "content-type"} <= allowed
            assert "access-control-allow-credentials" not in pre.headers
            resp = await svc.client.post(
                "/graphql",
                json={"query": PRODUCTS},
                headers={"origin": origin, "authorization": f"Bearer {svc.storefront}"},
            )
            assert resp.status_code == 200 and "errors" not in resp.json()
            assert resp.headers["access-control-allow-origin"] == origin
            assert "access-control-allow-credentials" not in resp.headers

        for origin in ("https://evil.example", "https://shop.example.evil.example", "null"):
            pre = await svc.client.options("/graphql", headers={"origin": origin, **PREFLIGHT})
            assert pre.status_code == 400, origin
            assert "access-control-allow-origin" not in pre.headers
            resp = await svc.client.post(
                "/graphql",
                json={"query": PRODUCTS},
                headers={"origin": origin, "authorization": f"Bearer {svc.storefront}"},
            )
            assert "access-control-allow-origin" not in resp.headers  # the browser hides it


async def test_no_origin_is_allowed_by_default(service_with: ServiceFactory) -> None:
    async with service_with() as svc:
        pre = await svc.client.options("/graphql", headers={"origin": SHOP, **PREFLIGHT})
        assert pre.status_code == 400
        assert "access-control-allow-origin" not in pre.headers


async def test_storefront_is_not_served_over_get(service_with: ServiceFactory) -> None:
    session = "9f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    query = f'{{ storefront(input: {{page: HOME, sessionId: "{session}"}}) {{ requestId }} }}'
    async with service_with() as svc:
        headers = {"authorization": f"Bearer {svc.storefront}"}
        resp = await svc.client.get("/graphql", params={"query": query}, headers=headers)
        body = resp.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "POST_REQUIRED"
        assert "POST" in body["errors"][0]["message"]
        posted = await svc.client.post("/graphql", json={"query": query}, headers=headers)
        assert "errors" not in posted.json(), posted.json()
        # Side-effect-free reads still work over GET.
        listed = await svc.client.get("/graphql", params={"query": PRODUCTS}, headers=headers)
        assert "errors" not in listed.json()


@pytest.mark.parametrize(
    "bad",
    ["*", "shop.example", "https://shop.example/path", "ftp://shop.example", "https://*.example"],
)
def test_bad_origins_are_configuration_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="SHOPFRONT_CORS_ORIGINS"):
        Settings.from_env({"SHOPFRONT_CORS_ORIGINS": bad})


def test_default_ports_are_the_origin_a_browser_sends() -> None:
    from shopfront.platform.config import cors_origin_patterns

    exact, pattern = cors_origin_patterns(("https://shop.example:443", "http://a.example:8080"))
    assert exact == ["https://shop.example", "http://a.example:8080"] and pattern is None
