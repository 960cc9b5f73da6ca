"""``shopfront plugin new NAME``: a plugin package that installs, registers and passes its tests
as generated.

For ``NAME`` ``staff_picks`` it writes ``shopfront-staff-picks/``::

    pyproject.toml            entry point `staff_picks = "shopfront_staff_picks"` in the
                              `shopfront` group; the `test` extra pulls shopfront[plugin-dev];
                              pytest with asyncio_mode = "auto"
    README.md
    src/shopfront_staff_picks/__init__.py      the hook registering the strategy
    src/shopfront_staff_picks/recommender.py   a recommender with declared settings
    src/shopfront_staff_picks/py.typed
    tests/conftest.py          pytest_plugins = ["shopfront.testing"]
    tests/test_staff_picks.py  contract checks, the storefront end to end, a refused setting

The strategy is a working one (a configured list of products, skipping what is in the cart),
to be changed into the merchant's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$")


class ScaffoldError(ValueError):
    """The package cannot be created; the message says why."""


@dataclass(frozen=True)
class Scaffolded:
    root: Path  # the package folder
    plugin: str  # the plugin (entry point) and strategy name
    package: str  # the import package
    files: tuple[Path, ...]


def _names(name: str) -> tuple[str, str, str, str]:
    if not NAME.match(name) or len(name) > 40:
        raise ScaffoldError(
            f"plugin name {name!r}: use lowercase letters, digits and single _ or - between "
            "words, starting with a letter (at most 40 characters), e.g. staff_picks"
        )
    plugin = name.replace("-", "_")
    words = plugin.split("_")
    return (
        plugin,
        f"shopfront-{'-'.join(words)}",
        f"shopfront_{plugin}",
        "".join(w.capitalize() for w in words),
    )


def scaffold(name: str, directory: Path) -> Scaffolded:
    """Write the package for plugin ``name`` into ``directory``; refuses to overwrite."""
    plugin, distribution, package, klass = _names(name)
    root = directory / distribution
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another name or folder")
    values = {
        "plugin": plugin,
        "distribution": distribution,
        "package": package,
        "klass": klass,
        "title": plugin.replace("_", " ").capitalize(),
    }
    files = {
        Path("pyproject.toml"): PYPROJECT,
        Path("README.md"): README,
        Path("src") / package / "__init__.py": INIT,
        Path("src") / package / "recommender.py": RECOMMENDER,
        Path("src") / package / "py.typed": "",
        Path("tests") / "conftest.py": CONFTEST,
        Path("tests") / f"test_{plugin}.py": TESTS,
    }
    written = []
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = template
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return Scaffolded(root, plugin, package, tuple(written))


PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "{{distribution}}"
version = "0.1.0"
description = "{{title}}: a Shopfront plugin."
requires-python = ">=3.11"
dependencies = ["shopfront"]

[project.optional-dependencies]
# pip install -e ".[test]": pytest, pytest-asyncio, httpx, asgi-lifespan and the embedded
# database server that Shopfront's pytest kit needs.
test = ["shopfront[plugin-dev]"]

# Shopfront finds the plugin through this entry point; "{{plugin}}" is the plugin's name in
# SHOPFRONT_PLUGINS_ALLOW / SHOPFRONT_PLUGINS_DENY and in the `plugins` query.
[project.entry-points.shopfront]
{{plugin}} = "{{package}}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
{{package}} = ["py.typed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"

[tool.ruff]
line-length = 100

[tool.ruff.lint.flake8-bugbear]
# `setting(...)` builds a dataclasses.field: safe as a dataclass default.
extend-immutable-calls = ["shopfront.setting"]
"""

README = """\
# {{distribution}}

A Shopfront plugin: the `{{plugin}}` recommender, the products listed in its configuration
(best first), leaving out what is inactive, out of stock or already in the cart.

    pip install -e ".[test]"
    python -m pytest

Configure it in the file `SHOPFRONT_CONFIG` names, then `shopfront plugins reload` (or restart):

    [strategies.{{plugin}}]
    product_ids = ["sku-1", "sku-2"]
    reason = "Our pick"

and ask for it in a storefront query:
`slots: [{name: "{{plugin}}", strategy: "{{plugin}}"}], mode: ADD`.

How plugins work, every type they see, and the test kit: Shopfront's docs/plugins.md.
"""

INIT = '''\
"""{{title}}: a Shopfront plugin.

Shopfront loads this package through its ``shopfront`` entry point (see pyproject.toml) and
calls the hook below once at start-up; the work happens in the strategy it registers.
"""

from __future__ import annotations

from collections.abc import Sequence

from shopfront import RecommenderSpec, hookimpl

from {{package}}.recommender import {{klass}}, {{klass}}Config

__all__ = ["{{klass}}", "{{klass}}Config"]


@hookimpl
def register_recommenders() -> Sequence[RecommenderSpec]:
    return [
        RecommenderSpec(
            name="{{plugin}}",
            factory={{klass}},
            description="{{title}}: configured products, best first",
            config_type={{klass}}Config,  # the settings, checked before the factory runs
            personalized=False,  # the same for everyone: served without consent too
        )
    ]
'''

RECOMMENDER = '''\
"""The {{plugin}} recommender."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopfront import Candidate, Reason, RequestContext, Slot, StrategySetup, setting


@dataclass(frozen=True)
class {{klass}}Config:
    """``[strategies.{{plugin}}]`` in the config file: Shopfront refuses a value that does not
    fit these types and bounds, naming the plugin, the setting and the value."""

    product_ids: list[str] = setting(
        default_factory=list, doc="The products to recommend, best first.", max_len=200
    )
    reason: str = setting("Our pick", doc="Shown to the shopper.", min_len=1, max_len=80)


class {{klass}}:
    """Recommends ``product_ids`` in order, leaving out products that are unknown, inactive,
    out of stock, already in the cart or on the page."""

    def __init__(self, setup: StrategySetup) -> None:
        config = setup.config_as({{klass}}Config)
        self.ids = list(dict.fromkeys(config.product_ids))
        self.reason = Reason("PICK", config.reason)

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        products = await ctx.catalog.get_many(self.ids)  # one batched read per request
        skip = {line.product_id for line in ctx.cart_lines}
        if ctx.product_id:
            skip.add(ctx.product_id)
        picks = [
            pid
            for pid in self.ids
            if pid in products
            and products[pid].active
            and products[pid].in_stock
            and pid not in skip
        ]
        return [
            Candidate(pid, score=float(len(picks) - rank), reasons=(self.reason,))
            for rank, pid in enumerate(picks)
        ]
'''

CONFTEST = """\
# Shopfront's pytest kit: a database per test, a plugin host, a storefront client, contract
# checks (pip install "shopfront[plugin-dev]").
pytest_plugins = ["shopfront.testing"]
"""

TESTS = '''\
"""Tests for the {{plugin}} plugin, with Shopfront's pytest kit."""

from __future__ import annotations

from typing import Any

import pytest
from shopfront import ConfigError, Money, Product, Slot, Store, upsert_products
from shopfront.testing import (
    PluginHostFactory,
    StorefrontClientFactory,
    check_recommender,
    make_context,
)

import {{package}}

CONFIG: dict[str, Any] = {
    "strategies": {"{{plugin}}": {"product_ids": ["p1", "p2", "p3"], "reason": "Our pick"}}
}
PRODUCTS = [
    Product(id="p1", title="One", price=Money(1000, "EUR"), stock=5),
    Product(id="p2", title="Two", price=Money(2000, "EUR"), stock=0),  # out of stock
    Product(id="p3", title="Three", price=Money(3000, "EUR"), stock=2),
]


async def test_it_keeps_the_recommender_contract(plugin_host_with: PluginHostFactory) -> None:
    host = await plugin_host_with({{package}}, name="{{plugin}}", config=CONFIG)
    ctx = make_context(PRODUCTS)
    slot = Slot("{{plugin}}", "{{title}}", ("{{plugin}}",), limit=5)
    # the check runs where the strategy lives: on its plugin's own event loop
    found = await host.run_on_strategy("{{plugin}}", lambda s: check_recommender(s, ctx, slot))
    assert [c.product_id for c in found] == ["p1", "p3"]
    assert found[0].reasons[0].text == "Our pick"


async def test_it_leaves_out_what_is_in_the_cart(plugin_host_with: PluginHostFactory) -> None:
    host = await plugin_host_with({{package}}, name="{{plugin}}", config=CONFIG)
    ctx = make_context(PRODUCTS, cart=[("p1", 1)])
    slot = Slot("{{plugin}}", "{{title}}", ("{{plugin}}",))
    found = await host.run_on_strategy("{{plugin}}", lambda s: check_recommender(s, ctx, slot))
    assert [c.product_id for c in found] == ["p3"]


async def test_a_wrong_setting_is_refused_by_name(plugin_host_with: PluginHostFactory) -> None:
    bad = {"strategies": {"{{plugin}}": {"product_ids": [1, 2]}}}
    with pytest.raises(ConfigError, match=r"'{{plugin}}'.*product_ids\\[0\\]"):
        await plugin_host_with({{package}}, name="{{plugin}}", config=bad)


async def test_it_serves_a_storefront(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    await upsert_products(
        store,
        [
            {"id": p.id, "title": p.title, "price": p.price.to_doc(), "stock": p.stock}
            for p in PRODUCTS
        ],
    )
    sf = await storefront_client([("{{plugin}}", {{package}})], config=CONFIG)
    out = await sf.query(
        {
            "sessionId": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "page": "HOME",
            "slots": [{"name": "{{plugin}}", "strategy": "{{plugin}}"}],
        }
    )
    assert out["degraded"] == []
    [slot] = out["slots"]
    assert [i["product"]["id"] for i in slot["items"]] == ["p1", "p3"]
'''
