"""Parsed documents, kept across requests: a client sends the same few documents over
and over, and parsing one costs more than running a small one.

Unlike strawberry's ParserCache, a miss parses where strawberry always does, so a
document that fails to parse takes the usual path to the error policy (ParserCache
parses inside the extension hook, where a syntax error escapes every extension). Only
documents that parsed are kept; the cache is bounded, so unique junk documents cannot
grow it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode
from strawberry.extensions import SchemaExtension

MAX_DOCUMENTS = 256

_documents: OrderedDict[tuple[Any, ...], DocumentNode] = OrderedDict()


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
