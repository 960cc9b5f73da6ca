"""Declared strategy settings: a plugin states its configuration as a dataclass, the host
checks the config file against it.

A strategy's settings are a (preferably frozen) dataclass whose annotations are the types and
whose fields carry the bounds::

    @dataclass(frozen=True)
    class StaffPicksConfig:
        product_ids: list[str] = setting(default_factory=list, doc="In order.", min_len=1)
        reason: str = setting("Staff pick", doc="Shown to the shopper.")
        boost: float = setting(1.0, min=0.0, max=10.0)

Supported types: ``bool``, ``int``, ``float`` (an integer is accepted), ``str``,
``Literal[...]`` of strings or numbers, an `enum.Enum` (by value), `Money` (a table ``{amount,
currency}``), ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]`` (and their ``collections.abc``
read-only forms), ``T | None``, a nested dataclass (a table), and ``Any``. A field without a
default is required. Booleans are never numbers, unknown keys are errors, and every error names
the setting (``event_weights.view``, ``product_ids[2]``) and the value.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping, MutableMapping, MutableSequence, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from shopfront.platform.money import Money, MoneyError

C = TypeVar("C")

_MISSING = dataclasses.MISSING


class SettingError(ValueError):
    """A value does not fit its declared setting. ``path`` names the setting (``a.b[2]``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def setting(
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | Any = _MISSING,
    doc: str = "",
    min: float | None = None,
    max: float | None = None,
    min_len: int | None = None,
    max_len: int | None = None,
    secret: bool = False,
    merge: bool = False,
) -> Any:
    """A declared setting: its default (or ``default_factory``; neither: required), what it
    means (``doc``, shown in the `plugins` query), and its bounds.

    ``min``/``max`` bound a number, or every number of a list or table of numbers;
    ``min_len``/``max_len`` bound the length of a string, list or table; ``secret`` hides the
    value in the merchant `plugins` query; ``merge`` (a table with a default table) takes the
    given keys over the default's, keeps the others, and refuses keys the default lacks. A list
    or dict default is copied for each strategy.
    """
    meta = {
        "merge": merge,
        "doc": doc,
        "min": min,
        "max": max,
        "min_len": min_len,
        "max_len": max_len,
        "secret": secret,
    }
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if isinstance(default, list | dict | set):
        frozen = default
        return dataclasses.field(default_factory=lambda: type(frozen)(frozen), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class SettingInfo:
    """One declared setting, for documentation and the `plugins` query."""

    name: str
    type: str  # as written in Python: "list[str]", "float", ...
    required: bool
    default: Any  # plain (TOML-like) value; None when required
    doc: str
    min: float | None
    max: float | None
    min_len: int | None
    max_len: int | None
    secret: bool


def is_config_type(cls: object) -> bool:
    return isinstance(cls, type) and dataclasses.is_dataclass(cls)


def _hints(cls: type[Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:  # an annotation naming something the module does not define
        raise SettingError("", f"cannot read the annotations of {cls.__name__}: {exc}") from None


def type_name(tp: Any) -> str:
    """How a declared type reads in messages and docs (``list[str]``, ``int | None``)."""
    if tp is Any:
        return "any"
    if tp is type(None):
        return "None"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(tp, "__name__", str(tp))


def kind_of(value: Any) -> str:
    """How a configuration value reads to a merchant: boolean, integer, table, ..."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fail(path: str, expected: str, value: Any) -> SettingError:
    return SettingError(path, f"expected {expected}, got {kind_of(value)} {value!r}")


def _check_bounds(path: str, value: Any, meta: Mapping[str, Any]) -> None:
    low, high = meta.get("min"), meta.get("max")
    min_len, max_len = meta.get("min_len"), meta.get("max_len")
    if isinstance(value, str | list | tuple | Mapping):
        if min_len is not None and len(value) < min_len:
            what = "characters" if isinstance(value, str) else "items"
            raise SettingError(path, f"needs at least {min_len} {what}, got {value!r}")
        if max_len is not None and len(value) > max_len:
            what = "characters" if isinstance(value, str) else "items"
            raise SettingError(path, f"allows at most {max_len} {what}, got {len(value)}")
    if low is None and high is None:
        return
    if isinstance(value, Mapping):
        numbers = [(_join(path, str(k)), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        numbers = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        numbers = [(path, value)]
    for where, number in numbers:
        if not isinstance(number, int | float) or isinstance(number, bool):
            continue
        if low is not None and number < low:
            raise SettingError(where, f"must be at least {low:g}, got {number!r}")
        if high is not None and number > high:
            raise SettingError(where, f"must be at most {high:g}, got {number!r}")


def convert(tp: Any, value: Any, path: str) -> Any:
    """``value`` (as TOML gives it) checked against ``tp`` and converted to it."""
    if tp is Any or tp is object:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return convert(options[0], value, path)
        for option in options:
            try:
                return convert(option, value, path)
            except SettingError:
                continue
        raise _fail(path, " or ".join(type_name(o) for o in options), value)
    if origin is typing.Literal:
        if value in args and not (isinstance(value, bool) and True not in args):
            return value
        raise SettingError(
            path, f"must be one of {', '.join(repr(a) for a in args)}, got {value!r}"
        )
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(path, "a boolean", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(path, "an integer", value)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise SettingError(path, f"must be a finite number, got {value!r}")
            return float(value)
        raise _fail(path, "a number", value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(path, "a string", value)
    if tp is Money:
        if isinstance(value, Money):
            return value
        if not isinstance(value, Mapping):
            raise _fail(path, "a table {amount, currency} in minor units", value)
        try:
            return Money.from_doc(dict(value))
        except (MoneyError, KeyError, TypeError, ValueError) as exc:
            raise SettingError(path, f"is not an amount of money: {exc}") from None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in tp)
            raise SettingError(path, f"must be one of {allowed}, got {value!r}") from None
    if is_config_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _fail(path, "a table", value)
        return parse_settings(tp, value, path)
    container = origin or tp
    if container in (list, tuple, Sequence, MutableSequence):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise _fail(path, f"an array ({type_name(tp)})", value)
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise SettingError(path, f"needs exactly {len(args)} items, got {len(value)}")
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(convert(a, v, f"{path}[{i}]") for i, (a, v) in pairs)
        item = args[0] if args else Any
        items = [convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if container in (tuple, Sequence) else items
    if container in (dict, Mapping, MutableMapping):
        if not isinstance(value, Mapping):
            raise _fail(path, f"a table ({type_name(tp)})", value)
        key_type, item = (args[0], args[1]) if args else (str, Any)
        if key_type is not str:
            raise SettingError(path, f"tables have string keys; cannot declare {type_name(tp)}")
        return {str(k): convert(item, v, _join(path, str(k))) for k, v in value.items()}
    raise SettingError(path, f"the declared type {type_name(tp)} is not supported in settings")


def parse_settings(cls: type[C], values: Mapping[str, Any], path: str = "") -> C:
    """An instance of the settings dataclass ``cls`` from ``values``: unknown keys refused,
    each value converted to its field's type and checked against its bounds, missing keys
    taking their defaults. Raises `SettingError` naming the first setting that is wrong."""
    if not is_config_type(cls):
        raise SettingError(path, f"{cls!r} is not a dataclass")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SettingError(
            _join(path, unknown[0]),
            f"unknown setting; known settings: {', '.join(sorted(fields)) or 'none'}",
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        where = _join(path, name)
        if name in values:
            value = _merged(f, convert(hints[name], values[name], where), where)
        elif f.default is not _MISSING or f.default_factory is not _MISSING:
            continue
        else:
            raise SettingError(where, f"is required ({type_name(hints[name])}) and not set")
        _check_bounds(where, value, f.metadata)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # the dataclass's own __post_init__ checks
        raise SettingError(path, str(exc)) from None


def check_settings(cls: type[Any], values: Mapping[str, Any]) -> None:
    """Check the given ``values`` as `parse_settings` does, without requiring the settings
    that have no default (for a strategy that is switched off)."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SettingError(
            unknown[0], f"unknown setting; known settings: {', '.join(sorted(fields)) or 'none'}"
        )
    for name, raw in values.items():
        value = _merged(fields[name], convert(hints[name], raw, name), name)
        _check_bounds(name, value, fields[name].metadata)


def _merged(f: dataclasses.Field[Any], value: Any, path: str) -> Any:
    """A ``merge`` table: the default's keys overlaid with the given ones."""
    if not f.metadata.get("merge") or not isinstance(value, Mapping):
        return value
    default = f.default_factory() if f.default_factory is not _MISSING else f.default
    if not isinstance(default, Mapping):
        return value
    unknown = sorted(set(value) - set(default))
    if unknown:
        raise SettingError(
            _join(path, unknown[0]), f"unknown key; known keys: {', '.join(sorted(default))}"
        )
    return {**default, **value}


def plain(value: Any) -> Any:
    """A settings value as plain data (what TOML would hold): dataclasses become tables,
    enums their values, `Money` ``{amount, currency}``, tuples lists."""
    if is_config_type(type(value)):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Money):
        return value.to_doc()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def describe_settings(cls: type[Any]) -> list[SettingInfo]:
    """Every declared setting of ``cls`` in declaration order."""
    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not _MISSING:
            default: Any = plain(f.default)
        elif f.default_factory is not _MISSING:
            default = plain(f.default_factory())
        else:
            default = None
        meta = f.metadata
        out.append(
            SettingInfo(
                name=f.name,
                type=type_name(hints[f.name]),
                required=f.default is _MISSING and f.default_factory is _MISSING,
                default=default,
                doc=str(meta.get("doc", "")),
                min=meta.get("min"),
                max=meta.get("max"),
                min_len=meta.get("min_len"),
                max_len=meta.get("max_len"),
                secret=bool(meta.get("secret", False)),
            )
        )
    return out


def field_type(cls: type[Any], name: str) -> Any:
    """The declared type of setting ``name`` (for converting an ``env:`` value)."""
    return _hints(cls)[name]
