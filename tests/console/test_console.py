"""The merchant console in headless Chromium against the real service and a small demo shop:
sign in and out, a storefront key refused, a shopper previewed (slots with reasons, a priced
cart), another experiment variant shown, an experiment report, a promotion switched off, a
model rolled back, a product's neighbours. Every screen is saved under test-output/console/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.shop import Shop

pytestmark = pytest.mark.slow

PREVIEW = """
query($input: StorefrontInput!) {
  storefront(input: $input) {
    experiments { experiment variant }
    slots { name items { product { id title } } }
    cart { total { amount currency } appliedPromotions { title } }
  }
}"""


def sign_in(page: Any, key: str) -> None:
    page.goto("/console")
    page.get_by_label("Merchant key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def signed_in(page: Any, shop: Shop) -> None:
    sign_in(page, shop.merchant_key)
    page.locator("#nav").wait_for(state="visible")


def test_a_storefront_key_is_refused_with_a_clear_message(
    page: Any, shop: Shop, screenshot: Any
) -> None:
    sign_in(page, shop.storefront_key)
    error = page.locator("#sign-in-status .error")
    error.wait_for()
    assert "storefront key" in error.inner_text()
    assert "merchant key" in error.inner_text()
    assert page.locator("#nav").is_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    screenshot("sign-in-refused")


def test_sign_in_keeps_the_key_in_the_tab_only_and_sign_out_forgets_it(
    page: Any, shop: Shop, screenshot: Any
) -> None:
    signed_in(page, shop)
    stored = page.evaluate("Object.values(sessionStorage)")
    assert stored == [shop.merchant_key]
    assert shop.merchant_key not in page.url
    assert page.context.cookies() == []
    assert page.evaluate("localStorage.length") == 0
    page.get_by_role("button", name="Sign out").click()
    page.locator("#sign-in").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    assert page.locator("#nav").is_hidden()
    screenshot("signed-out")


def _cart_products(shop: Shop) -> list[dict[str, Any]]:
    data = shop.graphql(
        '{ products(filter: {inStock: true, minPrice: 3000, currency: "EUR"}, first: 2) '
        "{ nodes { id title price { amount } } } }"
    )
    nodes: list[dict[str, Any]] = data["products"]["nodes"]
    assert len(nodes) == 2
    return nodes


def test_preview_shows_slots_with_reasons_and_the_priced_cart_the_api_gives(
    page: Any, shop: Shop, screenshot: Any
) -> None:
    first, second = _cart_products(shop)
    signed_in(page, shop)
    form = page.locator("#preview-form")
    form.get_by_label("Shopper id").fill("demo-0002")
    form.get_by_label("Cart (product id x quantity)").fill(f"{first['id']} x 2, {second['id']}")
    form.get_by_role("button", name="Preview").click()
    cart = page.locator("#priced-cart")
    cart.locator("table").wait_for()

    api = shop.graphql(
        PREVIEW,
        {
            "input": {
                "page": "HOME",
                "userId": "demo-0002",
                "cart": {
                    "lines": [
                        {"productId": first["id"], "quantity": 2},
                        {"productId": second["id"], "quantity": 1},
                    ]
                },
                "preview": {},
            }
        },
    )["storefront"]
    shown = page.locator("section.slot")
    assert shown.count() == len(api["slots"]) >= 1
    for i, slot in enumerate(api["slots"]):
        titles = shown.nth(i).locator(".product-card .title").all_inner_texts()
        assert titles == [item["product"]["title"] for item in slot["items"]]
    cards = page.locator("section.slot .product-card")
    assert cards.count() > 0
    for i in range(cards.count()):  # every item says why it is shown
        assert cards.nth(i).locator(".reasons li").count() >= 1
    # The priced cart: lines, the total and the promotions that applied, as the API priced it.
    assert cart.locator("tbody tr").count() == 2
    total = api["cart"]["total"]
    assert (
        f"{total['amount'] // 100}.{total['amount'] % 100:02d}"
        in cart.locator("tfoot .total").inner_text()
    )
    applied = cart.locator(".applied li").all_inner_texts()
    titles = [a["title"] for a in api["cart"]["appliedPromotions"]]
    assert titles, "a cart over 50 EUR gets the demo's spend and free-shipping promotions"
    assert len(applied) == len(titles)
    for shown_text, title in zip(applied, titles, strict=True):
        assert title in shown_text
    # Beside it: the shopper's tastes as a chart and recent events as a timeline.
    side = page.locator(".preview-side")
    assert side.locator("svg.chart").count() >= 1
    assert side.locator(".timeline li").count() >= 1
    screenshot("preview")


def _shopper_in_experiment(shop: Shop) -> tuple[str, str, str]:
    """A demo shopper the demo experiment assigns, their variant and another one."""
    variants = [
        v["name"]
        for v in shop.graphql("{ experiments(status: [RUNNING]) { variants { name } } }")[
            "experiments"
        ][0]["variants"]
    ]
    for n in range(1, 41):
        user = f"demo-{n:04d}"
        served = shop.graphql(PREVIEW, {"input": {"page": "HOME", "userId": user, "preview": {}}})
        for e in served["storefront"]["experiments"]:
            other = next(v for v in variants if v != e["variant"])
            return user, e["variant"], other
    raise AssertionError("no demo shopper is in the demo experiment")


def test_one_click_shows_the_page_as_another_variant(
    page: Any, shop: Shop, screenshot: Any
) -> None:
    user, own, other = _shopper_in_experiment(shop)
    before = shop.graphql(
        '{ experimentReport(id: "exp_demo_home_recs_v2") { variants { exposures } } }'
    )
    signed_in(page, shop)
    page.goto(f"/console#/preview/{user}")
    served = page.locator("#served-experiments .served").first
    served.locator(f'strong.variant[data-variant="{own}"]').wait_for()
    served.locator(f'button.switch-variant[data-variant="{other}"]').click()
    page.locator(f'#served-experiments strong.variant[data-variant="{other}"]').wait_for()
    assert "chosen in the console" in page.locator("#served-experiments").inner_text()
    screenshot("preview-other-variant")
    # Previews are not page views: the experiment counted no exposure for them.
    after = shop.graphql(
        '{ experimentReport(id: "exp_demo_home_recs_v2") { variants { exposures } } }'
    )
    assert after == before


def test_experiment_report_shows_each_variant_with_intervals(
    page: Any, shop: Shop, screenshot: Any
) -> None:
    report = shop.graphql(
        '{ experimentReport(id: "exp_demo_home_recs_v2") '
        "{ name sampleRatioMismatch variants { name exposures } } }"
    )["experimentReport"]
    signed_in(page, shop)
    page.get_by_role("link", name="Experiments").click()
    row = page.locator('#experiments tr[data-experiment="exp_demo_home_recs_v2"]')
    row.wait_for()
    assert "RUNNING" in row.inner_text()
    screenshot("experiments")
    row.get_by_role("link", name=report["name"]).click()
    table = page.locator("#report")
    table.wait_for()
    for v in report["variants"]:
        cells = table.locator(f'tr[data-variant="{v["name"]}"] td').all_inner_texts()
        assert cells[1] == str(v["exposures"])
    assert page.locator(".charts svg.chart.ci").count() == 3
    assert page.locator(".charts .whisker").count() > 0
    assert page.locator("#srm-warning").count() == (1 if report["sampleRatioMismatch"] else 0)
    screenshot("experiment-report")


def test_a_promotion_is_switched_off_and_on(page: Any, shop: Shop, screenshot: Any) -> None:
    signed_in(page, shop)
    page.get_by_role("link", name="Offers").click()
    row = page.locator('#promotions tr[data-promotion="demo-spend-more"]')
    row.wait_for()
    assert "live" in row.inner_text()
    assert page.locator("#campaigns progress").count() >= 1  # budget and usage bars
    screenshot("offers")
    row.get_by_role("button", name="Disable").click()
    page.locator(
        '#promotions tr[data-promotion="demo-spend-more"] .badge', has_text="off"
    ).wait_for()
    found = shop.graphql('{ promotion(id: "demo-spend-more") { active } }')
    assert found["promotion"]["active"] is False
    page.locator('#promotions tr[data-promotion="demo-spend-more"]').get_by_role(
        "button", name="Enable"
    ).click()
    page.locator(
        '#promotions tr[data-promotion="demo-spend-more"] .badge', has_text="live"
    ).wait_for()
    assert shop.graphql('{ promotion(id: "demo-spend-more") { active } }')["promotion"]["active"]


def test_a_model_is_rolled_back_to_the_previous_version(
    page: Any, shop: Shop, screenshot: Any
) -> None:
    versions = shop.graphql("{ models { version status } }")["models"]
    assert [v["status"] for v in versions[:2]] == ["active", "inactive"]
    previous = versions[1]["version"]
    signed_in(page, shop)
    page.get_by_role("link", name="Models & plugins").click()
    page.locator("#plugins").wait_for()
    assert page.locator("#plugins tr[data-plugin=recommenders]").count() == 1
    assert "breaker closed" in page.locator("#plugins").inner_text()
    screenshot("models")
    page.locator(f'#models tr[data-version="{previous}"]').get_by_role(
        "button", name="Roll back to this"
    ).click()
    page.locator(f'#models tr[data-version="{previous}"][data-status="active"]').wait_for()
    now = {
        v["version"]: v["status"] for v in shop.graphql("{ models { version status } }")["models"]
    }
    assert now[previous] == "active"
    assert now[versions[0]["version"]] == "inactive"
    screenshot("models-rolled-back")


def test_a_product_opens_with_its_scored_neighbours(page: Any, shop: Shop, screenshot: Any) -> None:
    wanted = shop.graphql('{ product(id: "sku-0001") { title } }')["product"]["title"]
    signed_in(page, shop)
    page.get_by_role("link", name="Catalog").click()
    page.locator("#catalog-results .product-card").first.wait_for()
    search = page.locator("#catalog-search")
    search.get_by_label("Title contains").fill(wanted.upper())
    search.get_by_role("button", name="Search").click()
    found = page.locator("#catalog-results .product-card .title", has_text=wanted)
    found.wait_for()
    assert wanted in page.locator("#catalog-results .product-card .title").all_inner_texts()
    screenshot("catalog")
    found.click()
    page.locator("section.neighbours").first.wait_for()
    names = page.locator("section.neighbours").evaluate_all("els => els.map(e => e.dataset.slot)")
    assert names == ["similar_items", "bought_together", "also_viewed"]
    scores = page.locator("section.neighbours td.score").all_inner_texts()
    assert scores and all(float(s) > 0 for s in scores)
    screenshot("product")
