"""The storefront request: its typed input and the validation that bounds it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shopfront.platform.config import Settings
from shopfront.platform.money import is_currency
from shopfront.shoppers.context import CartLine, PageType

MAX_SLOT_LIMIT = 50
MAX_SLOTS = 10
MAX_CART_LINES = 100
MAX_QUANTITY = 999
MAX_COUPON_CODES = 20
MAX_ID_LEN = 200
MAX_QUERY_LEN = 500
MAX_CATEGORY_DEPTH = 10
MAX_PREVIEW_VARIANTS = 10  # experiments whose variant one preview may choose


class StorefrontInputError(ValueError):
    """The storefront request is invalid; the message names the field, ``code`` is the
    GraphQL error code (BAD_USER_INPUT unless a more precise one applies)."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT") -> None:
        super().__init__(message)
        self.code = code


PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"  # a PRODUCT page for a product the catalog lacks


# -- the request and the answer -----------------------------------------------------------


@dataclass(frozen=True)
class SlotOverride:
    name: str
    strategy: str | None = None
    limit: int | None = None


@dataclass(frozen=True)
class StorefrontRequest:
    """What the storefront asks. ``slots`` None: the page's configured slots; a list (even
    empty): exactly those slots."""

    page: PageType
    user_id: str | None = None
    session_id: str | None = None
    product_id: str | None = None
    category_path: tuple[str, ...] | None = None
    search_query: str | None = None
    cart_lines: tuple[CartLine, ...] = ()
    coupon_codes: tuple[str, ...] = ()
    currency: str | None = None
    slots: tuple[SlotOverride, ...] | None = None
    # A merchant's preview (the console): nothing is recorded as served or exposed, and
    # ``variants`` (experiment name or id, variant) replace the shopper's own assignments.
    preview: bool = False
    variants: tuple[tuple[str, str], ...] = ()


def _text(value: str | None, name: str, max_len: int = MAX_ID_LEN) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise StorefrontInputError(f"{name} must not be blank")
    if len(value) > max_len:
        raise StorefrontInputError(f"{name} is longer than {max_len} characters")
    return value


def validate_request(req: StorefrontRequest, settings: Settings) -> StorefrontRequest:
    """The request with its text trimmed and its currency resolved, or a
    `StorefrontInputError` naming the field."""
    user_id = _text(req.user_id, "userId")
    session_id = _text(req.session_id, "sessionId")
    if user_id is None and session_id is None:
        raise StorefrontInputError("userId or sessionId is required (at least one of them)")
    product_id = _text(req.product_id, "productId")
    if req.page is PageType.PRODUCT and product_id is None:
        raise StorefrontInputError("productId is required on a PRODUCT page")
    category_path = None
    if req.category_path is not None:
        if len(req.category_path) > MAX_CATEGORY_DEPTH:
            raise StorefrontInputError(f"categoryPath has more than {MAX_CATEGORY_DEPTH} levels")
        category_path = tuple(
            _text(part, f"categoryPath[{i}]") or "" for i, part in enumerate(req.category_path)
        )
    if req.page is PageType.CATEGORY and not category_path:
        raise StorefrontInputError("categoryPath is required on a CATEGORY page")
    search_query = _text(req.search_query, "searchQuery", MAX_QUERY_LEN)
    if len(req.cart_lines) > MAX_CART_LINES:
        raise StorefrontInputError(f"cart.lines: at most {MAX_CART_LINES} lines")
    # A bad line (blank id, quantity out of range) is reported on that line when the cart is
    # priced (storefront.cart_lines), not as an error of the whole request.
    lines = []
    for i, line in enumerate(req.cart_lines):
        pid = line.product_id.strip()
        if len(pid) > MAX_ID_LEN:
            raise StorefrontInputError(
                f"cart.lines[{i}].productId is longer than {MAX_ID_LEN} characters"
            )
        lines.append(CartLine(pid, line.quantity))
    if len(req.coupon_codes) > MAX_COUPON_CODES:
        raise StorefrontInputError(f"cart.couponCodes: at most {MAX_COUPON_CODES} codes")
    codes = tuple(
        _text(c, f"cart.couponCodes[{i}]", 64) or "" for i, c in enumerate(req.coupon_codes)
    )
    currency = (req.currency or settings.default_currency).strip().upper()
    if not is_currency(currency):
        raise StorefrontInputError(f"currency {req.currency!r} is not an ISO 4217 code")
    slots = None
    if req.slots is not None:
        if len(req.slots) > MAX_SLOTS:
            raise StorefrontInputError(f"slots: at most {MAX_SLOTS} slots")
        slots = []
        for i, o in enumerate(req.slots):
            name = _text(o.name, f"slots[{i}].name", 64) or ""
            strategy = _text(o.strategy, f"slots[{i}].strategy", 64)
            if o.limit is not None and not 1 <= o.limit <= MAX_SLOT_LIMIT:
                raise StorefrontInputError(
                    f"slots[{i}].limit must be from 1 to {MAX_SLOT_LIMIT}, got {o.limit}"
                )
            slots.append(SlotOverride(name, strategy, o.limit))
        names = [s.name for s in slots]
        if len(set(names)) != len(names):
            raise StorefrontInputError("slots: each slot name may appear once")
    if len(req.variants) > MAX_PREVIEW_VARIANTS:
        raise StorefrontInputError(f"preview.variants: at most {MAX_PREVIEW_VARIANTS}")
    variants = tuple(
        (
            _text(exp, f"preview.variants[{i}].experiment", 100) or "",
            _text(variant, f"preview.variants[{i}].variant", 100) or "",
        )
        for i, (exp, variant) in enumerate(req.variants)
    )
    if len({exp for exp, _ in variants}) != len(variants):
        raise StorefrontInputError("preview.variants: each experiment may appear once")
    return replace(
        req,
        variants=variants,
        user_id=user_id,
        session_id=session_id,
        product_id=product_id,
        category_path=category_path,
        search_query=search_query,
        cart_lines=tuple(lines),
        coupon_codes=codes,
        currency=currency,
        slots=tuple(slots) if slots is not None else None,
    )
