"""The `shopfront` command line: serve, keys, import, seed, schema.

Commands that need the database use `database()`, which connects to SHOPFRONT_MONGODB_URI or
starts the embedded server on the data folder for the duration of the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from service.config import ConfigError, Settings
from service.embedded import EmbeddedMongo, EmbeddedUnavailable
from service.store import DatabaseUnavailable, Store, open_store

T = TypeVar("T")
log = logging.getLogger("shopfront")


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """Settings whose ``mongodb_uri`` answers: the configured server, or the embedded one."""
    if settings.mongodb_uri:
        yield settings
        return
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    server = EmbeddedMongo(
        data / "db",
        start_timeout_s=settings.embedded_start_timeout_s,
        log_file=data / "db.log",
    )
    try:
        server.start()
    except EmbeddedUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"embedded MongoDB running on {server.host}:{server.port} (data in {data / 'db'})", err=True
    )
    try:
        yield dataclasses.replace(settings, mongodb_uri=server.uri)
    finally:
        server.stop()


def run_with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            store = await open_store(settings, settings.mongodb_uri)
        except DatabaseUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


@click.group()
@click.version_option(package_name="shopfront")
def main() -> None:
    """Shopfront: recommendations, coupons and a priced cart in one GraphQL query."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@main.command()
@click.option("--host", default=None, help="Address to bind (default SHOPFRONT_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (default SHOPFRONT_PORT).")
@click.option(
    "--demo",
    is_flag=True,
    help="Load the demo data set when the database is empty and print demo API keys.",
)
def serve(host: str | None, port: int | None, demo: bool) -> None:
    """Serve GraphQL at /graphql (starting the embedded database if no URI is set)."""
    import os

    import uvicorn

    from service.app import create_app

    introspection = None
    if demo and "SHOPFRONT_INTROSPECTION" not in os.environ:
        introspection = True  # the demo is for exploring; production keeps it off
    settings = load_settings(host=host, port=port, introspection=introspection)
    with database(settings) as live:
        if demo:
            from service.demo_setup import prepare_demo

            keys = run_with_store(live, lambda store: prepare_demo(store, live))
            url = f"http://{live.host}:{live.port}/graphql"
            click.echo("")
            click.echo(f"Shopfront demo: {url}")
            click.echo(f"  SHOPFRONT_STOREFRONT_KEY={keys.storefront}")
            click.echo(f"  SHOPFRONT_MERCHANT_KEY={keys.merchant}")
            click.echo(f"  (also in {keys.path})")
            click.echo("")
        config = uvicorn.Config(
            create_app(live),
            host=live.host,
            port=live.port,
            log_level="info",
            timeout_graceful_shutdown=10,
        )
        uvicorn.Server(config).run()


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--role", type=click.Choice(["storefront", "merchant"]), required=True)
@click.option("--name", required=True, help="Who or what uses the key.")
def keys_create(role: str, name: str) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from service.auth import KeyError_, create_key

    with database(load_settings()) as live:
        try:
            record, plaintext = run_with_store(live, lambda s: create_key(s, role, name))
        except KeyError_ as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"created {record.role.value} key {record.id} ({record.name}); keep it safe, it is "
        "not shown again:",
        err=True,
    )
    click.echo(plaintext)


@keys.command("list")
def keys_list() -> None:
    """List keys (never their values)."""
    from service.auth import list_keys

    with database(load_settings()) as live:
        records = run_with_store(live, list_keys)
    for k in records:
        state = "revoked " + k.revoked_at.isoformat() if k.revoked_at else "active"
        click.echo(f"{k.id}  {k.role.value:<10}  {k.name:<30}  {k.created_at:%Y-%m-%d}  {state}")


@keys.command("revoke")
@click.argument("key")
def keys_revoke(key: str) -> None:
    """Revoke a key by id, or every active key with this name."""
    from service.auth import revoke_key

    with database(load_settings()) as live:
        revoked = run_with_store(live, lambda s: revoke_key(s, key))
    if not revoked:
        raise click.ClickException(f"no key with id or name {key!r}")
    for k in revoked:
        click.echo(f"revoked {k.id} ({k.name})")


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the SDL here (default: schema/schema.graphql in the source tree).",
)
def schema(out: Path | None) -> None:
    """Print or write the GraphQL SDL that frontends code against."""
    from schema import SDL_PATH, sdl

    target = out or SDL_PATH
    target.write_text(sdl())
    click.echo(f"wrote {target}", err=True)


@main.group()
def coupons() -> None:
    """Coupon campaigns and their codes."""


@coupons.command("export")
@click.argument("campaign")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="CSV file to write (replaced only once every code is written).",
)
def coupons_export(campaign: str, out: Path) -> None:
    """Write CAMPAIGN's codes to a CSV file, oldest first.

    Columns: code, kind, used, max_uses, user_id, expires_at, created_at.
    """
    from service.coupons import CouponError, CouponService

    async def export(store: Store, settings: Settings) -> int:
        service = CouponService(store, settings)
        tmp = out.with_name(out.name + ".part")
        count = 0
        try:
            with tmp.open("w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(EXPORT_COLUMNS)
                async for code in service.export_codes(campaign):
                    writer.writerow(
                        [
                            code.code,
                            code.kind,
                            code.used,
                            "" if code.max_uses is None else code.max_uses,
                            code.user_id or "",
                            code.expires_at.isoformat() if code.expires_at else "",
                            code.created_at.isoformat() if code.created_at else "",
                        ]
                    )
                    count += 1
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        return count

    with database(load_settings()) as live:
        # A batch job, not a request: allow each database operation minutes, not seconds.
        timeout_ms = max(live.mongo_operation_timeout_ms, EXPORT_TIMEOUT_MS)
        live = dataclasses.replace(live, mongo_operation_timeout_ms=timeout_ms)
        try:
            count = run_with_store(live, lambda store: export(store, live))
        except CouponError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {count} codes of campaign {campaign} to {out}", err=True)


EXPORT_COLUMNS = ("code", "kind", "used", "max_uses", "user_id", "expires_at", "created_at")
EXPORT_TIMEOUT_MS = 600_000


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
