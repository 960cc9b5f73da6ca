"""The default blend: how the candidates of a slot's strategies become the items shown.

1. **Consent.** Without personalization consent only the non-personalized strategies count
   (trending, similar items, and those a merchant lists in ``non_personalized``), and the
   shopper's profile is not read at all.
2. **Combine.** Each strategy's scores are normalised to 0..1 (its best candidate is 1) and
   multiplied by the slot's weight for that strategy (default 1); a product proposed by several
   strategies adds up, and keeps every strategy's reasons, the strongest contribution first.
3. **Exclude** what must not be shown: products missing from the catalog, inactive or out of
   stock; the page's own product; what is in the cart; what the shopper marked not interested
   or rated low (``low_rating`` stars or fewer); what they bought within
   ``recently_bought_days`` or rated, unless it is repeatable; and what falls outside the
   slot's filters (category, price). Repeatable means in a category of
   ``repeatable_categories`` (``"*"``: every category). The list is configured, and learned
   from the shop's own purchases at training (`shopfront.recommend.tuning` passes the learned
   categories in the slot's ``params``): strategies never drop purchased products themselves,
   so this is the one place it happens.
4. **Tastes.** For a shopper with history, each product's score is multiplied by
   ``1 + taste_weight * t`` where ``t`` (0..1) is the shopper's decayed affinity to the
   product's brand or category (relative to their strongest) or, failing those, a price close
   to what they usually pay; a strong match adds a reason ("Because you like Northpace").
   Stated preferences count too: a product in a size the shopper gave, or within their price
   range, is boosted by ``stated_boost`` (with a reason); one outside them is buried by it.
5. **Merchant rules** boost or bury products by tag, brand or category (a score factor).
6. **Diversity.** At most ``max_per_category`` products per category and ``max_per_brand`` per
   brand (0 = no cap), walking down the ranking. The caps shape a slot, never shrink it: when
   the candidates cannot fill the slot within the caps (a shop with few categories or brands),
   the best capped-out products fill the remaining places, so a slot of N shows N items
   whenever N eligible products were proposed.
7. **Pins** put chosen products at fixed positions of a slot (if they are available).

Configured in the plugin's start-up section (``[plugins.recommenders.blend]``); a slot's
``params`` may override the scalar settings and ``repeatable_categories`` for that slot.
Cold start needs no special case here: a new shopper's personal strategies return their own
cold-start lists or nothing, and the slot's non-personal strategies fill it.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shopfront import Candidate, Product, Profile, Reason, RequestContext, Slot
from shopfront.plugins.recommenders.history import personal
from shopfront.plugins.recommenders.popularity import SEPARATOR, category_keys

# In ``repeatable_categories``: every product may be shown again (a repeat-purchase shop).
EVERYTHING = "*"

# Built-in strategies that use no shopper data (see each module).
BUILTIN_NON_PERSONALIZED: frozenset[str] = frozenset({"trending", "similar_items"})


@dataclass(frozen=True)
class Rule:
    """Multiply the score of products matching every given field by ``factor``
    (above 1 boosts, below 1 buries)."""

    factor: float
    tag: str | None = None
    brand: str | None = None
    category: str | None = None  # a category path prefix, "Shoes > Running"

    def matches(self, product: Product) -> bool:
        if self.tag is not None and self.tag not in product.tags:
            return False
        if self.brand is not None and self.brand != product.brand:
            return False
        return self.category is None or self.category in category_keys(product.category_path)


@dataclass(frozen=True)
class Pin:
    slot: str
    product_id: str
    position: int  # 1-based


@dataclass(frozen=True)
class BlendPolicy:
    max_per_category: int = 3
    max_per_brand: int = 3
    category_depth: int = 2  # categories compared at this depth (deeper on category pages)
    recently_bought_days: float = 30.0
    low_rating: int = 2
    taste_weight: float = 0.3
    stated_boost: float = 1.5
    repeatable_categories: tuple[str, ...] = ()
    non_personalized: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    pins: tuple[Pin, ...] = ()
    _repeatable: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_repeatable", frozenset(self.repeatable_categories))

    def allowed_without_consent(self, strategy: str) -> bool:
        return strategy in BUILTIN_NON_PERSONALIZED or strategy in self.non_personalized

    def repeatable(self, product: Product) -> bool:
        if EVERYTHING in self._repeatable:
            return True
        return any(key in self._repeatable for key in category_keys(product.category_path))

    def for_slot(self, slot: Slot) -> BlendPolicy:
        """This policy with the slot's overrides from ``slot.params``: the scalar settings,
        and ``repeatable_categories`` (added to the configured ones)."""
        overrides: dict[str, Any] = {k: v for k, v in slot.params.items() if k in SCALARS}
        learned = slot.params.get("repeatable_categories")
        if isinstance(learned, list | tuple) and learned:
            extra = tuple(str(key) for key in learned)
            overrides["repeatable_categories"] = tuple(
                dict.fromkeys((*self.repeatable_categories, *extra))
            )
        return dataclasses.replace(self, **overrides) if overrides else self

    def pins_for(self, slot: str) -> list[Pin]:
        return sorted((p for p in self.pins if p.slot == slot), key=lambda p: p.position)


SCALARS: dict[str, type] = {
    "max_per_category": int,
    "max_per_brand": int,
    "category_depth": int,
    "recently_bought_days": float,
    "low_rating": int,
    "taste_weight": float,
    "stated_boost": float,
}


def parse_policy(config: Mapping[str, Any]) -> BlendPolicy:
    """The policy from the ``blend`` table of the plugin's config; `ValueError` names the key."""
    known = {*SCALARS, "repeatable_categories", "non_personalized", "rules", "pins"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"blend: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for key, kind in SCALARS.items():
        if key in config:
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"blend.{key}: must be a number >= 0, got {value!r}")
            values[key] = kind(value)
    for key in ("repeatable_categories", "non_personalized"):
        if key in config:
            items = config[key]
            if isinstance(items, str) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"blend.{key}: must be a list of strings")
            values[key] = tuple(items)
    values["rules"] = tuple(_rule(i, raw) for i, raw in enumerate(config.get("rules", ())))
    values["pins"] = tuple(_pin(i, raw) for i, raw in enumerate(config.get("pins", ())))
    return BlendPolicy(**values)


def _rule(i: int, raw: Mapping[str, Any]) -> Rule:
    where = f"blend.rules[{i}]"
    action = raw.get("action")
    factor = raw.get("factor", 2.0 if action == "boost" else 0.5)
    if action not in ("boost", "bury"):
        raise ValueError(f"{where}.action: must be 'boost' or 'bury', got {action!r}")
    if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
        raise ValueError(f"{where}.factor: must be a number > 0, got {factor!r}")
    if (action == "boost") != (factor > 1):
        side = "above" if action == "boost" else "below"
        raise ValueError(f"{where}.factor: a {action} needs a factor {side} 1")
    fields = {k: raw.get(k) for k in ("tag", "brand", "category")}
    if not any(isinstance(v, str) and v for v in fields.values()):
        raise ValueError(f"{where}: name a tag, brand or category to match")
    unknown = sorted(set(raw) - {"action", "factor", *fields})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return Rule(float(factor), **{k: str(v) for k, v in fields.items() if v is not None})


def _pin(i: int, raw: Mapping[str, Any]) -> Pin:
    where = f"blend.pins[{i}]"
    slot, product, position = raw.get("slot"), raw.get("product_id"), raw.get("position")
    if not isinstance(slot, str) or not isinstance(product, str):
        raise ValueError(f"{where}: slot and product_id must be strings")
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise ValueError(f"{where}.position: must be a whole number >= 1, got {position!r}")
    return Pin(slot, product, position)


# -- the blend -----------------------------------------------------------------------------


def blend(
    ctx: RequestContext,
    slot: Slot,
    candidates: Mapping[str, Sequence[Candidate]],
    products: Mapping[str, Product],
    policy: BlendPolicy,
) -> list[Candidate]:
    """The slot's items, best first, at most ``slot.limit`` (see the module docstring)."""
    policy = policy.for_slot(slot)
    scores, reasons = combine(ctx, slot, candidates, policy)
    excluded = exclusions(ctx, policy)
    taste = Tastes.of(ctx, policy)
    known: dict[str, Product] = {}  # the candidates' products (no pass over ``products``)
    kept: list[tuple[float, str]] = []
    for pid, score in scores.items():
        product = products.get(pid) or ctx.products.get(pid)
        if product is None or pid in excluded or not available(product):
            continue
        if not within_filters(ctx, slot, product) or recently_bought(ctx, policy, product):
            continue
        if taste is not None:
            factor, why = taste.factor(product)
            score *= factor
            reasons[pid] = [*reasons[pid], *why]
        for rule in policy.rules:
            if rule.matches(product):
                score *= rule.factor
        known[pid] = product
        kept.append((score, pid))
    kept.sort(key=lambda item: (-item[0], item[1]))
    chosen = diversify(ctx, slot, policy, [(pid, s) for s, pid in kept], known)
    items = [Candidate(pid, score, tuple(reasons[pid])) for pid, score in chosen]
    for pin_ in policy.pins_for(slot.name):
        pinned = products.get(pin_.product_id) or ctx.products.get(pin_.product_id)
        if pinned is not None:
            known[pinned.id] = pinned
    return pin(ctx, slot, policy, items, known, excluded)[: slot.limit]


@dataclass(frozen=True)
class Tastes:
    """One shopper's tastes, as the blend's ranking features (built once per slot, bounded
    by the profile's ranked affinity lists)."""

    categories: Mapping[str, float]  # category key -> affinity relative to the strongest
    brands: Mapping[str, float]
    typical_price: tuple[int, str] | None  # (minor units, currency)
    sizes: frozenset[str]
    price_range: tuple[int | None, int | None, str] | None
    weight: float
    stated_boost: float

    @classmethod
    def of(cls, ctx: RequestContext, policy: BlendPolicy) -> Tastes | None:
        """The shopper's tastes, or None without consent or a profile."""
        profile = ctx.profile
        if not personal(ctx) or profile is None:
            return None
        stated = profile.preferences
        low, high = stated.price_min, stated.price_max
        given = low or high
        currency = given.currency if given is not None else ""
        return cls(
            categories=_relative(profile.category_affinities),
            brands=_relative(profile.brand_affinities),
            typical_price=(
                (profile.typical_price.amount, profile.typical_price.currency)
                if profile.typical_price is not None and profile.typical_price.amount > 0
                else None
            ),
            sizes=frozenset(s.casefold() for s in stated.sizes),
            price_range=(
                (low.amount if low else None, high.amount if high else None, currency)
                if currency
                else None
            ),
            weight=policy.taste_weight,
            stated_boost=max(policy.stated_boost, 1.0),
        )

    def factor(self, product: Product) -> tuple[float, list[Reason]]:
        """The score factor for ``product`` and the reasons it adds."""
        why: list[Reason] = []
        brand = self.brands.get(product.brand, 0.0) if product.brand else 0.0
        keys = category_keys(product.category_path)
        deepest = max(
            ((self.categories.get(k, 0.0), k) for k in keys[1:] or keys), default=(0.0, "")
        )
        match = max(brand, deepest[0], self.price_fit(product))
        factor = 1.0 + self.weight * match
        if self.weight > 0 and max(brand, deepest[0]) >= STRONG_TASTE:
            liked = product.brand if brand >= deepest[0] else deepest[1].rsplit(SEPARATOR, 1)[-1]
            why.append(Reason("TASTE", f"Because you like {liked}", "blend"))
        size = _size(product)
        if self.sizes and size is not None:
            if size.casefold() in self.sizes:
                factor *= self.stated_boost
                why.append(Reason("PREFERENCE", f"In your size ({size})", "blend"))
            else:
                factor /= self.stated_boost
        if self.price_range is not None and product.price.currency == self.price_range[2]:
            low, high, _ = self.price_range
            amount = product.price.amount
            if (low is None or amount >= low) and (high is None or amount <= high):
                factor *= self.stated_boost
                why.append(Reason("PREFERENCE", "In your price range", "blend"))
            else:
                factor /= self.stated_boost
        return factor, why

    def price_fit(self, product: Product) -> float:
        """1 at the price the shopper usually pays, falling to 0 at a factor of 4 away."""
        if self.typical_price is None or product.price.currency != self.typical_price[1]:
            return 0.0
        if product.price.amount <= 0:
            return 0.0
        distance = abs(math.log(product.price.amount / self.typical_price[0])) / math.log(4.0)
        return max(0.0, 1.0 - distance) * PRICE_FIT_SHARE


# An affinity at least this close to the shopper's strongest is named in a reason.
STRONG_TASTE = 0.6
# A price that fits counts less than a liked brand or category.
PRICE_FIT_SHARE = 0.5
SIZE_ATTRIBUTES = ("size", "Size", "SIZE")


def _relative(ranked: Sequence[tuple[str, float]]) -> dict[str, float]:
    top = max((score for _, score in ranked), default=0.0)
    return {key: score / top for key, score in ranked if score > 0} if top > 0 else {}


def _size(product: Product) -> str | None:
    for key in SIZE_ATTRIBUTES:
        value = product.attributes.get(key)
        if value:
            return str(value)
    return None


def combine(
    ctx: RequestContext,
    slot: Slot,
    candidates: Mapping[str, Sequence[Candidate]],
    policy: BlendPolicy,
) -> tuple[dict[str, float], dict[str, list[Reason]]]:
    """Weighted sum of normalised scores per product, and its reasons (strongest first)."""
    consent = personal(ctx)
    contributions: dict[str, list[tuple[float, Reason]]] = defaultdict(list)
    totals: dict[str, float] = defaultdict(float)
    for name, proposed in candidates.items():
        if not consent and not policy.allowed_without_consent(name):
            continue
        weight = float(slot.weights.get(name, 1.0))
        if weight <= 0 or not proposed:
            continue
        for c, norm in zip(proposed, normalised([c.score for c in proposed]), strict=True):
            share = weight * norm
            totals[c.product_id] += share
            for reason in c.reasons or (Reason("RECOMMENDED", slot.title),):
                sourced = reason if reason.strategy else dataclasses.replace(reason, strategy=name)
                contributions[c.product_id].append((share, sourced))
    reasons: dict[str, list[Reason]] = {}
    for pid, parts in contributions.items():
        parts.sort(key=lambda part: -part[0])
        reasons[pid] = list(dict.fromkeys(reason for _, reason in parts))
    return dict(totals), reasons


def normalised(scores: Sequence[float]) -> list[float]:
    """Scores mapped to 0..1 with the best at 1: divided by the maximum when none is
    negative, min-max scaled otherwise; all equal -> all 1."""
    if not scores:
        return []
    high, low = max(scores), min(0.0, min(scores))
    if high <= low:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def exclusions(ctx: RequestContext, policy: BlendPolicy) -> set[str]:
    """Products never shown in this request: the page's product, the cart, and (with consent)
    what the shopper marked not interested or rated ``low_rating`` stars or fewer."""
    excluded = {line.product_id for line in ctx.cart_lines}
    if ctx.product_id:
        excluded.add(ctx.product_id)
    if personal(ctx) and ctx.profile is not None:
        excluded |= ctx.profile.not_interested
        excluded |= disliked(ctx.profile, policy.low_rating)
    return excluded


def disliked(profile: Profile, low_rating: int) -> set[str]:
    return {pid for pid, stars in profile.ratings.items() if stars <= low_rating}


def available(product: Product) -> bool:
    return product.active and product.in_stock


def recently_bought(ctx: RequestContext, policy: BlendPolicy, product: Product) -> bool:
    """True for a product the shopper owns and would not buy again so soon: bought within
    ``recently_bought_days``, or rated (a rating says they have it), unless repeatable."""
    if not personal(ctx) or ctx.profile is None or policy.repeatable(product):
        return False
    if product.id in ctx.profile.ratings:
        return True
    purchase = ctx.profile.purchases.get(product.id)
    if purchase is None:
        return False
    return ctx.now - purchase.last_at < timedelta(days=policy.recently_bought_days)


def within_filters(ctx: RequestContext, slot: Slot, product: Product) -> bool:
    f = slot.filters
    if f.category_path and tuple(product.category_path[: len(f.category_path)]) != f.category_path:
        return False
    if f.min_price is None and f.max_price is None:
        return True
    if product.price.currency != ctx.currency:
        return False  # a price range is in the request's currency; never convert
    amount = product.price.amount
    return (f.min_price is None or amount >= f.min_price) and (
        f.max_price is None or amount <= f.max_price
    )


def diversify(
    ctx: RequestContext,
    slot: Slot,
    policy: BlendPolicy,
    ranked: Sequence[tuple[str, float]],
    catalog: Mapping[str, Product],
) -> list[tuple[str, float]]:
    """Walk down the ranking, skipping products whose category or brand is already full; then,
    if the slot is not full, take the best skipped ones too (caps never shrink a slot). The
    result keeps the ranking's order."""
    page_category = slot.filters.category_path or ctx.category_path or ()
    depth = max(policy.category_depth, len(page_category) + 1)
    per_category: dict[tuple[str, ...], int] = defaultdict(int)
    per_brand: dict[str, int] = defaultdict(int)
    chosen: list[tuple[str, float]] = []
    for pid, score in ranked:
        product = catalog[pid]
        category = tuple(product.category_path[:depth])
        if (
            policy.max_per_category
            and category
            and per_category[category] >= policy.max_per_category
        ):
            continue
        if (
            policy.max_per_brand
            and product.brand
            and per_brand[product.brand] >= policy.max_per_brand
        ):
            continue
        per_category[category] += 1
        per_brand[product.brand] += 1
        chosen.append((pid, score))
        if len(chosen) >= slot.limit:
            return chosen
    taken = {pid for pid, _ in chosen}
    spare = [item for item in ranked if item[0] not in taken][: slot.limit - len(chosen)]
    if not spare:
        return chosen
    rank = {pid: i for i, (pid, _) in enumerate(ranked)}
    return sorted([*chosen, *spare], key=lambda item: rank[item[0]])


def pin(
    ctx: RequestContext,
    slot: Slot,
    policy: BlendPolicy,
    items: list[Candidate],
    catalog: Mapping[str, Product],
    excluded: set[str],
) -> list[Candidate]:
    """Place the slot's pinned products at their positions (when known and available)."""
    result = list(items)
    for p in policy.pins_for(slot.name):
        product = catalog.get(p.product_id)
        if product is None or not available(product) or p.product_id in excluded:
            continue
        existing = next((c for c in result if c.product_id == p.product_id), None)
        if existing is not None:
            result.remove(existing)
        index = min(p.position - 1, len(result))
        # The score of the item it displaces keeps the list's scores in order.
        score = (
            result[index].score if index < len(result) else (result[-1].score if result else 1.0)
        )
        reasons: tuple[Reason, ...] = (Reason("PINNED", "Featured by the shop", "blend"),)
        if existing is not None:
            reasons += existing.reasons
        result.insert(index, Candidate(p.product_id, score, reasons))
    return result


def pinned_product_ids(policy: BlendPolicy, slot: str) -> tuple[str, ...]:
    """Products pinned to ``slot`` (the storefront loads them with the candidates)."""
    return tuple(p.product_id for p in policy.pins_for(slot))
