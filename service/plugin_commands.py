"""``shopfront plugins ...`` (also spelled ``shopfront plugin ...``): reload the plugin
configuration on every instance, scaffold a new plugin package; and the SIGHUP handler
``shopfront serve`` installs."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from shopfront.cli_support import database, database_options, load_settings, run_with_store

log = logging.getLogger("shopfront.plugins.config")


@click.group("plugins")
def plugins() -> None:
    """Plugin configuration and authoring."""


@plugins.command("reload")
@database_options
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The config file (default SHOPFRONT_CONFIG).",
)
def reload_command(path: Path | None) -> None:
    """Validate the config file against the installed plugins and publish it: every running
    instance swaps it in within SHOPFRONT_PLUGIN_CONFIG_REFRESH_S, without a restart. A file
    that does not validate is refused whole and nothing changes. Run it where the service's
    environment is (env: references resolve here too)."""
    from shopfront.extend.reload import ReloadError, validate_and_publish

    settings = load_settings()
    path = path or settings.config_file
    if path is None:
        raise click.ClickException("no config file: set SHOPFRONT_CONFIG or pass --file")
    with database(settings) as live:
        try:
            version = run_with_store(live, lambda store: validate_and_publish(live, store, path))
        except ReloadError as exc:
            raise click.ClickException(f"{path} refused, nothing published: {exc}") from None
    click.echo(
        f"published plugin configuration version {version} from {path}; running instances "
        f"apply it within {settings.plugin_config_refresh_s:g}s"
    )


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    help="Where to create the package folder (default: here).",
)
def new_command(name: str, directory: Path) -> None:
    """Scaffold a plugin package NAME: pyproject with the entry point, one recommender with
    declared settings, its tests with the kit and the contract checks."""
    from shopfront.extend.scaffold import ScaffoldError, scaffold

    try:
        created = scaffold(name, directory)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {created.root}")
    click.echo(f"  cd {created.root} && pip install -e '.[test]' && python -m pytest")


def reload_on_sighup(
    app: Any, on_done: Callable[[int | None, str | None], None] | None = None
) -> Callable[[], None]:
    """SIGHUP re-reads SHOPFRONT_CONFIG, validates it and publishes it to every instance (see
    `shopfront.runtime.reload_plugin_config`); a refused file is logged and changes nothing.
    Call it on the server's running loop; it returns the function that removes the handler.
    ``on_done(version, error)`` hears how each reload ended."""
    from shopfront.extend.reload import ReloadError
    from shopfront.runtime import reload_plugin_config

    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        runtime = getattr(app.state, "runtime", None)
        version: int | None = None
        error: str | None = None
        if runtime is None:
            error = "the service is not running yet"
        else:
            try:
                version = await reload_plugin_config(runtime)
            except ReloadError as exc:
                error = str(exc)
        if error is None:
            log.info("SIGHUP: plugin configuration version %s published and applied", version)
        else:
            log.error("SIGHUP: plugin configuration refused, nothing changed: %s", error)
        if on_done is not None:
            on_done(version, error)

    def on_signal() -> None:
        task = loop.create_task(reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, on_signal)

    def remove() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return remove
