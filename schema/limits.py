"""GraphQL document limits: depth, tokens, aliases and estimated cost, checked before execution.

All four are answered with a GraphQL error whose ``extensions.code`` names the limit, before
any resolver (or database call) runs:

- ``TOO_MANY_TOKENS``: the parser stops after ``max_query_tokens`` tokens;
- ``QUERY_TOO_DEEP``: more than ``max_query_depth`` fields on one path (``{ a { b } }`` is 2);
- ``TOO_MANY_ALIASES``: more than ``max_aliases`` aliased fields in one operation;
- ``QUERY_TOO_COSTLY``: estimated cost above ``max_query_cost``. Each field returning an object
  costs 1 (leaves cost 0); a field with a ``first``/``last``/``limit`` argument multiplies the
  cost of its selection by that argument — its literal value, the largest page
  (``max_page_size``) when it is a variable (variables are unknown when a cached validation
  result is reused), or the argument's default. `FIELD_COSTS` raises the base cost of fields
  that do more work than one object read.

Fragments are expanded (a fragment spread counts as if its fields were written in place), each
fragment is measured once and memoised, so a "fragment bomb" (fragments spreading the next one
twice, many times over) costs linear time to measure and is refused for its exponential size.
A fragment cycle counts as empty here (graphql-core's own rule reports it), unknown fragments
are skipped, and a document nested beyond the interpreter's recursion limit is refused as too
deep. strawberry's own limiters were not used: its depth limiter raises ``KeyError`` on an
unknown fragment, its alias and depth counters expand fragments without memoisation
(exponential time), and none of them set an error code.

`RequestLimits` (a schema extension) also gives every pre-execution error a code —
``GRAPHQL_PARSE_FAILED``, ``GRAPHQL_VALIDATION_FAILED``, ``BAD_USER_INPUT`` for variables —
and strips "Did you mean ...?" hints unless suggestions are enabled.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    is_leaf_type,
    parse,
    value_from_ast_untyped,
)
from graphql.error import GraphQLSyntaxError
from shopfront.platform.config import Settings
from shopfront.schema.errors import ErrorCode, coded_error, set_code
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

PAGE_ARGUMENTS = ("first", "last", "limit")

log = logging.getLogger(__name__)

# Parsed and validated documents are cached, but only small ones: a 2,000-token document
# holds about 0.7 MB of AST and tokens, so caching any document would let a client fill
# memory with unique large queries. Real operations are far below CACHE_MAX_TOKENS.
CACHE_SIZE = 256
CACHE_MAX_TOKENS = 500


class DocumentCache:
    """Parsed documents by (text, parser options): an LRU of documents with few tokens."""

    def __init__(self, size: int = CACHE_SIZE, max_tokens: int = CACHE_MAX_TOKENS) -> None:
        self.size = size
        self.max_tokens = max_tokens
        self._docs: OrderedDict[tuple[str, tuple[tuple[str, Any], ...]], DocumentNode] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def parse(self, query: str, options: dict[str, Any]) -> tuple[DocumentNode, bool]:
        """The parsed document and whether it is cached (raises on a syntax error)."""
        key = (query, tuple(sorted(options.items())))
        with self._lock:
            doc = self._docs.get(key)
            if doc is not None:
                self._docs.move_to_end(key)
                return doc, True
        doc = parse(query, **options)
        if _token_count(doc, self.max_tokens + 1) > self.max_tokens:
            return doc, False
        with self._lock:
            self._docs[key] = doc
            while len(self._docs) > self.size:
                self._docs.popitem(last=False)
        return doc, True


def _token_count(doc: DocumentNode, stop_at: int) -> int:
    token = doc.loc.start_token if doc.loc else None
    count = 0
    while token is not None and count < stop_at:
        count += 1
        token = token.next
    return count


DOCUMENTS = DocumentCache()

# Validation results of cached documents (keyed by identity: only cached documents come here,
# so the documents this holds on to are the small ones).
_validate_cached = functools.lru_cache(maxsize=CACHE_SIZE)(validate_document)

# Base cost of fields that do more than read one object: ("Type", "field") -> cost. A product
# field costs 1; these compose, write or scan, so an operation asking for many of them (by
# aliases) is refused by ``max_query_cost``, and the rate limiter charges tokens in
# proportion (`shopfront.platform.ratelimit.tokens_for`). Storefront about 100: one token.
FIELD_COSTS: dict[tuple[str, str], int] = {
    # Runs every strategy of every slot, prices the cart, logs what was served.
    ("Query", "storefront"): 100,
    # Prices a cart through the promotion chain and reads coupon limits.
    ("Query", "validateCoupons"): 50,
    ("Query", "profile"): 5,
    # Scans every personal-data collection and asks every plugin.
    ("Query", "exportUserData"): 200,
    ("Query", "experimentReport"): 100,
    ("Query", "strategyPerformance"): 100,
    # Up to SHOPFRONT_MAX_EVENTS_PER_CALL events: inserts, profile updates, attribution.
    ("Mutation", "trackEvents"): 100,
    ("Mutation", "identify"): 20,
    ("Mutation", "setPreferences"): 10,
    ("Mutation", "setConsent"): 20,
    # Prices the cart and charges the coupon in a transaction.
    ("Mutation", "redeemCoupon"): 100,
    ("Mutation", "releaseCoupon"): 50,
    ("Mutation", "eraseUser"): 200,
    ("Mutation", "upsertProducts"): 100,
    ("Mutation", "generateCouponCodes"): 100,
}


@dataclass(frozen=True)
class Limits:
    max_depth: int = 10
    max_tokens: int = 2000
    max_aliases: int = 15
    max_cost: int = 1000
    variable_page_size: int = 100
    suggestions: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_depth=settings.max_query_depth,
            max_tokens=settings.max_query_tokens,
            max_aliases=settings.max_aliases,
            max_cost=settings.max_query_cost,
            variable_page_size=settings.max_page_size,
            suggestions=settings.suggestions_enabled,
        )


@dataclass(frozen=True)
class Measure:
    """Depth, aliases and cost of a selection set (or a whole operation)."""

    depth: int = 0
    aliases: int = 0
    cost: int = 0


class _TooDeep(Exception):
    pass


class DocumentMeasurer:
    """Measures the operations of one document against a schema.

    Depth is checked while walking (the walk stops at ``max_depth + 1``), so a pathological
    nesting is never walked in full.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        limits: Limits,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.limits = limits
        self._memo: dict[str, Measure] = {}
        self._in_progress: set[str] = set()

    def measure_operation(self, op: OperationDefinitionNode) -> Measure:
        """Raises `_TooDeep` as soon as a path is longer than ``max_depth``."""
        root = self.schema.get_root_type(op.operation)
        return self._selection_set(op.selection_set, root, 0)

    def _selection_set(
        self, selection_set: SelectionSetNode | None, parent: Any, depth: int
    ) -> Measure:
        if selection_set is None:
            return Measure()
        deepest, aliases, cost = 0, 0, 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                m = self._field(selection, parent, depth)
            elif isinstance(selection, InlineFragmentNode):
                cond = selection.type_condition
                inner = self.schema.get_type(cond.name.value) if cond else parent
                m = self._selection_set(selection.selection_set, inner, depth)
            elif isinstance(selection, FragmentSpreadNode):
                m = self._fragment(selection.name.value, depth)
            else:  # pragma: no cover - graphql-core has no other selection kinds
                continue
            deepest = max(deepest, m.depth)
            aliases += m.aliases
            cost += m.cost
        return Measure(deepest, aliases, cost)

    def _fragment(self, name: str, depth: int) -> Measure:
        """A fragment's own measure (depth relative to where it is spread)."""
        fragment = self.fragments.get(name)
        if fragment is None or name in self._in_progress:
            return Measure()  # unknown or cyclic: graphql-core reports both
        m = self._memo.get(name)
        if m is None:
            self._in_progress.add(name)
            try:
                target = self.schema.get_type(fragment.type_condition.name.value)
                m = self._selection_set(fragment.selection_set, target, 0)
            finally:
                self._in_progress.discard(name)
            self._memo[name] = m
        if depth + m.depth > self.limits.max_depth:
            raise _TooDeep
        return m

    def _field(self, node: FieldNode, parent: Any, depth: int) -> Measure:
        depth_here = depth + 1
        if depth_here > self.limits.max_depth:
            raise _TooDeep
        name = node.name.value
        alias = 1 if node.alias is not None else 0
        if name.startswith("__"):
            # Introspection: answered from memory, and refused outright unless enabled.
            return Measure(1, alias, 0)
        field_def = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            field_def = parent.fields.get(name)
        named = get_named_type(field_def.type) if field_def is not None else None
        inner = self._selection_set(node.selection_set, named, depth_here)
        leaf = named is not None and is_leaf_type(named)
        if field_def is None:
            leaf = node.selection_set is None  # unknown field: validation reports it
        base = 0 if leaf else 1
        if parent is not None and hasattr(parent, "name"):
            base = FIELD_COSTS.get((parent.name, name), base)
        multiplier = self._multiplier(node, field_def)
        return Measure(1 + inner.depth, alias + inner.aliases, base + multiplier * inner.cost)

    def _multiplier(self, node: FieldNode, field_def: Any) -> int:
        for arg_name in PAGE_ARGUMENTS:
            given = next((a for a in node.arguments or () if a.name.value == arg_name), None)
            if given is not None:
                if isinstance(given.value, IntValueNode):
                    return max(0, int(given.value.value))
                if isinstance(given.value, VariableNode):
                    return self.limits.variable_page_size
                continue  # null or a wrongly typed literal: validation reports it
            if field_def is not None and arg_name in field_def.args:
                default = field_def.args[arg_name].default_value
                if isinstance(default, int) and not isinstance(default, bool):
                    return max(0, default)
        return 1


def limits_rule(limits: Limits) -> type[ASTValidationRule]:
    """A graphql-core validation rule enforcing depth, alias and cost limits."""

    class OperationLimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            measurer = DocumentMeasurer(context.schema, fragments, limits)
            for op in document.definitions:
                if isinstance(op, OperationDefinitionNode):
                    try:
                        self._check(context, measurer, op)
                    except Exception:
                        # strawberry shows exceptions from validation to the client unmasked,
                        # so none may escape; refuse the document instead.
                        log.exception("measuring an operation failed")
                        context.report_error(
                            coded_error(
                                "the operation could not be analysed against the limits",
                                ErrorCode.GRAPHQL_VALIDATION_FAILED,
                                op,
                            )
                        )

        @staticmethod
        def _check(
            context: ValidationContext, measurer: DocumentMeasurer, op: OperationDefinitionNode
        ) -> None:
            label = f"operation '{op.name.value}'" if op.name else "the operation"
            try:
                m = measurer.measure_operation(op)
            except (_TooDeep, RecursionError):
                context.report_error(
                    coded_error(
                        f"{label} is nested deeper than the limit of {limits.max_depth}",
                        ErrorCode.QUERY_TOO_DEEP,
                        op,
                        limit=limits.max_depth,
                    )
                )
                return
            if m.aliases > limits.max_aliases:
                context.report_error(
                    coded_error(
                        f"{label} uses {m.aliases} aliases; the limit is {limits.max_aliases}",
                        ErrorCode.TOO_MANY_ALIASES,
                        op,
                        limit=limits.max_aliases,
                    )
                )
            if m.cost > limits.max_cost:
                shown = str(m.cost) if m.cost < 10**12 else "over 10^12"
                context.report_error(
                    coded_error(
                        f"{label} has an estimated cost of {shown}; the limit is "
                        f"{limits.max_cost} (ask for smaller pages or fewer nested lists)",
                        ErrorCode.QUERY_TOO_COSTLY,
                        op,
                        limit=limits.max_cost,
                    )
                )

    return OperationLimitsRule


# Argument keys that name a shopper or a browsing session (rate-limited per shopper).
SHOPPER_KEYS = ("userId", "sessionId")
MAX_SHOPPERS_CHARGED = 100  # distinct shoppers charged per operation; the rest pay nothing more


@dataclass(frozen=True)
class Charge:
    """What one operation pays for: its estimated cost, and the shopper or session ids its
    root fields name (in their arguments, variables resolved)."""

    cost: int
    shoppers: tuple[str, ...]


def operation_charge(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    limits: Limits,
) -> Charge:
    """The `Charge` of the operation that will run (the document passed validation, so its
    cost is within ``limits``; it is measured again because cached validations skip the
    rule). An operation that cannot be measured is charged the cost limit."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    op = next(
        (o for o in ops if operation_name is None or (o.name and o.name.value == operation_name)),
        None,
    )
    if op is None:
        return Charge(0, ())
    cost = _COSTS.get(document, op, limits)
    if cost is None:
        try:
            cost = DocumentMeasurer(schema, fragments, limits).measure_operation(op).cost
        except (_TooDeep, RecursionError):
            cost = limits.max_cost
        if _token_count(document, CACHE_MAX_TOKENS + 1) <= CACHE_MAX_TOKENS:
            _COSTS.put(document, op, limits, cost)  # only small documents, as DOCUMENTS
    found: dict[str, None] = {}
    _shoppers_in(op.selection_set, fragments, variables or {}, found, set())
    return Charge(cost, tuple(found)[:MAX_SHOPPERS_CHARGED])


class _CostCache:
    """Costs of recently run operations, by document identity: a cached document (see
    `DocumentCache`) is the same object each time it is sent, so the storefront's query is
    measured once, not on every request. Holds the documents it keys on (bounded, LRU)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, int, Limits], tuple[DocumentNode, int]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(
        self, document: DocumentNode, op: OperationDefinitionNode, limits: Limits
    ) -> int | None:
        key = (id(document), id(op), limits)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] is not document:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(
        self, document: DocumentNode, op: OperationDefinitionNode, limits: Limits, cost: int
    ) -> None:
        with self._lock:
            self._entries[(id(document), id(op), limits)] = (document, cost)
            self._entries.move_to_end((id(document), id(op), limits))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


_COSTS = _CostCache()


def _shoppers_in(
    selections: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    found: dict[str, None],
    seen_fragments: set[str],
) -> None:
    for node in selections.selections if selections is not None else ():
        if isinstance(node, FieldNode):
            for arg in node.arguments or ():
                _collect(value_from_ast_untyped(arg.value, variables), arg.name.value, found)
        elif isinstance(node, InlineFragmentNode):
            _shoppers_in(node.selection_set, fragments, variables, found, seen_fragments)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen_fragments:
            seen_fragments.add(node.name.value)
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                _shoppers_in(fragment.selection_set, fragments, variables, found, seen_fragments)


def _collect(value: Any, key: str, found: dict[str, None]) -> None:
    if isinstance(value, str):
        if key in SHOPPER_KEYS and value.strip():
            found[value.strip()] = None
    elif isinstance(value, dict):
        for k, v in value.items():
            _collect(v, str(k), found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, key, found)


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def strip_suggestions(message: str) -> str:
    """``message`` without graphql-core's "Did you mean ...?" hints (they reveal names)."""
    return _SUGGESTION.sub("", message)


class RequestLimits(SchemaExtension):
    """Parses with a cache and the token limit, and gives pre-execution errors codes.

    It replaces strawberry's ``ParserCache`` and ``ValidationCache``. Those cache any
    document (see `CACHE_MAX_TOKENS` for why that is a memory risk), and ``ParserCache``
    raises parse errors from inside its hook, which strawberry then reports outside the
    operation's extensions (no code, no masking). Here a document that fails to parse is left
    to strawberry, which parses it again and reports the error through the normal path; a
    document too large to cache is parsed and validated each time.
    """

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits
        self._cached = False

    def _clean(self, error: GraphQLError, code: ErrorCode) -> None:
        set_code(error, code)
        if not self.limits.suggestions:
            error.message = strip_suggestions(error.message)

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.limits.max_tokens
        yield
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or ():
            if not isinstance(error, GraphQLError) or error.path is not None:
                continue  # errors with a path come from resolvers
            if isinstance(error, GraphQLSyntaxError):
                self._parse_error(error)
            else:
                # Validation errors were coded in on_validate; the rest are variable values
                # that did not fit their types.
                self._clean(error, ErrorCode.BAD_USER_INPUT)

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.graphql_document is None and ec.query:
            # A failure is reported by strawberry's own parse, inside the operation.
            with contextlib.suppress(Exception):
                options = dict(ec.parse_options)
                ec.graphql_document, self._cached = DOCUMENTS.parse(ec.query, options)
        yield

    def _parse_error(self, error: GraphQLError) -> None:
        message = error.message
        if "Document contains more than" in message and "tokens" in message:
            error.message = (
                f"the document has more than {self.limits.max_tokens} tokens; send a smaller query"
            )
            error.extensions = {
                "code": ErrorCode.TOO_MANY_TOKENS.value,
                "limit": self.limits.max_tokens,
            }
        elif "nested too deeply" in message:
            error.message = "the document is nested too deeply to parse"
            error.extensions = {
                "code": ErrorCode.QUERY_TOO_DEEP.value,
                "limit": self.limits.max_depth,
            }
        else:
            self._clean(error, ErrorCode.GRAPHQL_PARSE_FAILED)

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        if self._cached and ec.graphql_document is not None and ec.pre_execution_errors is None:
            ec.pre_execution_errors = _validate_cached(
                ec.schema._schema, ec.graphql_document, tuple(ec.validation_rules)
            )
        yield
        for error in self.execution_context.pre_execution_errors or ():
            self._clean(error, ErrorCode.GRAPHQL_VALIDATION_FAILED)
