"""Attribution: which slot, strategy, variant and position earned a click, an add-to-cart or a
purchase, and what each strategy and slot earns over a time range.

Rules
-----
- An event that quotes a ``recommendation_id`` (click, add_to_cart, purchase) is credited to
  that recommendation's slot, experiment and variant, and to the strategy and position of the
  event's product in it (``method: "recommendation"``).
- A purchase without one (or quoting an unknown one) is credited to the last recommendation
  click by the same shopper (same user id, or same session id) for the same product within
  ``SHOPFRONT_ATTRIBUTION_WINDOW_HOURS`` before it (``method: "last_click"``); otherwise it
  is not attributed.
- A coupon redemption is credited to the coupon strategy (and campaign) that issued the
  coupon, with the revenue of the order it was redeemed on.

`attribute_events` runs on batches of accepted events (the events module calls it after
storing them; `backfill_attributions` replays a time range). It writes one document per
attributed event into ``attributions``, keyed by the event id, so replays never count twice.
The reports aggregate those documents with MongoDB pipelines on indexed fields.

Documents read (field names are this module's contract with their owners)
--------------------------------------------------------------------------
``events`` (shopfront.shoppers.events): ``event_id, type, user_id, session_id, timestamp,
product_id,
quantity, price {amount, currency}`` (unit price paid), ``order_id, recommendation_id,
position``.
``recommendations`` (shopfront.storefront.composer, one per served slot): ``_id`` (the
recommendationId), ``slot``, ``items [{product_id, strategy, position, score}]``,
``experiment`` (experiment id) and ``variant`` when an experiment changed the slot.
``coupon_redemptions`` (shopfront.offers.coupon_service): ``code, campaign_id, strategy, user_id,
order_id,
amount {amount, currency}`` (the discount given), ``redeemed_at``, ``released_at`` (set when
the order was cancelled).
``exposures`` (shopfront.experiments.definitions): sampled slot and offer impressions with
``weight``.

Document written
----------------
``attributions``: ``{_id: event_id, event_id, type, timestamp, user_id, session_id, shopper,
product_id, order_id, quantity, revenue {amount, currency} | null (purchases: unit price x
quantity), recommendation_id, slot, strategy, position, experiment_id, variant, method,
attributed_at}``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from shopfront.experiments.definitions import EXPOSURES
from shopfront.platform.money import Money
from shopfront.platform.store import Store, UpdateOne, aggregate

EVENTS = "events"
RECOMMENDATIONS = "recommendations"
REDEMPTIONS = "coupon_redemptions"  # written by shopfront.offers.coupon_service
ATTRIBUTIONS = "attributions"

CLICK = "click"
ADD_TO_CART = "add_to_cart"
PURCHASE = "purchase"
ATTRIBUTED_TYPES = (CLICK, ADD_TO_CART, PURCHASE)

BY_RECOMMENDATION = "recommendation"
BY_LAST_CLICK = "last_click"

# Collection -> field holding the shopper's user id (merge into the store's USER_DATA).
USER_DATA_FIELDS: dict[str, str] = {ATTRIBUTIONS: "user_id"}


@dataclass(frozen=True)
class AttributionSummary:
    by_recommendation: int
    by_last_click: int
    unattributed: int


def line_revenue(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """A purchase line's revenue: unit price times quantity (1 when absent)."""
    price = event.get("price")
    if event.get("type") != PURCHASE or not isinstance(price, Mapping):
        return None
    amount, currency = price.get("amount"), price.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return None
    quantity = event.get("quantity") or 1
    return {"amount": amount * int(quantity), "currency": currency}


def _base(event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "event_id": event["event_id"],
        "type": event["type"],
        "timestamp": event["timestamp"],
        "user_id": event.get("user_id"),
        "session_id": event.get("session_id"),
        "shopper": event.get("user_id") or event.get("session_id"),
        "product_id": event.get("product_id"),
        "order_id": event.get("order_id"),
        "quantity": event.get("quantity"),
        "revenue": line_revenue(event),
        "attributed_at": now,
    }


def _from_recommendation(
    event: Mapping[str, Any], rec: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    item = next(
        (i for i in rec.get("items") or () if i.get("product_id") == event.get("product_id")),
        None,
    )
    return {
        **_base(event, now),
        "recommendation_id": rec["_id"],
        "slot": rec.get("slot"),
        # A product the slot did not show keeps the slot's credit but no strategy's.
        "strategy": item.get("strategy") if item else None,
        "position": item.get("position") if item else event.get("position"),
        "experiment_id": rec.get("experiment"),
        "variant": rec.get("variant"),
        "method": BY_RECOMMENDATION,
    }


_CREDIT_FIELDS = ("recommendation_id", "slot", "strategy", "position", "experiment_id", "variant")


def _from_click(
    event: Mapping[str, Any], click: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        **_base(event, now),
        **{k: click.get(k) for k in _CREDIT_FIELDS},
        "method": BY_LAST_CLICK,
    }


async def _write(store: Store, docs: Sequence[dict[str, Any]]) -> None:
    if not docs:
        return
    ops = [UpdateOne({"_id": d["event_id"]}, {"$setOnInsert": d}, upsert=True) for d in docs]
    await store.collection(ATTRIBUTIONS).bulk_write(ops, ordered=False)


def _same_shopper(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return bool(
        (a.get("user_id") and a.get("user_id") == b.get("user_id"))
        or (a.get("session_id") and a.get("session_id") == b.get("session_id"))
    )


async def attribute_events(
    store: Store,
    events: Sequence[Mapping[str, Any]],
    *,
    window_hours: int = 24,
    now: datetime,
) -> AttributionSummary:
    """Attribute a batch of stored events (any types; only clicks, add-to-carts and
    purchases are considered). Idempotent per event id. Clicks in the batch are written
    before the batch's purchases look for a last click, so one batch may hold both.
    """
    relevant = sorted(
        (
            e
            for e in events
            if e.get("type") in ATTRIBUTED_TYPES and e.get("event_id") and e.get("timestamp")
        ),
        key=lambda e: e["timestamp"],
    )
    if not relevant:
        return AttributionSummary(0, 0, 0)
    rec_ids = sorted({str(e["recommendation_id"]) for e in relevant if e.get("recommendation_id")})
    recs: dict[str, Mapping[str, Any]] = {}
    if rec_ids:
        cursor = store.collection(RECOMMENDATIONS).find(
            {"_id": {"$in": rec_ids}},
            {"slot": 1, "items": 1, "experiment": 1, "variant": 1},
        )
        async for doc in cursor:
            recs[str(doc["_id"])] = doc
    direct: list[dict[str, Any]] = []
    pending: list[Mapping[str, Any]] = []
    unattributed = 0
    for e in relevant:
        rec = recs.get(str(e.get("recommendation_id")))
        if rec is not None:
            direct.append(_from_recommendation(e, rec, now))
        elif e["type"] == PURCHASE and e.get("product_id"):
            pending.append(e)
        else:
            unattributed += 1
    await _write(store, direct)

    last_click: list[dict[str, Any]] = []
    if pending:
        window = timedelta(hours=window_hours)
        users = sorted({str(e["user_id"]) for e in pending if e.get("user_id")})
        sessions = sorted({str(e["session_id"]) for e in pending if e.get("session_id")})
        shopper_match: list[dict[str, Any]] = []
        if users:
            shopper_match.append({"user_id": {"$in": users}})
        if sessions:
            shopper_match.append({"session_id": {"$in": sessions}})
        clicks_by_product: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        if shopper_match:
            query = {
                "type": CLICK,
                "product_id": {"$in": sorted({str(e["product_id"]) for e in pending})},
                "timestamp": {
                    "$gte": min(e["timestamp"] for e in pending) - window,
                    "$lte": max(e["timestamp"] for e in pending),
                },
                "$or": shopper_match,
            }
            async for click in store.collection(ATTRIBUTIONS).find(query):
                clicks_by_product[click["product_id"]].append(click)
        for e in pending:
            t = e["timestamp"]
            candidates = [
                c
                for c in clicks_by_product.get(e["product_id"], ())
                if _same_shopper(c, e) and t - window <= _aware(c["timestamp"], t) <= t
            ]
            if candidates:
                best = max(candidates, key=lambda c: c["timestamp"])
                last_click.append(_from_click(e, best, now))
            else:
                unattributed += 1
        await _write(store, last_click)
    return AttributionSummary(len(direct), len(last_click), unattributed)


def _aware(value: datetime, like: datetime) -> datetime:
    """Stored times come back timezone-aware; compare naive inputs as UTC."""
    if value.tzinfo is None and like.tzinfo is not None:
        return value.replace(tzinfo=like.tzinfo)
    return value


async def backfill_attributions(
    store: Store,
    start: datetime,
    end: datetime,
    *,
    window_hours: int = 24,
    now: datetime,
    batch_size: int = 1000,
) -> AttributionSummary:
    """Attribute the stored events of [start, end) in time order, in batches (after a
    migration, or when events arrived out of order). Already attributed events stay as
    they are."""
    totals = [0, 0, 0]
    batch: list[Mapping[str, Any]] = []

    async def flush() -> None:
        s = await attribute_events(store, batch, window_hours=window_hours, now=now)
        totals[0] += s.by_recommendation
        totals[1] += s.by_last_click
        totals[2] += s.unattributed
        batch.clear()

    cursor = (
        store.collection(EVENTS)
        .find({"type": {"$in": list(ATTRIBUTED_TYPES)}, "timestamp": {"$gte": start, "$lt": end}})
        .sort("timestamp", 1)
    )
    async for event in cursor:
        batch.append(event)
        if len(batch) >= batch_size:
            await flush()
    if batch:
        await flush()
    return AttributionSummary(*totals)


# -- performance per strategy and per slot -------------------------------------------------


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator > 0 else None


def per_mille(revenue: Money, impressions: int) -> Money | None:
    """Revenue per thousand impressions, rounded half-even to the minor unit."""
    if impressions <= 0:
        return None
    value = (Decimal(revenue.amount) * 1000 / Decimal(impressions)).quantize(
        Decimal(1), rounding=ROUND_HALF_EVEN
    )
    return Money(int(value), revenue.currency)


@dataclass(frozen=True)
class PerformanceRow:
    """One strategy's or slot's funnel. Rates are per item impression."""

    key: str
    impressions: int
    clicks: int
    add_to_carts: int
    purchases: int
    revenue: Money

    @property
    def ctr(self) -> float | None:
        return _rate(self.clicks, self.impressions)

    @property
    def add_to_cart_rate(self) -> float | None:
        return _rate(self.add_to_carts, self.impressions)

    @property
    def conversion_rate(self) -> float | None:
        return _rate(self.purchases, self.impressions)

    @property
    def revenue_per_mille(self) -> Money | None:
        return per_mille(self.revenue, self.impressions)


@dataclass(frozen=True)
class CouponRow:
    """One coupon strategy: offers shown, redemptions, discount given, order revenue."""

    strategy: str
    offers: int
    redemptions: int
    discount: Money
    revenue: Money

    @property
    def redemption_rate(self) -> float | None:
        return _rate(self.redemptions, self.offers)


@dataclass(frozen=True)
class PerformanceReport:
    start: datetime
    end: datetime
    currency: str
    by_strategy: tuple[PerformanceRow, ...]
    by_slot: tuple[PerformanceRow, ...]
    coupons: tuple[CouponRow, ...]
    other_currency_purchases: int  # attributed purchases not in ``currency`` (left out)


def _funnel_group(key: str, currency: str) -> dict[str, Any]:
    def count(type_: str) -> dict[str, Any]:
        return {"$sum": {"$cond": [{"$eq": ["$type", type_]}, 1, 0]}}

    purchase_in = {"$and": [{"$eq": ["$type", PURCHASE]}, {"$eq": ["$revenue.currency", currency]}]}
    purchase_out = {
        "$and": [{"$eq": ["$type", PURCHASE]}, {"$ne": ["$revenue.currency", currency]}]
    }
    return {
        "$group": {
            "_id": key,
            "clicks": count(CLICK),
            "add_to_carts": count(ADD_TO_CART),
            "purchases": count(PURCHASE),
            "revenue": {"$sum": {"$cond": [purchase_in, "$revenue.amount", 0]}},
            "other": {"$sum": {"$cond": [purchase_out, 1, 0]}},
        }
    }


async def strategy_performance(
    store: Store, start: datetime, end: datetime, *, currency: str
) -> PerformanceReport:
    """Impressions, clicks, add-to-carts, purchases, revenue (in ``currency``) and the rates
    derived from them, per strategy and per slot, for [start, end); plus coupon strategies.

    Impressions are item impressions from the sampled exposure log, scaled by each
    document's weight; the funnel counts come from ``attributions``. Four aggregation
    pipelines, each starting with an indexed range match.
    """
    if not start < end:
        raise ValueError("the time range is empty: 'from' must be before 'to'")
    Money.zero(currency)  # validates the currency
    window = {"$gte": start, "$lt": end}
    impressions = await aggregate(
        store.batch_collection(EXPOSURES),
        [
            {"$match": {"at": window}},
            {
                "$facet": {
                    "by_strategy": [
                        {"$match": {"kind": "slot"}},
                        {"$unwind": "$items"},
                        {"$group": {"_id": "$items.strategy", "n": {"$sum": "$weight"}}},
                    ],
                    "by_slot": [
                        {"$match": {"kind": "slot"}},
                        {
                            "$group": {
                                "_id": "$slot",
                                "n": {"$sum": {"$multiply": ["$weight", {"$size": "$items"}]}},
                            }
                        },
                    ],
                    "offers": [
                        {"$match": {"kind": "offer"}},
                        {"$group": {"_id": "$strategy", "n": {"$sum": "$weight"}}},
                    ],
                }
            },
        ],
    )
    funnel = await aggregate(
        store.batch_collection(ATTRIBUTIONS),
        [
            {"$match": {"timestamp": window}},
            {
                "$facet": {
                    "by_strategy": [
                        {"$match": {"strategy": {"$ne": None}}},
                        _funnel_group("$strategy", currency),
                    ],
                    "by_slot": [
                        {"$match": {"slot": {"$ne": None}}},
                        _funnel_group("$slot", currency),
                    ],
                }
            },
        ],
    )
    coupons = await aggregate(
        store.batch_collection(REDEMPTIONS), _coupon_pipeline(window, currency)
    )
    shown = impressions[0] if impressions else {}
    counted = funnel[0] if funnel else {}

    def rows(kind: str) -> tuple[PerformanceRow, ...]:
        seen = {str(d["_id"]): round(d["n"]) for d in shown.get(kind, ()) if d["_id"] is not None}
        acted = {str(d["_id"]): d for d in counted.get(kind, ()) if d["_id"] is not None}
        out = [
            PerformanceRow(
                key=key,
                impressions=int(seen.get(key, 0)),
                clicks=int(acted.get(key, {}).get("clicks", 0)),
                add_to_carts=int(acted.get(key, {}).get("add_to_carts", 0)),
                purchases=int(acted.get(key, {}).get("purchases", 0)),
                revenue=Money(int(acted.get(key, {}).get("revenue", 0)), currency),
            )
            for key in sorted(set(seen) | set(acted))
        ]
        return tuple(sorted(out, key=lambda r: (-r.revenue.amount, -r.impressions, r.key)))

    offers = {str(d["_id"]): round(d["n"]) for d in shown.get("offers", ()) if d["_id"]}
    redeemed = {str(d["_id"]): d for d in coupons if d["_id"]}
    coupon_rows = tuple(
        CouponRow(
            strategy=name,
            offers=int(offers.get(name, 0)),
            redemptions=int(redeemed.get(name, {}).get("redemptions", 0)),
            discount=Money(int(redeemed.get(name, {}).get("discount", 0)), currency),
            revenue=Money(int(redeemed.get(name, {}).get("revenue", 0)), currency),
        )
        for name in sorted(set(offers) | set(redeemed))
    )
    other = sum(int(d.get("other", 0)) for d in counted.get("by_slot", ()))
    return PerformanceReport(
        start=start,
        end=end,
        currency=currency,
        by_strategy=rows("by_strategy"),
        by_slot=rows("by_slot"),
        coupons=coupon_rows,
        other_currency_purchases=other,
    )


def _coupon_pipeline(window: Mapping[str, Any], currency: str) -> list[dict[str, Any]]:
    """Redemptions in the window (not released) per issuing strategy, with the discount and
    the revenue of the orders they were redeemed on (purchase lines in ``currency``)."""
    in_currency = {
        "$and": [{"$eq": ["$$line.type", PURCHASE]}, {"$eq": ["$$line.price.currency", currency]}]
    }
    return [
        {"$match": {"redeemed_at": window, "released_at": None, "strategy": {"$ne": None}}},
        {
            "$lookup": {
                "from": EVENTS,
                "localField": "order_id",
                "foreignField": "order_id",
                "as": "lines",
            }
        },
        {
            "$project": {
                "strategy": 1,
                "discount": {
                    "$cond": [{"$eq": ["$amount.currency", currency]}, "$amount.amount", 0]
                },
                "revenue": {
                    "$sum": {
                        "$map": {
                            "input": {
                                "$filter": {"input": "$lines", "as": "line", "cond": in_currency}
                            },
                            "as": "line",
                            "in": {
                                "$multiply": [
                                    "$$line.price.amount",
                                    {"$ifNull": ["$$line.quantity", 1]},
                                ]
                            },
                        }
                    }
                },
            }
        },
        {
            "$group": {
                "_id": "$strategy",
                "redemptions": {"$sum": 1},
                "discount": {"$sum": "$discount"},
                "revenue": {"$sum": "$revenue"},
            }
        },
    ]
