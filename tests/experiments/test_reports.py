"""Experiment reports: the statistics, simulated experiments with known truths, SRM, GraphQL,
and the `shopfront report experiment` command."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from shopfront.cli import main as cli
from shopfront.demo.experiment import VariantRates, simulate_traffic
from shopfront.experiments import assignment, exposure, lifecycle, reports
from shopfront.experiments import definitions as ex
from shopfront.experiments.reports import Sample
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.store import Store, open_store
from shopfront.testing import test_settings

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
END = T0 + timedelta(days=7)


def two_arms(
    name: str, *, treatment: str = "treatment", weights: tuple[int, int] = (1, 1)
) -> dict[str, Any]:
    return {
        "name": name,
        "traffic": 1.0,
        "variants": [
            {"name": "control", "weight": weights[0], "control": True},
            {
                "name": treatment,
                "weight": weights[1],
                "slots": [{"slot": "recommended_for_you", "limit": 12}],
            },
        ],
    }


async def started(store: Store, raw: dict[str, Any]) -> ex.Experiment:
    # A fixed id: assignment hashes the id, so a fixed seed then gives fixed data.
    created = await lifecycle.create_experiment(
        store, raw, now=T0, experiment_id=f"exp_{raw['name']}"
    )
    return await lifecycle.start_experiment(store, created.id, now=T0)


# -- statistics ----------------------------------------------------------------------------


def test_wilson_interval_known_values() -> None:
    zero = reports.wilson_interval(0, 10)
    assert zero is not None
    assert zero.low == 0 and zero.high == pytest.approx(0.2775, abs=1e-4)
    half = reports.wilson_interval(5, 10)
    assert half is not None
    assert (half.low, half.high) == (
        pytest.approx(0.2366, abs=1e-4),
        pytest.approx(0.7634, abs=1e-4),
    )
    assert reports.wilson_interval(0, 0) is None


def test_two_proportion_z_test_known_value() -> None:
    # p1 = 0.10, p2 = 0.13, n = 1000 each: pooled z = 2.1027, two-sided p = 0.0355.
    p = reports.two_proportion_p_value(100, 1000, 130, 1000)
    assert p == pytest.approx(0.0355, abs=5e-4)
    assert reports.two_proportion_p_value(0, 10, 0, 10) is None  # no variance: no test


def test_sample_ratio_mismatch_p_value() -> None:
    assert reports.srm_p_value([5000, 5000], [1, 1]) == pytest.approx(1.0)
    # chi-square = 16 on one degree of freedom
    assert reports.srm_p_value([5200, 4800], [1, 1]) == pytest.approx(6.334e-5, rel=1e-3)
    assert reports.srm_p_value([900, 100], [9, 1]) == pytest.approx(1.0)
    assert reports.srm_p_value([0, 0], [1, 1]) is None


def test_money_means_round_half_even() -> None:
    assert reports.mean_money(Sample(2, 1, 1), "EUR") == Money(0, "EUR")  # 0.5 -> 0
    assert reports.mean_money(Sample(2, 3, 9), "EUR") == Money(2, "EUR")  # 1.5 -> 2
    assert reports.mean_money(Sample(4, 1001, 1001**2), "EUR") == Money(250, "EUR")
    assert reports.mean_money(Sample(0, 0, 0), "EUR") is None


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
@settings(max_examples=40, deadline=None)
@given(
    a=st.lists(st.integers(min_value=0, max_value=50_000), min_size=2, max_size=40),
    b=st.lists(st.integers(min_value=0, max_value=50_000), min_size=2, max_size=40),
)
def test_sufficient_statistics_match_the_raw_samples(a: list[int], b: list[int]) -> None:
    sa = Sample(len(a), sum(a), sum(x * x for x in a))
    sb = Sample(len(b), sum(b), sum(x * x for x in b))
    expected = Decimal(sum(a)) / len(a)
    assert reports.mean_money(sa, "EUR") == Money(
        int(expected.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)), "EUR"
    )
    p = reports.welch_p_value(sa, sb)
    if len(set(a)) == 1 and len(set(b)) == 1:
        assert p is None
        return
    direct = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert p == pytest.approx(float(direct), rel=1e-6, abs=1e-12)
    ci = reports.mean_interval(sa, "EUR")
    assert (
        ci is not None
        and ci.low.amount <= round(expected) + 1
        and round(expected) - 1 <= ci.high.amount
    )


def test_the_z_test_keeps_its_false_positive_rate() -> None:
    """Over many A/A experiments (10% vs 10%, 2,000 shoppers each) about 5% come out
    significant at alpha 0.05, and a true 10% -> 13% lift is found most of the time."""
    rng = np.random.default_rng(12345)
    runs = 2000
    a = rng.binomial(2000, 0.10, runs)
    b = rng.binomial(2000, 0.10, runs)
    false_positives = sum(
        (p := reports.two_proportion_p_value(int(x), 2000, int(y), 2000)) is not None and p < 0.05
        for x, y in zip(a, b, strict=True)
    )
    assert 0.03 < false_positives / runs < 0.07
    lifted = rng.binomial(2500, 0.13, runs)
    base = rng.binomial(2500, 0.10, runs)
    found = sum(
        (p := reports.two_proportion_p_value(int(x), 2500, int(y), 2500)) is not None and p < 0.05
        for x, y in zip(base, lifted, strict=True)
    )
    assert found / runs > 0.85


# -- simulated experiments -----------------------------------------------------------------


async def test_a_truly_better_variant_is_reported_as_a_significant_lift(store: Store) -> None:
    exp = await started(store, two_arms("ab"))
    truth = {"control": VariantRates(conversion=0.10), "treatment": VariantRates(conversion=0.13)}
    traffic = await simulate_traffic(
        store,
        exp,
        [f"ab-{i:05d}" for i in range(5000)],
        truth,
        start=T0,
        end=END,
        seed=20260302,
        log_impressions=False,
    )
    report = await reports.experiment_report(store, exp.id, now=END + timedelta(days=1))
    control, treatment = report.variants
    assert (control.exposures, treatment.exposures) == (
        traffic.exposed["control"],
        traffic.exposed["treatment"],
    )
    assert control.exposures + treatment.exposures == 5000
    assert control.conversions == traffic.converted["control"]
    assert control.conversion_rate == pytest.approx(0.10, abs=0.015)
    assert treatment.conversion_rate == pytest.approx(0.13, abs=0.015)
    # The intervals hold the true rates; the lift is about +30%.
    assert (
        control.conversion_rate_ci
        and control.conversion_rate_ci.low < 0.10 < control.conversion_rate_ci.high
    )
    assert (
        treatment.conversion_rate_ci
        and treatment.conversion_rate_ci.low < 0.13 < treatment.conversion_rate_ci.high
    )
    assert treatment.lift_vs_control == pytest.approx(0.30, abs=0.15)
    assert treatment.lift_ci and treatment.lift_ci.low < 0.30 < treatment.lift_ci.high
    assert treatment.lift_ci.low > 0
    assert treatment.conversion_p_value is not None and treatment.conversion_p_value < 0.05
    assert treatment.significant and treatment.verdict == "better than control"
    assert not control.significant and control.lift_vs_control is None
    assert not report.sample_ratio_mismatch
    assert report.warnings == ()
    # Money: revenue per shopper is revenue / exposed shoppers, rounded half-even.
    for v in report.variants:
        exact = Decimal(v.revenue.amount) / v.exposures
        assert v.revenue_per_shopper.amount == int(exact.quantize(Decimal(1), ROUND_HALF_EVEN))
        assert v.average_order_value is not None
        assert v.revenue_per_shopper_ci is not None
        assert (
            v.revenue_per_shopper_ci.low <= v.revenue_per_shopper <= v.revenue_per_shopper_ci.high
        )
    assert treatment.revenue_per_shopper.amount > control.revenue_per_shopper.amount


async def test_an_a_a_test_is_not_significant(store: Store) -> None:
    exp = await started(store, two_arms("aa", treatment="same"))
    same = VariantRates(conversion=0.10)
    await simulate_traffic(
        store,
        exp,
        [f"aa-{i:05d}" for i in range(4000)],
        {"control": same, "same": same},
        start=T0,
        end=END,
        seed=8,
        log_impressions=False,
    )
    report = await reports.experiment_report(store, exp.id, now=END)
    control, other = report.variants
    assert control.conversion_rate == pytest.approx(0.10, abs=0.015)
    assert other.lift_vs_control is not None and abs(other.lift_vs_control) < 0.2
    assert other.conversion_p_value is not None and other.conversion_p_value > 0.05
    assert not other.significant and not other.revenue_significant
    assert other.verdict == "no significant difference"
    assert other.lift_ci and other.lift_ci.low < 0 < other.lift_ci.high


async def _exposed(store: Store, exp: ex.Experiment, counts: dict[str, int]) -> None:
    docs = []
    for variant, n in counts.items():
        a = assignment.Assignment.of(exp, exp.variant(variant))  # type: ignore[arg-type]
        docs.extend(
            exposure.assignment_document(a, f"{variant}-{i}", f"{variant}-{i}", None, T0)
            for i in range(n)
        )
    await store.collection(ex.ASSIGNMENTS).insert_many(docs)


async def test_sample_ratio_mismatch_is_flagged_when_the_split_is_skewed(store: Store) -> None:
    skewed = await started(store, two_arms("skewed"))
    await _exposed(store, skewed, {"control": 1200, "treatment": 800})
    report = await reports.experiment_report(store, skewed.id, now=END)
    assert report.sample_ratio_mismatch
    assert report.srm_p_value is not None and report.srm_p_value < 1e-10
    assert any("sample ratio mismatch" in w for w in report.warnings)
    # The configured weights are what is tested: 60/40 is right for weights 3:2.
    await lifecycle.stop_experiment(store, skewed.id, now=END)
    weighted = await started(store, two_arms("weighted", weights=(3, 2)))
    await _exposed(store, weighted, {"control": 1200, "treatment": 800})
    report = await reports.experiment_report(store, weighted.id, now=END)
    assert not report.sample_ratio_mismatch


async def test_window_merged_sessions_currencies_and_small_samples(store: Store) -> None:
    exp = await started(store, two_arms("units"))
    control = assignment.Assignment.of(exp, exp.control)
    docs = [
        # A session exposed in control, merged into its user at login: one shopper.
        {
            **exposure.assignment_document(control, "sess-1", None, "sess-1", T0),
            "merged_into": "u1",
            "unit_variant": "control",
            "user_id": "u1",
        },
        {**exposure.assignment_document(control, "u1", "u1", "sess-1", T0), "source": "identify"},
        exposure.assignment_document(control, "u2", "u2", None, T0 + timedelta(days=2)),
        exposure.assignment_document(control, "u3", "u3", None, T0),
    ]
    await store.collection(ex.ASSIGNMENTS).insert_many(docs)

    def purchase(
        eid: str,
        user: str | None,
        session: str | None,
        when: datetime,
        amount: int,
        order: str,
        currency: str = "EUR",
        quantity: int = 1,
    ) -> dict[str, Any]:
        return {
            "event_id": eid,
            "type": "purchase",
            "user_id": user,
            "session_id": session,
            "timestamp": when,
            "product_id": "p1",
            "quantity": quantity,
            "price": {"amount": amount, "currency": currency},
            "order_id": order,
        }

    await store.collection("events").insert_many(
        [
            # Before login (session only) and after (user): both count for u1, two orders.
            purchase("e1", None, "sess-1", T0 + timedelta(hours=1), 1000, "o1", quantity=2),
            purchase("e2", "u1", "sess-1", T0 + timedelta(hours=5), 501, "o2"),
            purchase("e3", "u1", "sess-1", T0 + timedelta(hours=5), 499, "o2"),
            # Before u2's first exposure: not caused by the experiment.
            purchase("e4", "u2", None, T0 + timedelta(days=1), 9999, "o3"),
            # After the report window: left out.
            purchase("e5", "u3", None, END + timedelta(days=1), 9999, "o4"),
            # Another currency: a conversion, but no EUR revenue.
            purchase("e6", "u3", None, T0 + timedelta(days=1), 700, "o5", currency="USD"),
            # Not in the experiment at all.
            purchase("e7", "u9", None, T0 + timedelta(days=1), 100, "o6"),
        ]
    )
    await lifecycle.stop_experiment(store, exp.id, now=END)
    report = await reports.experiment_report(store, exp.id, now=END + timedelta(days=30))
    assert report.end == END
    c = report.variants[0]
    assert (c.exposures, c.conversions, c.orders) == (3, 2, 2)
    assert c.revenue == Money(3000, "EUR")
    assert c.revenue_per_shopper == Money(1000, "EUR")
    assert c.average_order_value == Money(1500, "EUR")
    assert c.conversion_rate == pytest.approx(2 / 3)
    assert c.verdict == "control"
    treatment = report.variants[1]
    assert treatment.exposures == 0 and treatment.conversion_rate is None
    assert treatment.verdict == "not enough data" and not treatment.significant
    assert any("other currencies" in w for w in report.warnings)
    assert any("below 200" in w for w in report.warnings)


async def test_report_of_a_draft_and_of_an_unknown_id(store: Store) -> None:
    draft = await lifecycle.create_experiment(store, two_arms("draft"), now=T0)
    report = await reports.experiment_report(store, draft.id, now=T0)
    assert report.start is None and all(v.exposures == 0 for v in report.variants)
    assert "has not started" in report.warnings[0]
    with pytest.raises(ex.ExperimentError, match="no experiment"):
        await reports.experiment_report(store, "exp_missing", now=T0)


# -- GraphQL and CLI -----------------------------------------------------------------------

REPORT = """
query($id: ID!) {
  experimentReport(id: $id) {
    variants {
      name exposures clicks conversions ctr conversionRate
      revenuePerShopper { amount currency }
      liftVsControl significant
      conversionRateCi { low high }
      revenuePerShopperCi { low { amount } high { amount } }
      averageOrderValue { amount currency }
      verdict warnings
    }
    sampleRatioMismatch srmPValue warnings
  }
}
"""


async def _clicky_experiment(store: Store) -> ex.Experiment:
    exp = await started(store, two_arms("clicky"))
    rates = {
        "control": VariantRates(ctr=0.05, conversion=0.1),
        "treatment": VariantRates(ctr=0.1, conversion=0.2),
    }
    await simulate_traffic(
        store,
        exp,
        [f"c-{i}" for i in range(300)],
        rates,
        start=T0,
        end=END,
        seed=3,
        visits=(1, 1),
        items_per_slot=4,
        now=END,
    )
    return exp


async def test_experiment_report_through_graphql(
    graphql: Any, store: Store, storefront_key: str
) -> None:
    exp = await _clicky_experiment(store)
    res = await graphql(REPORT, {"id": exp.id})
    data = res["data"]["experimentReport"]
    control, treatment = data["variants"]
    assert control["name"] == "control" and control["liftVsControl"] is None
    assert control["exposures"] + treatment["exposures"] == 300
    assert treatment["clicks"] > control["clicks"] > 0
    assert 0 < control["ctr"] < treatment["ctr"] < 0.2
    assert treatment["revenuePerShopper"]["currency"] == "EUR"
    assert isinstance(treatment["revenuePerShopper"]["amount"], int)
    assert isinstance(treatment["significant"], bool)
    assert data["sampleRatioMismatch"] is False
    assert any("below 200" in w for w in data["warnings"])
    res = await graphql(REPORT, {"id": "exp_nope"})
    assert res["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    res = await graphql(REPORT, {"id": exp.id}, key=storefront_key)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_report_experiment_command(mongo_uri: str) -> None:
    settings: Settings = test_settings(mongo_uri)

    async def seed() -> str:
        store = await open_store(settings, settings.mongodb_uri)
        try:
            return (await _clicky_experiment(store)).id
        finally:
            await store.close()

    async def drop() -> None:
        store = await open_store(settings, settings.mongodb_uri)
        await store.drop_database()
        await store.close()

    experiment_id = asyncio.run(seed())
    env = {
        "SHOPFRONT_MONGODB_URI": settings.mongodb_uri,
        "SHOPFRONT_MONGODB_DATABASE": settings.mongodb_database,
        "COLUMNS": "200",
    }
    runner = CliRunner()
    try:
        as_json = runner.invoke(
            cli, ["report", "experiment", experiment_id, "--format", "json"], env=env
        )
        assert as_json.exit_code == 0, as_json.output
        data = json.loads(as_json.stdout)
        assert [v["name"] for v in data["variants"]] == ["control", "treatment"]
        assert data["variants"][1]["revenue_per_shopper"]["currency"] == "EUR"

        as_csv = runner.invoke(
            cli, ["report", "experiment", experiment_id, "--format", "csv"], env=env
        )
        assert as_csv.exit_code == 0, as_csv.output
        rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
        assert [r["variant"] for r in rows] == ["control", "treatment"]
        assert rows[0]["exposures"] == str(data["variants"][0]["exposures"])
        assert set(reports.COLUMNS) == set(rows[0])

        table = runner.invoke(cli, ["report", "experiment", experiment_id], env=env)
        assert table.exit_code == 0, table.output
        assert "treatment" in table.stdout and "Sample ratio mismatch: no" in table.stdout
        assert str(data["variants"][0]["exposures"]) in table.stdout

        missing = runner.invoke(cli, ["report", "experiment", "exp_nope"], env=env)
        assert missing.exit_code == 1 and "no experiment with id 'exp_nope'" in missing.output
    finally:
        asyncio.run(drop())
