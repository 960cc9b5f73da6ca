"""The demo data set: a seeded, deterministic catalog and shopper behaviour history.

Nothing is downloaded: every product, shopper and event comes from `random.Random(seed)` and
the word lists below, so the same seed always gives the same data (and, for the history, the
same ``now``). The catalog is realistic enough to exercise every recommender: about 500
products in 12 two-level categories, 38 brands in three price tiers, some sold out, a few
inactive, and two consumable categories (coffee, skincare) that shoppers buy again.

Shoppers ``demo-0001``... each get a persona (favourite categories and brands, a price band,
how active and how curious they are) that drives their views, clicks, carts, orders, ratings,
reviews, searches and dismissals over the 90 days before ``now``, so recommendations built on
this history visibly differ between shoppers.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfront.catalog import products as catalog
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.shoppers import events

CURRENCY = "EUR"
HISTORY_DAYS = 90
EVENT_FIELDS = (
    "event_id",
    "type",
    "user_id",
    "session_id",
    "timestamp",
    "product_id",
    "quantity",
    "price",
    "order_id",
    "query",
    "rating",
    "review",
    "recommendation_id",
    "position",
    "page_type",
)


@dataclass(frozen=True)
class CategorySpec:
    """How to make the products of one category."""

    path: tuple[str, str]
    count: int
    brands: tuple[str, ...]
    kinds: tuple[str, ...]  # what the product is ("Trail Runner")
    models: tuple[str, ...]  # what makes one product's name ("Aero", "Ethiopia Guji")
    price_eur: tuple[int, int]  # plausible whole-euro range before the brand's tier
    tags: tuple[str, ...]
    attributes: Mapping[str, tuple[str, ...]]
    features: tuple[str, ...]
    repeat_days: int | None = None  # consumables: a typical replenishment cycle


_COLORS = ("black", "white", "navy", "grey", "olive", "red", "sand", "teal", "burgundy")
_MODELS = (
    "Aero", "Tempo", "Drift", "Nova", "Pulse", "Terra", "Lumen", "Arc", "Vista", "Echo",
    "Flux", "Halo", "Orbit", "Crest", "Atlas", "Breeze", "Ember", "Sierra", "Nimbus", "Vector",
)  # fmt: skip

CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(
        ("Shoes", "Running"), 45,
        ("Stride", "Kestrel Athletic", "Northpace", "Veloce"),
        ("Running Shoe", "Trail Runner", "Racing Flat", "Daily Trainer"),
        _MODELS, (59, 189),
        ("running", "cushioned", "lightweight", "road", "trail", "breathable", "marathon"),
        {"color": _COLORS, "sizes": ("EU 36-46", "EU 38-48", "EU 35-42"),
         "material": ("engineered mesh", "knit upper", "recycled polyester")},
        ("A responsive foam midsole returns energy on every stride.",
         "The rocker geometry keeps long runs smooth.",
         "A grippy outsole holds on wet tarmac and packed gravel.",
         "A padded heel collar locks the foot without pressure points.",
         "Reflective details keep you visible on early-morning runs."),
    ),
    CategorySpec(
        ("Shoes", "Hiking"), 35,
        ("Ridgeline", "Summit & Sole", "Kestrel Athletic", "Granitefoot"),
        ("Hiking Boot", "Approach Shoe", "Trekking Boot", "Hiking Shoe"),
        _MODELS, (89, 249),
        ("hiking", "waterproof", "outdoor", "trekking", "ankle support", "grippy sole"),
        {"color": ("brown", "black", "olive", "grey", "rust"),
         "sizes": ("EU 37-47", "EU 39-48"),
         "material": ("nubuck leather", "suede and mesh", "full-grain leather")},
        ("A waterproof membrane keeps feet dry through streams and bogs.",
         "Deep lugs bite into loose rock and mud.",
         "A stiff shank supports heavy packs on long descents.",
         "The toe cap shrugs off scree and roots.",
         "Breaks in fast thanks to a flexible forefoot."),
    ),
    CategorySpec(
        ("Apparel", "Jackets"), 45,
        ("Fjellvik", "Harbour Loom", "Ridgeline", "Nordwind"),
        ("Rain Jacket", "Down Jacket", "Softshell Jacket", "Windbreaker", "Fleece Jacket"),
        _MODELS, (49, 329),
        ("outerwear", "waterproof", "insulated", "packable", "windproof", "layering"),
        {"color": _COLORS, "sizes": ("XS-XL", "S-XXL"),
         "material": ("recycled nylon", "responsible down", "polyester fleece", "waxed cotton")},
        ("Taped seams and a storm hood keep the weather out.",
         "Packs into its own pocket for travel.",
         "Underarm zips dump heat on the climb.",
         "A soft brushed lining adds warmth without bulk.",
         "Cut long at the back for cover on the bike."),
    ),
    CategorySpec(
        ("Apparel", "T-Shirts"), 45,
        ("Cotton Republic", "Harbour Loom", "Plainweave", "Sunday Studio"),
        ("Crew Tee", "V-Neck Tee", "Long-Sleeve Tee", "Pocket Tee", "Heavyweight Tee"),
        ("Everyday", "Classic", "Relaxed", "Slim", "Boxy", "Essential", "Garment-Dyed", "Organic"),
        (12, 45),
        ("basics", "cotton", "everyday", "organic", "unisex", "summer"),
        {"color": _COLORS, "sizes": ("XS-XL", "S-XXL", "XS-XXXL"),
         "material": ("organic cotton", "cotton-linen blend", "supima cotton", "jersey")},
        ("Pre-shrunk, so it keeps its fit wash after wash.",
         "A ribbed collar that does not sag.",
         "Soft enough to sleep in, sharp enough for the office.",
         "Dyed after sewing for a lived-in colour.",
         "Made in a certified factory with traceable cotton."),
    ),
    CategorySpec(
        ("Home", "Kitchen"), 45,
        ("Copperleaf", "Maison Brio", "Ironhearth", "Kitchwell"),
        ("Chef's Knife", "Cast Iron Skillet", "Saucepan", "Cutting Board", "French Press",
         "Mixing Bowl Set", "Dutch Oven"),
        ("Classic", "Pro", "Heritage", "Everyday", "Signature", "Artisan", "Compact"),
        (15, 199),
        ("kitchen", "cookware", "gift", "dishwasher safe", "induction", "baking"),
        {"material": ("stainless steel", "cast iron", "beech wood", "copper", "borosilicate glass"),
         "capacity": ("1 l", "2 l", "3.5 l", "5 l", "n/a")},
        ("Heats evenly from edge to centre.",
         "Works on gas, electric and induction hobs.",
         "Balanced in the hand for long prep sessions.",
         "Oven safe up to 260 °C.",
         "Built to be handed down, not thrown out."),
    ),
    CategorySpec(
        ("Home", "Bedding"), 35,
        ("Dreamloft", "Linnea Home", "Maison Brio"),
        ("Duvet Cover", "Pillow", "Fitted Sheet", "Throw Blanket", "Duvet"),
        ("Cloud", "Linen", "Percale", "Sateen", "Waffle", "Alpine", "Harbor"),
        (25, 189),
        ("bedding", "sleep", "linen", "cotton", "hypoallergenic", "all seasons"),
        {"color": ("white", "oat", "sage", "slate", "blush", "charcoal"),
         "size": ("single", "double", "king", "super king"),
         "material": ("washed linen", "cotton percale", "cotton sateen", "wool fill")},
        ("Breathable for warm nights, cosy in winter.",
         "Gets softer with every wash.",
         "Hidden button closure keeps the duvet in place.",
         "OEKO-TEX certified fabric.",
         "Generous sizing tucks in properly."),
    ),
    CategorySpec(
        ("Electronics", "Headphones"), 40,
        ("Sonique", "Auralis", "Beatform", "Quietwave"),
        ("Over-Ear Headphones", "Wireless Earbuds", "Studio Headphones", "Sport Earbuds"),
        ("One", "Pro", "Air", "Max", "Lite", "Studio", "Go", "Flow"),
        (29, 399),
        ("audio", "wireless", "noise cancelling", "bluetooth", "travel", "workout"),
        {"color": ("black", "white", "silver", "midnight blue", "sand"),
         "battery_life": ("8 h", "20 h", "30 h", "40 h"),
         "connectivity": ("Bluetooth 5.3", "Bluetooth 5.4", "wired + Bluetooth")},
        ("Active noise cancelling quiets planes and open offices.",
         "Multipoint pairing switches between laptop and phone.",
         "A ten-minute charge gives hours of playback.",
         "Memory-foam cushions stay comfortable all day.",
         "Sweat resistant for the gym and the commute."),
    ),
    CategorySpec(
        ("Electronics", "Accessories"), 35,
        ("Voltbridge", "Cablecraft", "Auralis"),
        ("USB-C Charger", "Power Bank", "Braided Cable", "Phone Stand", "Laptop Sleeve"),
        ("Mini", "Duo", "Travel", "Desk", "Slim", "Go", "Pro"),
        (9, 89),
        ("charging", "usb-c", "travel", "desk", "accessory", "fast charge"),
        {"color": ("black", "white", "grey", "graphite"),
         "material": ("aluminium", "nylon braid", "recycled plastic", "felt")},
        ("Charges a laptop and a phone at full speed together.",
         "Small enough for a jacket pocket.",
         "Braided to survive years of bag life.",
         "Folds flat for travel.",
         "Protects against over-voltage and overheating."),
    ),
    CategorySpec(
        ("Sports", "Yoga"), 35,
        ("Lotus Path", "Zenfold", "Stride"),
        ("Yoga Mat", "Yoga Block", "Yoga Strap", "Meditation Cushion", "Yoga Towel"),
        ("Grounded", "Balance", "Flow", "Studio", "Travel", "Align", "Still"),
        (12, 119),
        ("yoga", "pilates", "fitness", "non-slip", "eco", "home workout"),
        {"color": ("plum", "sage", "charcoal", "sand", "ocean"),
         "thickness": ("1.5 mm", "4 mm", "6 mm", "n/a"),
         "material": ("natural rubber", "cork", "TPE", "organic cotton")},
        ("Non-slip on both sides, even in a hot class.",
         "Light enough to carry to the studio every day.",
         "Alignment lines help with posture.",
         "Made from renewable materials.",
         "Cushions knees without feeling wobbly."),
    ),
    CategorySpec(
        ("Grocery", "Coffee"), 50,
        ("Bean & Bloom", "Highland Roasters", "Crema Collective", "Kaffeehaus Vogt"),
        ("Espresso Beans", "Filter Roast", "Single Origin", "Decaf Blend", "Cold Brew Blend"),
        ("Ethiopia Guji", "Colombia Huila", "Brazil Cerrado", "Kenya Nyeri", "Guatemala Antigua",
         "Sumatra Mandheling", "House", "Morning", "Dark Forest", "Costa Rica Tarrazu"),
        (6, 32),
        ("coffee", "whole bean", "ground", "fair trade", "organic", "espresso", "filter"),
        {"roast": ("light", "medium", "medium-dark", "dark"),
         "weight": ("250 g", "500 g", "1 kg"),
         "grind": ("whole bean", "espresso", "filter", "coarse")},
        ("Roasted in small batches every week.",
         "Notes of dark chocolate, red berries and caramel.",
         "Sourced directly from the farmers' cooperative.",
         "Sealed with a one-way valve to stay fresh.",
         "Balanced for espresso and milk drinks."),
        repeat_days=21,
    ),
    CategorySpec(
        ("Beauty", "Skincare"), 50,
        ("Dew & Petal", "Lumière Lab", "Verdant Skin", "Aqualis"),
        ("Face Cream", "Serum", "Cleanser", "Sunscreen SPF 50", "Toner", "Lip Balm"),
        ("Hyaluronic", "Vitamin C", "Niacinamide", "Ceramide", "Aloe", "Retinol", "Green Tea",
         "Rose Water"),
        (7, 79),
        ("skincare", "vegan", "fragrance free", "sensitive skin", "hydrating", "daily"),
        {"skin_type": ("all", "dry", "oily", "sensitive", "combination"),
         "size": ("15 ml", "30 ml", "50 ml", "100 ml", "200 ml")},
        ("Dermatologist tested on sensitive skin.",
         "Absorbs quickly without a greasy finish.",
         "Free from parabens and added fragrance.",
         "Layer under make-up or wear alone.",
         "Refillable bottle to cut packaging."),
        repeat_days=35,
    ),
    CategorySpec(
        ("Toys", "Board Games"), 40,
        ("Meeple Forge", "Tabletop Tales", "Brightbox"),
        ("Strategy Game", "Family Game", "Card Game", "Cooperative Game", "Party Game"),
        ("Dragon Harbor", "Mapmakers", "Lantern Festival", "Star Freight", "Orchard", "Tidepool",
         "Castle Keep", "Railway Barons", "Night Market", "Beekeepers"),
        (12, 69),
        ("games", "family", "gift", "2-4 players", "party", "strategy"),
        {"players": ("1-4", "2-4", "2-6", "3-8"),
         "age": ("6+", "8+", "10+", "14+"),
         "play_time": ("20 min", "45 min", "60 min", "90 min")},
        ("Easy to teach in ten minutes, hard to master.",
         "Every game plays out differently.",
         "Beautifully illustrated components.",
         "Works as well with two players as with six.",
         "A favourite for family game nights."),
    ),
)  # fmt: skip

_TIERS = (0.8, 1.0, 1.35)  # budget, mid-range, premium price multipliers for brands


def category_key(path: Sequence[str]) -> str:
    return " > ".join(path)


REPEAT_CATEGORIES: dict[str, int] = {
    category_key(c.path): c.repeat_days for c in CATEGORIES if c.repeat_days is not None
}


def _price(rng: random.Random, spec: CategorySpec, tier: float) -> int:
    """A shelf price in cents: log-uniform in the category's range, ending in .99/.95/.49."""
    low, high = spec.price_eur
    euros = math.exp(rng.uniform(math.log(low), math.log(high))) * tier
    whole = max(2, round(euros))
    return whole * 100 - rng.choice((1, 1, 1, 5, 51))


def _stock(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.08:
        return 0
    if roll < 0.3:
        return rng.randint(1, 9)
    if roll < 0.85:
        return rng.randint(10, 120)
    return rng.randint(121, 800)


def generate_catalog(seed: int = 7) -> list[dict[str, Any]]:
    """About 500 demo products as raw dicts for `catalog.validate_product`, ids ``sku-0001``...

    Deterministic: the same seed gives the same list. Around 8% are sold out and 8 inactive.
    """
    rng = random.Random(seed)
    brands = sorted({b for spec in CATEGORIES for b in spec.brands})
    tier = {b: rng.choice(_TIERS) for b in brands}
    products: list[dict[str, Any]] = []
    titles: set[str] = set()
    for spec in CATEGORIES:
        for _ in range(spec.count):
            pid = f"sku-{len(products) + 1:04d}"
            brand = rng.choice(spec.brands)
            kind = rng.choice(spec.kinds)
            title = f"{brand} {rng.choice(spec.models)} {kind}"
            generation = 2
            base_title = title
            while title in titles:
                title = f"{base_title} {generation}"
                generation += 1
            titles.add(title)
            attributes = {name: rng.choice(values) for name, values in spec.attributes.items()}
            features = rng.sample(spec.features, 2)
            detail = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in attributes.items())
            products.append(
                {
                    "id": pid,
                    "title": title,
                    "description": f"{' '.join(features)} {detail[:1].upper()}{detail[1:]}.",
                    "category_path": list(spec.path),
                    "brand": brand,
                    "tags": sorted(rng.sample(spec.tags, rng.randint(2, 4))),
                    "price": {"amount": _price(rng, spec, tier[brand]), "currency": CURRENCY},
                    "stock": _stock(rng),
                    "active": True,
                    "image_url": f"/demo-images/{pid}.svg",
                    "attributes": attributes,
                }
            )
    for index in rng.sample(range(len(products)), 8):
        products[index]["active"] = False
    return products


# -- shopper history ------------------------------------------------------------------------

_BANDS = {"budget": (0.0, 0.4), "mid": (0.3, 0.75), "premium": (0.6, 1.0)}
_REVIEWS = {
    5: ("Exactly what I hoped for, would buy again.", "Excellent quality for the price.",
        "Love it. Already recommended it to friends."),
    4: ("Very good, a small detail could be better.", "Does the job well, arrived quickly.",
        "Nice quality, fits as expected."),
    3: ("It's fine, nothing special.", "Decent, but I expected a bit more for the price."),
    2: ("Disappointing quality, would not buy again.", "Not as described."),
    1: ("Broke after a week.", "Returned it; poor quality."),
}  # fmt: skip


@dataclass
class _Persona:
    categories: list[str]
    brands: set[str]
    band: str
    sessions: int
    curiosity: float  # share of browsing outside the favourite categories
    buyer: float  # how likely a cart turns into an order


@dataclass
class _Catalog:
    """The products indexed the ways the history generator picks them."""

    by_id: dict[str, Mapping[str, Any]]
    by_category: dict[str, list[str]]
    brands_of: dict[str, list[str]]
    price_rank: dict[str, float]  # 0 = cheapest in its category, 1 = dearest
    popularity: dict[str, float]


def _index(products: Sequence[Mapping[str, Any]], rng: random.Random) -> _Catalog:
    by_category: dict[str, list[str]] = defaultdict(list)
    by_id: dict[str, Mapping[str, Any]] = {}
    for p in products:
        by_id[p["id"]] = p
        by_category[category_key(p["category_path"])].append(p["id"])
    price_rank: dict[str, float] = {}
    brands_of: dict[str, list[str]] = {}
    for key, ids in by_category.items():
        ordered = sorted(ids, key=lambda i: (by_id[i]["price"]["amount"], i))
        for rank, pid in enumerate(ordered):
            price_rank[pid] = rank / max(1, len(ordered) - 1)
        brands_of[key] = sorted({by_id[i]["brand"] for i in ids})
    # A long tail: a few best-sellers, many rarely seen products. Inactive ones are rarely shown.
    popularity = {
        pid: rng.lognormvariate(0.0, 1.0) * (1.0 if p.get("active", True) else 0.1)
        for pid, p in by_id.items()
    }
    return _Catalog(by_id, dict(by_category), brands_of, price_rank, popularity)


@dataclass
class _Shopper:
    user_id: str
    seed_prefix: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def emit(
        self, type_: str, at: datetime, session_id: str | None, **fields: Any
    ) -> dict[str, Any]:
        event: dict[str, Any] = dict.fromkeys(EVENT_FIELDS)
        event.update(
            event_id=f"{self.seed_prefix}-{self.user_id}-{len(self.events) + 1:04d}",
            type=type_,
            user_id=self.user_id,
            session_id=session_id,
            timestamp=at,
        )
        event.update(fields)
        self.events.append(event)
        return event


def _persona(rng: random.Random, cat: _Catalog) -> _Persona:
    keys = sorted(cat.by_category)
    # Consumables draw a third of shoppers, as in a real shop with a coffee or skincare range.
    weights = [3.0 if k in REPEAT_CATEGORIES else 1.0 for k in keys]
    first = rng.choices(keys, weights)[0]
    favourites = [first]
    if rng.random() < 0.35:
        favourites.append(rng.choice([k for k in keys if k != first]))
    brands: set[str] = set()
    for key in favourites:
        brands.update(rng.sample(cat.brands_of[key], min(len(cat.brands_of[key]), 2)))
    return _Persona(
        categories=favourites,
        brands=brands,
        band=rng.choice(sorted(_BANDS)),
        sessions=max(2, min(20, round(rng.lognormvariate(1.4, 0.55)))),
        curiosity=rng.uniform(0.08, 0.3),
        buyer=rng.uniform(0.25, 0.75),
    )


def _pick(rng: random.Random, cat: _Catalog, persona: _Persona, category: str) -> str:
    low, high = _BANDS[persona.band]
    ids = cat.by_category[category]
    weights = [
        cat.popularity[pid]
        * (4.0 if cat.by_id[pid]["brand"] in persona.brands else 1.0)
        * (1.0 if low <= cat.price_rank[pid] <= high else 0.25)
        for pid in ids
    ]
    return rng.choices(ids, weights)[0]


def _browse_category(rng: random.Random, cat: _Catalog, persona: _Persona) -> str:
    if rng.random() < persona.curiosity:
        return rng.choice(sorted(cat.by_category))
    return rng.choice(persona.categories)


def _query_for(rng: random.Random, product: Mapping[str, Any]) -> str:
    """What a shopper looking for ``product`` types: its shelf, brand and shelf, or a tag."""
    leaf = product["category_path"][-1].lower()
    return rng.choice((leaf, f"{product['brand'].lower()} {leaf}", rng.choice(product["tags"])))


def _paid(rng: random.Random, product: Mapping[str, Any]) -> dict[str, Any]:
    """The unit price paid: the shelf price, or 10-20% off during a sale."""
    amount = int(product["price"]["amount"])
    if rng.random() < 0.15:
        amount -= amount * rng.choice((10, 15, 20)) // 100
    return {"amount": amount, "currency": product["price"]["currency"]}


class _OrderIds:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.prefix}-order-{self.count:05d}"


def _rate(
    rng: random.Random,
    shopper: _Shopper,
    persona: _Persona,
    product: Mapping[str, Any],
    bought_at: datetime,
    now: datetime,
) -> None:
    """Some purchases get a star rating a few days later, a few of them a written review."""
    if rng.random() >= 0.3:
        return
    at = bought_at + timedelta(seconds=rng.randint(2 * 86400, 12 * 86400))
    if at >= now:
        return
    liked = product["brand"] in persona.brands
    stars = rng.choice((5, 5, 4, 4, 4, 3) if liked else (5, 4, 4, 3, 3, 2, 1))
    shopper.emit("rating", at, None, product_id=product["id"], rating=stars, page_type="product")
    if rng.random() < 0.25:
        shopper.emit(
            "review",
            at + timedelta(seconds=rng.randint(20, 300)),
            None,
            product_id=product["id"],
            review=rng.choice(_REVIEWS[stars]),
            page_type="product",
        )


def _session(
    rng: random.Random,
    cat: _Catalog,
    persona: _Persona,
    shopper: _Shopper,
    session_id: str,
    start: datetime,
    orders: _OrderIds,
    now: datetime,
) -> None:
    at = start

    def tick() -> datetime:
        nonlocal at
        at += timedelta(seconds=rng.randint(4, 75))
        return at

    category = _browse_category(rng, cat, persona)
    listing = "category"
    if rng.random() < 0.35:
        listing = "search"
        hint = cat.by_id[_pick(rng, cat, persona, category)]
        shopper.emit("search", tick(), session_id, query=_query_for(rng, hint), page_type="search")
    elif rng.random() < 0.3:
        listing = "home"
    cart: list[str] = []
    for _ in range(rng.randint(1, 6)):
        if rng.random() < 0.25:  # wander to another shelf mid-session
            category = _browse_category(rng, cat, persona)
        pid = _pick(rng, cat, persona, category)
        product = cat.by_id[pid]
        if rng.random() < 0.55:
            shopper.emit("click", tick(), session_id, product_id=pid, page_type=listing)
        shopper.emit("view", tick(), session_id, product_id=pid, page_type="product")
        liked = product["brand"] in persona.brands
        fits = category_key(product["category_path"]) in persona.categories
        buyable = product.get("active", True) and product["stock"] > 0
        if buyable and pid not in cart and rng.random() < 0.1 + 0.15 * liked + 0.1 * fits:
            cart.append(pid)
            shopper.emit(
                "add_to_cart", tick(), session_id, product_id=pid, quantity=1, page_type="product"
            )
        elif not fits and rng.random() < 0.06:
            shopper.emit("not_interested", tick(), session_id, product_id=pid, page_type=listing)
    for pid in list(cart):
        if len(cart) > 1 and rng.random() < 0.15:
            cart.remove(pid)
            shopper.emit(
                "remove_from_cart", tick(), session_id, product_id=pid, quantity=1, page_type="cart"
            )
    if cart and rng.random() < persona.buyer:
        order_id = orders.next()
        paid_at = tick()
        for pid in cart:
            product = cat.by_id[pid]
            repeat = category_key(product["category_path"]) in REPEAT_CATEGORIES
            shopper.emit(
                "purchase",
                paid_at,
                session_id,
                product_id=pid,
                quantity=rng.choice((1, 1, 2, 3)) if repeat else 1,
                price=_paid(rng, product),
                order_id=order_id,
                page_type="checkout",
            )
            _rate(rng, shopper, persona, product, paid_at, now)


def _replenish(
    rng: random.Random,
    cat: _Catalog,
    persona: _Persona,
    shopper: _Shopper,
    orders: _OrderIds,
    now: datetime,
) -> None:
    """Repeat purchases: a shopper with a consumable favourite rebuys a staple on a cycle."""
    for key in persona.categories:
        cycle = REPEAT_CATEGORIES.get(key)
        if cycle is None:
            continue
        staple = _pick(rng, cat, persona, key)
        product = cat.by_id[staple]
        if not product.get("active", True):
            continue
        at = now - timedelta(seconds=rng.randint(cycle * 43200, HISTORY_DAYS * 86400))
        n = 0
        while at < now - timedelta(hours=2):
            n += 1
            session_id = f"{shopper.user_id}-r{n:02d}"
            t = at
            shopper.emit("view", t, session_id, product_id=staple, page_type="home")
            t += timedelta(seconds=rng.randint(5, 40))
            qty = rng.choice((1, 1, 2))
            shopper.emit(
                "add_to_cart", t, session_id, product_id=staple, quantity=qty, page_type="product"
            )
            t += timedelta(seconds=rng.randint(20, 120))
            shopper.emit(
                "purchase",
                t,
                session_id,
                product_id=staple,
                quantity=qty,
                price=_paid(rng, product),
                order_id=orders.next(),
                page_type="checkout",
            )
            if n == 1:
                _rate(rng, shopper, persona, product, t, now)
            at += timedelta(seconds=round(cycle * 86400 * rng.uniform(0.75, 1.3)))


def generate_history(
    products: Sequence[Mapping[str, Any]],
    n_shoppers: int = 300,
    seed: int = 7,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Behaviour events of shoppers ``demo-0001``.. over the ``HISTORY_DAYS`` before ``now``.

    Every event is a dict with exactly the keys in `EVENT_FIELDS` (unused ones are None),
    ``timestamp`` a timezone-aware UTC datetime not after ``now``, ``event_id`` unique and
    derived from the seed. Sorted by timestamp. Deterministic given ``seed`` and ``now``
    (default: the current time).
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Whole seconds: MongoDB keeps milliseconds, so stored events compare equal to these.
    now = now.astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)
    cat = _index(products, rng)
    if not cat.by_id:
        return []
    events: list[dict[str, Any]] = []
    for n in range(1, n_shoppers + 1):
        shopper = _Shopper(f"demo-{n:04d}", f"demo{seed}")
        persona = _persona(rng, cat)
        orders = _OrderIds(shopper.user_id)
        # Sessions start at least two hours before now, so no session runs past it.
        starts = sorted(
            rng.randint(2 * 3600, HISTORY_DAYS * 24 * 3600) for _ in range(persona.sessions)
        )
        for k, seconds_ago in enumerate(reversed(starts), start=1):
            start = now - timedelta(seconds=seconds_ago)
            session_id = f"{shopper.user_id}-s{k:02d}"
            _session(rng, cat, persona, shopper, session_id, start, orders, now)
        _replenish(rng, cat, persona, shopper, orders, now)
        events.extend(shopper.events)
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    return events


# -- seeding --------------------------------------------------------------------------------


class DemoError(RuntimeError):
    """The demo data did not load (a bug in the generator, or the database refused it)."""


@dataclass(frozen=True)
class SeedSummary:
    """What `seed_demo` wrote."""

    products_created: int
    products_updated: int
    categories: int
    brands: int
    shoppers: int = 0
    events_accepted: int = 0
    events_rejected: int = 0

    @property
    def products(self) -> int:
        return self.products_created + self.products_updated


HISTORY_BATCH = 2000  # events ingested per call while seeding, so progress can be shown


async def seed_demo(
    store: Store,
    settings: Settings,
    *,
    seed: int = 7,
    shoppers: int | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> SeedSummary:
    """Write the demo catalog through `catalog.upsert_products`, in batches.

    Idempotent: seeding again updates the same ``sku-*`` products and leaves other products
    alone. Raises `DemoError` if any product is rejected (the generator must only make valid
    products, and a half-loaded demo would mislead). ``progress(stage, fraction)`` hears of
    each batch (stages "catalog" and "shoppers' history").
    """
    report = progress or (lambda stage, done: None)
    products = generate_catalog(seed)
    batch = min(500, settings.max_upsert_batch)
    created = updated = 0
    for start in range(0, len(products), batch):
        results = await catalog.upsert_products(store, products[start : start + batch])
        rejected = [r for r in results if r.status is catalog.UpsertStatus.REJECTED]
        if rejected:
            reasons = "; ".join(f"{r.id}: {r.reason}" for r in rejected[:5])
            raise DemoError(f"{len(rejected)} demo products were rejected: {reasons}")
        created += sum(r.status is catalog.UpsertStatus.CREATED for r in results)
        updated += sum(r.status is catalog.UpsertStatus.UPDATED for r in results)
        report("catalog", min(1.0, (start + batch) / len(products)))
    # The shoppers' history goes through the same ingestion as live events, so their
    # profiles, popularity counts and plugin hooks are built exactly as in production.
    # Ordered by shopper (then time): each batch then touches few profiles, which is what
    # ingestion costs; per-shopper order is all a profile depends on.
    history = sorted(
        generate_history(
            products,
            n_shoppers=settings.demo_shoppers if shoppers is None else shoppers,
            seed=seed,
        ),
        key=lambda e: (e["user_id"] or "", e["timestamp"]),
    )
    ingested: list[events.EventResult] = []
    for start in range(0, len(history), HISTORY_BATCH):
        chunk = history[start : start + HISTORY_BATCH]
        ingested += await events.ingest_events(store, settings, chunk)
        report("shoppers' history", len(ingested) / len(history))
    report("shoppers' history", 1.0)
    return SeedSummary(
        products_created=created,
        products_updated=updated,
        categories=len({category_key(p["category_path"]) for p in products}),
        brands=len({p["brand"] for p in products}),
        shoppers=len({e["user_id"] for e in history if e["user_id"]}),
        events_accepted=sum(r.status is events.EventStatus.ACCEPTED for r in ingested),
        events_rejected=sum(r.status is events.EventStatus.REJECTED for r in ingested),
    )
