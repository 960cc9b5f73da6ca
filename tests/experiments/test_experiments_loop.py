"""The whole feedback loop on both drivers: assign, serve, log the exposure, click, buy,
attribute, report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.experiments import assignment, exposure, lifecycle, overrides
from shopfront.experiments import attribution as at
from shopfront.experiments.reports import experiment_report
from shopfront.platform.money import Money
from shopfront.platform.store import open_store
from shopfront.recommend.contract import Slot
from shopfront.testing import test_settings

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("driver", ["motor", "pymongo"])
async def test_feedback_loop(mongo_uri: str, driver: str) -> None:
    settings = test_settings(mongo_uri, mongo_driver=driver)
    store = await open_store(settings, settings.mongodb_uri)
    try:
        draft = await lifecycle.create_experiment(
            store,
            {
                "name": "loop",
                "traffic": 1.0,
                "variants": [
                    {"name": "control", "weight": 1, "control": True},
                    {"name": "short", "weight": 1, "slots": [{"slot": "for_you", "limit": 2}]},
                ],
            },
            now=T0,
        )
        exp = await lifecycle.start_experiment(store, draft.id, now=T0)
        registry = assignment.ExperimentRegistry(store)
        await registry.refresh()

        # The storefront: assign, apply, serve, record the slot and its exposure.
        assignments = registry.assign("anon-1", T0)
        page = (Slot("for_you", "For you", ("recommended_for_you",), limit=4),)
        applied = overrides.apply_overrides(page, [], [], assignments)
        served = exposure.ServedSlot(
            "rec-1",
            "for_you",
            tuple(
                exposure.ServedItem(f"p{i}", "recommended_for_you", i)
                for i in range(1, applied.slots[0].limit + 1)
            ),
        )
        owner = applied.slot_assignments["for_you"]
        await store.collection(at.RECOMMENDATIONS).insert_one(
            {
                "_id": "rec-1",
                "slot": "for_you",
                "items": [
                    {"product_id": i.product_id, "strategy": i.strategy, "position": i.position}
                    for i in served.items
                ],
                "experiment": owner.experiment_id,
                "variant": owner.variant,
                "created_at": T0,
            }
        )
        await exposure.record_exposure(
            store,
            request_id="req-1",
            user_id=None,
            session_id="anon-1",
            assignments=assignments,
            slots=[served],
            now=T0,
            slot_assignments=applied.slot_assignments,
        )
        # The shopper clicks, logs in, and buys the clicked product without the id.
        await assignment.inherit_assignments(store, "anon-1", "user-1", now=T0, registry=registry)
        events: list[dict[str, Any]] = [
            {
                "event_id": "e-click",
                "type": "click",
                "user_id": None,
                "session_id": "anon-1",
                "timestamp": T0 + timedelta(minutes=1),
                "product_id": "p1",
                "recommendation_id": "rec-1",
                "position": 1,
            },
            {
                "event_id": "e-buy",
                "type": "purchase",
                "user_id": "user-1",
                "session_id": "anon-1",
                "timestamp": T0 + timedelta(hours=1),
                "product_id": "p1",
                "quantity": 2,
                "price": {"amount": 1999, "currency": "EUR"},
                "order_id": "o-1",
            },
        ]
        await store.collection(at.EVENTS).insert_many([dict(e) for e in events])
        summary = await at.attribute_events(store, events, now=T0 + timedelta(hours=1))
        assert (summary.by_recommendation, summary.by_last_click) == (1, 1)

        report = await experiment_report(store, exp.id, now=T0 + timedelta(days=1))
        row = next(v for v in report.variants if v.name == owner.variant)
        assert (row.exposures, row.clicks, row.conversions, row.orders) == (1, 1, 1, 1)
        assert row.impressions == len(served.items)
        assert row.revenue == Money(3998, "EUR")
        assert sum(v.exposures for v in report.variants) == 1  # the session merged into the user

        perf = await at.strategy_performance(store, T0, T0 + timedelta(days=1), currency="EUR")
        assert perf.by_strategy[0].revenue == Money(3998, "EUR")
        assert perf.by_slot[0].key == "for_you"
    finally:
        await store.drop_database()
        await store.close()
