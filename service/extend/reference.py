"""The reference section of docs/plugins.md, generated from the public plugin API.

Every name of `shopfront.extend.api.__all__` gets an entry: a dataclass its fields (type and
default) and properties, an enum its members, a protocol its methods, a function its
signature, with the first paragraph of its docstring. tests/extend/test_plugin_docs_page.py
fails when the page and this output differ; rewrite the section with
``python -m shopfront.extend.reference docs/plugins.md`` (``make plugin-docs``).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from shopfront.extend import api

BEGIN = "<!-- BEGIN GENERATED: python -m shopfront.extend.reference docs/plugins.md -->"
END = "<!-- END GENERATED -->"

# The order the reference reads in; a public name missing here lands in "More".
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Registering", ("hookimpl", "RecommenderSpec", "CouponStrategySpec", "PromotionSpec")),
    ("Building a strategy", ("StrategySetup", "setting", "ConfigError", "Settings", "Store")),
    ("Protocols", ("Recommender", "Trainable", "CouponStrategy", "Promotion")),
    (
        "The request",
        (
            "RequestContext",
            "PageType",
            "CartLine",
            "CatalogReader",
            "Product",
            "Profile",
            "Purchase",
            "Money",
            "MoneyError",
            "allocate",
        ),
    ),
    ("Recommendations", ("Slot", "SlotFilter", "Candidate", "Reason")),
    ("Training", ("TrainingData", "Interactions", "KIND", "NONE")),
    (
        "Coupons",
        ("CouponOffer", "CouponService", "Campaign", "CouponDiscount", "DiscountKind"),
    ),
    (
        "Promotions and the priced cart",
        (
            "PromotionTerms",
            "PromotionClass",
            "Stacking",
            "PricedCart",
            "PricedLine",
            "PromotionOutcome",
            "AppliedPromotion",
            "NotApplied",
            "Nudge",
            "ProductScope",
            "StackingPlan",
        ),
    ),
    (
        "Reading rule values",
        (
            "RuleError",
            "int_value",
            "money_value",
            "percent_value",
            "text_value",
            "strings_value",
            "optional_int",
            "optional_money",
            "optional_datetime",
            "scope_value",
            "scope_to_doc",
            "describe_scope",
            "category_path",
            "check_window",
            "same_currency",
            "Segment",
        ),
    ),
    ("Catalog", ("upsert_products",)),
)
# Too large to list here; documented elsewhere.
ELSEWHERE = {"Settings": "every field is a `SHOPFRONT_*` variable; see the README's settings table"}


def _summary(obj: Any, whole: bool = False) -> str:
    """The first paragraph (or all) of ``obj``'s own docstring (not inherited or generated)."""
    if isinstance(obj, type):
        doc = obj.__dict__.get("__doc__") or ""
        if doc.startswith(f"{obj.__name__}("):  # the signature dataclasses write
            doc = ""
    else:
        doc = getattr(obj, "__doc__", None) or ""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in (paragraphs if whole else paragraphs[:1]))


_COMMENT = re.compile(r"^\s+(\w+)\s*[:=][^#]*#\s*(.+)$")
_FIELD = re.compile(r"^\s+(\w+)\s*[:=]")


def _field_notes(cls: type) -> dict[str, str]:
    """Each field's trailing ``# comment`` in the class's source, its meaning in the table."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    notes: dict[str, str] = {}
    above: list[str] = []  # a comment block right above a field describes it too
    for line in source.splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        match = _COMMENT.match(line) or _FIELD.match(line)
        if match and match.group(1) not in notes:
            trailing = match.group(2).strip() if match.re is _COMMENT else ""
            notes[match.group(1)] = " ".join([*above, trailing]).strip()
        above = []
    return {k: v for k, v in notes.items() if v}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _clean(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return str(text or annotation).replace("'", "")


def _signature(fn: Callable[..., Any], name: str, *, skip_self: bool = False) -> str:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return f"{name}(...)"
    parts = []
    star_done = False
    for p in sig.parameters.values():
        if skip_self and p.name in ("self", "cls"):
            continue
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        if p.kind is p.VAR_POSITIONAL:
            star_done = True
            parts.append(f"*{p.name}")
            continue
        if p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
            continue
        text = p.name
        if p.annotation is not p.empty:
            text += f": {_clean(p.annotation)}"
        if p.default is dataclasses.MISSING:
            text += " = MISSING"
        elif p.default is not p.empty:
            text += f" = {p.default!r}" if not callable(p.default) else " = ..."
        parts.append(text)
    result = _clean(sig.return_annotation)
    prefix = "async " if inspect.iscoroutinefunction(fn) else ""
    return f"{prefix}{name}({', '.join(parts)})" + (f" -> {result}" if result else "")


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
        return f"`{value.value!r}`" if isinstance(value, enum.Enum) else f"`{value!r}`"
    if f.default_factory is not dataclasses.MISSING:
        try:
            made = f.default_factory()
        except Exception:
            return "(made per instance)"
        return f"`{made!r}`" if not dataclasses.is_dataclass(made) else "(defaults)"
    return "required"


def _members(cls: type) -> list[tuple[str, Any]]:
    return [
        (n, v)
        for n, v in vars(cls).items()
        if not n.startswith("_") and (callable(v) or isinstance(v, property | classmethod))
    ]


def _methods(cls: type) -> list[str]:
    lines = []
    for n, v in _members(cls):
        if isinstance(v, property):
            lines.append(f"- `{n}` (property): {_summary(v.fget) or _clean(_returns(v))}")
            continue
        fn = v.__func__ if isinstance(v, classmethod | staticmethod) else v
        if not inspect.isfunction(fn):
            continue
        lines.append(f"- `{_signature(fn, n, skip_self=True)}`: {_summary(fn)}".rstrip(": "))
    return lines


def _returns(prop: property) -> str:
    fget = prop.fget
    return str(getattr(fget, "__annotations__", {}).get("return", "")) if fget else ""


def _entry(name: str, obj: Any) -> list[str]:
    out = [f"#### `{name}`", ""]
    summary = _summary(obj, whole=isinstance(obj, type)) if callable(obj) else ""
    if name in ELSEWHERE:
        out += [f"{summary} Fields: {ELSEWHERE[name]}.".strip(), ""]
        return out
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        out += [summary, ""] if summary else []
        notes = _field_notes(obj)
        out += ["| member | value | meaning |", "|---|---|---|"]
        out += [f"| `{m.name}` | `{m.value!r}` | {_cell(notes.get(m.name, ''))} |" for m in obj]
        return [*out, ""]
    if isinstance(obj, type) and dataclasses.is_dataclass(obj):
        out += [summary, ""] if summary else []
        notes = _field_notes(obj)
        out += ["| field | type | default | meaning |", "|---|---|---|---|"]
        for f in dataclasses.fields(obj):
            if f.name.startswith("_"):
                continue
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", f.type)
            cells = (f"`{f.name}`", f"`{kind}`", _default(f), notes.get(f.name, ""))
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        methods = _methods(obj)
        if methods:
            out += ["", *methods]
        return [*out, ""]
    if isinstance(obj, type) and (Protocol in getattr(obj, "__mro__", ()) or _is_protocol(obj)):
        out += [summary, ""] if summary else []
        out += _methods(obj)
        return [*out, ""]
    if isinstance(obj, type):
        if issubclass(obj, BaseException):
            out += [f"An exception (`{obj.__mro__[1].__name__}`). {summary}".strip(), ""]
            return out
        out += [summary, ""] if summary else []
        methods = _methods(obj)
        return [*out, *methods, ""] if methods else out
    if callable(obj):
        fn_name = getattr(obj, "__name__", name)
        target = obj if inspect.isfunction(obj) else getattr(obj, "__call__", obj)  # noqa: B004
        if not inspect.isfunction(obj) and not inspect.isfunction(target):
            out += [summary or "A decorator.", ""]
            return out
        out += [f"`{_signature(obj, fn_name)}`", ""]
        out += [summary, ""] if summary else []
        return out
    out += [f"A constant: `{obj!r}`.", ""]
    return out


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def render() -> str:
    """The generated section, markers included."""
    names = list(api.__all__)
    placed = {n for _, group in GROUPS for n in group}
    groups = [*GROUPS, ("More", tuple(n for n in names if n not in placed))]
    lines = [BEGIN, ""]
    for title, group in groups:
        present = [n for n in group if n in names]
        if not present:
            continue
        lines += [f"### {title}", ""]
        for name in present:
            lines += _entry(name, getattr(api, name))
    lines.append(END)
    return "\n".join(lines)


def update(path: Path) -> bool:
    """Rewrite the generated section of ``path``; True when it changed."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + render() + text[end:]
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


if __name__ == "__main__":  # pragma: no cover - `make plugin-docs`
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/plugins.md")
    print(f"{target}: {'updated' if update(target) else 'up to date'}")
