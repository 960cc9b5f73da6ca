"""What `shopfront serve --demo` prepares: demo data on an empty database, demo keys, and a
shopper token for the demo shopper.

Keys are stored only as hashes, so the plaintext demo keys live in ``demo-keys.env`` in the
data folder; a second start reuses them while they are still valid, else makes new ones. The
same file keeps the demo's shopper-token secret (`demo_token_secrets`), made on first start,
so tokens minted by one start still verify after a restart.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shopfront.platform import keys as auth
from shopfront.platform.config import Settings
from shopfront.platform.store import Store

log = logging.getLogger(__name__)

STOREFRONT_VAR = "SHOPFRONT_STOREFRONT_KEY"
MERCHANT_VAR = "SHOPFRONT_MERCHANT_KEY"
TOKEN_SECRETS_VAR = "SHOPFRONT_SHOPPER_TOKEN_SECRETS"
SHOPPER_TOKEN_VAR = "SHOPFRONT_SHOPPER_TOKEN"
KEYS_FILE = "demo-keys.env"
# The demo shopper the printed token is for, and how long it lasts (the most a token may).
DEMO_SHOPPER = "demo-0001"
DEMO_TOKEN_TTL_S = 24 * 3600
# A storefront under development runs on localhost, on any port.
DEMO_CORS_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*")


@dataclass(frozen=True)
class DemoKeys:
    storefront: str
    merchant: str
    path: Path
    shopper_token: str | None = None  # for DEMO_SHOPPER, when a token secret is configured


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


def _write_keys_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # `export` so that `source demo-keys.env` hands the values to child processes (curl, node).
    tmp.write_text("".join(f"export {name}={value}\n" for name, value in values.items()))
    tmp.chmod(0o600)
    tmp.replace(path)


def demo_token_secrets(data_dir: Path) -> tuple[str, ...]:
    """The demo's ``SHOPFRONT_SHOPPER_TOKEN_SECRETS``: made once, then read from the keys file."""
    path = data_dir / KEYS_FILE
    known = read_keys_file(path)
    value = known.get(TOKEN_SECRETS_VAR)
    if not value:
        value = f"demo:{secrets.token_urlsafe(32)}"
        _write_keys_file(path, {**known, TOKEN_SECRETS_VAR: value})
    return tuple(part.strip() for part in value.split(",") if part.strip())


async def ensure_demo_keys(store: Store, data_dir: Path) -> DemoKeys:
    path = data_dir / KEYS_FILE
    known = read_keys_file(path)
    storefront = known.get(STOREFRONT_VAR)
    merchant = known.get(MERCHANT_VAR)
    if not await _valid(store, storefront, auth.Role.STOREFRONT):
        _, storefront = await auth.create_key(store, auth.Role.STOREFRONT, "demo-storefront")
    if not await _valid(store, merchant, auth.Role.MERCHANT):
        _, merchant = await auth.create_key(store, auth.Role.MERCHANT, "demo-merchant")
    assert storefront is not None and merchant is not None
    _write_keys_file(path, {**known, STOREFRONT_VAR: storefront, MERCHANT_VAR: merchant})
    return DemoKeys(storefront, merchant, path)


def demo_shopper_token(settings: Settings) -> str | None:
    """A token for `DEMO_SHOPPER` signed with the configured secret, or None without one."""
    from shopfront.shoppers.identity import ShopperTokens

    tokens = ShopperTokens.from_settings(settings)
    if not tokens.configured:
        return None
    token, _ = tokens.mint(DEMO_SHOPPER, ttl_seconds=DEMO_TOKEN_TTL_S)
    return token


async def prepare_demo(
    store: Store, settings: Settings, *, progress: Callable[[str, float], None] | None = None
) -> DemoKeys:
    """Load the demo on an empty database (reporting ``progress(stage, fraction)``), then
    make sure the demo keys are valid and written, with a fresh token for the demo shopper."""
    from shopfront.demo.data import seed_demo
    from shopfront.demo.experiment import simulate_experiment
    from shopfront.offers.promotions import seed_demo_promotions
    from shopfront.recommend.fitting import builtin_recommenders
    from shopfront.recommend.training import train

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
    keys = await ensure_demo_keys(store, settings.data_dir)
    token = demo_shopper_token(settings)
    if token is not None:  # fresh each start, so `source demo-keys.env` gives a valid one
        _write_keys_file(keys.path, {**read_keys_file(keys.path), SHOPPER_TOKEN_VAR: token})
    return dataclasses.replace(keys, shopper_token=token)
