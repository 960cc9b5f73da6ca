"""What the `shopfront` commands share: settings and the data folder (one database,
named on the first line, never created by accident), tables and JSON output, progress bars,
and running uvicorn until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.embedded import EmbeddedMongo, EmbeddedUnavailable
from shopfront.platform.store import DatabaseUnavailable, Store, open_store, wait_until_reachable

T = TypeVar("T")
log = logging.getLogger("shopfront")


DATA_DIR_KEY = "shopfront.data_dir"  # click context meta: --data-dir given anywhere
CREATE_KEY = "shopfront.create"  # click context meta: --create given


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; ``overrides`` (not None) and ``--data-dir`` win."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and overrides.get("data_dir") is None and DATA_DIR_KEY in ctx.meta:
        overrides["data_dir"] = ctx.meta[DATA_DIR_KEY]
    try:
        return Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value:  # a flag left off (False) or an option not given (None) changes nothing
            ctx.meta[key] = value
        return value

    return callback


F = TypeVar("F", bound=Callable[..., Any])

_DATA_DIR_HELP = (
    "Data folder of the embedded database and demo keys (default SHOPFRONT_DATA_DIR, else the "
    "source checkout's .shopfront/ or ~/.local/share/shopfront)."
)


def data_dir_option(f: F) -> F:
    """``--data-dir``, on the group and on every command that uses the database."""
    option = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_remember(DATA_DIR_KEY),
        help=_DATA_DIR_HELP,
    )
    return option(f)


def database_options(f: F) -> F:
    """``--data-dir`` and ``--create`` for a command that reads or writes the database."""
    create = click.option(
        "--create",
        is_flag=True,
        expose_value=False,
        callback=_remember(CREATE_KEY),
        help="Start a new, empty embedded database when the data folder has none "
        "(without it the command stops instead of creating one).",
    )
    return data_dir_option(create(f))


RUNNING_FILE = "db.running"  # {"pid", "uri", "owner_pid", "command"} of the live server


@dataclasses.dataclass(frozen=True)
class RunningServer:
    """The embedded server another Shopfront process runs on a data folder."""

    uri: str
    pid: int
    owner_pid: int | None
    command: str


def running_embedded(data: Path) -> RunningServer | None:
    """The embedded server another Shopfront process runs on ``data``, if any.

    One data folder holds one database, and only one server process can open it, so a command
    run beside `shopfront serve` (say `shopfront keys create`) talks to the running server.
    """
    try:
        info = json.loads((data / RUNNING_FILE).read_text())
        pid, uri = int(info["pid"]), str(info["uri"])
        owner = info.get("owner_pid")
        found = RunningServer(
            uri, pid, int(owner) if owner is not None else None, str(info.get("command", ""))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # left behind by a crash
    except PermissionError:
        pass  # alive, owned by another user
    try:
        wait_until_reachable(uri, 2.0, lambda: True)
    except DatabaseUnavailable:
        return None
    return found


def has_embedded_database(data: Path) -> bool:
    """Whether ``data`` already holds embedded database files."""
    folder = data / "db"
    return folder.is_dir() and any(folder.iterdir())


def redacted(uri: str) -> str:
    """``uri`` without its password, fit to print."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", uri)


def say(text: str) -> None:
    """A status line on stderr, so stdout stays clean for --json and CSV."""
    click.echo(text, err=True)


def _command_name() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx is not None else "shopfront"


@contextlib.contextmanager
def database(settings: Settings, *, create: bool | None = None) -> Iterator[Settings]:
    """Settings whose ``mongodb_uri`` answers: the configured server, the embedded server
    already running on the data folder, or a new embedded server for as long as this lasts.

    The first line it prints names the database. A data folder without a database is an error
    unless ``create`` (default: ``--create`` was given), so a command run from the wrong place
    never fills a new, empty database by mistake.
    """
    if create is None:
        ctx = click.get_current_context(silent=True)
        create = bool(ctx is not None and ctx.meta.get(CREATE_KEY))
    if settings.mongodb_uri:
        say(
            f"database: {settings.mongodb_database} on {redacted(settings.mongodb_uri)} "
            "(SHOPFRONT_MONGODB_URI)"
        )
        yield settings
        return
    data = settings.data_dir.expanduser().absolute()
    shared = running_embedded(data)
    if shared is not None:
        by = f"{shared.command} (pid {shared.owner_pid})" if shared.owner_pid else "another command"
        say(f"database: embedded, {data / 'db'} (already running, started by {by})")
        yield dataclasses.replace(settings, mongodb_uri=shared.uri, data_dir=data)
        return
    if not create and not has_embedded_database(data):
        raise click.ClickException(
            f"no Shopfront database in {data}. Start the service there with `shopfront serve "
            "--demo`, point --data-dir (or SHOPFRONT_DATA_DIR) at the folder that holds one, "
            "or pass --create to start a new, empty database in this folder."
        )
    say(f"database: embedded, {data / 'db'} (started for this command)")
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
    log.info("embedded MongoDB running on %s:%s", server.host, server.port)
    marker = data / RUNNING_FILE
    try:
        tmp = marker.with_suffix(".tmp")
        state = {
            "pid": server.pid,
            "uri": server.uri,
            "owner_pid": os.getpid(),
            "command": _command_name(),
        }
        tmp.write_text(json.dumps(state))
        tmp.replace(marker)
        yield dataclasses.replace(settings, mongodb_uri=server.uri, data_dir=data)
    finally:
        marker.unlink(missing_ok=True)
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


# -- output ------------------------------------------------------------------------------

EMPTY = "—"  # how an empty value reads in a table (never "None")


def json_option(f: F) -> F:
    """``--json``: the listing as JSON on stdout, for scripts."""
    option = click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table."
    )
    return option(f)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def cell(value: Any) -> str:
    """A table cell: empty values as an em dash, times to the minute (UTC as stored)."""
    from datetime import datetime

    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def new_table(*headings: str, title: str | None = None, right: Sequence[str] = ()) -> Any:
    """A rich table with these headings; values wrap rather than being cut off."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for heading in headings:
        table.add_column(heading, justify="right" if heading in right else "left", overflow="fold")
    return table


def print_table(table: Any, *, stderr: bool = False) -> None:
    """Print at the terminal's width; piped or redirected, as wide as the table needs
    (rich would otherwise assume 80 columns and cut values)."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(stderr=stderr)
    if not console.is_terminal:
        wide = console.options.update_width(10_000)
        needed = Measurement.get(console, wide, table).maximum
        console = Console(stderr=stderr, width=max(80, needed))
    console.print(table)


class _Stopped(Exception):
    """SIGTERM, turned into an exception so that cleanup (`database()`) runs."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def run_until_stopped(server: Any) -> None:
    """Run a uvicorn server until Ctrl-C or SIGTERM, then return normally.

    uvicorn drains on either signal and then raises the same signal again for the embedding
    program. Left alone, SIGINT would end as click's "Aborted!" (exit 1) and SIGTERM would kill
    the process before the embedded database is stopped; both were a clean stop, so exit 0.
    """
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        server.run()
    except (KeyboardInterrupt, _Stopped):
        log.info("shopfront stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)


def draining_server(config: Any, app: Any, on_ready: Callable[[int], None] | None = None) -> Any:
    """A uvicorn server that marks the app as draining the moment a shutdown signal arrives,
    so /readyz turns unready while in-flight requests finish; ``on_ready(port)`` runs once
    the app has started and the port accepts connections."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            runtime = getattr(app.state, "runtime", None)
            if runtime is not None:
                runtime.draining = True
            super().handle_exit(sig, frame)

        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                from shopfront.plugin_commands import reload_on_sighup

                reload_on_sighup(app)  # SIGHUP: re-read and publish the plugin configuration
            if self.started and on_ready is not None:
                port = config.port
                for server in self.servers:
                    for sock in server.sockets:
                        port = sock.getsockname()[1]  # the real one when asked for port 0
                on_ready(port)

    return Server(config)


STARTED = time.monotonic()  # the time to ready counts the interpreter's start-up too


def banner(host: str, port: int, keys: Any, seconds: float) -> list[str]:
    """What `serve` prints once it accepts connections."""
    url = f"http://{host}:{port}/graphql"
    if keys is None:
        return [f"Shopfront: {url} (ready in {seconds:.1f} s)"]
    from shopfront.demo.setup import DEMO_SHOPPER

    return [
        "",
        f"Shopfront demo: {url} (ready in {seconds:.1f} s; open it in a browser for GraphiQL)",
        f"  SHOPFRONT_STOREFRONT_KEY={keys.storefront}",
        f"  SHOPFRONT_MERCHANT_KEY={keys.merchant}",
        *(
            [
                f"  SHOPFRONT_SHOPPER_TOKEN={keys.shopper_token}",
                f"  (X-Shopper-Token for shopper {DEMO_SHOPPER}, valid 24 hours)",
            ]
            if getattr(keys, "shopper_token", None)
            else []
        ),
        f"  (also in {keys.path}: `source` it in another shell)",
        "",
    ]


@contextlib.contextmanager
def stage_progress(*, stderr: bool = True) -> Iterator[Callable[[str, float], None]]:
    """A rich progress bar per stage (training, loading the demo); yields the
    ``(stage, fraction)`` callback. On stderr, so stdout keeps only results (JSON, CSV)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("{task.description:<30}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        transient=False,
        console=Console(stderr=stderr),
    )
    tasks: dict[str, Any] = {}

    def report(stage: str, fraction: float) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=1.0)
        bars.update(tasks[stage], completed=fraction)

    with bars:
        yield report


EXPORT_TIMEOUT_MS = 600_000  # a batch job's per-operation allowance (exports, reports)


def as_batch_job(settings: Settings) -> Settings:
    """A batch job, not a request: each database operation gets minutes, not seconds."""
    timeout_ms = max(settings.mongo_operation_timeout_ms, EXPORT_TIMEOUT_MS)
    return dataclasses.replace(settings, mongo_operation_timeout_ms=timeout_ms)
