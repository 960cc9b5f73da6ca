"""The `shopfront` command line: serve, keys, import, seed, schema.

Commands that need the database use `database()`, which connects to SHOPFRONT_MONGODB_URI or
starts the embedded server on the data folder for the duration of the command.
"""

from __future__ import annotations

import asyncio
import contextlib
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


@contextlib.contextmanager
def stage_progress() -> Iterator[Callable[[str, float], None]]:
    """A rich progress bar per training stage; yields the ``(stage, fraction)`` callback."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def report(stage: str, fraction: float) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=1.0)
        bars.update(tasks[stage], completed=fraction)

    with bars:
        yield report


@main.command()
@click.option(
    "--window-days",
    type=click.IntRange(min=1),
    default=None,
    help="Days of events to learn from (default SHOPFRONT_TRAINING_WINDOW_DAYS).",
)
@click.option(
    "--activate/--no-activate",
    default=True,
    help="Make the new version the one every instance serves (default) or only store it.",
)
@click.option(
    "--evaluate",
    "with_metrics",
    is_flag=True,
    help="Also measure offline metrics on a temporal split (fits twice) and store them.",
)
def train(window_days: int | None, activate: bool, with_metrics: bool) -> None:
    """Fit every recommender on the catalog and events; store a new model version."""
    from service.evaluation import evaluate_shop
    from service.training import builtin_recommenders
    from service.training import train as run_training

    settings = load_settings(training_window_days=window_days)

    async def work(store: Store) -> Any:
        with stage_progress() as report:
            metrics = None
            if with_metrics:
                rows = await evaluate_shop(store, settings, progress=report)
                metrics = {str(r["name"]): _numbers(r) for r in rows}
            recommenders = builtin_recommenders(settings, store)
            return await run_training(
                store,
                settings,
                recommenders,
                progress=report,
                activate_version=activate,
                metrics=metrics,
            )

    with database(settings) as live:
        try:
            result = run_with_store(live, work)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
    v = result.version
    click.echo(
        f"model version {v.version} ({v.status}): {v.sizes.get('products', 0)} products, "
        f"{v.sizes.get('events', 0)} events, {len(v.artifacts)} strategies, "
        f"{result.total_seconds:.1f}s"
    )
    for artifact in v.artifacts:
        click.echo(
            f"  {artifact.strategy:<22} {artifact.bytes / 1e6:8.2f} MB  "
            f"fit {artifact.fit_seconds:7.2f}s"
        )


def _numbers(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if isinstance(v, int | float) and k != "name"}


@main.command()
@click.option(
    "--split",
    type=click.Choice(["time", "user"]),
    default="time",
    help="time: one cut for everyone; user: each shopper's last events (the bench protocol).",
)
@click.option("--test-fraction", type=click.FloatRange(0.01, 0.9), default=0.2)
@click.option(
    "--users", type=click.IntRange(min=1), default=2000, help="Test shoppers sampled (seeded)."
)
@click.option(
    "--include-seen",
    is_flag=True,
    help="Keep products the shopper already interacted with (credits repeat purchases).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def evaluate(split: str, test_fraction: float, users: int, include_seen: bool, fmt: str) -> None:
    """Offline metrics per strategy and for the blend, on a temporal split of the events."""
    import json

    from service.evaluation import evaluate_shop

    settings = load_settings()

    async def work(store: Store) -> Any:
        with stage_progress() as report:
            return await evaluate_shop(
                store,
                settings,
                per_user=split == "user",
                test_fraction=test_fraction,
                max_users=users,
                exclude_seen=not include_seen,
                progress=report,
            )

    with database(settings) as live:
        rows = run_with_store(live, work)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Offline evaluation ({split} split, {test_fraction:.0%} test)")
    columns = ["name", "ndcg@10", "hr@10", "recall@20", "map@10", "coverage", "fit_seconds"]
    for column in [*columns, "users"]:
        table.add_column(column, justify="left" if column == "name" else "right")
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in [*columns, "users"]))
    Console().print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
