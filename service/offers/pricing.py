"""Cart pricing: the promotion engine.

Entry points
------------
``price_cart`` prices one cart::

    priced = await price_cart(
        ctx,                          # RequestContext (currency, shopper, channel, now)
        lines,                        # Sequence[CartLine]
        products,                     # Mapping[str, Product]: every product of the cart
        promotions=promotions,        # Sequence[Promotion]: promotions and entered coupons
        runner=runner,                # PromotionRunner (the host's deadline and breaker);
                                      #   default: direct_runner(ctx)
        stacking=stacking,            # StackingPolicy (ctx, cart, terms) -> StackingPlan | None,
                                      #   e.g. lambda c, cart, t: pm.hook.promotion_stacking(
                                      #            ctx=c, cart=cart, promotions=t)
        suggest=suggest,              # NudgeSuggester, or None for nudges without products
        nudges=NudgePolicy.from_settings(settings),
        shipping=shipping_fees(settings).get(ctx.currency),
    )

``CartPricer`` composes the same call from a promotion source (stored promotions, plugin
promotions), a coupon source (the codes in ``ctx.coupon_codes``) and the settings; the
storefront holds one and calls ``await pricer.price(ctx, lines, products)``.

How a cart is priced
--------------------
1. The undiscounted cart: one currency (a product priced in another is an error, never a
   conversion) and the shipping fee of that currency.
2. Every promotion is tried alone on it. One that does not apply alone is reported with its
   reason (and may nudge); it cannot apply on top of others either, since discounts only
   lower what later promotions see. Only the rest are stacked.
3. The stacking policy returns alternative sequences of those promotions (the built-in one:
   every set that may combine, smallest first). Each runs through the chain - every promotion
   receives the cart as priced so far - and the lowest total wins, ties to the earlier
   alternative. Shared prefixes are priced once.
4. Every promotion that gave no discount is listed with why: its own reason, or that it does
   not combine with the promotions applied (``DOES_NOT_COMBINE``), or that the applied ones
   are a better deal without it (``BETTER_DEAL``).
5. Nudges from promotions the cart almost meets (within `NudgePolicy`'s closeness) get
   suggested products that would complete them.

Money rules
-----------
Amounts are integer minor units. Percentages are computed in `Decimal` and rounded once,
half-even to the minor unit (`Money.percent`); a discount is spread over cart lines with
`allocate`, so line amounts add up exactly to the promotion's amount. A discount never
exceeds what is left on a line or on shipping, so no line and no total goes below zero.
Money paths fail closed: a promotion that fails, is late, or returns an outcome that does not
fit the cart gives no discount (``UNAVAILABLE`` / ``INVALID``), never a wrong one.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from shopfront.catalog.products import Product
from shopfront.offers.contract import (
    AppliedPromotion,
    NotApplied,
    Nudge,
    PricedCart,
    PricedLine,
    ProductScope,
    Promotion,
    PromotionClass,
    PromotionOutcome,
    PromotionTerms,
    Stacking,
    StackingPlan,
)
from shopfront.platform.config import amounts_by_currency
from shopfront.platform.money import Money, MoneyError
from shopfront.shoppers.context import CartLine, RequestContext

if TYPE_CHECKING:
    from shopfront.platform.config import Settings

log = logging.getLogger(__name__)

MAX_CART_LINES = 200
MAX_LINE_QUANTITY = 10_000

# Reason codes the engine gives (promotions give their own, see plugins.promotions.base).
UNAVAILABLE = "UNAVAILABLE"
INVALID = "INVALID"
NOTHING_TO_DISCOUNT = "NOTHING_TO_DISCOUNT"
DOES_NOT_COMBINE = "DOES_NOT_COMBINE"
BETTER_DEAL = "BETTER_DEAL"
NOT_CHOSEN = "NOT_CHOSEN"
NOT_APPLICABLE = "NOT_APPLICABLE"

# Runs one promotion under the host's deadline and breaker; None when it failed or was late.
PromotionRunner = Callable[[Promotion, PricedCart, PricedCart], Awaitable[PromotionOutcome | None]]

# Decides which sequences of promotions to price (the `promotion_stacking` hook's shape).
StackingPolicy = Callable[
    [RequestContext, PricedCart, Sequence[PromotionTerms]],
    StackingPlan | Awaitable[StackingPlan | None] | None,
]


class NudgeSuggester(Protocol):
    """Products that would complete a nudge, best first, at most ``limit``.

    ``kind`` is the nudge's kind (``free_shipping``, ``spend_threshold``, ...), ``missing``
    the amount still to spend (None for a quantity nudge), ``eligible`` the products that
    count towards it. Products already in the cart (``ctx.cart_lines``) are not suggested.
    """

    async def __call__(
        self,
        ctx: RequestContext,
        kind: str,
        missing: Money | None,
        eligible: ProductScope,
        limit: int,
    ) -> Sequence[str]: ...


class PricingError(ValueError):
    """The cart cannot be priced (unknown product, currency mismatch, bad quantity)."""


# -- settings ------------------------------------------------------------------------------


def shipping_fees(settings: Settings) -> dict[str, Money]:
    """The flat shipping fee per currency (``SHOPFRONT_SHIPPING_FEE``)."""
    return amounts_by_currency(settings.shipping_fee, "SHOPFRONT_SHIPPING_FEE")


@dataclass(frozen=True)
class NudgePolicy:
    """Which almost-met promotions become nudges, and how many products each suggests.

    A spend nudge is shown when the missing amount is at most ``closeness_percent`` of the
    threshold, or at most ``closeness_amounts[currency]``; a quantity nudge when at most
    ``max_missing_items`` items are missing.
    """

    closeness_percent: int = 20
    closeness_amounts: Mapping[str, Money] = field(default_factory=dict)
    max_missing_items: int = 1
    suggestions: int = 3
    max_nudges: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> NudgePolicy:
        return cls(
            closeness_percent=settings.nudge_closeness_percent,
            closeness_amounts=amounts_by_currency(
                settings.nudge_closeness_amount, "SHOPFRONT_NUDGE_CLOSENESS_AMOUNT"
            ),
            max_missing_items=settings.nudge_max_missing_items,
            suggestions=settings.nudge_suggestions,
        )

    def close_enough(self, nudge: Nudge) -> bool:
        if nudge.missing is None:
            return 0 < nudge.missing_quantity <= self.max_missing_items
        missing = nudge.missing.amount
        if missing <= 0:
            return False
        fixed = self.closeness_amounts.get(nudge.missing.currency)
        if fixed is not None and missing <= fixed.amount:
            return True
        if nudge.threshold is None or nudge.threshold.currency != nudge.missing.currency:
            return False
        return missing * 100 <= nudge.threshold.amount * self.closeness_percent


# -- the chain -----------------------------------------------------------------------------


def base_cart(
    lines: Sequence[CartLine],
    products: Mapping[str, Product],
    currency: str,
    shipping: Money | None = None,
) -> PricedCart:
    """The undiscounted cart. Currencies never mix: a product priced in another currency is
    an error, not a conversion."""
    if len(lines) > MAX_CART_LINES:
        raise PricingError(f"cart.lines: {len(lines)} lines; at most {MAX_CART_LINES}")
    if shipping is not None and shipping.currency != currency:
        raise PricingError(f"shipping is in {shipping.currency}, the cart in {currency}")
    priced: list[PricedLine] = []
    for i, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            raise PricingError(
                f"cart.lines[{i}].quantity must be between 1 and {MAX_LINE_QUANTITY}"
            )
        product = products.get(line.product_id)
        if product is None or not product.active:
            raise PricingError(f"cart.lines[{i}]: product {line.product_id!r} is not available")
        if product.price.currency != currency:
            raise PricingError(
                f"cart.lines[{i}]: product {line.product_id!r} is priced in "
                f"{product.price.currency}, the cart in {currency}"
            )
        subtotal = product.price * line.quantity
        priced.append(
            PricedLine(
                i, line.product_id, line.quantity, product.price, subtotal, Money.zero(currency)
            )
        )
    return PricedCart(currency, tuple(priced), shipping or Money.zero(currency))


def check_outcome(outcome: PromotionOutcome, so_far: PricedCart) -> str | None:
    """Why ``outcome`` cannot be applied to ``so_far``, or None when it is valid."""
    by_index = {line.index: line for line in so_far.lines}
    for index, amount in outcome.line_discounts.items():
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            return f"line {index}: discount must be a non-negative whole amount"
        line = by_index.get(index)
        if line is None:
            return f"line {index} is not in the cart"
        if amount > line.total.amount:
            return f"line {index}: discount {amount} exceeds the line's remaining total"
    remaining_shipping = so_far.shipping.amount - sum(a.shipping_amount for a in so_far.applied)
    shipping = outcome.shipping_discount
    if isinstance(shipping, bool) or not isinstance(shipping, int):
        return "shipping discount must be a whole amount"
    if not 0 <= shipping <= remaining_shipping:
        return "shipping discount exceeds the remaining shipping"
    return None


def apply_outcome(
    so_far: PricedCart, name: str, title: str, outcome: PromotionOutcome, source: str = "promotion"
) -> PricedCart:
    off = outcome.line_discounts
    lines = tuple(
        replace(line, discount=Money(line.discount.amount + off[line.index], so_far.currency))
        if off.get(line.index)
        else line
        for line in so_far.lines
    )
    total = sum(outcome.line_discounts.values()) + outcome.shipping_discount
    applied = AppliedPromotion(
        name=name,
        title=title,
        amount=Money(total, so_far.currency),
        line_amounts={i: a for i, a in sorted(outcome.line_discounts.items()) if a},
        shipping_amount=outcome.shipping_discount,
        source=source,
    )
    return replace(so_far, lines=lines, applied=(*so_far.applied, applied))


def total_amount(cart: PricedCart) -> int:
    """``cart.total.amount`` in plain integers (the engine compares many alternatives)."""
    goods = sum(line.subtotal.amount - line.discount.amount for line in cart.lines)
    shipping = cart.shipping.amount - sum(a.shipping_amount for a in cart.applied)
    return max(goods, 0) + max(shipping, 0)


def source_of(terms: PromotionTerms) -> str:
    """``"promotion"``, or ``"coupon:<CODE>"`` for an entered coupon (named so)."""
    return terms.name if terms.klass is PromotionClass.COUPON else "promotion"


def direct_runner(ctx: RequestContext) -> PromotionRunner:
    """Runs a promotion in-process; an exception gives no discount (and is logged)."""

    async def run(
        promotion: Promotion, cart: PricedCart, so_far: PricedCart
    ) -> PromotionOutcome | None:
        try:
            return await promotion.apply(ctx, cart, so_far)
        except Exception:
            log.exception("promotion %r failed; no discount given", promotion.terms.name)
            return None

    return run


async def evaluate(
    runner: PromotionRunner, promotion: Promotion, cart: PricedCart, so_far: PricedCart
) -> PromotionOutcome:
    """The promotion's outcome on ``so_far``, normalised: ``applied`` only when the outcome
    is valid and gives a discount; otherwise a not-applied outcome saying why."""
    outcome = await runner(promotion, cart, so_far)
    if outcome is None:
        return PromotionOutcome(False, "temporarily unavailable", code=UNAVAILABLE)
    if not outcome.applied:
        return outcome
    try:
        problem = check_outcome(outcome, so_far)
    except (MoneyError, TypeError) as exc:
        problem = str(exc)
    if problem is not None:  # fail closed: a wrong discount is never given
        log.warning("promotion %r gave an invalid outcome: %s", promotion.terms.name, problem)
        return PromotionOutcome(False, f"invalid outcome: {problem}", code=INVALID)
    if not any(outcome.line_discounts.values()) and outcome.shipping_discount == 0:
        return replace(
            outcome,
            applied=False,
            reason="gives no discount on this cart",
            code=NOTHING_TO_DISCOUNT,
        )
    return outcome


def _not_applied(name: str, outcome: PromotionOutcome) -> NotApplied:
    return NotApplied(
        name=name,
        reason=outcome.reason or "conditions not met",
        code=outcome.code or NOT_APPLICABLE,
        missing=outcome.missing,
    )


# -- the engine ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chain:
    """A sequence of promotions priced: the cart after it, and each member's outcome."""

    cart: PricedCart
    outcomes: Mapping[str, PromotionOutcome]


async def price_cart(
    ctx: RequestContext,
    lines: Sequence[CartLine],
    products: Mapping[str, Product],
    *,
    promotions: Sequence[Promotion],
    runner: PromotionRunner | None = None,
    stacking: StackingPolicy | None = None,
    suggest: NudgeSuggester | None = None,
    nudges: NudgePolicy | None = None,
    shipping: Money | None = None,
) -> PricedCart:
    """Price the cart with the best stacking of ``promotions`` (see the module docstring).

    Without a ``stacking`` policy every promotion is priced alone and the best one wins.
    Raises `PricingError` for a cart that cannot be priced.
    """
    base = base_cart(lines, products, ctx.currency, shipping)
    ctx = _with_products(ctx, lines, products)
    run = runner or direct_runner(ctx)
    policy = nudges or NudgePolicy()
    named = _by_name(promotions)

    alone = dict(
        zip(
            named,
            await asyncio.gather(*(evaluate(run, p, base, base) for p in named.values())),
            strict=True,
        )
    )
    candidates = [name for name, outcome in alone.items() if outcome.applied]
    plan = await _plan(stacking, ctx, base, [named[n].terms for n in candidates])

    memo: dict[tuple[str, ...], _Chain] = {(): _Chain(base, {})}
    priced = [await _price_sequence(alt, named, run, base, memo) for alt in plan]
    totals = [total_amount(chain.cart) for chain in priced]
    best = min(range(len(priced)), key=lambda i: (totals[i], i), default=None)
    chosen = priced[best] if best is not None else memo[()]
    chosen_names = plan[best] if best is not None else ()
    final = chosen.cart

    applied_names = [a.name for a in final.applied]
    together = {(a, b) for alt in plan for a in alt for b in alt}
    not_applied: list[NotApplied] = []
    found: list[Nudge] = []
    for name, promotion in named.items():
        nudge: Nudge | None = None
        if name in applied_names:
            nudge = chosen.outcomes[name].nudge
        elif not alone[name].applied:
            outcome = await _on_final(promotion, alone[name], final, run, base)
            not_applied.append(_not_applied(name, outcome))
            nudge = outcome.nudge
        elif name in chosen_names:
            not_applied.append(_not_applied(name, chosen.outcomes[name]))
            nudge = chosen.outcomes[name].nudge
        else:
            missed, nudge = await _lost(name, named, applied_names, together, final, run, base)
            not_applied.append(missed)
        if nudge is not None and policy.close_enough(nudge):
            found.append(replace(nudge, promotion=name))
    nudges_shown = await _with_suggestions(ctx, found[: policy.max_nudges], suggest, policy)
    return replace(final, not_applied=tuple(not_applied), nudges=tuple(nudges_shown))


async def _on_final(
    promotion: Promotion,
    alone: PromotionOutcome,
    final: PricedCart,
    run: PromotionRunner,
    base: PricedCart,
) -> PromotionOutcome:
    """What a promotion that does not apply says about the final cart.

    A non-exclusive one is asked again on the final cart, so the amount it says is missing
    counts the discounts it would stack with; an exclusive one would replace them, so its
    answer on the undiscounted cart stands.
    """
    if not final.applied or promotion.terms.stacking is Stacking.EXCLUSIVE:
        return alone
    again = await evaluate(run, promotion, base, final)
    return alone if again.applied else again


def _with_products(
    ctx: RequestContext, lines: Sequence[CartLine], products: Mapping[str, Product]
) -> RequestContext:
    """The context promotions see: it knows every cart product, and the cart's lines."""
    merged = {**ctx.products, **products}
    cart_lines = ctx.cart_lines or tuple(lines)
    if merged == ctx.products and cart_lines == ctx.cart_lines:
        return ctx
    return replace(ctx, products=merged, cart_lines=cart_lines)


def _by_name(promotions: Sequence[Promotion]) -> dict[str, Promotion]:
    named: dict[str, Promotion] = {}
    for promotion in promotions:
        name = promotion.terms.name
        if name in named:
            log.warning("two promotions are named %r; the second is ignored", name)
            continue
        named[name] = promotion
    return named


async def _plan(
    stacking: StackingPolicy | None,
    ctx: RequestContext,
    base: PricedCart,
    terms: Sequence[PromotionTerms],
) -> list[tuple[str, ...]]:
    """The policy's alternatives, restricted to ``terms``' names (fail closed: a name the
    engine was not given is dropped, never priced), without duplicates or empty ones."""
    if not terms:
        return []
    plan: StackingPlan | None = None
    if stacking is not None:
        try:
            answer = stacking(ctx, base, terms)
            plan = await answer if inspect.isawaitable(answer) else answer
        except Exception:  # fail closed: no stacking at all, each promotion on its own
            log.exception("the stacking policy failed; promotions are priced one at a time")
    if plan is None:
        return [(t.name,) for t in terms]
    known = {t.name for t in terms}
    alternatives: list[tuple[str, ...]] = []
    for alternative in plan.alternatives:
        names = tuple(dict.fromkeys(n for n in alternative if n in known))
        if len(names) != len(alternative):
            log.warning("stacking plan names unknown or repeated promotions: %r", alternative)
        if names and names not in alternatives:
            alternatives.append(names)
    return alternatives


async def _price_sequence(
    sequence: tuple[str, ...],
    named: Mapping[str, Promotion],
    run: PromotionRunner,
    base: PricedCart,
    memo: dict[tuple[str, ...], _Chain],
) -> _Chain:
    """Price ``sequence`` through the chain, reusing the longest already-priced prefix."""
    done = len(sequence)
    while sequence[:done] not in memo:
        done -= 1
    chain = memo[sequence[:done]]
    for i in range(done, len(sequence)):
        promotion = named[sequence[i]]
        terms = promotion.terms
        outcome = await evaluate(run, promotion, base, chain.cart)
        cart = chain.cart
        if outcome.applied:
            cart = apply_outcome(cart, terms.name, terms.title, outcome, source_of(terms))
        chain = _Chain(cart, {**chain.outcomes, terms.name: outcome})
        memo[sequence[: i + 1]] = chain
    return chain


async def _lost(
    name: str,
    named: Mapping[str, Promotion],
    applied_names: Sequence[str],
    together: set[tuple[str, str]],
    final: PricedCart,
    run: PromotionRunner,
    base: PricedCart,
) -> tuple[NotApplied, Nudge | None]:
    """Why a promotion that applies on its own is not in the winning alternative: it does
    not combine with what applied (no alternative has both), or on top of it it no longer
    applies (its own reason, e.g. a threshold the discounts took it under), or the cart is
    a better deal without it."""
    conflicts = tuple(a for a in applied_names if (name, a) not in together)
    if conflicts:
        titles = ", ".join(named[c].terms.title for c in conflicts)
        reason = f"does not combine with {titles}"
        return NotApplied(name, reason, DOES_NOT_COMBINE, None, conflicts), None
    if not applied_names:
        return NotApplied(name, "not chosen by the stacking policy", NOT_CHOSEN), None
    on_top = await evaluate(run, named[name], base, final)
    if not on_top.applied:
        return _not_applied(name, on_top), on_top.nudge
    titles = ", ".join(named[a].terms.title for a in applied_names)
    return NotApplied(name, f"a better deal applies without it: {titles}", BETTER_DEAL), None


async def _with_suggestions(
    ctx: RequestContext,
    nudges: Sequence[Nudge],
    suggest: NudgeSuggester | None,
    policy: NudgePolicy,
) -> list[Nudge]:
    if suggest is None or policy.suggestions == 0:
        return list(nudges)
    in_cart = {line.product_id for line in ctx.cart_lines}

    async def products_for(nudge: Nudge) -> tuple[str, ...]:
        if nudge.product_ids:
            return nudge.product_ids
        try:
            ids = await suggest(ctx, nudge.kind, nudge.missing, nudge.eligible, policy.suggestions)
        except Exception:
            log.exception("nudge suggestions for %r failed; none shown", nudge.promotion)
            return ()
        picked = [pid for pid in dict.fromkeys(ids) if pid not in in_cart]
        return tuple(picked[: policy.suggestions])

    filled = await asyncio.gather(*(products_for(n) for n in nudges))
    return [replace(n, product_ids=ids) for n, ids in zip(nudges, filled, strict=True)]


# -- composition ---------------------------------------------------------------------------


class PromotionSource(Protocol):
    """The promotions that may apply to this request (stored ones, plugin ones)."""

    async def __call__(self, ctx: RequestContext) -> Sequence[Promotion]: ...


@dataclass(frozen=True)
class CouponPricing:
    """Entered codes, resolved: a promotion for each code that may apply to the cart, and a
    reason for each code refused before pricing (unknown, expired, limit reached, ...)."""

    promotions: tuple[Promotion, ...] = ()
    refused: tuple[NotApplied, ...] = ()


class CouponSource(Protocol):
    async def __call__(self, ctx: RequestContext, codes: Sequence[str]) -> CouponPricing: ...


@dataclass(frozen=True)
class CartPricer:
    """Prices a request's cart: its promotions, its entered coupons (``ctx.coupon_codes``),
    the stacking policy, nudges with suggestions, and the shipping fee of its currency."""

    promotions: PromotionSource
    stacking: StackingPolicy | None
    coupons: CouponSource | None = None
    suggest: NudgeSuggester | None = None
    nudges: NudgePolicy = field(default_factory=NudgePolicy)
    shipping_fees: Mapping[str, Money] = field(default_factory=dict)
    runner_for: Callable[[RequestContext], PromotionRunner] = direct_runner

    async def price(
        self, ctx: RequestContext, lines: Sequence[CartLine], products: Mapping[str, Product]
    ) -> PricedCart:
        promotions = list(await self.promotions(ctx))
        coupons = CouponPricing()
        if ctx.coupon_codes and self.coupons is not None:
            coupons = await self.coupons(ctx, ctx.coupon_codes)
        priced = await price_cart(
            ctx,
            lines,
            products,
            promotions=[*promotions, *coupons.promotions],
            runner=self.runner_for(ctx),
            stacking=self.stacking,
            suggest=self.suggest,
            nudges=self.nudges,
            shipping=self.shipping_fees.get(ctx.currency),
        )
        return replace(priced, not_applied=(*priced.not_applied, *coupons.refused))
