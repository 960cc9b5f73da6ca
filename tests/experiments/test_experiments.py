"""Experiments: validation, deterministic assignment, traffic layers, lifecycle, overrides."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shopfront import runtime as wiring
from shopfront.experiments import assignment, exposure, lifecycle, overrides
from shopfront.experiments import definitions as ex
from shopfront.experiments.assignment import ExperimentRegistry
from shopfront.experiments.definitions import (
    BUCKETS,
    ErrorCode,
    ExperimentError,
    ExperimentStatus,
    KnownStrategies,
    Variant,
)
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.store import Store, open_store
from shopfront.recommend.contract import Slot
from shopfront.runtime import Runtime
from shopfront.shoppers import privacy
from starlette.applications import Starlette

from tests.waiting import eventually

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def definition(name: str = "recs-test", **over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": name,
        "traffic": 1.0,
        "variants": [
            {"name": "control", "weight": 50, "control": True},
            {
                "name": "blend",
                "weight": 50,
                "slots": [
                    {
                        "slot": "recommended_for_you",
                        "strategies": ["recommended_for_you", "trending"],
                        "weights": {"recommended_for_you": 0.8, "trending": 0.2},
                    }
                ],
            },
        ],
    }
    raw.update(over)
    return raw


# -- assignment (pure) ---------------------------------------------------------------------


def test_assignment_is_stable_and_matches_weights_over_100k_ids() -> None:
    variants = (
        Variant("control", 5, control=True),
        Variant("b", 3),
        Variant("c", 2),
    )
    keys = [f"user-{i}" for i in range(100_000)]
    counts = Counter(assignment.choose_variant("exp_weights", k, variants).name for k in keys)
    for v in variants:
        share = counts[v.name] / len(keys)
        assert share == pytest.approx(v.weight / 10, abs=0.01), (v.name, share)
    # Stable: the same key always gets the same variant, whatever else runs.
    again = [assignment.choose_variant("exp_weights", k, variants).name for k in keys[:2000]]
    assert again == [
        assignment.choose_variant("exp_weights", k, variants).name for k in keys[:2000]
    ]
    # Another experiment's split is independent of this one's.
    other = Counter(
        (
            assignment.choose_variant("exp_weights", k, variants).name,
            assignment.choose_variant("exp_o", k, variants).name,
        )
        for k in keys[:20_000]
    )
    assert other[("control", "control")] / 20_000 == pytest.approx(0.25, abs=0.02)


def test_traffic_share_and_layer_ranges_over_100k_ids() -> None:
    exp = ex.Experiment(
        id="exp_share",
        name="share",
        status=ExperimentStatus.RUNNING,
        traffic=0.3,
        variants=(Variant("control", 1, control=True), Variant("b", 1)),
        bucket_range=(2000, 5000),
    )
    placed = [assignment.place_in_layer("default", [exp], f"s-{i}") for i in range(100_000)]
    enrolled = [p for p in placed if p is not None]
    assert len(enrolled) / 100_000 == pytest.approx(0.3, abs=0.01)
    assert Counter(v.name for _, v in enrolled)["b"] / len(enrolled) == pytest.approx(0.5, abs=0.01)


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.floats(min_value=0.01, max_value=1000), min_size=2, max_size=6),
    key=st.text(min_size=1, max_size=40),
)
def test_choose_variant_is_deterministic_and_configured(weights: list[float], key: str) -> None:
    variants = tuple(Variant(f"v{i}", w, control=i == 0) for i, w in enumerate(weights))
    first = assignment.choose_variant("exp_prop", key, variants)
    assert first in variants
    assert assignment.choose_variant("exp_prop", key, variants) == first


@settings(max_examples=60, deadline=None)
@given(shares=st.lists(st.floats(min_value=0.0001, max_value=1.0), min_size=1, max_size=12))
def test_allocated_ranges_never_overlap(shares: list[float]) -> None:
    taken: list[tuple[int, int]] = []
    for share in shares:
        got = assignment.allocate_range(share, taken)
        if got is None:
            # Refused only when no free gap is large enough.
            edges = [(0, 0), *sorted(taken), (BUCKETS, BUCKETS)]
            gaps = [b[0] - a[1] for a, b in itertools.pairwise(edges)]
            assert max(gaps) < max(1, round(share * BUCKETS))
            continue
        lo, hi = got
        assert 0 <= lo < hi <= BUCKETS
        assert hi - lo == max(1, round(share * BUCKETS))
        assert all(hi <= a or lo >= b for a, b in taken)
        taken.append(got)


# -- validation ----------------------------------------------------------------------------


def test_valid_definition_derives_areas() -> None:
    raw = definition()
    raw["variants"].append(
        {"name": "holdout", "weight": 10, "personalization": False, "coupon_strategies": []}
    )
    exp = ex.parse_experiment(raw, now=NOW)
    assert exp.status is ExperimentStatus.DRAFT
    assert exp.areas == {"slot:recommended_for_you", "*", "coupons"}
    assert exp.control.name == "control"
    assert exp.variant("holdout") is not None
    assert not exp.variant("holdout").override.personalization  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"traffic": 0}, "traffic must be above 0"),
        ({"traffic": 1.5}, "traffic must be above 0 and at most 1"),
        ({"traffic": "half"}, "traffic must be a finite number"),
        ({"name": "  "}, "name must be 1-100 characters"),
        ({"variants": [{"name": "control", "weight": 1, "control": True}]}, "2 to 20 variants"),
        (
            {"variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]},
            "exactly one variant must be the control",
        ),
        (
            {
                "variants": [
                    {"name": "a", "weight": 1, "control": True},
                    {"name": "b", "weight": 1, "control": True},
                ]
            },
            "exactly one variant must be the control (control: true); found 2",
        ),
        (
            {
                "variants": [
                    {"name": "a", "weight": 1, "control": True},
                    {"name": "a", "weight": 1},
                ]
            },
            "variant names must be unique: a",
        ),
        (
            {"variants": [{"name": "a", "weight": 0, "control": True}, {"name": "b", "weight": 1}]},
            "variants[0].weight must be positive",
        ),
        (
            {
                "variants": [
                    {"name": "a", "weight": 1, "control": True},
                    {"name": "b", "weight": -2},
                ]
            },
            "variants[1].weight must be positive",
        ),
        (
            {
                "variants": [
                    {"name": "a", "weight": 1, "control": True},
                    {"name": "b", "weight": 1, "slots": [{"slot": "x", "limit": 500}]},
                ]
            },
            "variants[1].slots[0].limit must be a whole number from 1 to 50",
        ),
        (
            {
                "variants": [
                    {"name": "a", "weight": 1, "control": True},
                    {
                        "name": "b",
                        "weight": 1,
                        "slots": [{"slot": "x", "strategies": ["p"], "weights": {"q": 1}}],
                    },
                ]
            },
            "weights names q, not in the slot's strategies",
        ),
        (
            {
                "variants": [
                    {"name": "a", "weight": 1, "control": True},
                    {"name": "b", "weight": 1, "strategy_params": {"p": {"$where": 1}}},
                ]
            },
            "'$where' is not a valid parameter name",
        ),
        ({"areas": ["the header"]}, "areas[0] must be 'slot:<name>'"),
        ({"currency": "EURO"}, "currency must be an ISO 4217 code"),
        ({"ends_at": NOW - timedelta(days=1)}, "ends_at must be in the future"),
        ({"layer": "has space"}, "layer must be 1-64 characters"),
    ],
)
def test_invalid_definitions_are_refused_with_the_reason(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ExperimentError, match=re.escape(message)):
        ex.parse_experiment(definition(**change), now=NOW)


_names = st.text(alphabet="abcdefghijklmnop", min_size=1, max_size=10)
_param_values = st.one_of(
    st.integers(-1000, 1000), st.booleans(), st.text(max_size=8), st.floats(0, 1)
)


@st.composite
def _definitions(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_names, min_size=2, max_size=5, unique=True))
    variants = []
    for i, name in enumerate(names):
        slots = [
            {
                "slot": slot,
                "strategies": draw(
                    st.none() | st.lists(_names, min_size=1, max_size=3, unique=True)
                ),
                "params": draw(st.dictionaries(_names, _param_values, max_size=3)),
                "limit": draw(st.none() | st.integers(1, 50)),
                "enabled": draw(st.booleans()),
            }
            for slot in draw(st.lists(_names, max_size=3, unique=True))
        ]
        variants.append(
            {
                "name": name,
                "weight": draw(st.floats(0.01, 100)),
                "control": i == 0,
                "personalization": draw(st.booleans()),
                "slots": slots,
                "coupon_strategies": draw(st.none() | st.lists(_names, max_size=2, unique=True)),
                "promotions": draw(st.none() | st.lists(_names, max_size=2, unique=True)),
                "strategy_params": draw(
                    st.dictionaries(
                        _names, st.dictionaries(_names, _param_values, max_size=2), max_size=2
                    )
                ),
            }
        )
    return {
        "name": draw(_names),
        "traffic": draw(st.floats(0.001, 1.0)),
        "layer": draw(_names),
        "variants": variants,
    }


@settings(max_examples=40, deadline=None)
@given(raw=_definitions())
def test_valid_definitions_round_trip_through_their_documents(raw: dict[str, Any]) -> None:
    exp = ex.parse_experiment(raw, now=NOW)
    assert ex.Experiment.from_doc(exp.to_doc()) == exp
    assert [v.name for v in exp.variants] == [v["name"] for v in raw["variants"]]
    # Every area a variant changes is among the experiment's areas.
    for v in exp.variants:
        assert v.override.areas() <= exp.areas


def test_unknown_strategies_are_refused_when_the_host_lists_them() -> None:
    known = KnownStrategies(
        recommenders=frozenset({"recommended_for_you", "trending"}),
        coupon_strategies=frozenset({"welcome"}),
        promotions=frozenset({"free_shipping"}),
    )
    assert ex.parse_experiment(definition(), now=NOW, known=known)
    raw = definition()
    raw["variants"][1]["slots"][0]["strategies"] = ["recommended_for_you", "magic"]
    raw["variants"][1]["slots"][0]["weights"] = None
    with pytest.raises(ExperimentError, match="unknown recommender 'magic'"):
        ex.parse_experiment(raw, now=NOW, known=known)
    raw = definition()
    raw["variants"][1]["coupon_strategies"] = ["welcome", "win_back"]
    with pytest.raises(ExperimentError, match="unknown coupon strategy 'win_back'"):
        ex.parse_experiment(raw, now=NOW, known=known)
    raw = definition()
    raw["variants"][1]["promotions"] = ["bogo"]
    with pytest.raises(ExperimentError, match="unknown promotion 'bogo'"):
        ex.parse_experiment(raw, now=NOW, known=known)


def test_area_overlap_rules() -> None:
    assert ex.areas_overlap("slot:a", "slot:a")
    assert not ex.areas_overlap("slot:a", "slot:b")
    assert ex.areas_overlap("*", "promotions")
    assert not ex.areas_overlap("coupons", "promotions")
    assert ex.areas_overlap("strategy:trending", "slot:b")
    assert not ex.areas_overlap("strategy:trending", "strategy:popular")


# -- overrides -----------------------------------------------------------------------------


def _assignment(raw: dict[str, Any], variant: str) -> assignment.Assignment:
    exp = ex.parse_experiment(raw, now=NOW)
    found = exp.variant(variant)
    assert found is not None
    return assignment.Assignment.of(exp, found)


def test_apply_overrides_changes_only_what_the_variant_says() -> None:
    page = (
        Slot(
            "recommended_for_you",
            "For you",
            ("recommended_for_you", "trending"),
            limit=8,
            weights={"recommended_for_you": 0.5, "trending": 0.5},
            params={"diversity": 0.2},
        ),
        Slot("trending", "Trending", ("trending",)),
        Slot("recently_viewed", "Recently viewed", ("recently_viewed",)),
    )
    raw = definition()
    raw["variants"][1]["slots"][0]["params"] = {"diversity": 0.5}
    raw["variants"][1]["slots"][0]["limit"] = 12
    raw["variants"][1]["slots"].append({"slot": "recently_viewed", "enabled": False})
    raw["variants"][1]["strategy_params"] = {"trending": {"window_days": 3}}
    raw["variants"][1]["promotions"] = []
    blend = _assignment(raw, "blend")
    out = overrides.apply_overrides(page, ["welcome"], ["free_shipping"], [blend])
    assert [s.name for s in out.slots] == ["recommended_for_you", "trending"]
    first = out.slots[0]
    assert first.weights == {"recommended_for_you": 0.8, "trending": 0.2}
    assert first.params == {"diversity": 0.5}
    assert first.limit == 12
    assert out.coupon_strategies == ("welcome",)
    assert out.promotions == ()
    assert out.personalized
    assert out.strategy_params == {"trending": {"window_days": 3}}
    # Both remaining slots are changed: one by its override, one by trending's parameters.
    assert set(out.slot_assignments) == {"recommended_for_you", "trending"}

    control = overrides.apply_overrides(
        page, ["welcome"], ["free_shipping"], [_assignment(raw, "control")]
    )
    assert control.slots == page
    assert control.promotions == ("free_shipping",)

    holdout_raw = definition()
    holdout_raw["variants"][1] = {"name": "holdout", "weight": 1, "personalization": False}
    holdout = overrides.apply_overrides(
        page, ["welcome"], [], [_assignment(holdout_raw, "holdout")]
    )
    assert not holdout.personalized
    assert holdout.slots == page
    assert set(holdout.slot_assignments) == {s.name for s in page}


# -- lifecycle and layers (database) -------------------------------------------------------


async def test_lifecycle_create_start_pause_resume_stop(store: Store) -> None:
    exp = await lifecycle.create_experiment(store, definition(traffic=0.25), now=NOW)
    assert exp.status is ExperimentStatus.DRAFT and exp.bucket_range is None
    with pytest.raises(ExperimentError, match="already exists") as dup:
        await lifecycle.create_experiment(store, definition(), now=NOW)
    assert dup.value.code is ErrorCode.CONFLICT

    started = await lifecycle.start_experiment(store, exp.id, now=NOW)
    assert started.status is ExperimentStatus.RUNNING
    assert started.bucket_range == (0, 2500)
    assert started.started_at == NOW
    with pytest.raises(ExperimentError, match="already running"):
        await lifecycle.start_experiment(store, exp.id, now=NOW)

    paused = await lifecycle.pause_experiment(store, exp.id, now=NOW + timedelta(hours=1))
    assert paused.status is ExperimentStatus.PAUSED
    with pytest.raises(ExperimentError, match="is paused; only a running experiment"):
        await lifecycle.pause_experiment(store, exp.id, now=NOW)
    resumed = await lifecycle.start_experiment(store, exp.id, now=NOW + timedelta(hours=2))
    assert resumed.bucket_range == started.bucket_range  # the same shoppers come back
    assert resumed.started_at == NOW

    stopped = await lifecycle.stop_experiment(store, exp.id, now=NOW + timedelta(hours=3))
    assert stopped.status is ExperimentStatus.STOPPED
    with pytest.raises(ExperimentError, match="stopped and cannot restart"):
        await lifecycle.start_experiment(store, exp.id, now=NOW)
    with pytest.raises(ExperimentError, match="no experiment with id") as missing:
        await lifecycle.start_experiment(store, "exp_nope", now=NOW)
    assert missing.value.code is ErrorCode.NOT_FOUND
    listed = await lifecycle.list_experiments(store, [ExperimentStatus.STOPPED])
    assert [e.id for e in listed] == [exp.id]


async def test_same_slot_in_another_layer_cannot_start(store: Store) -> None:
    a = await lifecycle.create_experiment(store, definition("a", traffic=0.2), now=NOW)
    b = await lifecycle.create_experiment(
        store, definition("b", traffic=0.2, layer="other"), now=NOW
    )
    await lifecycle.start_experiment(store, a.id, now=NOW)
    with pytest.raises(ExperimentError, match="slot:recommended_for_you") as refused:
        await lifecycle.start_experiment(store, b.id, now=NOW)
    assert refused.value.code is ErrorCode.CONFLICT
    assert "'a'" in str(refused.value) and "layer 'default'" in str(refused.value)
    # A holdout changes everything, so it conflicts with any other layer too.
    raw = definition("holdout", traffic=0.1, layer="third")
    raw["variants"][1] = {"name": "holdout", "weight": 1, "personalization": False}
    h = await lifecycle.create_experiment(store, raw, now=NOW)
    with pytest.raises(ExperimentError, match=r"changes \*"):
        await lifecycle.start_experiment(store, h.id, now=NOW)
    # Different areas in different layers may both run.
    raw = definition("coupons-test", traffic=1.0, layer="coupons")
    raw["variants"][1] = {"name": "no-coupons", "weight": 1, "coupon_strategies": []}
    c = await lifecycle.create_experiment(store, raw, now=NOW)
    assert (
        await lifecycle.start_experiment(store, c.id, now=NOW)
    ).status is ExperimentStatus.RUNNING


async def test_no_double_enrolment_in_one_layer(store: Store) -> None:
    a = await lifecycle.create_experiment(store, definition("a", traffic=0.5), now=NOW)
    b = await lifecycle.create_experiment(store, definition("b", traffic=0.5), now=NOW)
    c = await lifecycle.create_experiment(store, definition("c", traffic=0.1), now=NOW)
    ra = await lifecycle.start_experiment(store, a.id, now=NOW)
    rb = await lifecycle.start_experiment(store, b.id, now=NOW)
    assert ra.bucket_range == (0, 5000) and rb.bucket_range == (5000, 10000)
    with pytest.raises(ExperimentError, match="no free range"):
        await lifecycle.start_experiment(store, c.id, now=NOW)

    registry = ExperimentRegistry(store)
    await registry.refresh()
    per_shopper = [registry.assign(f"shopper-{i}", NOW) for i in range(20_000)]
    assert all(len(found) == 1 for found in per_shopper)  # in exactly one, never both
    share_a = sum(found[0].experiment_id == a.id for found in per_shopper) / 20_000
    assert share_a == pytest.approx(0.5, abs=0.02)


async def test_concurrent_conflicting_starts_admit_one(store: Store) -> None:
    a = await lifecycle.create_experiment(store, definition("a", traffic=0.5), now=NOW)
    b = await lifecycle.create_experiment(store, definition("b", traffic=0.5, layer="l2"), now=NOW)
    results = await asyncio.gather(
        lifecycle.start_experiment(store, a.id, now=NOW),
        lifecycle.start_experiment(store, b.id, now=NOW),
        return_exceptions=True,
    )
    started = [r for r in results if isinstance(r, ex.Experiment)]
    refused = [r for r in results if isinstance(r, ExperimentError)]
    assert len(started) == 1 and len(refused) == 1, results
    assert refused[0].code is ErrorCode.CONFLICT


async def test_registry_refresh_follows_other_instances_and_serves_from_memory(
    store: Store,
) -> None:
    exp = await lifecycle.create_experiment(store, definition(traffic=1.0), now=NOW)
    serving = ExperimentRegistry(store, refresh_seconds=0.05)
    await serving.start()
    try:
        assert serving.assign("u1", NOW) == []
        await lifecycle.start_experiment(store, exp.id, now=NOW)  # another instance starts it
        await eventually(lambda: bool(serving.assign("u1", NOW)), "the registry saw the start")
        got = serving.assign("u1", NOW)
        assert [a.experiment_id for a in got] == [exp.id]
        assert got[0].variant == assignment.choose_variant(exp.id, "u1", exp.variants).name
        await lifecycle.pause_experiment(store, exp.id, now=NOW)
        await eventually(lambda: not serving.assign("u1", NOW), "the registry saw the pause")
        assert serving.assign("u1", NOW) == []
    finally:
        await serving.close()
    # Assignment needs no database: it still answers with the client closed.
    await lifecycle.start_experiment(store, exp.id, now=NOW)
    own = await open_store(store.settings, store.uri, store.db.name)
    offline = ExperimentRegistry(own)
    await offline.refresh()
    await own.close()
    assert offline.assign("u1", NOW)[0].variant == got[0].variant
    assert offline.assign(None, NOW) == []
    assert offline.assign("u1", NOW + timedelta(days=400))  # no end date


async def test_scheduled_end_stops_assignment(store: Store) -> None:
    ends = NOW + timedelta(days=7)
    exp = await lifecycle.create_experiment(store, definition(ends_at=ends), now=NOW)
    await lifecycle.start_experiment(store, exp.id, now=NOW)
    registry = ExperimentRegistry(store)
    await registry.refresh()
    assert registry.assign("u1", ends - timedelta(seconds=1))
    assert registry.assign("u1", ends) == []


# -- exposure and login --------------------------------------------------------------------


def _served(rec_id: str, slot: str = "recommended_for_you") -> exposure.ServedSlot:
    return exposure.ServedSlot(
        rec_id,
        slot,
        (
            exposure.ServedItem("p1", "recommended_for_you", 1),
            exposure.ServedItem("p2", "trending", 2),
        ),
    )


async def test_record_exposure_writes_first_exposure_and_sampled_impressions(
    store: Store,
) -> None:
    exp = await lifecycle.start_experiment(
        store, (await lifecycle.create_experiment(store, definition(), now=NOW)).id, now=NOW
    )
    registry = ExperimentRegistry(store)
    await registry.refresh()
    got = registry.assign("u1", NOW)
    seen = exposure.FirstExposures()
    # A page without the experiment's slot is not an exposure.
    other = await exposure.record_exposure(
        store,
        request_id="r0",
        user_id="u1",
        session_id="s1",
        assignments=got,
        slots=[_served("rec-0", "trending")],
        now=NOW,
        seen=seen,
    )
    assert other.first_exposures == 0
    assert await store.collection(ex.ASSIGNMENTS).count_documents({}) == 0
    for i in range(3):
        await exposure.record_exposure(
            store,
            request_id=f"r{i + 1}",
            user_id="u1",
            session_id="s1",
            assignments=got,
            slots=[_served(f"rec-{i + 1}")],
            now=NOW + timedelta(minutes=i),
            seen=seen,
        )
    docs = await store.collection(ex.ASSIGNMENTS).find({}).to_list(None)
    assert len(docs) == 1
    assert docs[0]["experiment_id"] == exp.id and docs[0]["shopper"] == "u1"
    assert docs[0]["variant"] == got[0].variant
    assert docs[0]["first_exposed_at"] == NOW
    logged = await store.collection(ex.EXPOSURES).find_one({"_id": "rec-2"})
    assert logged["experiment_id"] == exp.id and logged["variant"] == got[0].variant
    assert [i["strategy"] for i in logged["items"]] == ["recommended_for_you", "trending"]
    unowned = await store.collection(ex.EXPOSURES).find_one({"_id": "rec-0"})
    assert unowned["experiment_id"] is None

    # Sampling: about half of the requests are logged, each standing for two.
    written = 0
    for i in range(400):
        result = await exposure.record_exposure(
            store,
            request_id=f"sampled-{i}",
            user_id=f"x{i}",
            session_id=None,
            assignments=[],
            slots=[_served(f"srec-{i}", "trending")],
            sample_rate=0.5,
            now=NOW,
        )
        written += result.exposures_written
    assert 150 <= written <= 250
    doc = await store.collection(ex.EXPOSURES).find_one({"_id": {"$regex": "^srec-"}})
    assert doc["weight"] == 2.0


async def test_login_inherits_the_sessions_variant(store: Store) -> None:
    exp = await lifecycle.start_experiment(
        store, (await lifecycle.create_experiment(store, definition(), now=NOW)).id, now=NOW
    )
    # A session and a user whose own hashes give different variants.
    session, user = next(
        (f"sess-{i}", f"user-{i}")
        for i in range(1000)
        if assignment.choose_variant(exp.id, f"sess-{i}", exp.variants)
        != assignment.choose_variant(exp.id, f"user-{i}", exp.variants)
    )
    session_variant = assignment.choose_variant(exp.id, session, exp.variants).name
    registry = ExperimentRegistry(store)
    await registry.refresh()
    anon = registry.assign(session, NOW)
    await exposure.record_exposure(
        store,
        request_id="r1",
        user_id=None,
        session_id=session,
        assignments=anon,
        slots=[_served("rec-1")],
        now=NOW,
    )
    result = await assignment.inherit_assignments(
        store, session, user, now=NOW + timedelta(minutes=5), registry=registry
    )
    assert [(r.variant, r.inherited, r.merged) for r in result] == [(session_variant, True, True)]
    assert registry.assign(user, NOW)[0].variant == session_variant
    # Another instance sees it after its refresh; a repeat identify changes nothing.
    fresh = ExperimentRegistry(store)
    await fresh.refresh()
    assert fresh.assign(user, NOW)[0].variant == session_variant
    again = await assignment.inherit_assignments(store, session, user, now=NOW + timedelta(hours=1))
    assert [(r.variant, r.inherited) for r in again] == [(session_variant, True)]
    user_doc = await store.collection(ex.ASSIGNMENTS).find_one({"shopper": user})
    assert user_doc["override"] is True and user_doc["first_exposed_at"] == NOW
    session_doc = await store.collection(ex.ASSIGNMENTS).find_one({"shopper": session})
    assert session_doc["merged_into"] == user and session_doc["user_id"] == user

    # A user with an assignment of their own keeps it (the first assignment wins).
    session2 = next(
        f"sess2-{i}"
        for i in range(1000)
        if assignment.choose_variant(exp.id, f"sess2-{i}", exp.variants).name != session_variant
    )
    await exposure.record_exposure(
        store,
        request_id="r2",
        user_id=None,
        session_id=session2,
        assignments=registry.assign(session2, NOW),
        slots=[_served("rec-2")],
        now=NOW,
    )
    kept = await assignment.inherit_assignments(store, session2, user, now=NOW, registry=registry)
    assert [(r.variant, r.inherited) for r in kept] == [(session_variant, False)]
    assert registry.assign(user, NOW)[0].variant == session_variant

    # A later login elsewhere reaches an instance through its incremental refresh.
    session3, user3 = next(
        (f"sess3-{i}", f"user3-{i}")
        for i in range(1000)
        if assignment.choose_variant(exp.id, f"sess3-{i}", exp.variants)
        != assignment.choose_variant(exp.id, f"user3-{i}", exp.variants)
    )
    await exposure.record_exposure(
        store,
        request_id="r3",
        user_id=None,
        session_id=session3,
        assignments=registry.assign(session3, NOW),
        slots=[_served("rec-3")],
        now=NOW,
    )
    await assignment.inherit_assignments(store, session3, user3, now=NOW + timedelta(minutes=9))
    assert fresh.assign(user3, NOW)[0].variant != fresh.assign(session3, NOW)[0].variant
    await fresh.refresh()
    assert fresh.assign(user3, NOW)[0].variant == fresh.assign(session3, NOW)[0].variant


async def test_erase_and_export_cover_assignments_and_exposures(store: Store) -> None:
    exp = await lifecycle.start_experiment(
        store, (await lifecycle.create_experiment(store, definition(), now=NOW)).id, now=NOW
    )
    registry = ExperimentRegistry(store)
    await registry.refresh()
    for user in ("u1", "u2"):
        await exposure.record_exposure(
            store,
            request_id=f"r-{user}",
            user_id=user,
            session_id=None,
            assignments=registry.assign(user, NOW),
            slots=[_served(f"rec-{user}")],
            now=NOW,
        )
    exported = (await privacy.export_user_data(store, "u1"))["collections"]
    assert [d["experiment_id"] for d in exported["assignments"]] == [exp.id]
    assert [d["_id"] for d in exported["exposures"]] == ["rec-u1"]
    deleted = (await privacy.erase_user(store, "u1")).deleted
    assert (deleted["assignments"], deleted["exposures"]) == (1, 1)
    assert await store.collection(ex.ASSIGNMENTS).count_documents({"user_id": "u2"}) == 1


# -- GraphQL -------------------------------------------------------------------------------

CREATE = """
mutation($input: CreateExperimentInput!) {
  createExperiment(input: $input) {
    id name status traffic layer areas
    variants { name weight control personalization
               slots { slot strategies weights { strategy weight } } couponStrategies }
  }
}
"""


async def test_experiments_through_graphql(
    app: Starlette, graphql: Any, storefront_key: str
) -> None:
    variables = {
        "input": {
            "name": "home-recs",
            "traffic": 0.5,
            "variants": [
                {"name": "control", "weight": 1, "control": True},
                {
                    "name": "blend",
                    "weight": 1,
                    "slots": [
                        {
                            "slot": "recommended_for_you",
                            "weights": [{"strategy": "trending", "weight": 0.9}],
                        }
                    ],
                },
                {"name": "holdout", "weight": 0.2, "personalization": False},
            ],
        }
    }
    res = await graphql(CREATE, variables)
    created = res["data"]["createExperiment"]
    assert created["status"] == "DRAFT"
    assert created["areas"] == ["*", "slot:recommended_for_you"]
    assert created["variants"][1]["slots"][0]["weights"] == [
        {"strategy": "trending", "weight": 0.9}
    ]
    assert created["variants"][2]["personalization"] is False

    bad = dict(variables["input"], name="bad", traffic=2)
    res = await graphql(CREATE, {"input": bad})
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "traffic" in res["errors"][0]["message"]

    start = (
        "mutation($id: ID!) { startExperiment(input: {experimentId: $id}) "
        "{ status trafficRange { start end } } }"
    )
    registry = ExperimentRegistry(app.state.runtime.store)
    app.state.runtime.experiments = registry
    inside = next(f"u{i}" for i in range(100) if assignment.layer_bucket("default", f"u{i}") < 5000)
    assert registry.assign(inside, datetime.now(UTC)) == []
    res = await graphql(start, {"id": created["id"]})
    # The instance that served the mutation assigns at once, without waiting for its poll.
    assert registry.assign(inside, datetime.now(UTC))
    assert res["data"]["startExperiment"] == {
        "status": "RUNNING",
        "trafficRange": {"start": 0, "end": 5000},
    }
    res = await graphql(start, {"id": created["id"]})
    assert res["errors"][0]["extensions"]["code"] == "CONFLICT"
    res = await graphql(
        "mutation($id: ID!) { pauseExperiment(input: {experimentId: $id}) { status } }",
        {"id": created["id"]},
    )
    assert res["data"]["pauseExperiment"]["status"] == "PAUSED"
    res = await graphql("{ experiments { nodes { id name status variants { name } } } }")
    assert res["data"]["experiments"]["nodes"] == [
        {
            "id": created["id"],
            "name": "home-recs",
            "status": "PAUSED",
            "variants": [{"name": "control"}, {"name": "blend"}, {"name": "holdout"}],
        }
    ]
    res = await graphql(
        "mutation($id: ID!) { stopExperiment(input: {experimentId: $id}) { status } }",
        {"id": "exp_x"},
    )
    assert res["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    res = await graphql("{ experiments { nodes { id } } }", key=storefront_key)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    res = await graphql(CREATE, variables, key=storefront_key)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_runtime_wiring(store: Store, settings: Settings) -> None:
    runtime = Runtime(settings=settings, store=store)
    registry = await wiring.start_experiments(runtime)
    try:
        assert runtime.experiments is registry and registry.loaded
        recorder = runtime.exposures
        assert isinstance(recorder, exposure.ExposureRecorder)
        assert recorder.sample_rate == settings.exposure_sample_rate
    finally:
        await wiring.stop_experiments(runtime)
    assert runtime.experiments is None and runtime.exposures is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHOPFRONT_EXPOSURE_SAMPLE_RATE": "1.5"}, "SHOPFRONT_EXPOSURE_SAMPLE_RATE"),
        ({"SHOPFRONT_EXPOSURE_SAMPLE_RATE": "0"}, "SHOPFRONT_EXPOSURE_SAMPLE_RATE"),
        ({"SHOPFRONT_REPORT_CURRENCY": "EURO"}, "SHOPFRONT_REPORT_CURRENCY"),
        ({"SHOPFRONT_ATTRIBUTION_WINDOW_HOURS": "0"}, "SHOPFRONT_ATTRIBUTION_WINDOW_HOURS"),
        ({"SHOPFRONT_EXPERIMENT_REFRESH_SECONDS": "fast"}, "SHOPFRONT_EXPERIMENT_REFRESH_SECONDS"),
    ],
)
def test_experiment_settings_are_validated(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
    assert Settings.from_env({}).attribution_window_hours == 24
