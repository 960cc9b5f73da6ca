"""A seeded synthetic shop for the scale and latency benchmarks.

Products fall into departments and categories with brands, tags, attributes and generated
text whose words depend on the category; shoppers have a favourite category, activity follows
a power law, product popularity too. Events (views, clicks, carts, purchases in orders,
ratings) are generated as numpy columns directly, as `shopfront train` loads them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from shopfront.catalog.products import Product
from shopfront.platform.money import Money
from shopfront.recommend.contract import TrainingData
from shopfront.recommend.interactions import KIND, NONE, Interactions

END = datetime(2025, 6, 1, tzinfo=UTC)
DAYS = 180
DEPARTMENTS = 10
CATEGORIES_PER_DEPARTMENT = 10
WORDS = 3000


def catalog(n_products: int, seed: int = 7) -> list[Product]:
    rng = np.random.default_rng(seed)
    n_categories = DEPARTMENTS * CATEGORIES_PER_DEPARTMENT
    category = rng.integers(0, n_categories, n_products)
    brand = rng.integers(0, max(n_products // 200, 5), n_products)
    price = rng.integers(500, 30_000, n_products)
    colours = ["black", "white", "red", "blue", "green", "grey", "navy", "beige"]
    vocabulary = np.array([f"w{i}" for i in range(WORDS)])
    # Each category draws most of its words from its own slice of the vocabulary.
    own = WORDS // n_categories
    products = []
    for i in range(n_products):
        c = int(category[i])
        local = rng.integers(c * own, (c + 1) * own, 8)
        common = rng.zipf(1.3, 6) % WORDS
        words = vocabulary[np.r_[local, common]]
        products.append(
            Product(
                id=f"p{i:06d}",
                title=" ".join(words[:4]),
                description=" ".join(words),
                price=Money(int(price[i]), "EUR"),
                category_path=(f"Dept{c // CATEGORIES_PER_DEPARTMENT}", f"Cat{c}"),
                brand=f"Brand{int(brand[i])}",
                tags=(f"tag{c % 37}", f"tag{int(rng.integers(0, 200))}"),
                attributes={"colour": colours[int(rng.integers(0, len(colours)))]},
                stock=int(rng.integers(0, 50)),
                created_at=END - timedelta(days=int(rng.integers(0, 720))),
            )
        )
    return products


def events(products: list[Product], n_events: int, seed: int = 11) -> Interactions:
    rng = np.random.default_rng(seed)
    n_products = len(products)
    n_users = max(n_events // 10, 10)
    by_category: dict[str, list[int]] = {}
    for i, p in enumerate(products):
        by_category.setdefault(p.category_path[-1], []).append(i)
    categories = list(by_category)
    pools = [np.array(by_category[c]) for c in categories]
    # Power-law activity and popularity; each shopper mostly browses a favourite category.
    activity = rng.zipf(1.6, n_users).astype(np.float64)
    user = rng.choice(n_users, n_events, p=activity / activity.sum()).astype(np.int32)
    favourite = rng.integers(0, len(categories), n_users)
    in_favourite = rng.random(n_events) < 0.7
    item = np.empty(n_events, dtype=np.int32)
    popular = rng.zipf(1.3, n_events)
    for k, pool in enumerate(pools):
        mine = in_favourite & (favourite[user] == k)
        item[mine] = pool[(popular[mine] - 1) % len(pool)]
    elsewhere = ~in_favourite
    item[elsewhere] = (rng.zipf(1.2, int(elsewhere.sum())) - 1) % n_products
    kinds = np.array([KIND[k] for k in ("view", "click", "add_to_cart", "purchase", "rating")])
    kind = kinds[rng.choice(len(kinds), n_events, p=[0.68, 0.12, 0.09, 0.08, 0.03])]
    stamp = END.timestamp() - rng.random(n_events) * DAYS * 86_400
    order = np.argsort(stamp, kind="stable")
    user, item, kind, stamp = user[order], item[order], kind[order], stamp[order]
    day = (stamp // 86_400).astype(np.int64)
    session = np.unique(np.stack([user, day]), axis=1, return_inverse=True)[1].ravel()
    bought = kind == KIND["purchase"]
    order_index = np.full(n_events, NONE, dtype=np.int32)
    order_index[bought] = session[bought]  # one order per shopper and day
    n_sessions = int(session.max()) + 1
    return Interactions(
        item_ids=tuple(p.id for p in products),
        user_ids=tuple(f"u{u}" for u in range(n_users)),
        order_ids=tuple(f"o{s}" for s in range(n_sessions)),
        session_ids=tuple(f"s{s}" for s in range(n_sessions)),
        user=user,
        item=item,
        kind=kind.astype(np.int8),
        timestamp=stamp,
        quantity=np.ones(n_events, dtype=np.int32),
        order=order_index,
        session=session.astype(np.int32),
        rating=np.where(kind == KIND["rating"], 4, 0).astype(np.int8),
        n_catalog=n_products,
    )


def training_data(n_products: int, n_events: int) -> TrainingData:
    products = catalog(n_products)
    return TrainingData(
        products=products,
        events=events(products, n_events),
        window_start=END - timedelta(days=DAYS),
        window_end=END,
    )


# -- a repeat-purchase shop ------------------------------------------------------------------

REPEAT_DEPARTMENTS = ("Dairy", "Bakery", "Produce", "Pantry", "Pet food", "Beauty")
STAPLE_EVERY = (1, 1, 2, 2, 3, 4, 6)  # a staple is bought every N trips


def repeat_shop(
    n_shoppers: int = 600, n_products: int = 1500, days: int = 300, seed: int = 5
) -> tuple[list[Product], list[dict[str, Any]]]:
    """A grocery-like shop whose shoppers re-buy on known rhythms, as event documents.

    Each shopper shops every 4 to 12 days (a little jitter). They have 4 to 14 staples from
    their two favourite departments (popular products more likely), each bought every 1, 2,
    3, 4 or 6 trips (skipped one time in ten), plus 0 to 3 products they try once, from the
    same departments. They view what they buy and a few more. Every trip is an order.
    """
    rng = np.random.default_rng(seed)
    n_categories = len(REPEAT_DEPARTMENTS) * 5
    category = rng.integers(0, n_categories, n_products)
    brands = [f"Brand{i}" for i in range(40)]
    products = [
        Product(
            id=f"g{i:05d}",
            title=f"{REPEAT_DEPARTMENTS[int(category[i]) // 5]} item {i}",
            description=f"cat{int(category[i])} everyday",
            price=Money(int(rng.integers(100, 3000)), "EUR"),
            category_path=(REPEAT_DEPARTMENTS[int(category[i]) // 5], f"Aisle{int(category[i])}"),
            brand=brands[int(rng.integers(0, len(brands)))],
            stock=100,
        )
        for i in range(n_products)
    ]
    appeal = rng.pareto(1.2, n_products) + 0.05
    by_department = [np.flatnonzero(category // 5 == d) for d in range(len(REPEAT_DEPARTMENTS))]
    events: list[dict[str, Any]] = []
    start = END - timedelta(days=days)
    for s in range(n_shoppers):
        user = f"s{s:04d}"
        favourites = rng.choice(len(REPEAT_DEPARTMENTS), 2, replace=False)
        pool = np.concatenate([by_department[int(d)] for d in favourites])
        weights = appeal[pool] / appeal[pool].sum()
        n_staples = int(rng.integers(4, 15))
        staples = rng.choice(pool, min(n_staples, len(pool)), replace=False, p=weights)
        every = rng.choice(STAPLE_EVERY, len(staples))
        last_trip = np.full(len(staples), -100)
        trip_days = float(rng.uniform(4, 12))
        t = float(rng.uniform(0, trip_days))
        trip = 0
        while t < days:
            when = start + timedelta(days=t, hours=float(rng.uniform(8, 20)))
            order = f"{user}-{trip}"
            due = (trip - last_trip >= every) & (rng.random(len(staples)) > 0.1)
            basket = [int(i) for i in staples[due]]
            last_trip[due] = trip
            tries = rng.choice(pool, int(rng.integers(0, 4)), p=weights)
            basket += [int(i) for i in tries if int(i) not in basket]
            browsed = rng.choice(pool, int(rng.integers(1, 4)), p=weights)
            for k, i in enumerate([*basket, *(int(b) for b in browsed)]):
                events.append(_doc("view", user, products[i].id, when + timedelta(seconds=k)))
            for k, i in enumerate(basket):
                at = when + timedelta(minutes=10, seconds=k)
                events.append(_doc("purchase", user, products[i].id, at, order))
            trip += 1
            t += trip_days * float(rng.uniform(0.8, 1.25))
    events.sort(key=lambda e: e["timestamp"])
    return products, events


def _doc(
    kind: str, user: str, pid: str, when: datetime, order: str | None = None
) -> dict[str, Any]:
    return {
        "type": kind,
        "user_id": user,
        "session_id": None,
        "timestamp": when,
        "product_id": pid,
        "quantity": 1 if kind == "purchase" else None,
        "order_id": order,
        "rating": None,
    }
