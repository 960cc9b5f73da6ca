"""Which cart lines can be priced, and why the others cannot.

A storefront sends the cart it holds; one line it cannot price (a product since removed, a
typo in an id, a quantity out of range) must not cost the shopper the rest of the answer.
Each line is either priced or reported here by its index in the request, with a code the
storefront can act on (drop the line, fix the quantity, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from shopfront.catalog.products import Product
from shopfront.offers.contract import PricedCart
from shopfront.shoppers.context import CartLine
from shopfront.storefront.request import MAX_QUANTITY


class CartLineErrorCode(StrEnum):
    INVALID_PRODUCT_ID = "INVALID_PRODUCT_ID"  # blank
    INVALID_QUANTITY = "INVALID_QUANTITY"  # outside 1..MAX_QUANTITY
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"  # no product with this id
    PRODUCT_UNAVAILABLE = "PRODUCT_UNAVAILABLE"  # in the catalog but not for sale (inactive)
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"  # priced in another currency than the cart


@dataclass(frozen=True)
class CartLineError:
    index: int  # the line's index in the request's cart.lines
    product_id: str
    quantity: int
    code: CartLineErrorCode
    message: str


@dataclass(frozen=True)
class CheckedLines:
    priceable: tuple[int, ...]  # request indices of the lines that can be priced, in order
    errors: tuple[CartLineError, ...]

    def lines(self, cart: Sequence[CartLine]) -> tuple[CartLine, ...]:
        return tuple(cart[i] for i in self.priceable)


def check_lines(
    lines: Sequence[CartLine], products: Mapping[str, Product], currency: str
) -> CheckedLines:
    priceable: list[int] = []
    errors: list[CartLineError] = []

    def fail(i: int, line: CartLine, code: CartLineErrorCode, message: str) -> None:
        errors.append(CartLineError(i, line.product_id, line.quantity, code, message))

    for i, line in enumerate(lines):
        where = f"cart.lines[{i}]"
        product = products.get(line.product_id)
        if not line.product_id:
            fail(i, line, CartLineErrorCode.INVALID_PRODUCT_ID, f"{where}.productId is blank")
        elif not 1 <= line.quantity <= MAX_QUANTITY:
            fail(
                i,
                line,
                CartLineErrorCode.INVALID_QUANTITY,
                f"{where}.quantity must be from 1 to {MAX_QUANTITY}, got {line.quantity}",
            )
        elif product is None:
            fail(
                i,
                line,
                CartLineErrorCode.PRODUCT_NOT_FOUND,
                f"{where}: there is no product {line.product_id!r}",
            )
        elif not product.active:
            fail(
                i,
                line,
                CartLineErrorCode.PRODUCT_UNAVAILABLE,
                f"{where}: product {line.product_id!r} is not available",
            )
        elif product.price.currency != currency:
            fail(
                i,
                line,
                CartLineErrorCode.CURRENCY_MISMATCH,
                f"{where}: product {line.product_id!r} is priced in {product.price.currency}, "
                f"the cart in {currency}",
            )
        else:
            priceable.append(i)
    return CheckedLines(tuple(priceable), tuple(errors))


def to_request_indices(cart: PricedCart, priceable: Sequence[int]) -> PricedCart:
    """``cart`` priced from the priceable lines only, with every line index (lines and
    per-line discounts) turned back into the line's index in the request."""
    if list(priceable) == list(range(len(priceable))):
        return cart
    lines = tuple(replace(line, index=priceable[line.index]) for line in cart.lines)
    applied = tuple(
        replace(a, line_amounts={priceable[i]: v for i, v in a.line_amounts.items()})
        for a in cart.applied
    )
    return replace(cart, lines=lines, applied=applied)
