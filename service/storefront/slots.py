"""Page slots: the configured slots per page type, and the rules that fill a slot."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopfront.catalog.products import Product
from shopfront.extend.host import PluginHost
from shopfront.platform.config import ConfigError
from shopfront.platform.money import is_currency
from shopfront.recommend.contract import Candidate, Reason, Slot
from shopfront.shoppers.context import PageType
from shopfront.storefront.answer import SlotItem
from shopfront.storefront.request import MAX_SLOT_LIMIT

# -- slots --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotConfig:
    """A configured slot: ``[[slots.<PAGE>]]`` in the config file, or a built-in default."""

    name: str
    title: str
    strategies: tuple[str, ...]
    limit: int = 10
    weights: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    # Restrict candidates to the page's category (CATEGORY pages).
    filter_category: bool = False


def _slot(name: str, title: str, *strategies: str, **kw: Any) -> SlotConfig:
    return SlotConfig(name, title, tuple(strategies), **kw)


_COMPLETE = _slot("complete_your_order", "Complete your order", "bought_together", "trending")
DEFAULT_SLOTS: dict[PageType, tuple[SlotConfig, ...]] = {
    PageType.HOME: (
        _slot("recommended_for_you", "Recommended for you", "recommended_for_you", "trending"),
        _slot("trending", "Trending now", "trending"),
        _slot("recently_viewed", "Recently viewed", "recently_viewed"),
    ),
    PageType.PRODUCT: (
        _slot("similar_items", "Similar items", "similar_items"),
        _slot("bought_together", "Frequently bought together", "bought_together"),
    ),
    PageType.CART: (_COMPLETE,),
    PageType.CATEGORY: (
        _slot(
            "trending_in_category", "Trending in this category", "trending", filter_category=True
        ),
    ),
    PageType.SEARCH: (_slot("trending", "Trending now", "trending"),),
    PageType.CHECKOUT: (_COMPLETE,),
}

_SLOT_KEYS = ("name", "title", "strategies", "limit", "weights", "params", "filter_category")


def humanize(name: str) -> str:
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def slots_from_config(
    raw: Mapping[str, Any], source: str = "config"
) -> dict[PageType, tuple[SlotConfig, ...]]:
    """``DEFAULT_SLOTS`` with the pages the ``[slots]`` section configures replaced."""
    slots = dict(DEFAULT_SLOTS)
    for page_name, entries in raw.items():
        try:
            page = PageType(page_name)
        except ValueError:
            raise ConfigError(
                f"{source}: [slots.{page_name}]: unknown page type; "
                f"known: {', '.join(p.value for p in PageType)}"
            ) from None
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: slots.{page_name} must be an array of tables")
        configured: list[SlotConfig] = []
        for i, entry in enumerate(entries):
            where = f"{source}: slots.{page_name}[{i}]"
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{where} must be a table")
            unknown = sorted(set(entry) - set(_SLOT_KEYS))
            if unknown:
                raise ConfigError(
                    f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_SLOT_KEYS)}"
                )
            configured.append(_slot_config(entry, where))
        names = [s.name for s in configured]
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: slots.{page_name}: slot names must be unique")
        slots[page] = tuple(configured)
    return slots


def configured_slots(pages: Mapping[PageType, Sequence[SlotConfig]]) -> list[Slot]:
    """Every configured slot once (by name, first page first), as the tuner sees it."""
    found: dict[str, Slot] = {}
    for page in pages.values():
        for c in page:
            found.setdefault(
                c.name,
                Slot(c.name, c.title, c.strategies, c.limit, dict(c.weights), params=c.params),
            )
    return list(found.values())


def _slot_config(entry: Mapping[str, Any], where: str) -> SlotConfig:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name: required, a non-empty string")
    strategies = entry.get("strategies")
    if (
        not isinstance(strategies, list)
        or not strategies
        or not all(isinstance(s, str) and s for s in strategies)
    ):
        raise ConfigError(f"{where}.strategies: required, a non-empty array of strategy names")
    title = entry.get("title", humanize(name))
    if not isinstance(title, str):
        raise ConfigError(f"{where}.title: must be a string")
    limit = entry.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SLOT_LIMIT:
        raise ConfigError(f"{where}.limit: must be a whole number from 1 to {MAX_SLOT_LIMIT}")
    weights = entry.get("weights", {})
    if not isinstance(weights, Mapping) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in weights.values()
    ):
        raise ConfigError(f"{where}.weights: must be a table of non-negative numbers")
    params = entry.get("params", {})
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where}.params: must be a table")
    filter_category = entry.get("filter_category", False)
    if not isinstance(filter_category, bool):
        raise ConfigError(f"{where}.filter_category: must be true or false")
    return SlotConfig(
        name=name.strip(),
        title=title,
        strategies=tuple(strategies),
        limit=limit,
        weights={k: float(v) for k, v in weights.items()},
        params=dict(params),
        filter_category=filter_category,
    )


def shipping_from_config(raw: Mapping[str, Any], source: str = "config") -> dict[str, int]:
    """``[shipping]``: flat shipping per currency, in minor units."""
    out: dict[str, int] = {}
    for currency, amount in raw.items():
        if not is_currency(currency):
            raise ConfigError(f"{source}: [shipping] {currency!r} is not an ISO 4217 code")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ConfigError(
                f"{source}: [shipping] {currency}: must be a non-negative whole number of "
                "minor units"
            )
        out[currency] = amount
    return out


# -- blending ------------------------------------------------------------------------------


def merge_by_score(slot: Slot, candidates: Mapping[str, Sequence[Candidate]]) -> list[Candidate]:
    """The host's last resort when no plugin answers ``blend_candidates``: each strategy's
    scores divided by its largest, weighted by ``slot.weights`` (default 1), summed per
    product; ties keep first-seen order. Deliberately minimal — the real blend is a plugin."""
    scores: dict[str, float] = {}
    reasons: dict[str, list[Reason]] = {}
    for name in slot.strategies:
        found = candidates.get(name) or ()
        if not found:
            continue
        top = max(abs(c.score) for c in found) or 1.0
        weight = slot.weights.get(name, 1.0)
        for c in found:
            scores[c.product_id] = scores.get(c.product_id, 0.0) + weight * c.score / top
            kept = reasons.setdefault(c.product_id, [])
            kept.extend(r for r in c.reasons if r not in kept)
    order = {pid: i for i, pid in enumerate(scores)}
    ranked = sorted(scores, key=lambda pid: (-scores[pid], order[pid]))
    return [Candidate(pid, scores[pid], tuple(reasons[pid])) for pid in ranked]


def enforce_rules(
    ranked: Sequence[Candidate], products: Mapping[str, Product], limit: int
) -> tuple[SlotItem, ...]:
    """Safety, not policy: only known, active products, each once, at most ``limit``,
    positioned 1..n."""
    items: list[SlotItem] = []
    seen: set[str] = set()
    for c in ranked:
        product = products.get(c.product_id)
        if product is None or not product.active or c.product_id in seen:
            continue
        seen.add(c.product_id)
        items.append(SlotItem(len(items) + 1, c.score, product, c.reasons))
        if len(items) == limit:
            break
    return tuple(items)


def is_personalized(host: PluginHost, name: str) -> bool:
    """Whether strategy ``name`` uses shopper data (an unknown strategy counts as one)."""
    hosted = host.strategy(name)
    return hosted is None or hosted.personalized
