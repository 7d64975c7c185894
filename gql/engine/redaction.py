"""Production error messages name nothing of the schema that the request did not.

graphql-core's messages teach the schema to whoever sends a wrong document: "Did you
mean 'first' or 'last'?", "Field 'posts' of type 'PostConnection!' ...", "Unknown
argument 'frist' on field 'Query.posts'", "Int cannot represent ...". With introspection
off, that is how a schema is recovered by brute force. In production the error policy
passes every top-level message through :meth:`SchemaNames.redact`:

1. suggestions ("Did you mean ...?") are dropped;
2. graphql-core's phrases that quote a type, field or argument the request did not
   name are rewritten without it ("Field 'posts' must have a selection of subfields.");
3. a message that still names such a thing is replaced by a generic one; its
   ``locations`` still point at the place in the document.

What the request named is every name and string in the document and every key and
string in its variables: a client may hear back what it said itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSchema, GraphQLSyntaxError, Lexer, Source, TokenKind
from graphql.type import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    is_introspection_type,
)

GENERIC = "The document does not fit the schema here."

_IDENTIFIER = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_QUOTED = re.compile(r"'([^']*)'")
_MAX_KNOWN = 10_000  # names collected from one request's variables, at most

Rewrite = tuple[re.Pattern[str], Callable[[re.Match[str]], str], tuple[str, ...]]


def _rewrite(
    pattern: str, replacement: str | Callable[[re.Match[str]], str], *guarded: str
) -> Rewrite:
    """A phrase of graphql-core's, and what it becomes when one of its ``guarded``
    groups names something the request did not (with none guarded: always)."""
    replace = replacement if callable(replacement) else (lambda _m: replacement)
    return re.compile(pattern), replace, guarded


def _missing_argument(match: re.Match[str]) -> str:
    owner = match["owner"]
    kind = "Directive" if owner.startswith("@") else "Field"
    return f"{kind} '{owner}' is missing a required argument."


# graphql-core 3.3's wording (pinned in pyproject.toml); the guard in ``redact`` catches
# any phrase these miss, so a new wording costs readability, never a leak.
_REWRITES: tuple[Rewrite, ...] = (
    _rewrite(r"\s*Did you mean [^?]*\?", ""),
    _rewrite(
        r"Argument '(?:(?P<type>\w+)\.)?(?P<owner>@?\w+)\((?P<arg>\w+):\)' of type "
        r"'(?P<t>[^']+)' is required, but it was not provided\.",
        _missing_argument,
        "type",
        "arg",
        "t",
    ),
    _rewrite(r"'(?P<type>\w+)\.(?P<field>\w+)'", lambda m: f"'{m['field']}'", "type"),
    _rewrite(r"include required field '(?P<f>\w+)'", "include all its required fields", "f"),
    _rewrite(r" since type '(?P<t>[^']+)' has no subfields", " since it has no subfields", "t"),
    _rewrite(r" on type '(?P<t>[^']+)'", " here", "t"),
    _rewrite(r" in position expecting type '(?P<t>[^']+)'", " where another type is expected", "t"),
    _rewrite(
        r" conflicting types '(?P<t>[^']+)' and '(?P<u>[^']+)'", " conflicting types", "t", "u"
    ),
    _rewrite(r" in '(?P<t>\w+)' enum", " in this enum", "t"),
    _rewrite(
        r"(?:Enum '(?P<e>\w+)'|\b(?P<t>[A-Z]\w*)) cannot represent [^:]*", "Invalid value", "e", "t"
    ),
    _rewrite(r" (?:of|to) (?:required |non-null )?type '(?P<t>[^']+)'", "", "t"),
)


class SchemaNames:
    """The names a schema defines, but for those every GraphQL server has: the
    introspection types and the root types (``Query``, ``Mutation``)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        names: set[str] = set()
        loud: set[str] = set()  # names that stand out unquoted: types and enum values
        roots = {schema.query_type, schema.mutation_type, schema.subscription_type}
        for type_ in schema.type_map.values():
            if is_introspection_type(type_) or type_ in roots:
                continue
            names.add(type_.name)
            loud.add(type_.name)
            if isinstance(type_, GraphQLEnumType):
                names.update(type_.values)
                loud.update(type_.values)
            if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
                for field_name, field in type_.fields.items():
                    names.add(field_name)
                    names.update(field.args)
            if isinstance(type_, GraphQLInputObjectType):
                names.update(type_.fields)
        for directive in schema.directives:
            names.add(directive.name)
            names.update(directive.args)
        self._names = frozenset(names)
        self._loud = frozenset(loud)

    def named(self, message: str, known: RequestNames) -> set[str]:
        """The schema's names in ``message`` that the request did not name: quoted ones,
        and types and enum values anywhere."""
        quoted = {n for segment in _QUOTED.findall(message) for n in _IDENTIFIER.findall(segment)}
        loud = {n for n in _IDENTIFIER.findall(message) if n in self._loud}
        found = (quoted & self._names) | loud
        return found - known.names if found else found

    def redact(self, error: GraphQLError, message: str, known: RequestNames) -> str:
        """``message``, shown for ``error``, without what the request did not name (see
        the module). A syntax error's is left alone: parsing knows no schema."""
        if isinstance(error, GraphQLSyntaxError):
            return message

        def unknown(match: re.Match[str], groups: tuple[str, ...]) -> bool:
            if not groups:
                return True
            return any(
                match[group] is not None and self.named(f"'{match[group]}'", known)
                for group in groups
            )

        for pattern, replace, guarded in _REWRITES:
            message = pattern.sub(
                lambda m, r=replace, g=guarded: r(m) if unknown(m, g) else m[0],  # type: ignore[misc]
                message,
            )
        return GENERIC if self.named(message, known) else message


class RequestNames:
    """Every name and string the client sent, in the document and in its variables;
    gathered only if a message needs them (lexing a large document costs more than
    refusing it)."""

    def __init__(self, query: str | None, variables: Any) -> None:
        self._query = query
        self._variables = variables

    @functools.cached_property
    def names(self) -> set[str]:
        known: set[str] = set()
        if self._query:
            known.update(_document_words(self._query))
        for value in _leaves(self._variables):
            if len(known) >= _MAX_KNOWN:
                break
            known.update(_IDENTIFIER.findall(value))
        return known


def _document_words(query: str) -> Iterator[str]:
    lexer = Lexer(Source(query))
    try:
        while (token := lexer.advance()).kind is not TokenKind.EOF:
            if token.kind in (TokenKind.NAME, TokenKind.STRING, TokenKind.BLOCK_STRING):
                yield from _IDENTIFIER.findall(token.value or "")
    except GraphQLError:  # a syntax error: the names before it were sent all the same
        return


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
