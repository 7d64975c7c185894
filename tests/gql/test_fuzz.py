"""Fuzzing every query and mutation in ``schema.graphql`` against a real server.

schemathesis (GraphQL mode, over hypothesis-graphql) writes documents that the schema
allows, with arbitrary arguments, and a few that it does not (wrong types, unknown enum
values). They go over HTTP to ``auditql serve`` on PostgreSQL in production mode, as a
superuser, over a database seeded with a row of every kind. Fuzz dictionaries steer the
arguments to where bugs live, so that requests reach the resolvers and the database
rather than bounce off "not a valid id": three ids in four are those of seeded rows of
the right type, three list cursors in four are real, most integers are page sizes and
versions near their limits, and a third of the strings are hostile (NUL, ``%``, ``_``,
``\\``, quotes, right-to-left and combining text, over-long, forged cursors).
Date-times come with any offset, to the ends of the calendar. Whatever comes back, no
response may have a 5xx status or an ``INTERNAL_SERVER_ERROR``.

It is bounded for CI: ``FUZZ_EXAMPLES`` (25) documents the schema allows and a quarter
as many it does not, per operation, derandomized so that every run draws the same
documents (about 1,000 requests, in about 35 s). Fuzz harder locally with, e.g.,
``FUZZ_EXAMPLES=500 uv run pytest tests/gql/test_fuzz.py -s`` (it prints its figures).
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import graphql
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, HookContext
from schemathesis.graphql import nodes
from schemathesis.specs.graphql.schemas import GraphQLSchema

from gql.schema.ids import to_global_id
from gql.schema.scalars import MAX_FILTER_LENGTH
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import Comment, FeatureFlag, FlagOverride, Post, PostStatus, Tag
from persistence.repositories.tag import TagRepository
from persistence.unit_of_work import UnitOfWork
from tests.gql.conftest import LiveServer, make_person
from tests.gql.test_hostile_input import FORGED_CURSORS, USABLE
from tests.support.server import ROOT

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

SCHEMA = ROOT / "schema.graphql"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))

# Fixed keys, so that a derandomized run sends the same documents every time.
POST, DRAFT, TAG, COMMENT, FLAG, OVERRIDE = (
    UUID(f"01900000-0000-7000-8000-{n:012}") for n in range(1, 7)
)


HOSTILE = [*USABLE, "\x00", "a\x00b", "x" * (MAX_FILTER_LENGTH + 1), "x" * 5000, *FORGED_CURSORS]
# Arguments that take ids, and of what type (None: any).
ID_ARGUMENTS = {
    "id": None, "ids[*]": None, "input.id": None, "filter.entityId": None,
    "input.postId": "Post", "input.tagIds[*]": "Tag", "filter.tagId": "Tag",
    "input.flagId": "FeatureFlag", "input.userId": "User", "filter.authorId": "User",
    "filter.actorId": "User",
}  # fmt: skip
# Any instant with any offset, to the ends of the calendar (where an offset can push the
# instant out of it once converted to UTC).
_DAY = timedelta(hours=23, minutes=59)
DATETIMES = st.datetimes(timezones=st.timedeltas(-_DAY, _DAY).map(timezone)).map(datetime.isoformat)


async def seed(database: Database) -> tuple[str, dict[str, list[str]]]:
    """A superuser's token, and the global ids of a writer and their rows by type (not
    the superuser's own: a fuzzed ``updateUser`` must not lock the fuzz out)."""
    admin = await make_person(database, "admin", superuser=True)
    writer = await make_person(database, "writer")
    async with UnitOfWork(database, AuditContext(actor_id=writer.user.id)) as uow:
        uow.session.add_all([
            Post(id=POST, title="Hello 100% a_b", slug="hello", body="Body \\ text",
                 status=PostStatus.PUBLISHED, published_at=datetime.now(UTC)),
            Post(id=DRAFT, title="Draft", slug="draft"),
            Tag(id=TAG, name="news", color="#336699"),
            FeatureFlag(id=FLAG, key="new.editor", name="New editor", rollout_percentage=50),
        ])  # fmt: skip
        await uow.session.flush()
        uow.session.add_all([
            Comment(id=COMMENT, post_id=POST, body="First!"),
            FlagOverride(id=OVERRIDE, flag_id=FLAG, user_id=writer.user.id, enabled=True),
        ])  # fmt: skip
        await TagRepository(uow.session).set_post_tags(POST, [TAG])
    keys = {"Post": [POST, DRAFT], "Tag": [TAG], "Comment": [COMMENT], "FeatureFlag": [FLAG],
            "FlagOverride": [OVERRIDE]}  # fmt: skip
    ids = {type_name: [to_global_id(type_name, key) for key in of_type]
           for type_name, of_type in keys.items()}  # fmt: skip
    return admin.token, {"User": [writer.id], **ids}


def real_cursors(sdl: graphql.GraphQLSchema, base: str, token: str) -> dict[str, list[str]]:
    """The first two cursors of every top-level list, by list."""
    assert sdl.query_type is not None
    lists = [name for name, f in sdl.query_type.fields.items() if "before" in f.args]
    document = " ".join(f"{name}(first: 2) {{ edges {{ cursor }} }}" for name in lists)
    response = requests.post(f"{base}/graphql", json={"query": f"{{ {document} }}"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    data = response.json()["data"]
    return {name: [edge["cursor"] for edge in data[name]["edges"]] for name in lists}


def fuzz_config(
    sdl: graphql.GraphQLSchema, ids: dict[str, list[str]], cursors: dict[str, list[str]]
) -> schemathesis.Config:
    """The fuzz dictionaries. ``updatePost``'s ``input.id`` is a post's, by the
    mutation's name; ``posts(after:)`` a cursor of ``posts``."""
    mutations = sdl.mutation_type.fields if sdl.mutation_type else {}
    own_ids = {f"Mutation.{name}.input.id": type_name
               for name in mutations for type_name in ids if name.endswith(type_name)}  # fmt: skip
    typed_ids = {f"*.*.{argument}": type_name or "ids"
                 for argument, type_name in ID_ARGUMENTS.items()}  # fmt: skip
    pages = {f"Query.{name}.{argument}": f"{name}-cursors"
             for name, of_list in cursors.items() if of_list
             for argument in ("after", "before")}  # fmt: skip
    return schemathesis.Config.from_dict({
        "dictionaries": {
            "hostile": {"values": HOSTILE},
            "limits": {"values": [-1, 0, 1, 2, 3, 20, 99, 100, 101]},
            "ids": {"values": [id for of_type in ids.values() for id in of_type]},
            **{type_name: {"values": of_type} for type_name, of_type in ids.items()},
            **{f"{name}-cursors": {"values": of_list}
               for name, of_list in cursors.items() if of_list},
        },
        "generation": {"dictionaries": {
            "string": {"dictionary": "hostile", "probability": 0.3},
            "integer": {"dictionary": "limits", "probability": 0.8},
        }},
        "parameters": {
            key: {"dictionary": dictionary, "probability": 0.75}
            for key, dictionary in {**typed_ids, **own_ids, **pages}.items()
        },
    })  # fmt: skip


def one_direction(_context: HookContext, document: graphql.DocumentNode) -> graphql.DocumentNode:
    """A list is paged forwards (``first``/``after``) or backwards (``last``/``before``):
    hypothesis-graphql nearly always sends both, which only ever meets one refusal."""

    def field(node: graphql.SelectionNode) -> graphql.SelectionNode:
        if not isinstance(node, graphql.FieldNode) or not node.arguments:
            return node
        if not {"first", "last"} <= {argument.name.value for argument in node.arguments}:
            return node
        kept = tuple(a for a in node.arguments if a.name.value not in ("last", "before"))
        return replace(node, arguments=kept)

    def operation(node: graphql.DefinitionNode) -> graphql.DefinitionNode:
        if not isinstance(node, graphql.OperationDefinitionNode):
            return node
        selections = tuple(map(field, node.selection_set.selections))
        return replace(node, selection_set=replace(node.selection_set, selections=selections))

    return replace(document, definitions=tuple(map(operation, document.definitions)))


@dataclass
class Tally:
    requests: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def record(self, case: Case[Any], response: schemathesis.Response) -> None:
        """Counts the response, and keeps it if it has a 5xx status or an
        INTERNAL_SERVER_ERROR (asserted after the run, so that one run reports every
        operation that fails)."""
        self.requests += 1
        body = response.json() if response.status_code != 413 else {}
        errors = body.get("errors") or ()
        codes = [(error.get("extensions") or {}).get("code") for error in errors]
        if body.get("data") and not errors:
            self.answered[case.operation.label] += 1
        if response.status_code >= 500 or "INTERNAL_SERVER_ERROR" in codes:
            self.failures.append(f"{case.operation.label}: {response.status_code} {codes}\n"
                                 f"{str(case.body)[:2000]}")  # fmt: skip


def fuzz(schema: GraphQLSchema, base: str, token: str, tally: Tally) -> None:
    """Every operation's examples, those the schema allows and a few it does not."""
    headers = {"Authorization": f"Bearer {token}"}
    modes = {GenerationMode.POSITIVE: FUZZ_EXAMPLES, GenerationMode.NEGATIVE: FUZZ_EXAMPLES // 4}
    with requests.Session() as session:
        for operation, (mode, examples) in itertools.product(
            (operation for group in schema.values() for operation in group.values()),
            modes.items(),
        ):
            # Phase.generate only: there are no explicit examples, no example database
            # to reuse, and nothing to shrink (failures are collected, not raised).
            @settings(
                max_examples=examples, derandomize=True, database=None, deadline=None,
                phases=[Phase.generate], suppress_health_check=list(HealthCheck),
            )  # fmt: skip
            @given(case=operation.as_strategy(mode))
            def run(case: Case[Any]) -> None:
                tally.record(case, case.call(f"{base}/graphql", session, headers, timeout=30))

            run()


async def test_fuzzed_operations_never_fail_on_the_server(
    live_server: LiveServer, served_database: Database
) -> None:
    token, ids = await seed(served_database)
    sdl = graphql.build_schema(SCHEMA.read_text())
    roots = (sdl.query_type, sdl.mutation_type)
    operations = {f"{root.name}.{name}" for root in roots if root for name in root.fields}
    # Registered for the whole process; no other test uses schemathesis.
    schemathesis.graphql.scalar("DateTime", DATETIMES.map(nodes.String))
    tally, started = Tally(), time.monotonic()
    with live_server() as server:
        config = fuzz_config(sdl, ids, real_cursors(sdl, server.base, token))
        schema = schemathesis.graphql.from_path(SCHEMA, config=config)
        schema.hook("map_body")(one_direction)
        fuzz(schema, server.base, token, tally)
    print(f"fuzz: {tally.requests} requests over {len(operations)} operations "
          f"in {time.monotonic() - started:.1f} s")  # fmt: skip
    assert not tally.failures, "\n\n".join(tally.failures[:10])
    assert tally.requests >= len(operations) * FUZZ_EXAMPLES
    # The fuzz reached the resolvers: most operations succeeded at least once.
    assert len(tally.answered) >= 0.8 * len(operations), sorted(operations - set(tally.answered))
