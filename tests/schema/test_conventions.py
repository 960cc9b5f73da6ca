"""The schema follows the conventions of docs/graphql.md, checked on the schema itself so a new
field that breaks one fails here; and the README's GraphQL examples run on this schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLType,
    get_named_type,
    parse,
    validate,
)
from shopfront.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]

# Root lists that are not pages of a growing collection: what is installed, a capped window of
# the newest few (recentEvents: at most MAX_RECENT_EVENTS, never paged), and an evaluation over
# the configured segment offers (shopperSegments).
BOUNDED_ROOT_LISTS = {"plugins", "promotionTypes", "recentEvents", "shopperSegments"}
# Reference fields that name another object: `<object>Id`, never the bare object name.
REFERENCE_NAMES = ("campaign", "promotion", "experiment", "product", "user", "order", "session")


def schema() -> GraphQLSchema:
    return build_schema(introspection=True)._schema


def unwrap(t: GraphQLType) -> GraphQLType:
    return t.of_type if isinstance(t, GraphQLNonNull) else t


def test_every_mutation_takes_one_input_argument() -> None:
    mutation = schema().mutation_type
    assert mutation is not None
    wrong = {
        name: sorted(field.args)
        for name, field in mutation.fields.items()
        if list(field.args) != ["input"]
        or not isinstance(field.args["input"].type, GraphQLNonNull)
        or not isinstance(get_named_type(field.args["input"].type), GraphQLInputObjectType)
    }
    assert not wrong, f"mutations without exactly one non-null input argument: {wrong}"


def test_growing_lists_are_connections_with_first_and_after() -> None:
    s = schema()
    assert s.query_type is not None
    lists = []
    for name, field in s.query_type.fields.items():
        t = unwrap(field.type)
        if isinstance(t, GraphQLList) and isinstance(get_named_type(t), GraphQLObjectType):
            lists.append(name)
        named = get_named_type(field.type)
        if named.name.endswith("Connection"):
            assert {"first", "after"} <= set(field.args), name
            assert isinstance(named, GraphQLObjectType)
            assert list(named.fields) == ["nodes", "edges", "pageInfo"], name
            edge = get_named_type(named.fields["edges"].type)
            assert isinstance(edge, GraphQLObjectType)
            assert list(edge.fields) == ["cursor", "node"], name
    assert set(lists) == BOUNDED_ROOT_LISTS, "a root list that can grow must be a connection"
    for name in ("products", "promotions", "couponCampaigns", "experiments", "models"):
        assert get_named_type(s.query_type.fields[name].type).name.endswith("Connection")


def test_fixed_value_sets_are_enums() -> None:
    s = schema()
    fields = {
        ("ModelVersion", "status"): "ModelStatus",
        ("CouponRedemption", "status"): "CouponRedemptionStatus",
        ("CouponCode", "kind"): "CouponCodeKind",
        ("CouponCheck", "refusal"): "CouponRefusal",
        ("RedeemCouponResult", "refusal"): "CouponRefusal",
        ("Plugin", "source"): "PluginSource",
        ("ExperimentVariantReport", "verdict"): "ExperimentVerdict",
        ("Experiment", "status"): "ExperimentStatus",
        ("EventResult", "status"): "EventStatus",
    }
    for (type_name, field_name), enum_name in fields.items():
        owner = s.type_map[type_name]
        assert isinstance(owner, GraphQLObjectType)
        named = get_named_type(owner.fields[field_name].type)
        assert isinstance(named, GraphQLEnumType) and named.name == enum_name
    # Every field named status/kind/source/verdict is an enum, wherever it is.
    for type_name, t in s.type_map.items():
        if type_name.startswith("__") or not isinstance(t, GraphQLObjectType):
            continue
        for field_name, field in t.fields.items():
            if field_name in {"status", "kind", "source", "verdict", "state"}:
                named = get_named_type(field.type)
                open_sets = {
                    ("Nudge", "kind"),
                    ("AppliedPromotion", "source"),
                    ("PluginConfigStatus", "source"),
                }
                if (type_name, field_name) in open_sets:
                    # named by plugins / carries the coupon code / a config file's path
                    continue
                assert not isinstance(named, GraphQLScalarType), f"{type_name}.{field_name}"


def test_references_to_other_objects_are_named_with_id() -> None:
    s = schema()
    bare = []
    for type_name, t in s.type_map.items():
        if type_name.startswith("__"):
            continue
        if isinstance(t, GraphQLObjectType | GraphQLInputObjectType):
            for field_name, field in t.fields.items():
                named = get_named_type(field.type)
                if field_name in REFERENCE_NAMES and named.name == "ID":
                    bare.append(f"{type_name}.{field_name}")
    for root in (s.query_type, s.mutation_type):
        assert root is not None
        for field_name, field in root.fields.items():
            for arg_name, arg in field.args.items():
                if arg_name in REFERENCE_NAMES and get_named_type(arg.type).name == "ID":
                    bare.append(f"{field_name}({arg_name})")
    assert not bare, f"name references <object>Id: {bare}"


def readme_operations() -> list[str]:
    text = (ROOT / "README.md").read_text()
    found = re.findall(r'"query": ("(?:[^"\\]|\\.)*")', text)
    return [json.loads(q) for q in found]


def test_the_readme_operations_run_on_this_schema() -> None:
    operations = readme_operations()
    assert any("storefront(input:" in op for op in operations)
    assert any("products(first:" in op for op in operations)
    assert any("upsertProducts(input:" in op for op in operations)
    s = schema()
    for op in operations:
        errors = validate(s, parse(op))
        assert not errors, (op[:80], [e.message for e in errors])


def test_coupon_refusals_cover_every_refusal_the_domain_gives() -> None:
    from shopfront.offers import campaigns, pricing
    from shopfront.schema.coupons import CouponRefusal

    engine = {
        pricing.BETTER_DEAL,
        pricing.NOT_CHOSEN,
        pricing.NOTHING_TO_DISCOUNT,
        pricing.UNAVAILABLE,
        pricing.INVALID,
        pricing.NOT_APPLICABLE,
    }
    assert {c.value for c in CouponRefusal} == set(campaigns.REFUSAL_CODES) | engine
