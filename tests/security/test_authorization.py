"""The authorization matrix: every root query and mutation, with every kind of caller.

The fields are read from the built schema, so a new field is covered the day it is added —
and fails `test_every_root_field_declares_a_role` if it was added without a role. Each field
is called with minimal valid arguments built from its GraphQL argument types (or taken from
`SAMPLE_ARGS`), selecting only ``__typename``, with: no key, a revoked key, a storefront key
and a merchant key. The outcome must match the declared role: UNAUTHENTICATED without a valid
key, FORBIDDEN for a storefront key on a merchant field, and no authorization error otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from shopfront.platform.keys import Role
from shopfront.schema import build_schema
from shopfront.schema.permissions import declared_role

from tests.security.conftest import Service

pytestmark = pytest.mark.security

# Arguments for fields whose automatic minimal arguments would not reach authorization
# (none so far): "Query.field" / "Mutation.field" -> {argument: value}.
SAMPLE_ARGS: dict[str, dict[str, Any]] = {}

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


def error_codes(body: dict[str, Any]) -> set[str]:
    return {str(e.get("extensions", {}).get("code")) for e in body.get("errors") or []}


def expected(role: Role | None, caller: str) -> str:
    if caller in ("none", "revoked"):
        return "UNAUTHENTICATED"
    if caller == "storefront" and role is Role.MERCHANT:
        return "FORBIDDEN"
    return "allowed"


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.id)
async def test_authorization_matrix(field: RootField, service: Service) -> None:
    assert field.role is not None, f"{field.id} has no declared role"
    keys = {
        "none": None,
        "revoked": service.revoked,
        "storefront": service.storefront,
        "merchant": service.merchant,
    }
    for caller, key in keys.items():
        body = await service.gql(field.document, field.variables, key=key)
        errors = body.get("errors") or []
        pre_execution = [e for e in errors if not e.get("path")]
        assert not pre_execution, f"{field.id}: the generated call is invalid: {pre_execution}"
        codes = error_codes(body)
        want = expected(field.role, caller)
        if want == "allowed":
            assert not codes & {"UNAUTHENTICATED", "FORBIDDEN"}, (field.id, caller, body)
        else:
            assert want in codes, (field.id, caller, body)
            assert (body.get("data") or {}).get(field.name) is None, (field.id, caller, body)
