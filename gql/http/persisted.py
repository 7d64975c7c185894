"""Persisted documents: a request may name its document by SHA-256 hash instead of
sending it (``extensions.persistedQuery = {version: 1, sha256Hash}``, Apollo's format,
which urql's persisted exchange speaks too).

Two modes:

- **Automatic persisted queries** (the default): a hash-only request for an unknown
  hash is answered ``PERSISTED_QUERY_NOT_FOUND``; the client sends the document with
  its hash, the server checks the hash and keeps the document, and from then on the
  hash alone runs it. Documents live in a bounded store: this process's LRU
  (``memory://``), or Redis shared by every process, each entry kept for a day.
- **Trusted documents** (``AUDITQL_TRUSTED_DOCUMENTS``): the server runs only the
  documents of a manifest the client build produced, named by hash or sent in full;
  nothing is registered at run time.

Either way the document is then run as if it had been sent in full: document limits
and the cost limit apply every time. In production a GET runs only documents the server
already holds (by hash, or sent in full when held), so GET responses are cacheable and
an arbitrary query cannot ride on a URL.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Visitor,
    parse,
    print_ast,
    visit,
)

from gql.errors import BadRequestError, DocumentNotTrustedError, PersistedQueryNotFoundError

logger = logging.getLogger("auditql.persisted")

N = TypeVar("N", bound=Node)

_SHA256 = re.compile(r"[0-9a-f]{64}")
SHARED_ENTRY_SECONDS = 86_400


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class DocumentStore(Protocol):
    async def get(self, digest: str) -> str | None: ...
    async def put(self, digest: str, document: str) -> None: ...


class MemoryStore:
    """At most ``size`` documents, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._documents: OrderedDict[str, str] = OrderedDict()

    async def get(self, digest: str) -> str | None:
        document = self._documents.get(digest)
        if document is not None:
            self._documents.move_to_end(digest)
        return document

    async def put(self, digest: str, document: str) -> None:
        self._documents[digest] = document
        self._documents.move_to_end(digest)
        while len(self._documents) > self._size:
            self._documents.popitem(last=False)


class RedisStore:
    """Shared by every process; each document expires a day after it was registered.
    An unreachable Redis is a miss, logged: the client then sends the document."""

    def __init__(self, uri: str) -> None:
        import coredis

        self._redis: Any = coredis.Redis.from_url(uri, decode_responses=True)

    async def get(self, digest: str) -> str | None:
        try:
            document: str | None = await self._redis.get(_key(digest))
        except Exception:
            logger.warning("persisted query store failed; treated as a miss", exc_info=True)
            return None
        return document

    async def put(self, digest: str, document: str) -> None:
        try:
            await self._redis.set(_key(digest), document, ex=SHARED_ENTRY_SECONDS)
        except Exception:
            logger.warning("persisted query store failed; not registered", exc_info=True)


def _key(digest: str) -> str:
    return f"auditql:persisted:{digest}"


def store_for(storage_uri: str, size: int) -> DocumentStore:
    """The store named by the shared store's URI (``AUDITQL_RATE_LIMIT_STORAGE``)."""
    if storage_uri.startswith(("redis://", "rediss://")):
        return RedisStore(storage_uri)
    return MemoryStore(size)


class TrustedDocuments:
    """A manifest's documents, by hash and by canonical form, so a client that prints a
    document its own way (selections in source order, other whitespace) still matches
    the manifest's copy."""

    def __init__(self, documents: dict[str, str]) -> None:
        self._by_hash = documents
        self._canonical = {canonical(document) for document in documents.values()}

    @classmethod
    def load(cls, path: Path) -> TrustedDocuments:
        """The manifest at ``path``, its keys bare SHA-256 hex (GraphQL Code Generator
        writes ``sha256:<hex>``); ValueError naming what is wrong with it."""
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the trusted documents {path}: {exc}") from None
        if not isinstance(manifest, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in manifest.items()
        ):
            raise ValueError(f"{path} is not a JSON object of hash -> document")
        documents = {key.removeprefix("sha256:"): text for key, text in manifest.items()}
        wrong = [digest for digest, document in documents.items() if sha256(document) != digest]
        if wrong:
            raise ValueError(f"{path}: {wrong[0]} is not the SHA-256 of its document")
        return cls(documents)

    def by_hash(self, digest: str) -> str | None:
        return self._by_hash.get(digest)

    def trusts(self, document: str) -> bool:
        return sha256(document) in self._by_hash or canonical(document) in self._canonical


@functools.lru_cache(maxsize=1024)
def canonical(document: str) -> str | None:
    """``document`` printed with its order-free parts sorted: definitions, selections
    (except a mutation's top-level fields, which run in order), arguments, variable
    definitions. None when it does not parse."""
    try:
        tree = parse(document, no_location=True)
    except GraphQLError:
        return None
    return print_ast(visit(tree, _Canonical()))


class _Canonical(Visitor):
    """Sorts on the way up, so each list is sorted by its already sorted members."""

    def leave_document(self, node: DocumentNode, *_: Any) -> DocumentNode:
        return _with(node, definitions=_sorted(node.definitions))

    def leave_operation_definition(
        self, node: OperationDefinitionNode, *_: Any
    ) -> OperationDefinitionNode:
        return _with(
            node,
            variable_definitions=tuple(
                sorted(node.variable_definitions or (), key=lambda v: v.variable.name.value)
            ),
        )

    def leave_selection_set(
        self, node: SelectionSetNode, _key: Any, parent: Any, *_: Any
    ) -> SelectionSetNode:
        mutation_root = (
            isinstance(parent, OperationDefinitionNode)
            and parent.operation == OperationType.MUTATION
        )
        return node if mutation_root else _with(node, selections=_sorted(node.selections))

    def leave_field(self, node: FieldNode, *_: Any) -> FieldNode:
        return _with(
            node, arguments=tuple(sorted(node.arguments or (), key=lambda a: a.name.value))
        )


def _sorted(nodes: Any) -> tuple[Any, ...]:
    return tuple(sorted(nodes or (), key=print_ast))


def _with(node: N, **changes: Any) -> N:
    return dataclasses.replace(node, **changes)


class PersistedDocuments:
    """Turns a request's ``query`` and ``extensions`` into the document to run."""

    def __init__(
        self, store: DocumentStore, trusted: TrustedDocuments | None, *, get_needs_known: bool
    ) -> None:
        self._store = store
        self._trusted = trusted
        self._get_needs_known = get_needs_known

    async def document(
        self, query: str | None, extensions: dict[str, Any] | None, *, is_get: bool
    ) -> str | None:
        """The document the request runs (None: it names none), or a ClientError."""
        digest = _requested_hash(extensions)
        if digest is None:
            if query is not None and not await self._may_run(query, is_get=is_get):
                raise DocumentNotTrustedError(self._untrusted_message(is_get))
            return query
        if query is not None:
            if sha256(query) != digest:
                raise BadRequestError("persistedQuery.sha256Hash is not the SHA-256 of query.")
            if self._trusted is None:
                await self._store.put(digest, query)
            elif self._trusted.by_hash(digest) is None:
                raise DocumentNotTrustedError(self._untrusted_message(is_get))
            return query
        document = await self._known(digest)
        if document is None:
            raise PersistedQueryNotFoundError()
        return document

    async def _known(self, digest: str) -> str | None:
        if self._trusted is not None:
            return self._trusted.by_hash(digest)
        return await self._store.get(digest)

    async def _may_run(self, query: str, *, is_get: bool) -> bool:
        if self._trusted is not None:
            return self._trusted.trusts(query)
        if is_get and self._get_needs_known:
            return await self._store.get(sha256(query)) is not None
        return True

    def _untrusted_message(self, is_get: bool) -> str:
        if self._trusted is not None:
            return "This server runs only its trusted documents; this is not one of them."
        return (
            "A GET runs only persisted documents here: send the query by POST, or "
            "register it (extensions.persistedQuery) and send its hash."
        )


def _requested_hash(extensions: dict[str, Any] | None) -> str | None:
    """The SHA-256 a request names, or None; a malformed one is a BAD_REQUEST."""
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise BadRequestError("extensions.persistedQuery must be {version: 1, sha256Hash}.")
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise BadRequestError("persistedQuery.sha256Hash must be 64 lower-case hex digits.")
    return digest
