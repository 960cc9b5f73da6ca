"""Experiments, their reports, and strategy performance (merchant keys only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from shopfront.experiments import attribution, reports
from shopfront.experiments import definitions as experiments_definitions
from shopfront.experiments import lifecycle as experiments_lifecycle
from shopfront.experiments.definitions import ExperimentError
from shopfront.platform.money import Money as MoneyModel
from shopfront.platform.money import is_currency
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, user_error
from shopfront.schema.pagination import (
    DEFAULT_FIRST,
    Connection,
    check_first,
    connection,
    decode_cursor,
    decode_time,
    encode_cursor,
)
from shopfront.schema.permissions import merchant_field, merchant_mutation
from shopfront.schema.scalars import JSON, Long
from shopfront.schema.types import Money
from strawberry.types import Info

# -- output types --------------------------------------------------------------------------


@strawberry.enum(name="ExperimentStatus")
class ExperimentStatusEnum(Enum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@strawberry.type
class ExperimentStrategyWeight:
    strategy: str
    weight: float


@strawberry.type
class ExperimentStrategyParams:
    strategy: str
    params: JSON


@strawberry.type(description="How a variant changes one storefront slot (null: unchanged).")
class ExperimentSlotOverride:
    slot: str
    strategies: list[str] | None
    weights: list[ExperimentStrategyWeight] | None
    params: JSON
    limit: int | None
    enabled: bool


@strawberry.type(description="A variant and the storefront configuration it applies.")
class ExperimentVariant:
    name: str
    weight: float
    control: bool
    personalization: bool = strawberry.field(
        description="False: a holdout served without any personalization."
    )
    slots: list[ExperimentSlotOverride]
    coupon_strategies: list[str] | None = strawberry.field(
        description="The coupon strategies active in this variant (null: unchanged)."
    )
    promotions: list[str] | None = strawberry.field(
        description="The promotions active in this variant (null: unchanged)."
    )
    strategy_params: list[ExperimentStrategyParams]


@strawberry.type(description="The experiment's hash buckets in its layer (of 10,000).")
class TrafficRange:
    start: int
    end: int


@strawberry.type
class Experiment:
    id: strawberry.ID
    name: str
    description: str
    status: ExperimentStatusEnum
    layer: str
    traffic: float = strawberry.field(description="Share of shoppers in the experiment, 0..1.")
    traffic_range: TrafficRange | None
    areas: list[str] = strawberry.field(
        description="What the variants change ('slot:<name>', 'coupons', 'promotions', "
        "'strategy:<name>', '*' for everything): no shopper is in two experiments that change "
        "an overlapping area."
    )
    currency: str
    variants: list[ExperimentVariant]
    created_at: datetime | None
    started_at: datetime | None
    paused_at: datetime | None
    stopped_at: datetime | None
    ends_at: datetime | None

    @classmethod
    def of(cls, e: experiments_definitions.Experiment) -> Experiment:
        return cls(
            id=strawberry.ID(e.id),
            name=e.name,
            description=e.description,
            status=ExperimentStatusEnum(e.status.value),
            layer=e.layer,
            traffic=e.traffic,
            traffic_range=TrafficRange(start=e.bucket_range[0], end=e.bucket_range[1])
            if e.bucket_range
            else None,
            areas=sorted(e.areas),
            currency=e.currency,
            variants=[_variant(v) for v in e.variants],
            created_at=e.created_at,
            started_at=e.started_at,
            paused_at=e.paused_at,
            stopped_at=e.stopped_at,
            ends_at=e.ends_at,
        )


def _variant(v: experiments_definitions.Variant) -> ExperimentVariant:
    o = v.override
    return ExperimentVariant(
        name=v.name,
        weight=v.weight,
        control=v.control,
        personalization=o.personalization,
        slots=[
            ExperimentSlotOverride(
                slot=s.slot,
                strategies=list(s.strategies) if s.strategies is not None else None,
                weights=[
                    ExperimentStrategyWeight(strategy=k, weight=w) for k, w in s.weights.items()
                ]
                if s.weights is not None
                else None,
                params=JSON(dict(s.params)),
                limit=s.limit,
                enabled=s.enabled,
            )
            for s in o.slots
        ],
        coupon_strategies=list(o.coupon_strategies) if o.coupon_strategies is not None else None,
        promotions=list(o.promotions) if o.promotions is not None else None,
        strategy_params=[
            ExperimentStrategyParams(strategy=k, params=JSON(dict(p)))
            for k, p in o.strategy_params.items()
        ],
    )


@strawberry.type
class RateInterval:
    low: float
    high: float


@strawberry.type
class MoneyInterval:
    low: Money
    high: Money


def _rate_ci(i: reports.Interval | None) -> RateInterval | None:
    return RateInterval(low=i.low, high=i.high) if i else None


def _money_ci(i: reports.MoneyInterval | None) -> MoneyInterval | None:
    return MoneyInterval(low=Money.of(i.low), high=Money.of(i.high)) if i else None


def _money(m: MoneyModel | None) -> Money | None:
    return Money.of(m) if m is not None else None


@strawberry.enum(description="What a variant's report concludes against the control.")
class ExperimentVerdict(Enum):
    CONTROL = "control"
    NOT_ENOUGH_DATA = "not enough data"
    BETTER_THAN_CONTROL = "better than control"
    WORSE_THAN_CONTROL = "worse than control"
    NO_SIGNIFICANT_DIFFERENCE = "no significant difference"


@strawberry.type(description="One variant's results; intervals are 95% confidence intervals.")
class ExperimentVariantReport:
    name: str
    control: bool
    weight: float = strawberry.field(description="Configured share of the experiment, 0..1.")
    exposures: int = strawberry.field(description="Exposed shoppers (the unit of analysis).")
    impressions: int = strawberry.field(description="Item impressions in changed slots.")
    clicks: int
    conversions: int = strawberry.field(description="Exposed shoppers who then purchased.")
    orders: int
    ctr: float | None = strawberry.field(description="Clicks per impression.")
    ctr_ci: RateInterval | None = strawberry.field(description="Wilson interval.")
    conversion_rate: float | None = strawberry.field(description="Conversions per shopper.")
    conversion_rate_ci: RateInterval | None = strawberry.field(description="Wilson interval.")
    revenue: Money
    revenue_per_shopper: Money = strawberry.field(
        description="Revenue over all exposed shoppers, rounded half-even to the minor unit."
    )
    revenue_per_shopper_ci: MoneyInterval | None = strawberry.field(
        description="Student-t interval over per-shopper revenue."
    )
    average_order_value: Money | None
    average_order_value_ci: MoneyInterval | None
    lift_vs_control: float | None = strawberry.field(
        description="Relative difference in conversion rate against the control (0.1 = +10%)."
    )
    lift_ci: RateInterval | None = strawberry.field(
        description="Interval of the lift (Katz log risk ratio)."
    )
    revenue_lift_vs_control: float | None
    conversion_p_value: float | None = strawberry.field(
        description="Two-proportion z-test on conversion against the control."
    )
    revenue_p_value: float | None = strawberry.field(
        description="Welch t-test on revenue per shopper against the control."
    )
    significant: bool = strawberry.field(
        description="Conversion differs from the control (p < 0.05) on a large enough sample."
    )
    revenue_significant: bool
    verdict: ExperimentVerdict
    warnings: list[str]

    @classmethod
    def of(cls, v: reports.VariantReport) -> ExperimentVariantReport:
        return cls(
            name=v.name,
            control=v.control,
            weight=v.weight,
            exposures=v.exposures,
            impressions=v.impressions,
            clicks=v.clicks,
            conversions=v.conversions,
            orders=v.orders,
            ctr=v.ctr,
            ctr_ci=_rate_ci(v.ctr_ci),
            conversion_rate=v.conversion_rate,
            conversion_rate_ci=_rate_ci(v.conversion_rate_ci),
            revenue=Money.of(v.revenue),
            revenue_per_shopper=Money.of(v.revenue_per_shopper),
            revenue_per_shopper_ci=_money_ci(v.revenue_per_shopper_ci),
            average_order_value=_money(v.average_order_value),
            average_order_value_ci=_money_ci(v.average_order_value_ci),
            lift_vs_control=v.lift_vs_control,
            lift_ci=_rate_ci(v.lift_ci),
            revenue_lift_vs_control=v.revenue_lift_vs_control,
            conversion_p_value=v.conversion_p_value,
            revenue_p_value=v.revenue_p_value,
            significant=v.significant,
            revenue_significant=v.revenue_significant,
            verdict=ExperimentVerdict(v.verdict),
            warnings=list(v.warnings),
        )


@strawberry.type
class ExperimentReport:
    experiment_id: strawberry.ID
    name: str
    status: ExperimentStatusEnum
    currency: str
    started_at: datetime | None
    window_end: datetime = strawberry.field(description="Stop, scheduled end, or now.")
    variants: list[ExperimentVariantReport]
    sample_ratio_mismatch: bool = strawberry.field(
        description="Exposed shoppers per variant differ from the configured weights "
        "(chi-square p < 0.001)."
    )
    srm_p_value: float | None
    warnings: list[str]
    confidence: float

    @classmethod
    def of(cls, r: reports.ExperimentReport) -> ExperimentReport:
        return cls(
            experiment_id=strawberry.ID(r.experiment_id),
            name=r.name,
            status=ExperimentStatusEnum(r.status),
            currency=r.currency,
            started_at=r.start,
            window_end=r.end,
            variants=[ExperimentVariantReport.of(v) for v in r.variants],
            sample_ratio_mismatch=r.sample_ratio_mismatch,
            srm_p_value=r.srm_p_value,
            warnings=list(r.warnings),
            confidence=r.confidence,
        )


@strawberry.type(description="A strategy's or slot's funnel; rates are per item impression.")
class FunnelPerformance:
    name: str
    impressions: Long
    clicks: Long
    add_to_carts: Long
    purchases: Long
    ctr: float | None
    add_to_cart_rate: float | None
    conversion_rate: float | None
    revenue: Money
    revenue_per_thousand_impressions: Money | None

    @classmethod
    def of(cls, r: attribution.PerformanceRow) -> FunnelPerformance:
        return cls(
            name=r.key,
            impressions=Long(r.impressions),
            clicks=Long(r.clicks),
            add_to_carts=Long(r.add_to_carts),
            purchases=Long(r.purchases),
            ctr=r.ctr,
            add_to_cart_rate=r.add_to_cart_rate,
            conversion_rate=r.conversion_rate,
            revenue=Money.of(r.revenue),
            revenue_per_thousand_impressions=_money(r.revenue_per_mille),
        )


@strawberry.type(description="A coupon strategy: offers shown, redemptions and their orders.")
class CouponStrategyPerformance:
    strategy: str
    offers: Long
    redemptions: Long
    redemption_rate: float | None
    discount: Money
    revenue: Money = strawberry.field(description="Revenue of the orders the coupons were used on.")


@strawberry.type
class StrategyPerformanceReport:
    from_: datetime = strawberry.field(name="from")
    to: datetime
    currency: str
    strategies: list[FunnelPerformance]
    slots: list[FunnelPerformance]
    coupon_strategies: list[CouponStrategyPerformance]
    other_currency_purchases: int


# -- inputs --------------------------------------------------------------------------------


@strawberry.input
class ExperimentStrategyWeightInput:
    strategy: str
    weight: float


@strawberry.input
class ExperimentStrategyParamsInput:
    strategy: str
    params: JSON


@strawberry.input(description="How a variant changes one slot; leave a field out to keep it.")
class ExperimentSlotOverrideInput:
    slot: str
    strategies: list[str] | None = None
    weights: list[ExperimentStrategyWeightInput] | None = None
    params: JSON | None = None
    limit: int | None = None
    enabled: bool = strawberry.field(default=True, description="False hides the slot.")


@strawberry.input
class ExperimentVariantInput:
    name: str
    weight: float = strawberry.field(description="Relative weight (positive).")
    control: bool = False
    personalization: bool = strawberry.field(
        default=True, description="False: a holdout with no personalization at all."
    )
    slots: list[ExperimentSlotOverrideInput] | None = None
    coupon_strategies: list[str] | None = strawberry.field(
        default=None, description="Exactly these coupon strategies (empty: none; null: as is)."
    )
    promotions: list[str] | None = strawberry.field(
        default=None, description="Exactly these promotions (empty: none; null: as is)."
    )
    strategy_params: list[ExperimentStrategyParamsInput] | None = None


@strawberry.input
class CreateExperimentInput:
    name: str
    traffic: float = strawberry.field(description="Share of shoppers, above 0 and at most 1.")
    variants: list[ExperimentVariantInput]
    description: str = ""
    layer: str = strawberry.field(
        default=experiments_definitions.DEFAULT_LAYER,
        description="Experiments in one layer split its traffic; experiments in different "
        "layers may not change the same area.",
    )
    areas: list[str] | None = strawberry.field(
        default=None, description="Areas changed beyond those the variants imply."
    )
    currency: str | None = strawberry.field(
        default=None, description="Currency of the report's revenue (default from settings)."
    )
    ends_at: datetime | None = None


def _pairs(items: list[Any], where: str, attr: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if item.strategy in out:
            raise ExperimentError(f"{where} names strategy {item.strategy!r} twice")
        out[item.strategy] = getattr(item, attr)
    return out


def _raw(input: CreateExperimentInput, default_currency: str) -> dict[str, Any]:
    variants = []
    for i, v in enumerate(input.variants):
        slots = []
        for j, s in enumerate(v.slots or ()):
            where = f"variants[{i}].slots[{j}].weights"
            slots.append(
                {
                    "slot": s.slot,
                    "strategies": s.strategies,
                    "weights": _pairs(s.weights, where, "weight")
                    if s.weights is not None
                    else None,
                    "params": s.params,
                    "limit": s.limit,
                    "enabled": s.enabled,
                }
            )
        variants.append(
            {
                "name": v.name,
                "weight": v.weight,
                "control": v.control,
                "personalization": v.personalization,
                "slots": slots,
                "coupon_strategies": v.coupon_strategies,
                "promotions": v.promotions,
                "strategy_params": _pairs(
                    v.strategy_params or [], f"variants[{i}].strategy_params", "params"
                ),
            }
        )
    return {
        "name": input.name,
        "traffic": input.traffic,
        "variants": variants,
        "description": input.description,
        "layer": input.layer,
        "areas": input.areas,
        "currency": input.currency or default_currency,
        "ends_at": input.ends_at,
    }


# -- resolvers -----------------------------------------------------------------------------


def _error(exc: ExperimentError) -> GraphQLError:
    return user_error(str(exc), code=ErrorCode(exc.code.value))


def _experiment_cursor(e: experiments_definitions.Experiment) -> str:
    assert e.created_at is not None  # set when the experiment is created
    return encode_cursor("experiments", (e.created_at.isoformat(), e.id))


def _now() -> datetime:
    return datetime.now(UTC)


async def _refresh_registry(ctx: Context) -> None:
    registry = ctx.runtime.experiments
    if registry is not None:
        await registry.refresh()


@strawberry.type
class ExperimentsQuery:
    @merchant_field(description="Experiments, newest first, optionally by status.")
    async def experiments(
        self,
        info: Info[Context, Any],
        status: list[ExperimentStatusEnum] | None = None,
        first: int = DEFAULT_FIRST,
        after: str | None = None,
    ) -> Connection[Experiment]:
        check_first(first, info.context.runtime.settings.max_page_size)
        statuses = (
            [experiments_definitions.ExperimentStatus(s.value) for s in status] if status else None
        )
        last = None
        if after is not None:
            created, last_id = decode_cursor("experiments", after, 2)
            last = (decode_time("experiments", created), last_id)
        found = await experiments_lifecycle.list_experiments(
            info.context.runtime.store, statuses, limit=first + 1, after=last
        )
        return connection(found, first, _experiment_cursor, Experiment.of)

    @merchant_field(description="One experiment by id.")
    async def experiment(self, info: Info[Context, Any], id: strawberry.ID) -> Experiment | None:
        found = await experiments_lifecycle.get_experiment(info.context.runtime.store, str(id))
        return Experiment.of(found) if found else None

    @merchant_field(
        description="Per variant: exposed shoppers, CTR, conversion, revenue per shopper and "
        "average order value with 95% intervals, lift against the control, significance, and "
        "sample ratio mismatch."
    )
    async def experiment_report(
        self, info: Info[Context, Any], id: strawberry.ID
    ) -> ExperimentReport:
        runtime = info.context.runtime
        try:
            report = await reports.experiment_report(
                runtime.store,
                str(id),
                now=_now(),
                min_exposures=runtime.settings.experiment_min_exposures,
            )
        except ExperimentError as exc:
            raise _error(exc) from None
        return ExperimentReport.of(report)

    @merchant_field(
        description="Impressions, clicks, CTR, add-to-cart and conversion rates, attributed "
        "revenue and revenue per thousand impressions per strategy and per slot, and coupon "
        "strategies' redemptions, for events in [from, to)."
    )
    async def strategy_performance(
        self,
        info: Info[Context, Any],
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        currency: str | None = None,
    ) -> StrategyPerformanceReport:
        runtime = info.context.runtime
        code = currency or runtime.settings.report_currency
        if not is_currency(code):
            raise user_error(f"currency must be an ISO 4217 code, got {code!r}")
        if from_.tzinfo is None or to.tzinfo is None:
            raise user_error("from and to must carry a time zone (e.g. 2026-01-01T00:00:00Z)")
        if not from_ < to:
            raise user_error("from must be before to")
        r = await attribution.strategy_performance(runtime.store, from_, to, currency=code)
        return StrategyPerformanceReport(
            from_=r.start,
            to=r.end,
            currency=r.currency,
            strategies=[FunnelPerformance.of(x) for x in r.by_strategy],
            slots=[FunnelPerformance.of(x) for x in r.by_slot],
            coupon_strategies=[
                CouponStrategyPerformance(
                    strategy=c.strategy,
                    offers=Long(c.offers),
                    redemptions=Long(c.redemptions),
                    redemption_rate=c.redemption_rate,
                    discount=Money.of(c.discount),
                    revenue=Money.of(c.revenue),
                )
                for c in r.coupons
            ],
            other_currency_purchases=r.other_currency_purchases,
        )


@strawberry.input(description="The experiment to start or resume.")
class StartExperimentInput:
    experiment_id: strawberry.ID


@strawberry.input(description="The experiment to pause.")
class PauseExperimentInput:
    experiment_id: strawberry.ID


@strawberry.input(description="The experiment to stop.")
class StopExperimentInput:
    experiment_id: strawberry.ID


ExperimentIdInput = StartExperimentInput | PauseExperimentInput | StopExperimentInput


@strawberry.type
class ExperimentsMutation:
    @merchant_mutation(description="Create an experiment as a draft (validated; names unique).")
    async def create_experiment(
        self, info: Info[Context, Any], input: CreateExperimentInput
    ) -> Experiment:
        runtime = info.context.runtime
        known = runtime.known_strategies
        try:
            raw = _raw(input, runtime.settings.report_currency)
            created = await experiments_lifecycle.create_experiment(
                runtime.store,
                raw,
                now=_now(),
                known=known,
            )
        except ExperimentError as exc:
            raise _error(exc) from None
        return Experiment.of(created)

    @merchant_mutation(
        description="Start a draft or resume a paused experiment. Refused when it would share "
        "a changed area with a running experiment of another layer, or its layer is full."
    )
    async def start_experiment(
        self, info: Info[Context, Any], input: StartExperimentInput
    ) -> Experiment:
        return await _change(info, experiments_lifecycle.start_experiment, input)

    @merchant_mutation(description="Stop assigning shoppers; resuming restores the same split.")
    async def pause_experiment(
        self, info: Info[Context, Any], input: PauseExperimentInput
    ) -> Experiment:
        return await _change(info, experiments_lifecycle.pause_experiment, input)

    @merchant_mutation(description="End the experiment for good (its report stays).")
    async def stop_experiment(
        self, info: Info[Context, Any], input: StopExperimentInput
    ) -> Experiment:
        return await _change(info, experiments_lifecycle.stop_experiment, input)


Transition = Callable[..., Awaitable[experiments_definitions.Experiment]]


async def _change(
    info: Info[Context, Any], action: Transition, input: ExperimentIdInput
) -> Experiment:
    ctx = info.context
    try:
        changed = await action(ctx.runtime.store, str(input.experiment_id), now=_now())
    except ExperimentError as exc:
        raise _error(exc) from None
    await _refresh_registry(ctx)
    return Experiment.of(changed)
