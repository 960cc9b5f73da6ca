"""Calling plugin hooks: binding a hook's arguments, first-result policy hooks with their
output checks, and the small helpers the host names plugins and errors with."""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pluggy
from shopfront.extend.isolation import OutputError, validate_offers
from shopfront.extend.records import Degradation, PluginRecord
from shopfront.offers.contract import CouponOffer, PromotionTerms, StackingPlan

log = logging.getLogger("shopfront.plugins")

T = TypeVar("T")


def builtin_name(module_name: str) -> str:
    """The plugin name of built-in module ``module_name`` (imports it)."""
    module = importlib.import_module(module_name)
    return str(getattr(module, "PLUGIN_NAME", module_name.rsplit(".", 1)[-1]))


def shopfront_version() -> str | None:
    try:
        return importlib.metadata.version("shopfront")
    except importlib.metadata.PackageNotFoundError:
        return None


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def bind_call(impl: pluggy.HookImpl, **kwargs: Any) -> Callable[[], Any]:
    """A call of ``impl`` with the arguments it declares (pluggy lets an implementation take
    a subset of its specification's arguments)."""
    function = impl.function
    args = {name: kwargs[name] for name in impl.argnames}
    return lambda: function(**args)


def first_result(
    impls: Sequence[pluggy.HookImpl],
    records: Mapping[str, PluginRecord],
    hook_name: str,
    kwargs: Mapping[str, Any],
    validate: Callable[[Any], T],
) -> tuple[T | None, list[Degradation]]:
    """The first implementation's validated answer (None when none answers); a failing or
    invalid implementation is skipped, counted and named in the degradations."""
    problems: list[Degradation] = []
    for impl in impls:
        record = records.get(impl.plugin_name)
        if record is not None:
            record.policy_calls[hook_name] = record.policy_calls.get(hook_name, 0) + 1
        try:
            raw = bind_call(impl, **kwargs)()
            if raw is None:
                continue
            return validate(raw), problems
        except Exception as exc:
            if record is not None:
                record.policy_failures[hook_name] = record.policy_failures.get(hook_name, 0) + 1
            why = (
                f"invalid output: {exc}"
                if isinstance(exc, OutputError)
                else f"error: {type(exc).__name__}"
            )
            log.warning(
                "policy hook %s of plugin %r failed (%s); trying the next implementation",
                hook_name,
                impl.plugin_name,
                describe_error(exc),
                exc_info=not isinstance(exc, OutputError),
            )
            cause = "invalid" if isinstance(exc, OutputError) else "error"
            problems.append(Degradation(f"{hook_name}:{impl.plugin_name}", why, cause))
    return None, problems


def chosen_offers_check(
    offers: Sequence[CouponOffer],
) -> Callable[[Any], tuple[CouponOffer, ...]]:
    """``choose_coupon_offers`` may only pick among the offers the strategies made."""
    known = {o.code for o in offers}

    def validate(raw: Any) -> tuple[CouponOffer, ...]:
        chosen = validate_offers(raw, "")
        invented = sorted({o.code for o in chosen} - known)
        if invented:
            raise OutputError(f"offers no strategy made: {', '.join(invented)}")
        return chosen

    return validate


def stacking_plan_check(
    promotions: Sequence[PromotionTerms],
) -> Callable[[Any], StackingPlan]:
    """``promotion_stacking`` must answer a plan naming only the promotions in play."""
    names = {t.name for t in promotions}

    def validate(raw: Any) -> StackingPlan:
        if not isinstance(raw, StackingPlan):
            raise OutputError(f"expected a StackingPlan, got {type(raw).__name__}")
        for alt in raw.alternatives:
            if not isinstance(alt, tuple) or not all(isinstance(n, str) for n in alt):
                raise OutputError("each alternative must be a tuple of promotion names")
            unknown = sorted(set(alt) - names)
            if unknown:
                raise OutputError(f"names promotions not in play: {', '.join(unknown)}")
        return raw

    return validate


async def each_on_loop(
    impls: Sequence[tuple[pluggy.HookImpl, PluginRecord]],
    hook_name: str,
    kwargs: Mapping[str, Any],
    timeout_ms: int,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run every implementation of an event hook concurrently, each on its plugin's loop
    under ``timeout_ms``: the answers and the failures, by plugin name."""
    timeout_s = timeout_ms / 1000

    async def one(impl: pluggy.HookImpl, record: PluginRecord) -> Any:
        if record.loop is None:
            raise RuntimeError("plugin is stopped")
        return await record.loop.run(bind_call(impl, **kwargs), timeout_s)

    results = await asyncio.gather(*(one(i, r) for i, r in impls), return_exceptions=True)
    values: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for (_, record), result in zip(impls, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            if isinstance(result, TimeoutError):
                why = f"timeout after {timeout_ms} ms"
                if record.loop is not None:
                    record.loop.watch()
            else:
                why = describe_error(result)
            record.policy_failures[hook_name] = record.policy_failures.get(hook_name, 0) + 1
            log.warning(
                "%s hook of plugin %r failed: %s", hook_name, record.name, why, exc_info=result
            )
            failures[record.name] = why
        else:
            values[record.name] = result
        record.policy_calls[hook_name] = record.policy_calls.get(hook_name, 0) + 1
    return values, failures
