"""A brand promotion: a percentage off every line of one brand."""

from __future__ import annotations

from shopfront import (
    ConfigError,
    Nudge,
    PricedCart,
    PromotionClass,
    PromotionOutcome,
    PromotionTerms,
    RequestContext,
    StrategySetup,
)


class BrandPercentOff:
    def __init__(self, setup: StrategySetup) -> None:
        config = setup.config
        self.brand = str(config["brand"])
        self.percent = int(config["percent"])
        if not self.brand:
            raise ConfigError("brand is required")
        if not 0 < self.percent <= 100:
            raise ConfigError(f"percent must be from 1 to 100, got {self.percent}")
        self._terms = PromotionTerms(
            name=setup.name,
            title=f"{self.percent}% off {self.brand}",
            klass=PromotionClass.PRODUCT,
            priority=int(config["priority"]),
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
