"""A brand promotion: a percentage off every line of one brand."""

from __future__ import annotations

from dataclasses import dataclass

from shopfront import (
    Nudge,
    PricedCart,
    PromotionClass,
    PromotionOutcome,
    PromotionTerms,
    RequestContext,
    StrategySetup,
    setting,
)


@dataclass(frozen=True, kw_only=True)
class BrandPercentConfig:
    """``[strategies.example_brand_percent]``. ``brand`` has no default: it is required once
    the promotion is enabled (kw_only lets a required setting follow ones with defaults)."""

    enabled: bool = False
    brand: str = setting(doc="The brand discounted (as in the product's brand).", min_len=1)
    percent: int = setting(10, doc="Percent off each line of the brand.", min=1, max=100)
    priority: int = setting(100, doc="Place in the pricing chain (lower runs first).")


class BrandPercentOff:
    def __init__(self, setup: StrategySetup) -> None:
        config = setup.config_as(BrandPercentConfig)
        self.brand = config.brand
        self.percent = config.percent
        self._terms = PromotionTerms(
            name=setup.name,
            title=f"{self.percent}% off {self.brand}",
            klass=PromotionClass.PRODUCT,
            priority=config.priority,
        )

    @property
    def terms(self) -> PromotionTerms:
        return self._terms

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        discounts = {}
        for line in priced_so_far.lines:
            product = ctx.products.get(line.product_id)
            if product is not None and product.brand == self.brand:
                # Percent of what is left on the line, so it stacks after earlier promotions;
                # Money.percent rounds half-even to the minor unit.
                amount = line.total.percent(self.percent).amount
                if amount:
                    discounts[line.index] = amount
        if not discounts:
            return PromotionOutcome(
                applied=False,
                reason=f"no {self.brand} products in the cart",
                nudge=Nudge(self.terms.name, f"{self.percent}% off every {self.brand} product"),
            )
        return PromotionOutcome(applied=True, line_discounts=discounts)
