"""The demo experiment: created, started a week back, with simulated traffic that the report
and the strategy performance query both see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shopfront.demo.experiment import DEMO_EXPERIMENT, simulate_experiment
from shopfront.experiments import definitions as ex
from shopfront.experiments.attribution import strategy_performance
from shopfront.experiments.reports import experiment_report
from shopfront.platform.store import Store

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


async def test_demo_experiment_has_meaningful_numbers_and_runs_once(store: Store) -> None:
    demo = await simulate_experiment(store, now=NOW, shoppers=60, visitors=500)
    assert demo is not None
    exp = demo.experiment
    assert exp.name == DEMO_EXPERIMENT and exp.status is ex.ExperimentStatus.RUNNING
    assert exp.started_at == NOW - timedelta(days=7)
    assert [v.name for v in exp.variants] == ["control", "personal-blend", "holdout"]
    assert exp.variant("holdout").override.personalization is False  # type: ignore[union-attr]
    assert demo.traffic.clicks > 0 and demo.traffic.orders > 0

    report = await experiment_report(store, exp.id, now=NOW)
    by_name = {v.name: v for v in report.variants}
    assert sum(v.exposures for v in report.variants) == sum(demo.traffic.exposed.values())
    for name, v in by_name.items():
        assert v.exposures == demo.traffic.exposed.get(name, 0)
        assert v.conversions == demo.traffic.converted.get(name, 0)
        assert v.impressions > 0 and v.clicks > 0
    assert sum(v.clicks for v in report.variants) == demo.traffic.clicks
    assert not report.sample_ratio_mismatch

    perf = await strategy_performance(store, NOW - timedelta(days=8), NOW, currency="EUR")
    assert {r.key for r in perf.by_strategy} == {"recommended_for_you", "trending"}
    assert sum(r.clicks for r in perf.by_strategy) == demo.traffic.clicks
    assert sum(r.impressions for r in perf.by_slot) == demo.traffic.impressions

    # A second start of the demo leaves the experiment and its data alone.
    assert await simulate_experiment(store, now=NOW + timedelta(hours=1)) is None
    assert await store.collection(ex.EXPERIMENTS).count_documents({}) == 1
