"""The checks a ``register_*`` hook's answer passes before the host builds anything from it."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from shopfront.extend.config import HOST_KEYS
from shopfront.extend.records import PluginError, SpecType
from shopfront.platform.config_schema import SettingInfo, describe_settings, is_config_type

log = logging.getLogger("shopfront.plugins")

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def checked_specs(hook: str, result: Any, spec_type: type[SpecType]) -> list[SpecType]:
    """``result`` (what hook ``hook`` returned) as a list of ``spec_type``, or a `PluginError`
    saying what is wrong with it. A spec's settings come either declared (``config_type``, a
    dataclass) or as ``default_config``; an empty array in ``default_config`` is accepted with
    a warning, as nothing can check its items."""
    if result is None:
        return []
    if not isinstance(result, list | tuple):
        raise PluginError(
            f"{hook} must return a list of {spec_type.__name__}, got {type(result).__name__}"
        )
    for spec in result:
        if not isinstance(spec, spec_type):
            raise PluginError(
                f"{hook} returned {type(spec).__name__}, expected {spec_type.__name__}"
            )
        if not isinstance(spec.name, str) or not NAME_PATTERN.match(spec.name):
            raise PluginError(f"strategy name {spec.name!r} must match {NAME_PATTERN.pattern}")
        if not callable(spec.factory):
            raise PluginError(f"strategy {spec.name!r}: factory is not callable")
        if not isinstance(spec.default_config, Mapping):
            raise PluginError(f"strategy {spec.name!r}: default_config must be a mapping")
        if spec.config_type is not None:
            if not is_config_type(spec.config_type):
                raise PluginError(
                    f"strategy {spec.name!r}: config_type must be a dataclass, "
                    f"got {spec.config_type!r}"
                )
            if spec.default_config:
                raise PluginError(
                    f"strategy {spec.name!r}: give config_type or default_config, not both "
                    "(the declared settings carry the defaults)"
                )
            continue
        for key, value in spec.default_config.items():
            if isinstance(value, list | tuple) and not value:
                log.warning(
                    "strategy %r: default_config %r is an empty array, so its items cannot "
                    "be checked; declare the settings with config_type",
                    spec.name,
                    key,
                )
    return list(result)


_TYPE_NAMES = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"))


def _type_of(value: Any) -> str:
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    if isinstance(value, Mapping):
        return "dict"
    if isinstance(value, list | tuple):
        return f"list[{_type_of(value[0])}]" if value else "list"
    return "any" if value is None else type(value).__name__


def spec_settings(spec: SpecType) -> tuple[SettingInfo, ...]:
    """The settings a strategy's ``[strategies.<name>]`` section may set, besides the host's:
    the declared ones, or those ``default_config`` implies (typed by their defaults)."""
    if spec.config_type is not None:
        infos = describe_settings(spec.config_type)
        return tuple(i for i in infos if i.name not in HOST_KEYS)
    return tuple(
        SettingInfo(
            name=key,
            type=_type_of(value),
            required=False,
            default=value,
            doc="",
            min=None,
            max=None,
            min_len=None,
            max_len=None,
            secret=key in spec.secrets,
        )
        for key, value in spec.default_config.items()
        if key not in HOST_KEYS
    )
