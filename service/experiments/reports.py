"""Experiment reports: per variant exposure, clicks, conversion and revenue, with confidence
intervals, lift against the control, significance and sample-ratio checks.

Definitions
-----------
- **Exposed shoppers** (the unit of analysis): ``assignments`` documents of the experiment with
  a first exposure inside the window, a session merged into its user at login counting once.
- **Impressions**: item impressions of the slots the experiment changed (the sampled exposure
  log, scaled by weight); **clicks**: click attributions on those slots; **CTR** = clicks /
  impressions, Wilson interval.
- **Conversions**: exposed shoppers with at least one purchase after their first exposure and
  before the window ends, any purchase, attributed or not (a variant changes the whole
  experience, and a holdout has no recommendations to attribute to). **Conversion rate** =
  conversions / exposed shoppers, Wilson interval. ``significant`` is a two-sided
  two-proportion z-test (pooled) on conversion against the control at alpha 0.05, and is only
  claimed when both samples are large enough (see warnings). ``liftVsControl`` is the relative
  difference in conversion rate; its interval is Katz's log risk-ratio interval.
- **Revenue per shopper**: revenue of those purchases (in the experiment's currency) over all
  exposed shoppers, zeros included, as Money rounded half-even to the minor unit. Its 95%
  interval is Student's t on the per-shopper values (the normal approximation that Welch's
  test uses); ``revenueSignificant`` is Welch's unequal-variance t-test against the control.
- **Average order value**: revenue / orders, with a t interval over order values.
- **Sample ratio mismatch**: Pearson's chi-square of exposed shoppers per variant against the
  configured weights; flagged when p < 0.001 (the split is broken, not just unlucky).

Every count comes from MongoDB aggregation pipelines ($match on indexed fields, $lookup of
the assignment by shopper, $group per order, per shopper and per variant); Python only sees
one row per variant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from scipy import stats
from shopfront.experiments.attribution import ATTRIBUTIONS, CLICK, EVENTS, PURCHASE
from shopfront.experiments.definitions import ASSIGNMENTS, EXPOSURES, Experiment
from shopfront.experiments.lifecycle import require_experiment
from shopfront.platform.money import Money
from shopfront.platform.store import Store, aggregate

ALPHA = 0.05
SRM_ALPHA = 0.001
CONFIDENCE = 0.95
MIN_OUTCOMES = 10  # conversions and non-conversions per variant the z-test needs


# -- statistics (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class MoneyInterval:
    low: Money
    high: Money


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Wilson score interval of a proportion (good near 0 and with small n)."""
    if n <= 0:
        return None
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(max(0.0, center - half), min(1.0, center + half))


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test of x1/n1 against x2/n2."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None
    z = (x2 / n2 - x1 / n1) / se
    return float(2 * stats.norm.sf(abs(z)))


def ratio_lift_interval(
    x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE
) -> Interval | None:
    """Interval of the relative lift (p2/p1 - 1), from Katz's log risk-ratio interval."""
    if min(x1, x2) <= 0 or n1 <= 0 or n2 <= 0:
        return None
    ratio = (x2 / n2) / (x1 / n1)
    se = math.sqrt(1 / x2 - 1 / n2 + 1 / x1 - 1 / n1)
    z = _z(confidence)
    return Interval(ratio * math.exp(-z * se) - 1, ratio * math.exp(z * se) - 1)


@dataclass(frozen=True)
class Sample:
    """Sufficient statistics of a sample of integer values: n, sum and sum of squares."""

    n: int
    total: int
    sum_sq: int

    @property
    def variance(self) -> Fraction | None:
        if self.n < 2:
            return None
        return (Fraction(self.sum_sq) - Fraction(self.total) ** 2 / self.n) / (self.n - 1)

    @property
    def mean(self) -> Fraction | None:
        return Fraction(self.total, self.n) if self.n > 0 else None


def welch_p_value(a: Sample, b: Sample) -> float | None:
    """Two-sided p-value of Welch's unequal-variance t-test of the means of ``a`` and ``b``."""
    va, vb = a.variance, b.variance
    if va is None or vb is None or (va == 0 and vb == 0):
        return None
    result = stats.ttest_ind_from_stats(
        float(a.total / a.n),
        math.sqrt(float(va)),
        a.n,
        float(b.total / b.n),
        math.sqrt(float(vb)),
        b.n,
        equal_var=False,
    )
    p = float(result.pvalue)
    return None if math.isnan(p) else p


def _to_money(value: Decimal | Fraction, currency: str) -> Money:
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return Money(int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)), currency)


def mean_money(sample: Sample, currency: str) -> Money | None:
    """The sample mean as Money, rounded half-even to the minor unit."""
    mean = sample.mean
    return None if mean is None else _to_money(mean, currency)


def mean_interval(
    sample: Sample, currency: str, confidence: float = CONFIDENCE
) -> MoneyInterval | None:
    """Student-t interval of the mean (clamped at zero: revenue is not negative)."""
    mean, variance = sample.mean, sample.variance
    if mean is None or variance is None:
        return None
    t = Decimal(repr(float(stats.t.ppf(0.5 + confidence / 2, sample.n - 1))))
    se = (Decimal(variance.numerator) / Decimal(variance.denominator) / sample.n).sqrt()
    center = Decimal(mean.numerator) / Decimal(mean.denominator)
    low = max(Decimal(0), center - t * se)
    return MoneyInterval(_to_money(low, currency), _to_money(center + t * se, currency))


def srm_p_value(observed: Sequence[int], weights: Sequence[float]) -> float | None:
    """Chi-square goodness-of-fit p-value of ``observed`` counts against the split the
    ``weights`` configure; None without data."""
    total = sum(observed)
    if total == 0 or len(observed) < 2:
        return None
    weight_sum = sum(weights)
    expected = [total * w / weight_sum for w in weights]
    return float(stats.chisquare(list(observed), expected).pvalue)


# -- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantReport:
    name: str
    control: bool
    weight: float  # configured share of the experiment's traffic, 0..1
    exposures: int
    impressions: int
    clicks: int
    conversions: int
    orders: int
    revenue: Money
    ctr: float | None
    ctr_ci: Interval | None
    conversion_rate: float | None
    conversion_rate_ci: Interval | None
    revenue_per_shopper: Money
    revenue_per_shopper_ci: MoneyInterval | None
    average_order_value: Money | None
    average_order_value_ci: MoneyInterval | None
    lift_vs_control: float | None
    lift_ci: Interval | None
    revenue_lift_vs_control: float | None
    conversion_p_value: float | None
    revenue_p_value: float | None
    significant: bool
    revenue_significant: bool
    verdict: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExperimentReport:
    experiment_id: str
    name: str
    status: str
    currency: str
    start: datetime | None
    end: datetime
    variants: tuple[VariantReport, ...]
    sample_ratio_mismatch: bool
    srm_p_value: float | None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    confidence: float = CONFIDENCE
    other_currency_orders: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: Money as {amount, currency}, times as ISO 8601."""

        def plain(value: Any) -> Any:
            if isinstance(value, Money):
                return {"amount": value.amount, "currency": value.currency}
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        raw = asdict(self)
        # asdict turned Money into dicts already; plain() handles datetimes and nesting.
        result: dict[str, Any] = plain(raw)
        return result


@dataclass
class _Outcome:
    converters: int = 0
    revenue: int = 0
    revenue_sq: int = 0
    orders: int = 0
    order_sq: int = 0
    foreign: int = 0


async def _count_by_variant(
    store: Store, collection: str, pipeline: list[dict[str, Any]]
) -> dict[str, float]:
    rows = await aggregate(store.batch_collection(collection), pipeline)
    return {str(r["_id"]): r["n"] for r in rows if r["_id"] is not None}


async def _outcomes(
    store: Store, exp: Experiment, start: datetime, end: datetime
) -> dict[str, _Outcome]:
    """Purchases after each exposed shopper's first exposure, summed per order, per shopper
    and per variant in one pipeline (starting from the indexed (type, timestamp) match)."""
    currency = exp.currency
    pipeline: list[dict[str, Any]] = [
        {"$match": {"type": PURCHASE, "timestamp": {"$gte": start, "$lte": end}}},
        {
            "$project": {
                "_id": 0,
                "key": {"$ifNull": ["$user_id", "$session_id"]},
                "timestamp": 1,
                "order": {"$ifNull": ["$order_id", "$event_id"]},
                "native": {"$eq": ["$price.currency", currency]},
                "amount": {"$multiply": ["$price.amount", {"$ifNull": ["$quantity", 1]}]},
            }
        },
        {
            "$lookup": {
                "from": ASSIGNMENTS,
                "localField": "key",
                "foreignField": "shopper",
                "as": "a",
            }
        },
        {"$unwind": "$a"},
        {"$match": {"a.experiment_id": exp.id, "a.first_exposed_at": {"$ne": None}}},
        {"$match": {"$expr": {"$gte": ["$timestamp", "$a.first_exposed_at"]}}},
        {
            "$project": {
                "unit": {"$ifNull": ["$a.merged_into", "$a.shopper"]},
                "variant": {"$ifNull": ["$a.unit_variant", "$a.variant"]},
                "order": 1,
                "native": 1,
                "amount": {"$cond": ["$native", "$amount", 0]},
            }
        },
        {
            "$group": {
                "_id": {"unit": "$unit", "variant": "$variant", "order": "$order"},
                "total": {"$sum": "$amount"},
                "native": {"$max": {"$cond": ["$native", 1, 0]}},
            }
        },
        {
            "$group": {
                "_id": {"unit": "$_id.unit", "variant": "$_id.variant"},
                "revenue": {"$sum": "$total"},
                "orders": {"$sum": "$native"},
                "foreign": {"$sum": {"$subtract": [1, "$native"]}},
                "order_sq": {"$sum": {"$multiply": ["$total", "$total"]}},
            }
        },
        {
            "$group": {
                "_id": "$_id.variant",
                "converters": {"$sum": 1},
                "revenue": {"$sum": "$revenue"},
                "revenue_sq": {"$sum": {"$multiply": ["$revenue", "$revenue"]}},
                "orders": {"$sum": "$orders"},
                "order_sq": {"$sum": "$order_sq"},
                "foreign": {"$sum": "$foreign"},
            }
        },
    ]
    rows = await aggregate(store.batch_collection(EVENTS), pipeline)
    return {
        str(r["_id"]): _Outcome(
            converters=int(r["converters"]),
            revenue=int(r["revenue"]),
            revenue_sq=int(r["revenue_sq"]),
            orders=int(r["orders"]),
            order_sq=int(r["order_sq"]),
            foreign=int(r["foreign"]),
        )
        for r in rows
        if r["_id"] is not None
    }


def _relative(value: float | Fraction | None, base: float | Fraction | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return float(value / base) - 1


async def experiment_report(
    store: Store,
    experiment_id: str,
    *,
    now: datetime,
    min_exposures: int = 200,
    confidence: float = CONFIDENCE,
) -> ExperimentReport:
    """The report of one experiment over [started_at, stop / scheduled end / now].

    Raises `ExperimentError` (NOT_FOUND) for an unknown id. A draft has an empty report.
    """
    exp = await require_experiment(store, experiment_id)
    end = exp.report_end(now)
    start = exp.started_at
    names = [v.name for v in exp.variants]
    exposures: dict[str, float] = {}
    impressions: dict[str, float] = {}
    clicks: dict[str, float] = {}
    outcomes: dict[str, _Outcome] = {}
    if start is not None:
        exposures = await _count_by_variant(
            store,
            ASSIGNMENTS,
            [
                {
                    "$match": {
                        "experiment_id": exp.id,
                        "first_exposed_at": {"$lte": end},
                        "merged_into": None,
                    }
                },
                {"$group": {"_id": "$variant", "n": {"$sum": 1}}},
            ],
        )
        impressions = await _count_by_variant(
            store,
            EXPOSURES,
            [
                {"$match": {"experiment_id": exp.id, "kind": "slot", "at": {"$lte": end}}},
                {
                    "$group": {
                        "_id": "$variant",
                        "n": {"$sum": {"$multiply": ["$weight", {"$size": "$items"}]}},
                    }
                },
            ],
        )
        clicks = await _count_by_variant(
            store,
            ATTRIBUTIONS,
            [
                {"$match": {"experiment_id": exp.id, "type": CLICK, "timestamp": {"$lte": end}}},
                {"$group": {"_id": "$variant", "n": {"$sum": 1}}},
            ],
        )
        outcomes = await _outcomes(store, exp, start, end)

    currency = exp.currency
    weight_sum = sum(v.weight for v in exp.variants)
    control = exp.control

    def sample_of(name: str) -> tuple[int, _Outcome]:
        return int(exposures.get(name, 0)), outcomes.get(name, _Outcome())

    def large_enough(name: str) -> list[str]:
        n, out = sample_of(name)
        problems = []
        if n < min_exposures:
            problems.append(
                f"variant {name!r} has {n} exposed shoppers; below {min_exposures} the "
                "estimates are unreliable"
            )
        if n and (out.converters < MIN_OUTCOMES or n - out.converters < MIN_OUTCOMES):
            problems.append(
                f"variant {name!r} has {out.converters} conversions of {n}: the z-test needs at "
                f"least {MIN_OUTCOMES} conversions and {MIN_OUTCOMES} non-conversions"
            )
        return problems

    n_c, out_c = sample_of(control.name)
    rev_c = Sample(n_c, out_c.revenue, out_c.revenue_sq)
    control_problems = large_enough(control.name)
    variants: list[VariantReport] = []
    for v in exp.variants:
        n, out = sample_of(v.name)
        shown = round(impressions.get(v.name, 0))
        clicked = int(clicks.get(v.name, 0))
        revenue = Sample(n, out.revenue, out.revenue_sq)
        orders = Sample(out.orders, out.revenue, out.order_sq)
        problems = large_enough(v.name)
        lift = lift_ci = rev_lift = p_conv = p_rev = None
        significant = rev_significant = False
        if v.control:
            verdict = "control"
        else:
            lift = _relative(
                Fraction(out.converters, n) if n else None,
                Fraction(out_c.converters, n_c) if n_c else None,
            )
            lift_ci = ratio_lift_interval(out_c.converters, n_c, out.converters, n, confidence)
            rev_lift = _relative(revenue.mean, rev_c.mean)
            p_conv = two_proportion_p_value(out_c.converters, n_c, out.converters, n)
            p_rev = welch_p_value(rev_c, revenue)
            adequate = not problems and not control_problems
            significant = adequate and p_conv is not None and p_conv < 1 - confidence
            rev_significant = (
                not (n < min_exposures or n_c < min_exposures)
                and p_rev is not None
                and p_rev < 1 - confidence
            )
            if not adequate:
                verdict = "not enough data"
            elif significant and lift is not None:
                verdict = "better than control" if lift > 0 else "worse than control"
            else:
                verdict = "no significant difference"
        variants.append(
            VariantReport(
                name=v.name,
                control=v.control,
                weight=v.weight / weight_sum,
                exposures=n,
                impressions=shown,
                clicks=clicked,
                conversions=out.converters,
                orders=out.orders,
                revenue=Money(out.revenue, currency),
                ctr=clicked / shown if shown else None,
                ctr_ci=wilson_interval(min(clicked, shown), shown, confidence),
                conversion_rate=out.converters / n if n else None,
                conversion_rate_ci=wilson_interval(out.converters, n, confidence),
                revenue_per_shopper=mean_money(revenue, currency) or Money.zero(currency),
                revenue_per_shopper_ci=mean_interval(revenue, currency, confidence),
                average_order_value=mean_money(orders, currency),
                average_order_value_ci=mean_interval(orders, currency, confidence),
                lift_vs_control=lift,
                lift_ci=lift_ci,
                revenue_lift_vs_control=rev_lift,
                conversion_p_value=p_conv,
                revenue_p_value=p_rev,
                significant=significant,
                revenue_significant=rev_significant,
                verdict=verdict,
                warnings=tuple(problems),
            )
        )

    observed = [int(exposures.get(n, 0)) for n in names]
    srm_p = srm_p_value(observed, [v.weight for v in exp.variants])
    srm = srm_p is not None and srm_p < SRM_ALPHA
    warnings: list[str] = []
    if start is None:
        warnings.append("the experiment has not started: no data yet")
    if srm:
        split = ", ".join(f"{n}: {c}" for n, c in zip(names, observed, strict=True))
        warnings.append(
            f"sample ratio mismatch (chi-square p = {srm_p:.2g} < {SRM_ALPHA}): exposed "
            f"shoppers ({split}) do not match the configured weights; assignment or exposure "
            "logging is broken, so the results cannot be trusted"
        )
    for r in variants:
        warnings.extend(r.warnings)
    foreign = sum(o.foreign for o in outcomes.values())
    if foreign:
        warnings.append(
            f"{foreign} orders in other currencies than {currency} are counted as conversions "
            "but not as revenue"
        )
    unknown = sorted(set(exposures) - set(names))
    if unknown:
        warnings.append(f"exposures for variants no longer configured: {', '.join(unknown)}")
    return ExperimentReport(
        experiment_id=exp.id,
        name=exp.name,
        status=exp.status.value,
        currency=currency,
        start=start,
        end=end,
        variants=tuple(variants),
        sample_ratio_mismatch=srm,
        srm_p_value=srm_p,
        warnings=tuple(warnings),
        confidence=confidence,
        other_currency_orders=foreign,
    )


# -- flat rows for the CLI (table and CSV) -------------------------------------------------

COLUMNS: tuple[str, ...] = (
    "variant",
    "control",
    "weight",
    "exposures",
    "impressions",
    "clicks",
    "ctr",
    "conversions",
    "conversion_rate",
    "conversion_rate_low",
    "conversion_rate_high",
    "lift_vs_control",
    "lift_low",
    "lift_high",
    "conversion_p_value",
    "significant",
    "revenue",
    "revenue_per_shopper",
    "revenue_per_shopper_low",
    "revenue_per_shopper_high",
    "revenue_lift_vs_control",
    "revenue_p_value",
    "revenue_significant",
    "orders",
    "average_order_value",
    "currency",
    "verdict",
)


def _money_text(m: Money | None) -> str:
    return m.format().rsplit(" ", 1)[0] if m is not None else ""


def _num(x: float | None, digits: int = 6) -> str:
    return "" if x is None else f"{x:.{digits}g}"


def report_rows(report: ExperimentReport) -> list[dict[str, str]]:
    """One flat row per variant with the `COLUMNS` (money in major units, e.g. "12.50")."""
    rows = []
    for v in report.variants:
        rows.append(
            {
                "variant": v.name,
                "control": "yes" if v.control else "no",
                "weight": _num(v.weight, 4),
                "exposures": str(v.exposures),
                "impressions": str(v.impressions),
                "clicks": str(v.clicks),
                "ctr": _num(v.ctr),
                "conversions": str(v.conversions),
                "conversion_rate": _num(v.conversion_rate),
                "conversion_rate_low": _num(
                    v.conversion_rate_ci.low if v.conversion_rate_ci else None
                ),
                "conversion_rate_high": _num(
                    v.conversion_rate_ci.high if v.conversion_rate_ci else None
                ),
                "lift_vs_control": _num(v.lift_vs_control),
                "lift_low": _num(v.lift_ci.low if v.lift_ci else None),
                "lift_high": _num(v.lift_ci.high if v.lift_ci else None),
                "conversion_p_value": _num(v.conversion_p_value, 4),
                "significant": "yes" if v.significant else "no",
                "revenue": _money_text(v.revenue),
                "revenue_per_shopper": _money_text(v.revenue_per_shopper),
                "revenue_per_shopper_low": _money_text(
                    v.revenue_per_shopper_ci.low if v.revenue_per_shopper_ci else None
                ),
                "revenue_per_shopper_high": _money_text(
                    v.revenue_per_shopper_ci.high if v.revenue_per_shopper_ci else None
                ),
                "revenue_lift_vs_control": _num(v.revenue_lift_vs_control),
                "revenue_p_value": _num(v.revenue_p_value, 4),
                "revenue_significant": "yes" if v.revenue_significant else "no",
                "orders": str(v.orders),
                "average_order_value": _money_text(v.average_order_value),
                "currency": report.currency,
                "verdict": v.verdict,
            }
        )
    return rows
