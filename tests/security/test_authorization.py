"""The authorization matrix: every root query and mutation, and every nested field that
carries a shopper's data, with every kind of caller, compared with the table declared in
docs/security.md.

The fields are read from the built schema, so a new field is covered the day it is added — and
fails `test_every_root_field_declares_a_role` if it was added without a role, and
`test_the_declared_table_covers_every_case` until its row is in the docs. Each field is called
with minimal valid arguments built from its GraphQL argument types (or taken from
`SAMPLE_ARGS`: fields about a shopper name shopper A), selecting only ``__typename``, by each
caller of `CALLERS`: no key, a revoked key, the storefront key alone, with a shopper token for
A, for B, with an expired token for A, with a token for A signed with a secret the service
does not hold, and the merchant key. The outcome (UNAUTHENTICATED, FORBIDDEN, or ok: past
authorization) must be the declared one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from shopfront.platform.config import token_secrets
from shopfront.platform.keys import Role
from shopfront.schema import build_schema
from shopfront.schema.permissions import declared_role
from shopfront.shoppers.identity import ShopperTokens
from shopfront.testing import TEST_TOKEN_SECRETS

from tests.security.conftest import Service

pytestmark = pytest.mark.security

SHOPPER_A = "shopper-a"
SHOPPER_B = "shopper-b"
SESSION = "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c"
NOW = datetime.now(UTC).isoformat()
EMPTY_CART = {"currency": "EUR", "lines": []}

# Arguments for fields whose automatic minimal arguments would not reach authorization, and for
# every field about a shopper (it names shopper A): "Query.field" / "Mutation.field" -> args.
SAMPLE_ARGS: dict[str, dict[str, Any]] = {
    "Query.storefront": {"input": {"page": "HOME", "userId": SHOPPER_A}},
    "Query.validateCoupons": {"cart": EMPTY_CART, "codes": [], "userId": SHOPPER_A},
    "Query.profile": {"userId": SHOPPER_A},
    "Query.exportUserData": {"userId": SHOPPER_A},
    "Query.recentEvents": {"userId": SHOPPER_A},
    "Query.shopperSegments": {"userId": SHOPPER_A},
    "Mutation.trackEvents": {
        "input": {
            "events": [
                {
                    "eventId": "m1",
                    "type": "SEARCH",
                    "timestamp": NOW,
                    "userId": SHOPPER_A,
                    "query": "x",
                }
            ]
        }
    },
    "Mutation.identify": {"input": {"sessionId": SESSION, "userId": SHOPPER_A}},
    "Mutation.setPreferences": {"input": {"userId": SHOPPER_A, "preferences": {}}},
    "Mutation.setConsent": {"input": {"userId": SHOPPER_A, "personalization": True}},
    "Mutation.eraseUser": {"input": {"userId": SHOPPER_A}},
    "Mutation.redeemCoupon": {
        "input": {
            "code": "WELCOME",
            "userId": SHOPPER_A,
            "orderId": "o1",
            "idempotencyKey": "k1",
            "cart": EMPTY_CART,
        }
    },
}

# A sample value for each scalar an argument may have; a new scalar must be added here.
SCALAR_SAMPLES: dict[str, Any] = {
    "String": "sample",
    "ID": "sample",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "Long": 1,
    "JSON": {},
    "DateTime": "2024-01-01T00:00:00+00:00",
    "Date": "2024-01-01",
    "Decimal": "10",
}


class MissingSample(AssertionError):
    pass


def sample_value(type_: GraphQLInputType, where: str) -> Any:
    """A minimal valid value of ``type_``: required input fields only, empty lists."""
    if isinstance(type_, GraphQLNonNull):
        return sample_value(type_.of_type, where)
    if isinstance(type_, GraphQLList):
        return []
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLScalarType):
        if type_.name not in SCALAR_SAMPLES:
            raise MissingSample(
                f"{where}: no sample for scalar {type_.name}; add it to SCALAR_SAMPLES or the "
                "field to SAMPLE_ARGS in tests/security/test_authorization.py"
            )
        return SCALAR_SAMPLES[type_.name]
    if isinstance(type_, GraphQLInputObjectType):
        definition = (type_.extensions or {}).get("strawberry-definition")
        if getattr(type_, "is_one_of", False) or getattr(definition, "is_one_of", False):
            # a oneOf input takes exactly one field: the first one
            name, f = next(iter(type_.fields.items()))
            inner = f.type.of_type if isinstance(f.type, GraphQLNonNull) else f.type
            return {name: sample_value(inner, f"{where}.{name}")}
        return {
            name: sample_value(f.type, f"{where}.{name}")
            for name, f in type_.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        }
    raise MissingSample(f"{where}: cannot build a sample of {type_}")


@dataclass(frozen=True)
class RootField:
    kind: str  # "query" or "mutation"
    type_name: str  # "Query" or "Mutation"
    name: str
    role: Role | None
    document: str
    variables: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.type_name}.{self.name}"


def root_fields(schema: strawberry.Schema) -> list[RootField]:
    gql: GraphQLSchema = schema._schema
    out = []
    for kind, root in (("query", gql.query_type), ("mutation", gql.mutation_type)):
        if root is None:
            continue
        for name, field in root.fields.items():
            out.append(_root_field(kind, root.name, name, field))
    return out


def _root_field(kind: str, type_name: str, name: str, field: GraphQLField) -> RootField:
    definition = (field.extensions or {}).get("strawberry-definition")
    role = declared_role(definition) if definition is not None else None
    key = f"{type_name}.{name}"
    given = SAMPLE_ARGS.get(key, {})
    variables: dict[str, Any] = {}
    declarations, arguments = [], []
    for arg_name, arg in field.args.items():
        if arg_name in given:
            variables[arg_name] = given[arg_name]
        elif isinstance(arg.type, GraphQLNonNull):
            variables[arg_name] = sample_value(arg.type, f"{key}({arg_name})")
        else:
            continue  # optional: left out
        declarations.append(f"${arg_name}: {arg.type}")
        arguments.append(f"{arg_name}: ${arg_name}")
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    header = f"{kind} Check({', '.join(declarations)})" if declarations else f"{kind} Check"
    call = f"{name}({', '.join(arguments)})" if arguments else name
    return RootField(kind, type_name, name, role, f"{header} {{ {call}{selection} }}", variables)


FIELDS = root_fields(build_schema(introspection=True))


def undeclared(fields: list[RootField]) -> list[str]:
    return [f.id for f in fields if f.role is None]


def test_every_root_field_declares_a_role() -> None:
    assert FIELDS, "the schema has no root fields?"
    assert undeclared(FIELDS) == [], (
        "root fields without a declared role: decorate them with storefront_field / "
        "merchant_field / storefront_mutation / merchant_mutation (schema/permissions.py)"
    )


def test_a_field_without_a_role_is_detected() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def leak(self) -> str:
            return "secret"

    fields = root_fields(strawberry.Schema(query=Query))
    assert undeclared(fields) == ["Query.leak"]


def test_missing_scalar_samples_fail_loudly() -> None:
    odd = GraphQLScalarType("Odd")
    with pytest.raises(MissingSample, match="SCALAR_SAMPLES"):
        sample_value(GraphQLNonNull(odd), "Query.x(arg)")


# -- extra cases: anonymous use, and nested fields that carry a shopper's data -------------


def storefront_selecting(selection: str) -> str:
    return "query($input: StorefrontInput!) { storefront(input: $input) { " + selection + " } }"


def validation_selecting(selection: str) -> str:
    return (
        "query($cart: OrderCartInput!, $codes: [String!]!, $userId: ID) "
        "{ validateCoupons(cart: $cart, codes: $codes, userId: $userId) { " + selection + " } }"
    )


A_PAGE = {"input": {"page": "HOME", "userId": SHOPPER_A}}
ANONYMOUS_PAGE = {"input": {"page": "HOME", "sessionId": SESSION}}
A_CART = {"cart": EMPTY_CART, "codes": ["WELCOME"], "userId": SHOPPER_A}
REDEEM = (
    'mutation($cart: OrderCartInput!, $u: ID!) { redeemCoupon(input: {code: "WELCOME", '
    'userId: $u, orderId: "o1", idempotencyKey: "k1", cart: $cart}) { redemption { userId } } }'
)


@dataclass(frozen=True)
class Case:
    id: str
    root: str  # the root field whose data must be null when refused
    document: str
    variables: dict[str, Any]


EXTRA_CASES = [
    Case(
        "Query.storefront (anonymous session)",
        "storefront",
        storefront_selecting("requestId"),
        ANONYMOUS_PAGE,
    ),
    Case(
        "Mutation.trackEvents (anonymous session)",
        "trackEvents",
        "mutation($e: [EventInput!]!) { trackEvents(input: {events: $e}) { accepted } }",
        {
            "e": [
                {
                    "eventId": "a1",
                    "type": "SEARCH",
                    "timestamp": NOW,
                    "sessionId": SESSION,
                    "query": "x",
                }
            ]
        },
    ),
    Case(
        "Storefront.slots.items.reasons",
        "storefront",
        storefront_selecting("slots { items { reasons { code text } } }"),
        A_PAGE,
    ),
    Case(
        "Storefront.coupons",
        "storefront",
        storefront_selecting("coupons { code reason { text } }"),
        A_PAGE,
    ),
    Case(
        "Storefront.experiments",
        "storefront",
        storefront_selecting("experiments { experiment variant }"),
        A_PAGE,
    ),
    Case(
        "Storefront.cart", "storefront", storefront_selecting("cart { total { amount } }"), A_PAGE
    ),
    Case(
        "CouponValidation.coupons",
        "validateCoupons",
        validation_selecting("coupons { code applies reason refusal }"),
        A_CART,
    ),
    Case(
        "ShopperProfile.purchases",
        "profile",
        "query($u: ID!) { profile(userId: $u) { purchases { productId } totalSpent { amount } } }",
        {"u": SHOPPER_A},
    ),
    Case(
        "IdentifyResult.mergedEvents",
        "identify",
        "mutation($s: ID!, $u: ID!) "
        "{ identify(input: {sessionId: $s, userId: $u}) { mergedEvents } }",
        {"s": SESSION, "u": SHOPPER_A},
    ),
    Case(
        "ConsentResult.deleted",
        "setConsent",
        "mutation($u: ID!) "
        "{ setConsent(input: {userId: $u, personalization: true}) { deleted { count } } }",
        {"u": SHOPPER_A},
    ),
    Case(
        "RedeemCouponResult.redemption.userId",
        "redeemCoupon",
        REDEEM,
        {"cart": EMPTY_CART, "u": SHOPPER_A},
    ),
    Case(
        "ReleaseCouponResult.released.userId",
        "releaseCoupon",
        'mutation { releaseCoupon(input: {orderId: "o1"}) { released { userId } } }',
        {},
    ),
]


def all_cases() -> list[Case]:
    roots = [Case(f.id, f.name, f.document, f.variables) for f in FIELDS]
    return roots + EXTRA_CASES


# -- the declared table ---------------------------------------------------------------------

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
CALLERS = (
    "no key",
    "revoked key",
    "storefront key",
    "+ token A",
    "+ token B",
    "+ expired token A",
    "+ token A, unknown secret",
    "merchant key",
)
OUTCOMES = {"ok", "UNAUTHENTICATED", "FORBIDDEN"}


def declared_table(text: str) -> dict[str, tuple[str, ...]]:
    """The rows of docs/security.md's authorization table: case id -> outcome per caller."""
    rows: dict[str, tuple[str, ...]] = {}
    header_seen = False
    for line in text.splitlines():
        cells = (
            [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        )
        if cells and cells[0] == "field" and tuple(cells[1:]) == CALLERS:
            header_seen = True
            continue
        if header_seen and cells and cells[0].startswith("`"):
            name = re.sub(r"`([^`]*)`", r"\1", cells[0])
            rows[name] = tuple(cells[1:])
    assert header_seen, f"docs/security.md has no table headed: field | {' | '.join(CALLERS)}"
    return rows


TABLE = declared_table(SECURITY_DOC.read_text())


def test_the_declared_table_covers_every_case() -> None:
    ids = [c.id for c in all_cases()]
    missing = [i for i in ids if i not in TABLE]
    stale = [i for i in TABLE if i not in ids]
    assert not missing and not stale, (
        f"docs/security.md's authorization table: missing rows {missing}, stale rows {stale}"
    )
    for name, row in TABLE.items():
        assert len(row) == len(CALLERS) and set(row) <= OUTCOMES, (name, row)


def test_the_table_is_what_the_roles_imply() -> None:
    """A cross-check of the table against the declared roles: merchant fields refuse every
    storefront caller; no field lets a storefront caller act with another shopper's token."""
    for field in FIELDS:
        row = dict(zip(CALLERS, TABLE[field.id], strict=True))
        assert row["no key"] == row["revoked key"] == "UNAUTHENTICATED", field.id
        assert row["merchant key"] == "ok", field.id
        if field.role is Role.MERCHANT:
            assert {row[c] for c in CALLERS[2:-1]} == {"FORBIDDEN"}, field.id


# -- running it -----------------------------------------------------------------------------


def caller_credentials(service: Service) -> dict[str, tuple[str | None, str | None]]:
    """Each caller's (API key, X-Shopper-Token)."""
    signer = ShopperTokens(token_secrets(TEST_TOKEN_SECRETS))
    stranger = ShopperTokens({"test": "a-secret-the-service-does-not-hold-0123"})
    past = datetime.now(UTC) - timedelta(hours=2)
    token_a, _ = signer.mint(SHOPPER_A, SESSION)
    token_b, _ = signer.mint(SHOPPER_B, SESSION)
    expired, _ = signer.mint(SHOPPER_A, SESSION, 60, now=past)
    forged, _ = stranger.mint(SHOPPER_A, SESSION)
    return {
        "no key": (None, None),
        "revoked key": (service.revoked, token_a),
        "storefront key": (service.storefront, None),
        "+ token A": (service.storefront, token_a),
        "+ token B": (service.storefront, token_b),
        "+ expired token A": (service.storefront, expired),
        "+ token A, unknown secret": (service.storefront, forged),
        "merchant key": (service.merchant, None),
    }


def error_codes(body: dict[str, Any]) -> set[str]:
    return {str(e.get("extensions", {}).get("code")) for e in body.get("errors") or []}


def outcome(body: dict[str, Any]) -> str:
    codes = error_codes(body)
    for code in ("UNAUTHENTICATED", "FORBIDDEN"):
        if code in codes:
            return code
    return "ok"


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.id)
async def test_authorization_matrix(case: Case, service: Service) -> None:
    want = TABLE[case.id]
    for caller, (key, token) in caller_credentials(service).items():
        body = await service.gql(case.document, case.variables, key=key, token=token)
        errors = body.get("errors") or []
        pre_execution = [e for e in errors if not e.get("path")]
        assert not pre_execution, f"{case.id}: the generated call is invalid: {pre_execution}"
        got = outcome(body)
        declared = want[CALLERS.index(caller)]
        assert got == declared, (case.id, caller, declared, body)
        if got != "ok":
            assert (body.get("data") or {}).get(case.root) is None, (case.id, caller, body)
            message = " ".join(e["message"] for e in errors)
            # Every refusal says what to send.
            assert any(w in message for w in ("send", "needs", "required")), (case.id, message)
