"""The GraphQL floor: a minimal strawberry + starlette app with the storefront's and the
catalog's output types, answering from memory with answers captured from Shopfront. Whatever
Shopfront costs above this app's cost is Shopfront's own work; below it nothing can go on
the same stack.

    python -m bench.floor PORT CAPTURED.json      (started by bench.storefront)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NewType

import strawberry
from strawberry.asgi import GraphQL

StorefrontInput = strawberry.scalar(
    NewType("StorefrontInput", object),
    serialize=lambda v: v,
    parse_value=lambda v: v,
    description="Accepted as is: the floor does not look at the input.",
)


@strawberry.type
class Money:
    amount: int
    currency: str


@strawberry.type
class Product:
    id: strawberry.ID
    title: str
    brand: str | None
    price: Money
    image_url: str | None
    in_stock: bool


@strawberry.type
class Reason:
    code: str
    text: str
    strategy: str | None


@strawberry.type
class SlotItem:
    position: int
    score: float
    product: Product
    reasons: list[Reason]


@strawberry.type
class Slot:
    name: str
    title: str
    recommendation_id: str
    items: list[SlotItem]


@strawberry.type
class Coupon:
    code: str
    title: str
    expires_at: str | None
    reason: Reason | None


@strawberry.type
class AppliedPromotion:
    name: str
    amount: Money


@strawberry.type
class Nudge:
    text: str


@strawberry.type
class Cart:
    subtotal: Money
    discount_total: Money
    total: Money
    applied_promotions: list[AppliedPromotion]
    nudges: list[Nudge]


@strawberry.type
class Degradation:
    strategy: str
    reason: str


@strawberry.type
class Storefront:
    request_id: str
    slots: list[Slot]
    coupons: list[Coupon]
    cart: Cart | None
    degraded: list[Degradation]


@strawberry.type
class ProductConnection:
    nodes: list[Product]


def _money(d: dict[str, Any]) -> Money:
    return Money(amount=d["amount"], currency=d["currency"])


def _product(d: dict[str, Any]) -> Product:
    return Product(
        id=strawberry.ID(d["id"]),
        title=d["title"],
        brand=d.get("brand"),
        price=_money(d["price"]),
        image_url=d.get("imageUrl"),
        in_stock=d["inStock"],
    )


def _reason(d: dict[str, Any]) -> Reason:
    return Reason(code=d["code"], text=d["text"], strategy=d.get("strategy"))


def storefront_of(d: dict[str, Any]) -> Storefront:
    cart = d.get("cart")
    return Storefront(
        request_id=d["requestId"],
        slots=[
            Slot(
                name=s["name"],
                title=s["title"],
                recommendation_id=s["recommendationId"],
                items=[
                    SlotItem(
                        position=i["position"],
                        score=i["score"],
                        product=_product(i["product"]),
                        reasons=[_reason(r) for r in i["reasons"]],
                    )
                    for i in s["items"]
                ],
            )
            for s in d["slots"]
        ],
        coupons=[
            Coupon(
                code=c["code"],
                title=c["title"],
                expires_at=c.get("expiresAt"),
                reason=_reason(c["reason"]) if c.get("reason") else None,
            )
            for c in d["coupons"]
        ],
        cart=None
        if cart is None
        else Cart(
            subtotal=_money(cart["subtotal"]),
            discount_total=_money(cart["discountTotal"]),
            total=_money(cart["total"]),
            applied_promotions=[
                AppliedPromotion(name=a["name"], amount=_money(a["amount"]))
                for a in cart["appliedPromotions"]
            ],
            nudges=[Nudge(text=n["text"]) for n in cart["nudges"]],
        ),
        degraded=[Degradation(strategy=g["strategy"], reason=g["reason"]) for g in d["degraded"]],
    )


@strawberry.input
class ProductFilterInput:
    ids: list[strawberry.ID] | None = None


@strawberry.type
class Query:
    @strawberry.field
    def storefront(self, info: strawberry.Info, input: StorefrontInput) -> Storefront:  # type: ignore[valid-type]
        answer: Storefront = info.context["answer"]
        return answer

    @strawberry.field
    def products(
        self, info: strawberry.Info, first: int = 20, filter: ProductFilterInput | None = None
    ) -> ProductConnection:
        nodes: list[Product] = info.context["nodes"]
        return ProductConnection(nodes=nodes[:first])


class FloorApp(GraphQL[dict[str, Any], None]):
    """Answers from objects built once, at start-up: nothing per request but GraphQL."""

    def __init__(self, captured: dict[str, Any]) -> None:
        super().__init__(strawberry.Schema(query=Query), graphql_ide=None)
        self._context = {
            "answer": storefront_of(captured["storefront"]),
            "nodes": [_product(p) for p in captured["products"]],
        }

    async def get_context(self, request: Any, response: Any) -> dict[str, Any]:
        return self._context


def main() -> None:
    import uvicorn

    port, path = int(sys.argv[1]), Path(sys.argv[2])
    app = FloorApp(json.loads(path.read_text()))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
