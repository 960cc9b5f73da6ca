"""The `shopfront` command line: serve, keys, import, seed, schema, reports, training.

Every command that needs the database takes ``--data-dir`` (and ``--create``) and uses
`database()` (shopfront.cli_support): SHOPFRONT_MONGODB_URI, the embedded server already
running on the data folder, or one started for the duration of the command.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click
from shopfront.cli_support import (
    EMPTY,
    RUNNING_FILE,
    STARTED,
    F,
    as_batch_job,
    banner,
    cell,
    data_dir_option,
    database,
    database_options,
    draining_server,
    json_option,
    load_settings,
    new_table,
    print_json,
    print_table,
    run_until_stopped,
    run_with_store,
    stage_progress,
)
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.store import Store
from shopfront.plugin_commands import plugins

__all__ = ["RUNNING_FILE", "database", "main"]


@click.group()
@click.version_option(package_name="shopfront")
@data_dir_option
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
@click.option(
    "--drain",
    type=float,
    default=None,
    help="Seconds in-flight requests get to finish on SIGTERM "
    "(default SHOPFRONT_SHUTDOWN_DRAIN_S).",
)
@data_dir_option
def serve(host: str | None, port: int | None, demo: bool, drain: float | None) -> None:
    """Serve GraphQL at /graphql (starting the embedded database if no URI is set).

    On SIGTERM (or Ctrl-C) it stops accepting connections, lets in-flight requests finish
    within the drain time, then closes the database client.
    """
    import os

    import uvicorn
    from shopfront.app import create_app
    from shopfront.platform.logs import configure_logging

    introspection = None
    if demo and "SHOPFRONT_INTROSPECTION" not in os.environ:
        introspection = True  # the demo is for exploring; production keeps it off
    shipping = None
    if demo and "SHOPFRONT_SHIPPING_FEE" not in os.environ:
        shipping = ("EUR=495",)  # so the demo's free-shipping promotion has a fee to waive
    cors = None
    if demo and "SHOPFRONT_CORS_ORIGINS" not in os.environ:
        from shopfront.demo.setup import DEMO_CORS_ORIGINS

        cors = DEMO_CORS_ORIGINS  # a storefront under development calls from localhost
    settings = load_settings(
        host=host,
        port=port,
        introspection=introspection,
        shutdown_drain_s=drain,
        shipping_fee=shipping,
        cors_origins=cors,
    )
    if demo and not settings.shopper_token_secrets:
        from shopfront.demo.setup import demo_token_secrets

        # The demo signs shopper tokens with a secret of its own, kept in the data folder.
        demo_secrets = demo_token_secrets(settings.data_dir)
        settings = dataclasses.replace(settings, shopper_token_secrets=demo_secrets)
    configure_logging(settings.log_level, settings.log_format)
    with database(settings, create=True) as live:
        keys = None
        if demo:
            from shopfront.demo.setup import prepare_demo

            with stage_progress(stderr=True) as report:
                keys = run_with_store(
                    live, lambda store: prepare_demo(store, live, progress=report)
                )
        app = create_app(live, demo=demo)
        config = uvicorn.Config(
            app,
            host=live.host,
            port=live.port,
            log_config=None,  # keep the JSON/text logging configured above
            access_log=False,  # the app logs one structured line per GraphQL request
            # X-Forwarded-For is believed only from SHOPFRONT_TRUSTED_PROXIES (the app reads
            # it), never from uvicorn's FORWARDED_ALLOW_IPS.
            proxy_headers=False,
            # uvicorn types this as int but only hands it to asyncio.wait_for (seconds).
            timeout_graceful_shutdown=live.shutdown_drain_s,  # type: ignore[arg-type]
        )

        def ready(port: int) -> None:
            lines = banner(live.host, port, keys, time.monotonic() - STARTED)
            click.echo("\n".join(lines))

        run_until_stopped(draining_server(config, app, on_ready=ready))


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@database_options
@click.option("--role", type=click.Choice(["storefront", "merchant"]), required=True)
@click.option("--name", required=True, help="Who or what uses the key.")
def keys_create(role: str, name: str) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from shopfront.platform.keys import KeyError_, create_key

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
@database_options
@json_option
def keys_list(as_json: bool) -> None:
    """List keys (never their values)."""
    from shopfront.platform.keys import list_keys

    with database(load_settings()) as live:
        records = run_with_store(live, list_keys)
    rows = [
        {
            "id": k.id,
            "role": k.role.value,
            "name": k.name,
            "created_at": k.created_at.isoformat(),
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            "state": "active" if k.active else "revoked",
        }
        for k in records
    ]
    if as_json:
        print_json(rows)
        return
    table = new_table("Id", "Role", "Name", "Created", "State", "Revoked")
    for k in records:
        table.add_row(
            k.id,
            k.role.value,
            k.name,
            cell(k.created_at),
            "active" if k.active else "revoked",
            cell(k.revoked_at),
        )
    print_table(table)


@keys.command("revoke")
@database_options
@click.argument("key")
def keys_revoke(key: str) -> None:
    """Revoke a key by id, or every active key with this name."""
    from shopfront.platform.keys import revoke_key

    with database(load_settings()) as live:
        revoked = run_with_store(live, lambda s: revoke_key(s, key))
    if not revoked:
        raise click.ClickException(f"no key with id or name {key!r}")
    for k in revoked:
        click.echo(f"revoked {k.id} ({k.name})")


@main.command("import")
@database_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="File format (default: from the extension, .jsonl/.ndjson or .csv).",
)
def import_command(file: Path, fmt: str | None) -> None:
    """Import products from a JSONL or CSV file (created or updated by id).

    Exits 0 when every row was imported, 1 when any row was rejected (the others are kept)
    or the file could not be imported at all (then nothing is written).
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
    from shopfront.catalog.importer import ImportFileError, RowSource, import_products

    try:
        source = RowSource(file, fmt)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None
    progress = Progress(
        TextColumn("importing {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    with source, database(load_settings()) as live, progress:
        task = progress.add_task(file.name, total=source.total_bytes)
        summary = run_with_store(
            live,
            lambda s: import_products(
                s, source, on_progress=lambda done: progress.update(task, completed=done)
            ),
        )
    click.echo(
        f"{file.name}: {summary.created} created, {summary.updated} updated, "
        f"{len(summary.rejected)} rejected"
    )
    for row in summary.rejected:
        click.echo(f"  line {row.line}: {row.reason}")
    if summary.rejected:
        sys.exit(1)


@main.command()
@database_options
@click.option("--demo", is_flag=True, help="Load the demo data set (the only seed there is).")
@click.option("--force", is_flag=True, help="Seed even if the catalog already has products.")
def seed(demo: bool, force: bool) -> None:
    """Seed the database with the demo catalog (`--demo`)."""
    from shopfront.demo.data import DemoError, seed_demo

    if not demo:
        raise click.UsageError("say what to seed: `shopfront seed --demo` loads the demo data")

    async def work(store: Store) -> str:
        existing = await store.products.count_documents({})
        if existing and not force:
            raise click.ClickException(
                f"the catalog already has {existing} products; pass --force to add or "
                "overwrite the demo products anyway"
            )
        try:
            summary = await seed_demo(store, live)
        except DemoError as exc:
            raise click.ClickException(str(exc)) from None
        return (
            f"demo catalog: {summary.products} products ({summary.products_created} created, "
            f"{summary.products_updated} updated) in {summary.categories} categories, "
            f"{summary.brands} brands"
        )

    with database(load_settings()) as live:
        click.echo(run_with_store(live, work))


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the SDL here (default: schema/schema.graphql in the source tree).",
)
def schema(out: Path | None) -> None:
    """Print or write the GraphQL SDL that frontends code against."""
    from shopfront.schema import SDL_PATH, sdl

    target = out or SDL_PATH
    target.write_text(sdl())
    click.echo(f"wrote {target}", err=True)


# -- reports (shopfront.experiments.reports and .attribution) ----------------------------


@main.group()
def report() -> None:
    """Experiment results and strategy performance, as a table, CSV or JSON."""


def _format_option(f: F) -> F:
    option = click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json"]),
        default="table",
        show_default=True,
        help="A table for people, CSV or JSON for tools.",
    )
    return option(json_option(f))


def _pct(x: float | None, digits: int = 2) -> str:
    return EMPTY if x is None else f"{x:.{digits}%}"


@report.command("experiment")
@database_options
@click.argument("experiment_id")
@_format_option
def report_experiment(experiment_id: str, fmt: str, as_json: bool) -> None:
    """Per variant: exposed shoppers, CTR, conversion and revenue with 95% intervals, lift
    against the control, significance and sample ratio mismatch."""
    import csv
    import json
    from datetime import UTC, datetime

    from shopfront.experiments.definitions import ExperimentError
    from shopfront.experiments.reports import COLUMNS, experiment_report, report_rows

    with database(load_settings()) as live:
        live = as_batch_job(live)
        try:
            result = run_with_store(
                live,
                lambda store: experiment_report(
                    store,
                    experiment_id,
                    now=datetime.now(UTC),
                    min_exposures=live.experiment_min_exposures,
                ),
            )
        except ExperimentError as exc:
            raise click.ClickException(str(exc)) from None
    if fmt == "json" or as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    if fmt == "csv":
        out = sys.stdout
        writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(report_rows(result))
        return
    from rich.console import Console

    def money(m: Any) -> str:
        return EMPTY if m is None else str(m.format())

    headings = (
        "Variant",
        "Exposed",
        "Clicks",
        "CTR",
        "Conv.",
        "Conv. rate (95% CI)",
        "Lift (95% CI)",
        "p",
        "Revenue/shopper (95% CI)",
        "AOV",
        "Verdict",
    )
    table = new_table(
        *headings,
        title=f"{result.name} ({result.status}, {result.currency}), "
        f"{result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M}"
        if result.start
        else f"{result.name} ({result.status}): not started",
        right=[h for h in headings if h not in ("Variant", "Verdict")],
    )
    for v in result.variants:
        conv_ci = v.conversion_rate_ci
        lift_ci = v.lift_ci
        rps_ci = v.revenue_per_shopper_ci
        table.add_row(
            v.name + (" (control)" if v.control else ""),
            str(v.exposures),
            str(v.clicks),
            _pct(v.ctr),
            str(v.conversions),
            _pct(v.conversion_rate)
            + (f" [{_pct(conv_ci.low)}, {_pct(conv_ci.high)}]" if conv_ci else ""),
            _pct(v.lift_vs_control, 1)
            + (f" [{_pct(lift_ci.low, 1)}, {_pct(lift_ci.high, 1)}]" if lift_ci else ""),
            EMPTY if v.conversion_p_value is None else f"{v.conversion_p_value:.3g}",
            money(v.revenue_per_shopper)
            + (f" [{money(rps_ci.low)}, {money(rps_ci.high)}]" if rps_ci else ""),
            money(v.average_order_value),
            v.verdict + (" *" if v.significant else ""),
        )
    print_table(table)
    console = Console()
    srm = "yes" if result.sample_ratio_mismatch else "no"
    p = "" if result.srm_p_value is None else f" (chi-square p = {result.srm_p_value:.3g})"
    console.print(f"Sample ratio mismatch: {srm}{p}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@report.command("strategies")
@database_options
@click.option(
    "--from", "start", type=click.DateTime(), required=True, help="Start (UTC), inclusive."
)
@click.option("--to", "end", type=click.DateTime(), required=True, help="End (UTC), exclusive.")
@click.option(
    "--currency", default=None, help="Revenue currency (default SHOPFRONT_REPORT_CURRENCY)."
)
@_format_option
def report_strategies(start: Any, end: Any, currency: str | None, fmt: str, as_json: bool) -> None:
    """Impressions, clicks, CTR, add-to-cart and conversion rates, attributed revenue and
    revenue per thousand impressions, per strategy and per slot."""
    import csv
    import json
    from datetime import UTC

    from shopfront.experiments.attribution import strategy_performance
    from shopfront.platform.money import MoneyError

    settings = load_settings()
    start, end = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    code = currency or settings.report_currency
    with database(settings) as live:
        live = as_batch_job(live)
        try:
            perf = run_with_store(
                live, lambda store: strategy_performance(store, start, end, currency=code)
            )
        except (ValueError, MoneyError) as exc:
            raise click.ClickException(str(exc)) from None
    rows = [
        {
            "kind": kind,
            "name": r.key,
            "impressions": r.impressions,
            "clicks": r.clicks,
            "ctr": "" if r.ctr is None else f"{r.ctr:.6g}",
            "add_to_carts": r.add_to_carts,
            "add_to_cart_rate": "" if r.add_to_cart_rate is None else f"{r.add_to_cart_rate:.6g}",
            "purchases": r.purchases,
            "conversion_rate": "" if r.conversion_rate is None else f"{r.conversion_rate:.6g}",
            "revenue": r.revenue.amount,
            "rpm": "" if r.revenue_per_mille is None else r.revenue_per_mille.amount,
            "currency": perf.currency,
        }
        for kind, group in (("strategy", perf.by_strategy), ("slot", perf.by_slot))
        for r in group
    ]
    if fmt == "json" or as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if fmt == "csv":
        out = sys.stdout
        fields = list(rows[0]) if rows else ["kind", "name"]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    headings = (
        "Kind",
        "Name",
        "Impr.",
        "Clicks",
        "CTR",
        "ATC rate",
        "Conv. rate",
        "Revenue",
        "RPM",
    )
    table = new_table(
        *headings,
        title=f"Strategy performance {start:%Y-%m-%d} to {end:%Y-%m-%d} ({code})",
        right=headings[2:],
    )
    for kind, group in (("strategy", perf.by_strategy), ("slot", perf.by_slot)):
        for r in group:
            rpm = r.revenue_per_mille
            table.add_row(
                kind,
                r.key,
                str(r.impressions),
                str(r.clicks),
                _pct(r.ctr),
                _pct(r.add_to_cart_rate),
                _pct(r.conversion_rate),
                r.revenue.format(),
                rpm.format() if rpm else EMPTY,
            )
    print_table(table)


@main.command()
@click.option(
    "--update-readme",
    type=click.Path(path_type=Path),
    default=None,
    help="Rewrite the settings table in this README instead of printing it.",
)
@click.option("--markdown", is_flag=True, help="Print the README's Markdown table.")
@json_option
def settings(update_readme: Path | None, markdown: bool, as_json: bool) -> None:
    """Every setting: variable, default (as you would write it) and what it does."""
    from shopfront.platform.config import describe

    described = describe()
    if as_json:
        print_json(
            [
                {"variable": name, "default": default.strip("`") or None, "description": doc}
                for name, default, doc in described
            ]
        )
        return
    rows = [f"| `{name}` | {default or EMPTY} | {doc} |" for name, default, doc in described]
    table = ["| Variable | Default | What it does |", "| --- | --- | --- |", *rows]
    if update_readme is None and markdown:
        click.echo("\n".join(table))
        return
    if update_readme is None:
        shown = new_table("Variable", "Default", "What it does")
        for name, default, doc in described:
            shown.add_row(name, default.replace("`", "") or EMPTY, doc.replace("`", ""))
        print_table(shown)
        return
    lines = update_readme.read_text().splitlines()
    try:
        start = lines.index(table[0])
    except ValueError:
        raise click.ClickException(f"no settings table header in {update_readme}") from None
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines[start:end] = table
    update_readme.write_text("\n".join(lines) + "\n")
    click.echo(f"updated {len(rows)} settings in {update_readme}", err=True)


@main.group()
def coupons() -> None:
    """Coupon campaigns and their codes."""


@coupons.command("export")
@database_options
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
    from shopfront.offers.campaigns import CouponError
    from shopfront.offers.coupon_service import CouponService

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
        live = as_batch_job(live)
        try:
            count = run_with_store(live, lambda store: export(store, live))
        except CouponError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {count} codes of campaign {campaign} to {out}", err=True)


EXPORT_COLUMNS = ("code", "kind", "used", "max_uses", "user_id", "expires_at", "created_at")


@main.command()
@database_options
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
@click.option(
    "--tune",
    is_flag=True,
    help="Also choose slot strategies and blend weights on a time-based holdout and save "
    "them with the version (fits twice).",
)
@click.option(
    "--schedule",
    is_flag=True,
    help="Keep running: retrain every SHOPFRONT_TRAINING_INTERVAL_MINUTES under the database "
    "lease lock (one trainer at a time across instances); for a dedicated training process.",
)
def train(
    window_days: int | None, activate: bool, with_metrics: bool, tune: bool, schedule: bool
) -> None:
    """Fit every recommender on the catalog and events; store a new model version."""

    settings = load_settings(training_window_days=window_days)
    if schedule:
        _train_on_schedule(settings, with_metrics=with_metrics, tune=tune)
        return
    _print_training(_train_now(settings, activate=activate, with_metrics=with_metrics, tune=tune))


def _train_now(settings: Settings, *, activate: bool, with_metrics: bool, tune: bool) -> Any:
    from shopfront.jobs import train_and_save

    with database(settings) as live:
        try:
            return run_with_store(
                live,
                lambda store: train_and_save(
                    store, settings, activate=activate, with_metrics=with_metrics, tune=tune
                ),
            )
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except TimeoutError as exc:
            raise click.ClickException(str(exc)) from None


def _print_training(result: Any) -> None:
    v = result.version
    click.echo(
        f"model version {v.version} ({v.status}): {v.sizes.get('products', 0)} products, "
        f"{v.sizes.get('events', 0)} events, {len(v.artifacts)} strategies, "
        f"{result.total_seconds:.1f}s, peak memory {result.peak_memory_mb:.0f} MB"
    )
    table = new_table("Strategy", "Size (MB)", "Fit (s)", right=("Size (MB)", "Fit (s)"))
    for artifact in v.artifacts:
        table.add_row(
            artifact.strategy, f"{artifact.bytes / 1e6:.2f}", f"{artifact.fit_seconds:.2f}"
        )
    print_table(table)
    if result.tuning is not None:
        click.echo("tuning saved with this version:")
        for line in result.tuning.report():
            click.echo(f"  {line}")


def _train_on_schedule(settings: Settings, *, with_metrics: bool, tune: bool) -> None:
    """Retrain every ``training_interval_minutes`` when this process holds the lease lock;
    serving instances pick each new version up by polling the model registry."""
    from shopfront.jobs import train_and_save
    from shopfront.recommend.training import TrainingLock, train_under_lock

    if settings.training_interval_minutes <= 0:
        raise click.UsageError(
            "--schedule needs SHOPFRONT_TRAINING_INTERVAL_MINUTES > 0 (minutes between runs)"
        )

    async def forever(store: Store) -> None:
        lock = TrainingLock(store, "training", settings.training_lock_lease_s)
        while True:
            try:
                result = await train_under_lock(
                    lock,
                    settings.training_lock_lease_s,
                    lambda: train_and_save(
                        store, settings, activate=True, with_metrics=with_metrics, tune=tune
                    ),
                )
            except Exception as exc:  # the served version stays; try again next time
                click.echo(f"training failed: {type(exc).__name__}: {exc}", err=True)
            else:
                if result is None:
                    click.echo("another trainer holds the lock; waiting", err=True)
                else:
                    click.echo(f"model version {result.version.version} saved", err=True)
            await asyncio.sleep(settings.training_interval_minutes * 60)

    with database(settings) as live:
        run_with_store(live, forever)


@main.command()
@database_options
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
@click.option(
    "--tune",
    is_flag=True,
    help="Choose each personalized slot's strategies and blend weights on a time-based "
    "holdout, say what was chosen and why, then train and activate a version that serves it.",
)
@json_option
@click.option(
    "--report",
    is_flag=True,
    help="The quality report: every strategy, the fixed and the tuned HOME blend on each "
    "shopper's next basket, and the HOME page's signals (departments of 'Because you viewed', "
    "overlap with trending, the most common first product) against their targets.",
)
def evaluate(
    split: str,
    test_fraction: float,
    users: int,
    include_seen: bool,
    fmt: str,
    tune: bool,
    as_json: bool,
    report: bool,
) -> None:
    """Offline metrics per strategy and for the blend, on a temporal split of the events."""
    import json

    from shopfront.recommend.evaluation import evaluate_shop

    settings = load_settings()
    if report:
        from shopfront.jobs import quality_report

        with database(settings) as live:
            lines = run_with_store(
                live,
                lambda store: quality_report(
                    store, settings, test_fraction, users, as_json or fmt == "json"
                ),
            )
        for line in lines:
            click.echo(line)
        return
    if tune:
        result = _train_now(settings, activate=True, with_metrics=False, tune=True)
        if fmt == "json" or as_json:
            doc = result.tuning.to_doc() if result.tuning else None
            click.echo(json.dumps({"version": result.version.version, "tuning": doc}, indent=2))
        else:
            _print_training(result)
        return

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
    if fmt == "json" or as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = ["name", "ndcg@10", "hr@10", "recall@20", "map@10", "coverage", "fit_seconds"]
    table = new_table(
        *columns,
        "users",
        title=f"Offline evaluation ({split} split, {test_fraction:.0%} test)",
        right=[*columns[1:], "users"],
    )
    for row in rows:
        table.add_row(*(cell(row.get(c)) for c in [*columns, "users"]))
    print_table(table)


main.add_command(plugins)
main.add_command(plugins, name="plugin")  # `shopfront plugin new NAME` reads naturally too


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
