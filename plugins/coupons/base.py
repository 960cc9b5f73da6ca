"""What the built-in coupon strategies share: their offer terms and the minting of codes.

Every strategy's settings (``[strategies.<name>]``) have the same offer terms, `OfferConfig`,
plus its own trigger settings::

    discount = {kind = "percent", percent = "10"}            # what the code gives
    sensitive_discount = {kind = "percent", percent = "15"}  # optional: price-sensitive shoppers
    validity_days = 14                                       # how long a minted code lasts
    min_spend = {amount = 3000, currency = "EUR"}            # optional

A strategy that applies mints one personal code for the shopper and period (the same
shopper, strategy and period always get the same code). Codes belong to a campaign the
strategy owns - one per discount tier and currency, ``auto-<strategy>-<tier>-<currency>`` -
so its redemptions, limits and budget are visible like any other campaign's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shopfront import (
    Campaign,
    CouponDiscount,
    CouponOffer,
    CouponService,
    DiscountKind,
    Money,
    ProductScope,
    Reason,
    RequestContext,
    RuleError,
    StrategySetup,
    same_currency,
    scope_to_doc,
    setting,
)
from shopfront.plugins.coupons.sensitivity import PriceSensitivity


def percent_off(percent: str) -> Callable[[], dict[str, Any]]:
    return lambda: {"kind": "percent", "percent": percent}


@dataclass(frozen=True)
class OfferConfig:
    """The offer terms of every built-in coupon strategy's settings."""

    discount: dict[str, Any] = setting(
        default_factory=percent_off("10"),
        doc='What the code gives: {kind = "percent", percent = "10"}, {kind = "fixed", '
        'amount = {amount = 500, currency = "EUR"}} or {kind = "free_shipping"}.',
    )
    sensitive_discount: dict[str, Any] | None = setting(
        None, doc="What price-sensitive shoppers get instead (optional; same form)."
    )
    validity_days: int = setting(14, doc="How long a minted code lasts, in days.", min=1)
    min_spend: Money | None = setting(None, doc="The order total a code needs (optional).")


@dataclass(frozen=True)
class OfferTerms:
    discount: CouponDiscount
    validity: timedelta
    sensitive_discount: CouponDiscount | None = None
    min_spend: Money | None = None

    @classmethod
    def from_settings(cls, config: OfferConfig) -> OfferTerms:
        """The terms of validated settings; a `RuleError` names a discount that is wrong."""
        sensitive = config.sensitive_discount
        terms = cls(
            discount=_discount(config.discount, "discount"),
            validity=timedelta(days=config.validity_days),
            sensitive_discount=None
            if sensitive is None
            else _discount(sensitive, "sensitive_discount"),
            min_spend=config.min_spend,
        )
        same_currency(terms.amounts, "config")
        return terms

    @property
    def amounts(self) -> tuple[Money | None, ...]:
        sensitive = self.sensitive_discount.amount if self.sensitive_discount else None
        return (self.discount.amount, sensitive, self.min_spend)

    def offered_in(self, currency: str) -> bool:
        """Terms with amounts are offered only in their currency; percentages in any."""
        return all(m is None or m.currency == currency for m in self.amounts)


def _discount(raw: Any, field: str) -> CouponDiscount:
    discount = CouponDiscount.from_doc(raw, field)
    if discount.kind is DiscountKind.FREE_PRODUCT:
        raise RuleError(field, "a personal offer gives a percent, fixed or free-shipping discount")
    return discount


@dataclass
class PersonalCoupons:
    """Mints one strategy's personal codes."""

    strategy: str
    label: str  # what the campaign is called, e.g. "welcome offer"
    terms: OfferTerms
    coupons: CouponService
    sensitivity: PriceSensitivity
    _ensured: set[str] = field(default_factory=set)

    @classmethod
    def from_setup(cls, setup: StrategySetup, label: str, terms: OfferTerms) -> PersonalCoupons:
        return cls(
            strategy=setup.name,
            label=label,
            terms=terms,
            coupons=CouponService(setup.store, setup.settings),
            sensitivity=PriceSensitivity(setup.store),
        )

    async def offer(
        self,
        ctx: RequestContext,
        *,
        period: str,
        title: str,
        reason: Reason,
        eligible: ProductScope | None = None,
        lasts: timedelta | None = None,
    ) -> CouponOffer | None:
        """The shopper's code for ``period`` as an offer, or None when it was already used,
        has expired, or cannot be given in the request's currency."""
        assert ctx.user_id is not None
        sensitive = self.terms.sensitive_discount is not None and (
            await self.sensitivity.is_sensitive(ctx)
        )
        discount = self.terms.sensitive_discount if sensitive else self.terms.discount
        assert discount is not None
        if not self.terms.offered_in(ctx.currency):
            return None
        campaign = await self._campaign(
            ctx.currency, "plus" if sensitive else "std", discount, eligible
        )
        expires = ctx.now + (lasts or self.terms.validity)
        code = await self.coupons.mint_personal_code(
            campaign.id, ctx.user_id, self.strategy, period, expires
        )
        if code.used or (code.expires_at is not None and code.expires_at <= ctx.now):
            return None
        if code.campaign_id != campaign.id:  # minted earlier in another tier: say what it gives
            minted = await self.coupons.get_campaign(code.campaign_id)
            discount = minted.discount if minted is not None else discount
        return CouponOffer(
            code=code.code,
            title=f"{discount.describe().capitalize()}: {title}",
            reason=reason,
            expires_at=code.expires_at,
            campaign_id=code.campaign_id,
            strategy=self.strategy,
        )

    async def _campaign(
        self,
        currency: str,
        tier: str,
        discount: CouponDiscount,
        eligible: ProductScope | None,
    ) -> Campaign:
        scope = eligible or ProductScope()
        cid = f"auto-{self.strategy}-{tier}-{currency}"
        if not scope.everything:  # one campaign per scope (a favourite category, a cart)
            cid += "-" + _digest(scope)
        campaign = Campaign(
            id=cid,
            title=f"{discount.describe().capitalize()}: {self.label}",
            currency=currency,
            discount=discount,
            min_spend=self.terms.min_spend,
            eligible=scope,
            strategy=self.strategy,
        )
        if cid not in self._ensured:
            campaign = await self.coupons.ensure_campaign(campaign)
            self._ensured.add(cid)
        return campaign


def _digest(scope: ProductScope) -> str:
    text = json.dumps(scope_to_doc(scope), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def can_personalize(ctx: RequestContext) -> bool:
    """Personal offers need a signed-in shopper who consented to personalization."""
    return ctx.personalized and ctx.profile is not None and ctx.user_id is not None


def day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")
