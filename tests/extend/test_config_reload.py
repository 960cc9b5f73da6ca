"""Plugin configuration changed without a restart: published once, swapped in by every
instance whole, or refused whole with the reason (`shopfront.extend.reload`)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from shopfront import (
    Candidate,
    ConfigError,
    CouponOffer,
    CouponStrategySpec,
    Reason,
    RecommenderSpec,
    RequestContext,
    Slot,
    StrategySetup,
    TrainingData,
    hookimpl,
    setting,
)
from shopfront.catalog.products import upsert_products
from shopfront.cli import main
from shopfront.extend.reload import (
    ConfigFollower,
    ReloadError,
    publish_config,
    read_published,
)
from shopfront.platform.config import Settings
from shopfront.platform.keys import Role, create_key
from shopfront.platform.store import Store
from shopfront.plugin_commands import reload_on_sighup
from shopfront.recommend.models import activate, save_version
from shopfront.testing import StorefrontClient, StorefrontClientFactory

from tests.plugin_doubles import product_doc

# Sessions sent with a storefront key must be unguessable (a UUIDv4).
SESSION = "0f8fad5b-d9cb-469f-a165-70867728950e"


@dataclass(frozen=True)
class PicksConfig:
    product_ids: list[str] = setting(default_factory=list, min_len=1)
    reason: str = setting("Staff pick", min_len=1)


class Picks:
    def __init__(self, setup: StrategySetup) -> None:
        self.config = setup.config_as(PicksConfig)
        self.model: Any = None

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        n = len(self.config.product_ids)
        reason = (Reason("PICK", self.config.reason),)
        return [Candidate(p, float(n - i), reason) for i, p in enumerate(self.config.product_ids)]

    # a trained strategy: its fit, and its fitted state (the PersistentModel protocol)
    async def fit(self, data: TrainingData) -> None:
        self.model = {"events": len(data.events)}

    def dump_model(self) -> Any:
        return self.model

    def load_model(self, arrays: Any) -> None:
        self.model = arrays


@dataclass(frozen=True)
class CodeConfig:
    enabled: bool = False
    code: str = setting("HELLO", min_len=3)


class Code:
    def __init__(self, setup: StrategySetup) -> None:
        self.code = setup.config_as(CodeConfig).code
        if self.code == "RESERVED":  # a check the types cannot express
            raise ConfigError("code RESERVED is kept for staff")

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        return [CouponOffer(self.code, self.code, Reason("CODE", "A code"))]


class Shop:
    @hookimpl
    def register_recommenders(self) -> Sequence[RecommenderSpec]:
        return [RecommenderSpec("picks", Picks, "", config_type=PicksConfig, personalized=False)]

    @hookimpl
    def register_coupon_strategies(self) -> Sequence[CouponStrategySpec]:
        return [CouponStrategySpec("code", Code, "", config_type=CodeConfig, personalized=False)]


START = {"strategies": {"picks": {"product_ids": ["p1", "p2"]}}}
INPUT = {"sessionId": SESSION, "page": "HOME", "slots": [{"name": "picks", "strategy": "picks"}]}
NEW = """
[strategies.picks]
product_ids = ["p3", "p1"]
reason = "Back in stock"
timeout_ms = 300

[strategies.code]
enabled = true
code = "RELOADED"
"""


async def _instances(
    store: Store, storefront_client: StorefrontClientFactory, n: int = 2, **overrides: Any
) -> list[StorefrontClient]:
    await upsert_products(store, [product_doc(f"p{i}") for i in range(1, 4)])
    return [
        await storefront_client([("shop", Shop())], config=START, **overrides) for _ in range(n)
    ]


def _follower(sf: StorefrontClient) -> ConfigFollower:
    follower = sf.runtime.plugin_config
    assert follower is not None
    return follower


async def _served(sf: StorefrontClient) -> tuple[list[str], list[str], list[str]]:
    out = await sf.query(INPUT)
    items = out["slots"][0]["items"]
    return (
        [i["product"]["id"] for i in items],
        [i["reasons"][0]["text"] for i in items[:1]],
        [c["code"] for c in out["coupons"]],
    )


async def test_a_published_configuration_is_swapped_in_by_every_instance(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    first, second = await _instances(store, storefront_client)
    assert await _served(first) == (["p1", "p2"], ["Staff pick"], [])
    old = first.host.strategy("picks")
    assert old is not None
    old.obj.model = {"w": np.arange(3)}  # as if trained

    version = await _follower(first).reload_text(NEW, "shop.toml")
    assert version == 1
    assert await _served(first) == (["p3", "p1"], ["Back in stock"], ["RELOADED"])
    # the other instance serves the old configuration until it checks the database
    assert await _served(second) == (["p1", "p2"], ["Staff pick"], [])
    assert await _follower(second).check() is True
    assert await _served(second) == (["p3", "p1"], ["Back in stock"], ["RELOADED"])
    assert await _follower(second).check() is False  # nothing newer

    picks = first.host.strategy("picks")
    assert picks is not None and picks.config.timeout_ms == 300
    assert np.array_equal(picks.obj.model["w"], np.arange(3))  # the model carried over
    [report] = [r for r in second.host.report() if r.name == "shop"]
    config = {s.name: s.config for s in report.strategies}
    assert config["picks"] == {"product_ids": ["p3", "p1"], "reason": "Back in stock"}
    assert _follower(second).status.version == 1
    assert _follower(second).status.source == "shop.toml"


async def test_a_new_instance_starts_on_the_published_configuration(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    await publish_config(store, NEW, "shop.toml")
    [late] = await _instances(store, storefront_client, n=1)
    assert await _served(late) == (["p3", "p1"], ["Back in stock"], ["RELOADED"])


BAD = """
[strategies.picks]
product_ids = [1, 2]

[strategies.code]
enabled = true
code = "OK-CODE"
"""


async def test_an_invalid_configuration_is_refused_whole_with_the_reason(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    first, second = await _instances(store, storefront_client)
    with pytest.raises(ReloadError, match=r"strategy 'picks'.*product_ids\[0\].*integer 1"):
        await _follower(first).reload_text(BAD, "shop.toml")
    assert await read_published(store) is None  # refused before publishing
    # the valid half (the coupon) did not go in either
    assert await _served(first) == (["p1", "p2"], ["Staff pick"], [])

    # published by other means, each instance refuses it and keeps serving
    await publish_config(store, BAD, "shop.toml")
    assert await _follower(second).check() is False
    status = _follower(second).status
    assert (status.version, status.rejected_version) == (0, 1)
    assert status.rejected_reason is not None and "product_ids[0]" in status.rejected_reason
    assert await _served(second) == (["p1", "p2"], ["Staff pick"], [])

    _, merchant = await create_key(store, Role.MERCHANT, "m")
    resp = await second.http.post(
        "/graphql",
        json={"query": "{ pluginConfig { version source rejectedVersion rejectedReason } }"},
        headers={"authorization": f"Bearer {merchant}"},
    )
    shown = resp.json()["data"]["pluginConfig"]
    assert shown["version"] == 0 and shown["rejectedVersion"] == 1
    assert "product_ids[0]" in shown["rejectedReason"]


async def test_a_factory_refusing_its_configuration_refuses_the_reload(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    [sf] = await _instances(store, storefront_client, n=1)
    text = '[strategies.code]\nenabled = true\ncode = "AB"\n'  # too short for min_len=3
    with pytest.raises(ReloadError, match=r"strategy 'code'.*'code': needs at least 3"):
        await _follower(sf).reload_text(text, "shop.toml")
    text = "[strategies.picks]\nproduct_ids = []\n"
    with pytest.raises(ReloadError, match="product_ids"):
        await _follower(sf).reload_text(text, "shop.toml")
    text = '[strategies.code]\nenabled = true\ncode = "RESERVED"\n'
    with pytest.raises(ReloadError, match=r"plugin 'shop', strategy 'code'.*kept for staff"):
        await _follower(sf).reload_text(text, "shop.toml")
    assert await read_published(store) is None
    with pytest.raises(ReloadError, match="not valid TOML"):
        await _follower(sf).reload_text("[strategies", "shop.toml")


async def test_sighup_rereads_the_config_file(
    store: Store, storefront_client: StorefrontClientFactory, tmp_path: Path
) -> None:
    path = tmp_path / "shop.toml"
    path.write_text(NEW)
    [sf] = await _instances(store, storefront_client, n=1, config_file=path)
    done: asyncio.Queue[tuple[int | None, str | None]] = asyncio.Queue()
    remove = reload_on_sighup(
        SimpleNamespace(state=SimpleNamespace(runtime=sf.runtime)),
        lambda version, error: done.put_nowait((version, error)),
    )
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        assert await asyncio.wait_for(done.get(), 30) == (1, None)
        assert await _served(sf) == (["p3", "p1"], ["Back in stock"], ["RELOADED"])
        path.write_text(BAD)
        os.kill(os.getpid(), signal.SIGHUP)
        version, error = await asyncio.wait_for(done.get(), 30)
        assert version is None and error is not None and "product_ids[0]" in error
    finally:
        remove()
    assert (await read_published(store)).version == 1  # type: ignore[union-attr]


async def test_the_cli_publishes_a_valid_file_and_refuses_a_bad_one(
    mongo_uri: str, settings: Settings, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "shop.toml"
    env = {
        "SHOPFRONT_MONGODB_URI": mongo_uri,
        "SHOPFRONT_MONGODB_DATABASE": settings.mongodb_database,
        "SHOPFRONT_PLUGINS_ENTRY_POINTS": "0",
        "SHOPFRONT_CONFIG": str(path),
    }
    cli = CliRunner(env=env)
    path.write_text('[strategies.trending]\nhalf_life_days = "soon"\n')
    bad = await asyncio.to_thread(cli.invoke, main, ["plugins", "reload"])
    assert bad.exit_code == 1
    assert "refused, nothing published" in bad.output
    assert "strategy 'trending'" in bad.output and "half_life_days" in bad.output
    assert await read_published(store) is None

    path.write_text("[strategies.trending]\nhalf_life_days = 3\n")
    ok = await asyncio.to_thread(cli.invoke, main, ["plugin", "reload"])
    assert ok.exit_code == 0, ok.output
    assert "published plugin configuration version 1" in ok.output
    published = await read_published(store)
    assert published is not None and "half_life_days = 3" in published.text


@dataclass(frozen=True)
class TrainedConfig:
    enabled: bool = False


class Trained(Picks):
    """A trained strategy (the registry's PersistentModel protocol) that ships switched off."""

    def __init__(self, setup: StrategySetup) -> None:
        self.model = None
        self.config = PicksConfig(product_ids=["p1"])


class TrainedShop:
    @hookimpl
    def register_recommenders(self) -> Sequence[RecommenderSpec]:
        return [RecommenderSpec("trained", Trained, "", config_type=TrainedConfig)]


async def test_a_trained_strategy_switched_on_by_a_reload_gets_the_model_in_force(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    version = await save_version(
        store,
        artifacts={"trained": {"w": np.arange(4)}},
        fit_seconds={},
        window_start=datetime.now(UTC),
        window_end=datetime.now(UTC),
        sizes={},
    )
    await activate(store, version.version)
    sf = await storefront_client([("trained_shop", TrainedShop())])
    assert sf.host.strategy("trained").obj is None  # type: ignore[union-attr]
    await _follower(sf).reload_text("[strategies.trained]\nenabled = true\n", "shop.toml")
    trained = sf.host.strategy("trained")
    assert trained is not None and trained.obj is not None
    assert np.array_equal(trained.obj.model["w"], np.arange(4))
