"""What `shopfront serve --demo` prepares: demo data on an empty database, and demo keys.

Keys are stored only as hashes, so the plaintext demo keys live in ``demo-keys.env`` in the
data folder; a second start reuses them while they are still valid, else makes new ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shopfront.platform import keys as auth
from shopfront.platform.config import Settings
from shopfront.platform.store import Store

log = logging.getLogger(__name__)

STOREFRONT_VAR = "SHOPFRONT_STOREFRONT_KEY"
MERCHANT_VAR = "SHOPFRONT_MERCHANT_KEY"


@dataclass(frozen=True)
class DemoKeys:
    storefront: str
    merchant: str
    path: Path


def read_keys_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of a keys file (with or without a leading ``export``)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


async def _valid(store: Store, plaintext: str | None, role: auth.Role) -> bool:
    if not plaintext:
        return False
    key = await auth.authenticate(store, plaintext)
    return key is not None and key.role is role


async def ensure_demo_keys(store: Store, data_dir: Path) -> DemoKeys:
    path = data_dir / "demo-keys.env"
    known = read_keys_file(path)
    storefront = known.get(STOREFRONT_VAR)
    merchant = known.get(MERCHANT_VAR)
    if not await _valid(store, storefront, auth.Role.STOREFRONT):
        _, storefront = await auth.create_key(store, auth.Role.STOREFRONT, "demo-storefront")
    if not await _valid(store, merchant, auth.Role.MERCHANT):
        _, merchant = await auth.create_key(store, auth.Role.MERCHANT, "demo-merchant")
    assert storefront is not None and merchant is not None
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # `export` so that `source demo-keys.env` hands the keys to child processes (curl, node).
    tmp.write_text(f"export {STOREFRONT_VAR}={storefront}\nexport {MERCHANT_VAR}={merchant}\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return DemoKeys(storefront, merchant, path)


async def prepare_demo(
    store: Store, settings: Settings, *, progress: Callable[[str, float], None] | None = None
) -> DemoKeys:
    """Load the demo on an empty database (reporting ``progress(stage, fraction)``), then
    make sure the demo keys are valid and written."""
    from shopfront.demo.data import seed_demo
    from shopfront.demo.experiment import simulate_experiment
    from shopfront.offers.promotions import seed_demo_promotions
    from shopfront.recommend.training import builtin_recommenders, train

    report = progress or (lambda stage, done: None)
    if await store.products.estimated_document_count() == 0:
        log.info("loading the demo data set (catalog, shoppers' history, an experiment)...")
        summary = await seed_demo(store, settings, progress=report)
        log.info(
            "demo: %d products, %d shoppers, %d events",
            summary.products,
            summary.shoppers,
            summary.events_accepted,
        )
        report("promotions", 0.0)
        await seed_demo_promotions(store, settings)
        report("promotions", 1.0)
        # Train once, so the demo serves model-based recommendations from the first request.
        result = await train(
            store,
            settings,
            builtin_recommenders(settings, store),
            progress=lambda stage, done: report(f"training: {stage}", done),
        )
        log.info("demo: trained model version %s", result.version.version)
        report("experiment", 0.0)
        await simulate_experiment(store, shoppers=min(settings.demo_shoppers, 300))
        report("experiment", 1.0)
    return await ensure_demo_keys(store, settings.data_dir)
