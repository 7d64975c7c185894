"""The committed ``schema.graphql``, as clients see it, for tests that derive their
documents from it instead of keeping lists of mutations and types."""

from __future__ import annotations

import functools

from graphql import (
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    get_named_type,
)

from tests.support.server import ROOT


@functools.cache
def committed_schema() -> GraphQLSchema:
    return build_schema((ROOT / "schema.graphql").read_text())


def mutation_type() -> GraphQLObjectType:
    mutation = committed_schema().mutation_type
    assert mutation is not None
    return mutation


def input_type(field: str) -> str:
    """The type of a mutation's ``input`` argument, e.g. ``PostVersionInput!``."""
    return str(mutation_type().fields[field].args["input"].type)


def success_type(field: str) -> GraphQLObjectType:
    """A mutation's success type: the first member of its result union, by the
    schema's convention (or the result itself when it is not a union)."""
    named = get_named_type(mutation_type().fields[field].type)
    success = named.types[0] if isinstance(named, GraphQLUnionType) else named
    assert isinstance(success, GraphQLObjectType)
    return success
