"""Shopper profiles: one document per shopper in ``profiles``, changed by each batch of
accepted events with one atomic update, and read as the frozen
`shopfront.shoppers.profile_view.Profile`.

Stored document (field names are short because every storefront request reads one)::

    _id, user_id                 the merchant's opaque shopper id (both; user_id is unique)
    consent                      {personalization: bool, updated_at}; absent = the default
    preferences                  what the shopper stated (see `validate_preferences`)
    first_seen, last_seen        earliest / latest event time
    counts.<type>                events per type
    aff.<scale key>              decayed affinity sums of one era (see `shopfront.shoppers.decay`):
        s, h                     the era's start (Unix seconds) and half-life (seconds)
        c.<key>, b.<key>, t.<key>  category-path prefixes, brands, tags
    recent                       [{p, t}] recently viewed, newest first, distinct, bounded
    purchases.<pid>              {n: times bought, first / last: first and last purchase time}
    not_interested               [pid]
    cart.<pid>, cart_updated_at  {q: quantity, t: last change} as last seen from cart events
    ratings.<pid>                {r: 1..5, t: when}; the latest rating wins
    price.<currency>             {n, sum, min, max} of unit prices paid (the price band)
    spent.<currency>             total paid (unit price x quantity)
    orders, order_ids            distinct orders (recent ids kept, for the "first time" check)
    sessions, session_ids        distinct sessions (likewise)
    last_purchase_at
    applied                      recent ingestion-batch tokens (makes a re-applied batch a no-op)

Keys that come from data (product ids, category names, brands, tags) are escaped with
`encode_key` so they can never be an operator or a path; data values inside update
expressions are wrapped in ``$literal``.

No read-modify-write in Python: each batch's change to a shopper is computed from the batch's
events alone and sent as one single-document pipeline update, whose expressions are the update
operators' equivalents (a sum for `$inc`, `$min`/`$max`, a set union for `$addToSet`, a bounded
concatenation for `$push` with `$slice`) plus merges that depend on the stored value (recently
viewed: merge by time, deduplicate, bound; the cart: clamp at zero; ratings: keep the latest;
sessions and orders: count ids not seen before). The server applies it atomically, so
concurrent batches for one shopper never lose each other's changes, and the whole change of
one batch lands or none of it does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from shopfront.platform.config import Settings
from shopfront.platform.money import Money, MoneyError, check_currency
from shopfront.platform.store import BulkWriteError, DuplicateKeyError, Store, UpdateOne
from shopfront.shoppers import decay
from shopfront.shoppers.profile_view import Profile, Purchase, StatedPreferences

CATEGORY_SEPARATOR = " > "
APPLIED_KEEP = 64  # batch tokens kept per profile (see `shopfront.shoppers.events`: recovery)
SESSION_IDS_KEEP = 500
ORDER_IDS_KEEP = 1000
RANKED_LIMIT = 100  # affinities returned per kind, strongest first
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DUPLICATE_KEY = 11000

# Preference limits.
MAX_PREF_ITEMS = 50
MAX_PREF_TEXT = 200
MAX_ANSWERS = 50


class ProfileError(ValueError):
    """Invalid profile input (stated preferences); the message names the field."""


class ConsentWithheld(PermissionError):
    """The shopper has not consented to personalization, so personal data is not stored."""


# -- keys --------------------------------------------------------------------------------------

_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24", "\x00": "%00"}
_UNESCAPES = {v: k for k, v in _ESCAPES.items()}


def encode_key(text: str) -> str:
    """``text`` as a field name: no '.', '$' or NUL (escaped like URLs, reversibly)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def decode_key(key: str) -> str:
    """The inverse of `encode_key`."""
    out: list[str] = []
    i = 0
    while i < len(key):
        escape = key[i : i + 3]
        if escape in _UNESCAPES:
            out.append(_UNESCAPES[escape])
            i += 3
        else:
            out.append(key[i])
            i += 1
    return "".join(out)


def category_keys(path: Sequence[str]) -> list[str]:
    """Every prefix of a category path, joined with " > ": a view of a running shoe counts
    for "Shoes" and for "Shoes > Running"."""
    return [CATEGORY_SEPARATOR.join(path[: i + 1]) for i in range(len(path))]


# -- product facts -----------------------------------------------------------------------------


class ProductFacts(NamedTuple):
    """The product fields affinities are built from."""

    category_path: tuple[str, ...]
    brand: str
    tags: tuple[str, ...]


async def product_facts(store: Store, ids: Iterable[str]) -> dict[str, ProductFacts]:
    """Facts of the products that exist (active or not), in one round trip."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    cursor = store.products.find(
        {"id": {"$in": wanted}}, {"_id": 0, "id": 1, "category_path": 1, "brand": 1, "tags": 1}
    )
    return {
        d["id"]: ProductFacts(
            tuple(d.get("category_path") or ()), d.get("brand") or "", tuple(d.get("tags") or ())
        )
        for d in await cursor.to_list(None)
    }


# -- building updates --------------------------------------------------------------------------


def event_weight(event: Mapping[str, Any], weights: Mapping[str, float]) -> float:
    """The affinity weight of one event: the type's weight; for ratings (and reviews with a
    rating) scaled by the stars, so 5 stars count +1x, 3 stars 0 and 1 star -1x."""
    weight = weights.get(event["type"], 0.0)
    rating = event.get("rating")
    if event["type"] in ("rating", "review") and isinstance(rating, int):
        weight *= (rating - 3) / 2
    return weight


def build_updates(
    events: Sequence[Mapping[str, Any]],
    products: Mapping[str, ProductFacts],
    settings: Settings,
    token: str,
    now: datetime,
) -> list[UpdateOne]:
    """Profile writes for stored, personal events (each with a ``user_id``): one atomic
    single-document update per shopper, applied at most once for ``token`` (the batch id)."""
    by_user: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        by_user[event["user_id"]].append(event)
    half_life = decay.half_life_seconds(settings.affinity_half_life_days)
    weights = settings.event_weight_map
    ops: list[UpdateOne] = []
    for user_id, user_events in by_user.items():
        user_events.sort(key=lambda e: e["timestamp"])
        fields = {"user_id": {"$literal": user_id}, "updated_at": now}
        fields["created_at"] = {"$ifNull": ["$created_at", now]}
        fields.update(_counter_fields(user_events, products, weights, half_life))
        fields.update(_merged_fields(user_events, settings.recently_viewed_max))
        fields["applied"] = _bounded_append("applied", [token], APPLIED_KEEP)
        ops.append(
            UpdateOne(
                profile_key(user_id) | {"applied": {"$ne": token}},
                [{"$set": fields}],
                upsert=True,
            )
        )
    return ops


def profile_key(user_id: str) -> dict[str, str]:
    """The filter of one shopper's profile: keyed by ``_id`` (the cheapest lookup); the
    document also carries ``user_id`` (unique), which export and erasure use."""
    return {"_id": user_id}


# Aggregation-expression forms of the update operators, so that every change of a shopper's
# profile is one pipeline update (one atomic write of one document).


def _lit(value: Any) -> dict[str, Any]:
    # Data (ids, names) may start with "$"; as a literal it is never read as a field path.
    return {"$literal": value}


def _inc(path: str, amount: float) -> dict[str, Any]:
    return {"$add": [{"$ifNull": [f"${path}", 0]}, amount]}


def _min(path: str, value: Any) -> dict[str, Any]:
    return {"$min": [{"$ifNull": [f"${path}", value]}, value]}


def _max(path: str, value: Any) -> dict[str, Any]:
    return {"$max": [{"$ifNull": [f"${path}", value]}, value]}


def _bounded_append(path: str, values: list[Any], keep: int) -> dict[str, Any]:
    return {"$slice": [{"$concatArrays": [{"$ifNull": [f"${path}", []]}, _lit(values)]}, -keep]}


def _counter_fields(
    events: Sequence[Mapping[str, Any]],
    products: Mapping[str, ProductFacts],
    weights: Mapping[str, float],
    half_life: int,
) -> dict[str, Any]:
    """Counts, decayed affinities, purchases, price band, first/last seen, sessions, orders."""
    inc: dict[str, float] = defaultdict(float)
    set_: dict[str, Any] = {}
    low: dict[str, Any] = {"first_seen": events[0]["timestamp"]}
    high: dict[str, Any] = {"last_seen": events[-1]["timestamp"]}
    not_interested: set[str] = set()
    for event in events:
        kind = event["type"]
        t: datetime = event["timestamp"]
        inc[f"counts.{kind}"] += 1
        pid = event.get("product_id")
        facts = products.get(pid) if pid else None
        weight = event_weight(event, weights)
        if facts is not None and weight != 0.0:
            scale = decay.scale_for(t, half_life)
            base = f"aff.{scale.key}"
            set_[f"{base}.s"] = scale.start
            set_[f"{base}.h"] = scale.half_life_s
            amount = weight * scale.factor
            for key in category_keys(facts.category_path):
                inc[f"{base}.c.{encode_key(key)}"] += amount
            if facts.brand:
                inc[f"{base}.b.{encode_key(facts.brand)}"] += amount
            for tag in set(facts.tags):
                inc[f"{base}.t.{encode_key(tag)}"] += amount
        if kind == "not_interested" and pid:
            not_interested.add(pid)
        if kind == "purchase" and pid:
            key = encode_key(pid)
            inc[f"purchases.{key}.n"] += 1
            _keep(high, f"purchases.{key}.last", t, max)
            _keep(low, f"purchases.{key}.first", t, min)
            _keep(high, "last_purchase_at", t, max)
            price = event.get("price")
            if price:
                cur, paid = price["currency"], int(price["amount"])
                inc[f"price.{cur}.n"] += 1
                inc[f"price.{cur}.sum"] += paid
                inc[f"spent.{cur}"] += paid * int(event.get("quantity") or 1)
                _keep(low, f"price.{cur}.min", paid, min)
                _keep(high, f"price.{cur}.max", paid, max)
    fields: dict[str, Any] = dict(set_)
    for path, amount in inc.items():
        # Counters and money stay integers; only affinity sums are floats.
        fields[path] = _inc(path, amount if path.startswith("aff.") else int(amount))
    fields.update({path: _min(path, value) for path, value in low.items()})
    fields.update({path: _max(path, value) for path, value in high.items()})
    if not_interested:
        fields["not_interested"] = {
            "$setUnion": [{"$ifNull": ["$not_interested", []]}, _lit(sorted(not_interested))]
        }
    # A session or an order counts the first time its id is seen; the ids seen recently are
    # kept (bounded) in the same document, so the check and the count are one atomic write.
    sessions = sorted({e["session_id"] for e in events if e.get("session_id")})
    orders = sorted(
        {e["order_id"] for e in events if e["type"] == "purchase" and e.get("order_id")}
    )
    for ids_field, counter, ids, keep in (
        ("session_ids", "sessions", sessions, SESSION_IDS_KEEP),
        ("order_ids", "orders", orders, ORDER_IDS_KEEP),
    ):
        if not ids:
            continue
        unseen = {"$setDifference": [_lit(ids), {"$ifNull": [f"${ids_field}", []]}]}
        fields[counter] = {"$add": [{"$ifNull": [f"${counter}", 0]}, {"$size": unseen}]}
        fields[ids_field] = {
            "$slice": [{"$concatArrays": [{"$ifNull": [f"${ids_field}", []]}, unseen]}, -keep]
        }
    return fields


def _keep(target: dict[str, Any], key: str, value: Any, pick: Any) -> None:
    target[key] = pick(target[key], value) if key in target else value


class _Clamp(NamedTuple):
    """The cart quantity map ``q -> max(floor, q + delta)``; ``delta = -inf`` means ``floor``."""

    floor: float
    delta: float

    def then(self, after: _Clamp) -> _Clamp:
        # after(self(q)) = max(a.floor, max(s.floor, q + s.delta) + a.delta)
        return _Clamp(max(after.floor, self.floor + after.delta), self.delta + after.delta)


_IDENTITY = _Clamp(-math.inf, 0.0)


def _cart_change(event: Mapping[str, Any]) -> _Clamp | None:
    quantity = int(event.get("quantity") or 1)
    kind = event["type"]
    if kind == "add_to_cart":
        return _Clamp(quantity, quantity)  # max(q, 0) + n
    if kind == "remove_from_cart":
        return _Clamp(0, -quantity)  # max(q - n, 0)
    if kind == "purchase":
        return _Clamp(0, -math.inf)  # bought: no longer in the cart
    return None


def _merged_fields(events: Sequence[Mapping[str, Any]], recent_max: int) -> dict[str, Any]:
    """Fields whose new value merges the batch into the stored value: recently viewed, the
    cart, ratings."""
    fields: dict[str, Any] = {}
    views: dict[str, datetime] = {}
    carts: dict[str, _Clamp] = {}
    cart_times: dict[str, datetime] = {}
    ratings: dict[str, tuple[int, datetime]] = {}
    for event in events:  # in time order
        pid = event.get("product_id")
        if not pid:
            continue
        t = event["timestamp"]
        if event["type"] == "view":
            views[pid] = max(t, views.get(pid, t))
        change = _cart_change(event)
        if change is not None:
            carts[pid] = carts.get(pid, _IDENTITY).then(change)
            cart_times[pid] = t
        rating = event.get("rating")
        if isinstance(rating, int) and event["type"] in ("rating", "review"):
            ratings[pid] = (rating, t)
    if views:
        newest = sorted(views.items(), key=lambda pt: pt[1], reverse=True)[:recent_max]
        fields["recent"] = _recent_expression([{"p": p, "t": t} for p, t in newest], recent_max)
    for pid, clamp in carts.items():
        key = encode_key(pid)
        old = {"$ifNull": [f"$cart.{key}.q", 0]}
        if clamp.delta == -math.inf:
            quantity: Any = int(clamp.floor)
        else:
            quantity = {"$max": [int(clamp.floor), {"$add": [old, int(clamp.delta)]}]}
        fields[f"cart.{key}"] = {
            "$let": {
                "vars": {"q": quantity},
                "in": {
                    "$cond": [
                        {"$gt": ["$$q", 0]},
                        {"q": "$$q", "t": _lit(cart_times[pid])},
                        "$$REMOVE",  # an empty line leaves the cart
                    ]
                },
            }
        }
    if carts:
        fields["cart_updated_at"] = _max("cart_updated_at", max(cart_times.values()))
    for pid, (stars, t) in ratings.items():
        key = encode_key(pid)
        fields[f"ratings.{key}"] = {
            "$cond": [
                {"$gte": [_lit(t), {"$ifNull": [f"$ratings.{key}.t", _EPOCH]}]},
                _lit({"r": stars, "t": t}),
                f"$ratings.{key}",
            ]
        }
    return fields


def _recent_expression(fresh: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """Merge views into ``recent``: newest first by view time, one entry per product, at most
    ``limit`` entries. Stored entries of the batch's products are dropped and each comes back
    once, with the later of its stored and its new view time (a late event never moves a
    product forward). Linear in the list: one pass per product of the batch."""
    stored = {"$ifNull": ["$recent", []]}

    def stored_time(pid: str) -> dict[str, Any]:
        same = {"$filter": {"input": stored, "as": "o", "cond": {"$eq": ["$$o.p", _lit(pid)]}}}
        return {"$max": {"$map": {"input": same, "as": "o", "in": "$$o.t"}}}

    merged_fresh = [
        {"p": _lit(v["p"]), "t": {"$max": [_lit(v["t"]), stored_time(v["p"])]}} for v in fresh
    ]
    others = {
        "$filter": {
            "input": stored,
            "as": "o",
            "cond": {"$not": [{"$in": ["$$o.p", _lit([v["p"] for v in fresh])]}]},
        }
    }
    ordered = {
        "$sortArray": {"input": {"$concatArrays": [merged_fresh, others]}, "sortBy": {"t": -1}}
    }
    return {"$slice": [ordered, limit]}


async def apply_updates(store: Store, ops: list[UpdateOne]) -> None:
    """Run a batch's profile writes. Raises on a database failure; the batch can then be
    applied again (see `shopfront.shoppers.events`): each write is guarded by the batch token, so a
    second application changes nothing that the first one completed.

    A duplicate-key error on an upsert means either that two batches created the same new
    profile at once (retrying matches the winner's document) or that this batch was already
    applied to it (retrying fails the same way: done).
    """
    coll = store.collection("profiles")
    pending = ops
    for attempt in range(2):
        if not pending:
            return
        try:
            await coll.bulk_write(pending, ordered=False)
            return
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            if attempt == 0:
                pending = [pending[e["index"]] for e in errors]


# -- reading -----------------------------------------------------------------------------------

_READ_PROJECTION = {"applied": 0, "session_ids": 0, "order_ids": 0}


def consents(doc: Mapping[str, Any] | None, settings: Settings) -> bool:
    """Whether a stored profile (or none) allows personalization under ``settings``."""
    consent = (doc or {}).get("consent") or {}
    value = consent.get("personalization")
    if isinstance(value, bool):
        return value
    return not settings.personalization_requires_consent


async def load_profile(
    store: Store, user_id: str, now: datetime | None = None, *, limit: int = RANKED_LIMIT
) -> Profile | None:
    """The shopper's profile evaluated at ``now`` (affinities decayed and ranked, at most
    ``limit`` per kind), or None when Shopfront holds nothing about ``user_id``.

    A shopper without personalization consent gets a profile that carries only that flag.
    """
    doc = await store.collection("profiles").find_one(profile_key(user_id), _READ_PROJECTION)
    if doc is None:
        return None
    return profile_from_doc(doc, store.settings, now or datetime.now(UTC), limit=limit)


def profile_from_doc(
    doc: Mapping[str, Any], settings: Settings, now: datetime, *, limit: int = RANKED_LIMIT
) -> Profile:
    user_id = str(doc["user_id"])
    if not consents(doc, settings):
        return Profile(user_id=user_id, as_of=now, consent_personalization=False)
    preferences = preferences_from_doc(doc.get("preferences"))
    sums: dict[str, defaultdict[str, float]] = {kind: defaultdict(float) for kind in "cbt"}
    for era in (doc.get("aff") or {}).values():
        factor = decay.decayed(1.0, float(era.get("s", 0.0)), float(era.get("h", 1)), now)
        if factor == 0.0:
            continue
        for kind, target in sums.items():
            for key, stored in (era.get(kind) or {}).items():
                target[decode_key(key)] += float(stored) * factor
    boost = settings.preference_weight
    if boost:
        stated_categories = {
            key
            for path in preferences.categories
            for key in category_keys(path.split(CATEGORY_SEPARATOR))
        }
        for key in stated_categories:
            sums["c"][key] += boost
        for brand in set(preferences.brands):
            sums["b"][brand] += boost
    purchases = {
        decode_key(k): Purchase(
            count=int(v.get("n", 0)), last_at=v["last"], first_at=v.get("first")
        )
        for k, v in (doc.get("purchases") or {}).items()
        if v.get("last") is not None
    }
    cart_items = [
        (decode_key(k), int(v.get("q", 0)), v.get("t") or _EPOCH)
        for k, v in (doc.get("cart") or {}).items()
        if int(v.get("q", 0)) > 0
    ]
    cart_items.sort(key=lambda item: item[2], reverse=True)
    typical, spent = _price_band(doc.get("price") or {}, doc.get("spent") or {})
    return Profile(
        user_id=user_id,
        as_of=now,
        consent_personalization=True,
        category_affinities=_ranked(sums["c"], limit),
        brand_affinities=_ranked(sums["b"], limit),
        tag_affinities=_ranked(sums["t"], limit),
        recently_viewed=tuple(str(r["p"]) for r in doc.get("recent") or ()),
        purchases=purchases,
        not_interested=frozenset(doc.get("not_interested") or ()),
        cart=tuple((pid, quantity) for pid, quantity, _ in cart_items),
        cart_updated_at=doc.get("cart_updated_at") if cart_items else None,
        ratings={decode_key(k): int(v["r"]) for k, v in (doc.get("ratings") or {}).items()},
        typical_price=typical,
        first_seen=doc.get("first_seen"),
        last_seen=doc.get("last_seen"),
        sessions=int(doc.get("sessions", 0)),
        orders=int(doc.get("orders", 0)),
        total_spent=spent,
        last_purchase_at=doc.get("last_purchase_at"),
        preferences=preferences,
    )


def _ranked(scores: Mapping[str, float], limit: int) -> tuple[tuple[str, float], ...]:
    items = [(k, v) for k, v in scores.items() if v != 0.0 and math.isfinite(v)]
    items.sort(key=lambda kv: (-kv[1], kv[0]))
    return tuple(items[:limit])


def _price_band(
    prices: Mapping[str, Mapping[str, Any]], spent: Mapping[str, Any]
) -> tuple[Money | None, Money | None]:
    """The typical unit price paid (mean, rounded half-even) and the total spent, in the
    currency the shopper bought in most often."""
    counted = [(int(v.get("n", 0)), cur) for cur, v in prices.items() if int(v.get("n", 0)) > 0]
    if not counted:
        return None, None
    _, currency = max(counted, key=lambda nc: (nc[0], nc[1]))
    band = prices[currency]
    mean = (Decimal(int(band["sum"])) / Decimal(int(band["n"]))).quantize(
        Decimal(1), rounding=ROUND_HALF_EVEN
    )
    try:
        return Money(int(mean), currency), Money(int(spent.get(currency, 0)), currency)
    except MoneyError:
        return None, None


# -- stated preferences ------------------------------------------------------------------------


def _strings(raw: Any, name: str) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise ProfileError(f"{name}: must be a list of strings")
    if len(raw) > MAX_PREF_ITEMS:
        raise ProfileError(f"{name}: {len(raw)} entries; at most {MAX_PREF_ITEMS}")
    items: list[str] = []
    for item in raw:
        if not isinstance(item, str) or not item.strip():
            raise ProfileError(f"{name}: entries must be non-empty strings, got {item!r}")
        if len(item) > MAX_PREF_TEXT:
            raise ProfileError(f"{name}: entries must be at most {MAX_PREF_TEXT} characters")
        if item.strip() not in items:
            items.append(item.strip())
    return items


def _money(raw: Any, name: str) -> Money | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{name}: must be an amount in minor units and a currency")
    amount = raw.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ProfileError(f"{name}.amount: must be whole minor units, not negative")
    try:
        return Money(amount, check_currency(str(raw.get("currency", "")).strip().upper()))
    except MoneyError as exc:
        raise ProfileError(f"{name}.currency: {exc}") from None


def validate_preferences(raw: Mapping[str, Any]) -> StatedPreferences:
    """Stated preferences from client input: ``categories`` (paths like "Shoes > Running"),
    ``brands``, ``sizes``, ``price_min`` / ``price_max`` (money, one currency, min <= max) and
    ``answers`` (survey key -> answer, strings)."""
    categories = []
    for path in _strings(raw.get("categories"), "categories"):
        parts = [p.strip() for p in path.split(">")]
        if not all(parts):
            raise ProfileError(f"categories: {path!r} has an empty level")
        categories.append(CATEGORY_SEPARATOR.join(parts))
    price_min = _money(raw.get("price_min"), "price_min")
    price_max = _money(raw.get("price_max"), "price_max")
    if price_min and price_max:
        if price_min.currency != price_max.currency:
            raise ProfileError("price_max: must be in the same currency as price_min")
        if price_max.amount < price_min.amount:
            raise ProfileError("price_max: must not be below price_min")
    answers_raw = raw.get("answers") or {}
    if not isinstance(answers_raw, Mapping):
        raise ProfileError("answers: must map survey keys to answers")
    if len(answers_raw) > MAX_ANSWERS:
        raise ProfileError(f"answers: {len(answers_raw)} entries; at most {MAX_ANSWERS}")
    answers: dict[str, str] = {}
    for key, value in answers_raw.items():
        if not isinstance(key, str) or not key.strip() or not isinstance(value, str):
            raise ProfileError(f"answers: {key!r}: keys must be non-empty strings, values strings")
        if len(key) > MAX_PREF_TEXT or len(value) > 2000:
            raise ProfileError(f"answers: {key[:40]!r}: key or answer too long")
        answers[key.strip()] = value.strip()
    return StatedPreferences(
        categories=tuple(dict.fromkeys(categories)),
        brands=tuple(_strings(raw.get("brands"), "brands")),
        sizes=tuple(_strings(raw.get("sizes"), "sizes")),
        price_min=price_min,
        price_max=price_max,
        answers=answers,
    )


def preferences_to_doc(prefs: StatedPreferences, now: datetime) -> dict[str, Any]:
    return {
        "categories": list(prefs.categories),
        "brands": list(prefs.brands),
        "sizes": list(prefs.sizes),
        "price_min": prefs.price_min.to_doc() if prefs.price_min else None,
        "price_max": prefs.price_max.to_doc() if prefs.price_max else None,
        # A list of pairs: survey keys are free text, so they are not used as field names.
        "answers": [{"key": k, "value": v} for k, v in prefs.answers.items()],
        "updated_at": now,
    }


def preferences_from_doc(doc: Mapping[str, Any] | None) -> StatedPreferences:
    if not doc:
        return StatedPreferences()
    return StatedPreferences(
        categories=tuple(doc.get("categories") or ()),
        brands=tuple(doc.get("brands") or ()),
        sizes=tuple(doc.get("sizes") or ()),
        price_min=Money.from_doc(doc["price_min"]) if doc.get("price_min") else None,
        price_max=Money.from_doc(doc["price_max"]) if doc.get("price_max") else None,
        answers={a["key"]: a["value"] for a in doc.get("answers") or ()},
    )


async def set_preferences(
    store: Store, user_id: str, raw: Mapping[str, Any], now: datetime | None = None
) -> StatedPreferences:
    """Replace the shopper's stated preferences. Raises `ProfileError` for bad input and
    `ConsentWithheld` when the shopper has not consented to personalization (checked in the
    same atomic write, so a concurrent withdrawal cannot be overtaken)."""
    prefs = validate_preferences(raw)
    now = now or datetime.now(UTC)
    update = {
        "$set": {"preferences": preferences_to_doc(prefs, now), "updated_at": now},
        "$setOnInsert": {"user_id": user_id, "created_at": now},
    }
    coll = store.collection("profiles")
    if store.settings.personalization_requires_consent:
        result = await coll.update_one(
            profile_key(user_id) | {"consent.personalization": True}, update
        )
        if result.matched_count == 0:
            raise ConsentWithheld(
                "the shopper has not consented to personalization; preferences are not stored"
            )
        return prefs
    # Opt-out mode: match unless consent was withdrawn. With a withdrawn consent the upsert
    # collides with the existing profile (same _id) instead of matching it.
    for _ in range(2):
        try:
            await coll.update_one(
                profile_key(user_id) | {"consent.personalization": {"$ne": False}},
                update,
                upsert=True,
            )
            return prefs
        except DuplicateKeyError:
            continue  # a concurrent first write created the profile, or consent is withdrawn
    raise ConsentWithheld(
        "the shopper withdrew personalization consent; preferences are not stored"
    )
