"""Plugin configuration changed without a restart, on every instance.

The config file's text is *published* to MongoDB (collection ``plugin_config``, one document
with a ``version`` that only grows) by ``shopfront plugins reload`` or by an instance that got
SIGHUP, after it validated the file against the loaded plugins. Every instance's
`ConfigFollower` polls the document (``SHOPFRONT_PLUGIN_CONFIG_REFRESH_S``), and on a newer
version re-validates it and swaps it in: all of it or none of it.

What a reload changes: every ``[strategies.<name>]`` section — settings, ``enabled`` and the
host keys (``timeout_ms``, breaker settings). Each strategy whose configuration changed is
rebuilt by its factory with the new configuration (a trained recommender's fitted model is
carried over to the new object, settings used in training applying from the next training;
``on_replaced`` lets the runtime give a newly enabled one the model version in force); the
new objects replace the old ones in one step, with no await in between, so a request sees
either the old configuration or the new one for each strategy it calls. If any section is
invalid or any factory refuses its configuration, nothing changes and the reason is logged,
kept in the status (`plugins` query, ``pluginConfig``) and, for ``shopfront plugins reload``
and SIGHUP, reported before anything is published. ``[plugins.*]``, ``[slots.*]`` and
``[shipping]`` are read at start-up only; a reload that changes them says so in the log.

The text is stored as written: ``env:VAR`` references stay references, resolved by each
instance from its own environment, so secrets are never written to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopfront.extend.config import ConfigFile, StrategyConfig, config_from_mapping
from shopfront.extend.host import PluginHost
from shopfront.extend.records import PluginError, Strategy
from shopfront.offers.contract import PromotionTerms
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.store import PyMongoError, ReturnDocument, Store

log = logging.getLogger("shopfront.plugins.config")

COLLECTION = "plugin_config"
DOC_ID = "current"
RESTART_SECTIONS = ("plugins", "slots", "shipping")


@dataclass(frozen=True)
class PublishedConfig:
    """The configuration every instance follows."""

    version: int
    text: str
    source: str  # where it came from (the file's path)
    published_at: datetime


@dataclass(frozen=True)
class ConfigStatus:
    """What this instance serves, and the last version it refused."""

    version: int  # 0: the configuration it started with, nothing published yet
    source: str
    applied_at: datetime
    rejected_version: int | None = None
    rejected_reason: str | None = None


class ReloadError(ConfigError):
    """A configuration was refused whole; the message says why."""


def parse_config_text(text: str, source: str) -> ConfigFile:
    """A config file's text, parsed and shape-checked (a `ReloadError` when it is not)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReloadError(f"{source} is not valid TOML: {exc}") from None
    try:
        return config_from_mapping(data, source=source)
    except ConfigError as exc:
        raise ReloadError(str(exc)) from None


def read_config_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReloadError(f"cannot read {path}: {exc}") from None


async def publish_config(store: Store, text: str, source: str, now: datetime | None = None) -> int:
    """Store ``text`` as the configuration every instance follows; its new version."""
    doc = await store.collection(COLLECTION).find_one_and_update(
        {"_id": DOC_ID},
        {
            "$inc": {"version": 1},
            "$set": {"text": text, "source": source, "published_at": now or datetime.now(UTC)},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    return int(doc["version"])


async def read_published(store: Store) -> PublishedConfig | None:
    doc = await store.collection(COLLECTION).find_one({"_id": DOC_ID})
    if doc is None:
        return None
    return PublishedConfig(
        version=int(doc["version"]),
        text=str(doc["text"]),
        source=str(doc.get("source", "")),
        published_at=doc.get("published_at") or datetime.now(UTC),
    )


@dataclass(frozen=True)
class _Change:
    strategy: Strategy
    config: StrategyConfig
    obj: Any
    terms: PromotionTerms | None


@dataclass(frozen=True)
class Reconfiguration:
    """A validated configuration with its new strategy objects, ready to swap in."""

    config: ConfigFile
    changes: tuple[_Change, ...]

    @property
    def changed(self) -> tuple[str, ...]:
        return tuple(c.strategy.name for c in self.changes)


async def prepare(host: PluginHost, config: ConfigFile) -> Reconfiguration:
    """Validate ``config`` for every loaded strategy and build the objects of those whose
    configuration changed; nothing is swapped. Raises `ReloadError` with every problem."""
    changes: list[_Change] = []
    problems: list[str] = []
    for strategy in host.strategies():
        try:
            new = host.resolve_config(strategy, config)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if new == strategy.config:
            continue
        obj: Any = None
        terms: PromotionTerms | None = None
        if new.enabled:
            try:
                obj, terms = await host.build_object(strategy, new)
            except ConfigError as exc:  # names the plugin, the strategy and the setting
                problems.append(str(exc))
                continue
            except Exception as exc:  # PluginError (or worse), naming the strategy
                problems.append(f"plugin {strategy.plugin.name!r}: {exc}")
                continue
        changes.append(_Change(strategy, new, obj, terms))
    unknown = sorted(set(config.strategies) - {s.name for s in host.strategies()})
    for name in unknown:
        log.warning(
            "%s: [strategies.%s] configures a strategy that is not loaded", config.source, name
        )
    if problems:
        raise ReloadError("; ".join(problems))
    return Reconfiguration(config, tuple(changes))


def _carry_model(old: Any, new: Any) -> None:
    """Give a rebuilt trained recommender the fitted model its predecessor serves."""
    dump, load = getattr(old, "dump_model", None), getattr(new, "load_model", None)
    if callable(dump) and callable(load):
        arrays = dump()
        if arrays is not None:
            load(arrays)


Replaced = Callable[[str, Any, Any], Awaitable[object] | None]


def apply(
    host: PluginHost, plan: Reconfiguration, on_replaced: Replaced | None = None
) -> list[Awaitable[object]]:
    """Swap ``plan`` in: every changed strategy at once (no await in between). Returns what
    ``on_replaced(name, old, new)`` left to await (the caller awaits it after the swap)."""
    follow_up: list[Awaitable[object]] = []
    for change in plan.changes:
        if change.obj is not None and change.strategy.obj is not None:
            _carry_model(change.strategy.obj, change.obj)
    for change in plan.changes:
        strategy, new = change.strategy, change.config
        old_obj = strategy.obj
        strategy.config = new
        strategy.obj = change.obj
        strategy.terms = change.terms
        # The breaker keeps its state (an open breaker stays open); only its limits change.
        strategy.breaker.threshold = new.breaker_failures
        strategy.breaker.cooldown_s = new.breaker_cooldown_ms / 1000
        if on_replaced is not None:
            try:
                pending = on_replaced(strategy.name, old_obj, change.obj)
            except Exception:
                log.exception("after replacing strategy %r", strategy.name)
            else:
                if pending is not None:
                    follow_up.append(pending)
    previous = host.config
    host.config = replace(previous, source=plan.config.source, strategies=plan.config.strategies)
    stale = [s for s in RESTART_SECTIONS if getattr(previous, s) != getattr(plan.config, s)]
    if stale:
        log.warning(
            "plugin configuration: [%s] changed; those sections apply at the next restart",
            "], [".join(stale),
        )
    return follow_up


class ConfigFollower:
    """Keeps this instance on the published plugin configuration (see the module doc)."""

    def __init__(
        self,
        host: PluginHost,
        store: Store,
        *,
        refresh_s: float,
        on_replaced: Replaced | None = None,
    ) -> None:
        self.host = host
        self.store = store
        self.refresh_s = refresh_s
        self.on_replaced = on_replaced
        self.status = ConfigStatus(0, host.config.source, datetime.now(UTC))
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Apply the published configuration, if any, then follow it."""
        try:
            await self.check()
        except (PyMongoError, OSError) as exc:  # the poller retries
            log.warning("could not read the published plugin configuration: %s", exc)
        self._task = asyncio.create_task(self._poll(), name="plugin-config-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.check()
            except Exception:  # keep serving the configuration in force
                log.exception("plugin configuration check failed")

    async def check(self) -> bool:
        """Apply the published configuration if it is newer than this instance's; True when
        it was applied. A refused version is logged and kept in `status`, and not retried."""
        published = await read_published(self.store)
        if published is None:
            return False
        async with self._lock:
            status = self.status
            if published.version <= max(status.version, status.rejected_version or 0):
                return False
            try:
                config = parse_config_text(published.text, published.source)
                plan = await prepare(self.host, config)
            except ReloadError as exc:
                log.error(
                    "plugin configuration version %d from %s refused, keeping version %d: %s",
                    published.version,
                    published.source,
                    status.version,
                    exc,
                )
                self.status = replace(
                    status, rejected_version=published.version, rejected_reason=str(exc)
                )
                return False
            await self._apply(plan, published.version, published.source)
            return True

    async def _apply(self, plan: Reconfiguration, version: int, source: str) -> None:
        follow_up = apply(self.host, plan, self.on_replaced)
        self.status = ConfigStatus(version, source, datetime.now(UTC))
        for pending in follow_up:
            try:
                await pending
            except Exception:
                log.exception("plugin configuration version %d: after the swap", version)
        log.info(
            "plugin configuration version %d from %s applied; strategies rebuilt: %s",
            version,
            source,
            ", ".join(plan.changed) or "none",
        )

    async def reload_text(self, text: str, source: str) -> int:
        """Validate ``text`` here, publish it for every instance, and apply it here: its
        version. Raises `ReloadError` (nothing published) when it is refused."""
        async with self._lock:
            plan = await prepare(self.host, parse_config_text(text, source))
            version = await publish_config(self.store, text, source)
            await self._apply(plan, version, source)
            return version

    async def reload_file(self, path: Path) -> int:
        """`reload_text` with the file at ``path`` (SIGHUP re-reads ``SHOPFRONT_CONFIG``)."""
        return await self.reload_text(read_config_file(path), str(path))


async def validate_and_publish(settings: Settings, store: Store, path: Path) -> int:
    """``shopfront plugins reload``: check the file at ``path`` by starting the plugins with
    it here (as an instance would: its types, bounds and factories), then publish it; its
    version. Raises `ReloadError` with the reason, publishing nothing, when it is refused.
    ``env:`` references resolve from this process's environment."""
    text = read_config_file(path)
    config = parse_config_text(text, str(path))
    try:
        host = await PluginHost.start(settings, store, config=config)
    except (ConfigError, PluginError) as exc:
        raise ReloadError(str(exc)) from None
    await host.close()
    return await publish_config(store, text, str(path))
