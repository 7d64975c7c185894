"""Parsed and validated documents, kept across requests: a client sends the same few
documents over and over, and parsing and validating one costs more than running a
small one.

Unlike strawberry's ParserCache, a miss parses where strawberry always does, so a
document that fails to parse takes the usual path to the error policy (ParserCache
parses inside the extension hook, where a syntax error escapes every extension). Only
documents that parsed are kept; the cache is bounded, so unique junk documents cannot
grow it.

Validation results are kept by the document's identity. Strawberry's ValidationCache
keys them by the document itself, and graphql-core hashes a document by walking its
whole tree, on every request; here one query text is one document object, so its
identity is enough.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

MAX_DOCUMENTS = 256

_documents: OrderedDict[tuple[Any, ...], DocumentNode] = OrderedDict()
# Each entry holds its document and schema, so that their ids in the key stay theirs.
_validations: OrderedDict[tuple[Any, ...], tuple[Any, DocumentNode, list[GraphQLError]]] = (
    OrderedDict()
)


class DocumentCache(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        key = (context.query, *sorted(context.parse_options.items()))
        cached = _documents.get(key)
        if cached is not None:
            _documents.move_to_end(key)
            context.graphql_document = cached
            yield
            return
        yield
        if context.graphql_document is not None:
            _documents[key] = context.graphql_document
            if len(_documents) > MAX_DOCUMENTS:
                _documents.popitem(last=False)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None  # validation follows a successful parse
        rules = tuple(context.validation_rules)
        key = (id(document), id(context.schema), rules)
        cached = _validations.get(key)
        if cached is not None:
            _validations.move_to_end(key)
            errors = cached[2]
        else:
            errors = validate_document(context.schema._schema, document, rules)
            _validations[key] = (context.schema, document, errors)
            if len(_validations) > MAX_DOCUMENTS:
                _validations.popitem(last=False)
        context.pre_execution_errors = errors
        yield
