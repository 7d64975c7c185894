"""The data set of issue 6, the same on every run, COPYed into a migrated database.

Users, tags, posts and their tags, with every audit field and audit entry the unit of
work would have written had the data been made through the API: a post is created as
a draft with its tags by its author, then perhaps published (and archived) by its
author, retitled by another user, soft-deleted; its ``version``, ``updated_at``,
``updated_by_id`` and ``audit_log`` rows follow from those steps. Everything is drawn
from one ``random.Random(seed)`` and a fixed clock, ids included (UUIDv7s made from
each row's own time), so every run answers the benchmark query with the same bytes.

A tenth of the users write most posts: the first page of users by username (the big
list's hundred users, ``bench.documents.BIG_LIST``) writes 60% of them, so that their
pages of posts are full; the other users share the rest.

The first user, the benchmark's writer, and its token are made by ``gql.cli.admin``, the
operator commands' own code path; the other users are COPYed after it (ids 2, 3, ...).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from uuid6 import UUID

from bench import documents
from bench.profile import Profile
from bench.servers import in_process
from gql.cli import admin
from persistence.integrity import sequencer_of

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
WRITER_EMAIL = "writer@example.com"
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_POST_STEP_US = 20 * 60 * 1_000_000  # a post every 20 minutes or so
_PROLIFIC_SHARE = 0.6
"""The share of posts written by the first page of users (by username), so that the big
list (``bench.documents.BIG_LIST``) finds about 99 visible posts for each of them: of
20,000 posts, about 129 each, of which about 90% are published and not deleted."""
_WORDS = (
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
    "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua",
    "enim", "ad", "minim", "veniam", "quis", "nostrud", "exercitation", "ullamco", "laboris",
    "nisi", "aliquip", "ex", "ea", "commodo", "consequat", "duis", "aute", "irure", "in",
    "reprehenderit", "voluptate", "velit", "esse", "cillum", "fugiat", "nulla", "pariatur",
)  # fmt: skip
_FIRST = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia")
_LAST = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Perlman")

Row = dict[str, Any]


@dataclass
class DataSet:
    """Rows by table (in the order they are COPYed), each a dict of its columns."""

    rng: random.Random
    tables: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))

    def uuid7(self, at: datetime) -> UUID:
        """A UUIDv7 of the millisecond ``at``, its other bits from the seeded generator."""
        ms = (at - _UNIX) // timedelta(milliseconds=1)
        bits = ms << 80 | self.rng.getrandbits(12) << 64 | self.rng.getrandbits(62)
        return UUID(int=bits, version=7)

    def add(self, table: str, **row: Any) -> None:
        self.tables[table].append(row)

    def record(self, at: datetime, actor: int | None, action: str, entity_type: str,
               entity_id: object, **changes: list[Any]) -> None:  # fmt: skip
        """An audit entry as ``persistence.audit`` writes it (values already JSON-safe)."""
        self.add(
            "audit_log", id=self.uuid7(at), actor_id=actor, action=action,
            entity_type=entity_type, entity_id=str(entity_id),
            changes=orjson.dumps(changes).decode(), request_id=None, ip_address=None,
            user_agent=None, created_at=at,
        )  # fmt: skip


def _audited(at: datetime, actor: int | None) -> Row:
    """The columns of an audited entity made at ``at`` by ``actor``, still at version 1."""
    return {"created_at": at, "updated_at": at, "created_by_id": actor,
            "updated_by_id": actor, "version": 1}  # fmt: skip


def generate(profile: Profile, writer_id: int) -> DataSet:
    """The rows of ``profile``'s data set; users 2.. follow the writer (user 1)."""
    data = DataSet(random.Random(profile.seed))
    rng = data.rng
    user_ids = [writer_id, *range(writer_id + 1, writer_id + profile.users)]
    for n in user_ids[1:]:
        at, username = EPOCH + timedelta(minutes=n), f"user{n:05d}"
        values = {"email": f"{username}@example.com", "username": username,
                  "full_name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                  "is_active": True, "is_superuser": False}  # fmt: skip
        data.add("users", **_audited(at, None), password_hash=None, **values)
        data.record(at, None, "create", "users", n, **{k: [None, v] for k, v in values.items()})
    tag_ids = []
    names = rng.sample([f"{a}-{b}" for a in _WORDS[:20] for b in _WORDS[20:]], profile.tags)
    for n, name in enumerate(names):
        at = EPOCH + timedelta(days=1, minutes=n)
        tag_id, author, color = data.uuid7(at), rng.choice(user_ids), f"#{rng.getrandbits(24):06x}"
        tag_ids.append(tag_id)
        data.add("tags", id=tag_id, name=name, color=color, **_audited(at, author))
        data.record(at, author, "create", "tags", tag_id, name=[None, name], color=[None, color])
    start = EPOCH + timedelta(days=2)
    # Usernames sort as ids do, the writer's last: these are the big list's users.
    prolific = user_ids[1 : 1 + documents.BIG_LIST_USERS]
    for n in range(profile.posts):
        at = start + timedelta(microseconds=n * _POST_STEP_US + rng.randrange(_POST_STEP_US))
        author = rng.choice(prolific if rng.random() < _PROLIFIC_SHARE else user_ids)
        _post(data, n, at, author, user_ids, tag_ids)
    return data


def _post(data: DataSet, n: int, at: datetime, author: int, user_ids: Sequence[int],
          tag_ids: Sequence[UUID]) -> None:  # fmt: skip
    """One post through its life: created with its tags, then the later steps."""
    rng = data.rng
    post_id = data.uuid7(at)
    words = rng.choices(_WORDS, k=3)
    title = f"{words[0].capitalize()} {words[1]} {words[2]} {n}"
    slug = title.lower().replace(" ", "-")
    body = " ".join(rng.choices(_WORDS, k=rng.randint(20, 120))).capitalize() + "."
    data.record(at, author, "create", "posts", post_id, title=[None, title], slug=[None, slug],
                body=[None, body], status=[None, "draft"])  # fmt: skip
    for tag_id in rng.sample(list(tag_ids), rng.randint(1, 5)):
        data.add("post_tags", post_id=post_id, tag_id=tag_id, created_at=at, created_by_id=author)
        data.record(at, author, "create", "post_tags", post_id, tag_id=[None, str(tag_id)])
    row = {"id": post_id, "title": title, "slug": slug, "body": body, "status": "draft",
           "published_at": None, "deleted_at": None, "deleted_by_id": None,
           **_audited(at, author)}  # fmt: skip

    def later() -> datetime:
        """The time of the post's next change: minutes to hours after the last."""
        row["updated_at"] += timedelta(minutes=rng.randint(1, 600),
                                       microseconds=rng.randrange(10**6))  # fmt: skip
        when: datetime = row["updated_at"]
        return when

    def change(actor: int, action: str, **changes: list[Any]) -> None:
        row["version"] += 1
        row["updated_by_id"] = actor
        data.record(row["updated_at"], actor, action, "posts", post_id, **changes)

    kind = rng.random()
    if kind < 0.94:  # published, some of them later archived; the rest stay drafts
        row["published_at"] = published_at = later()
        change(author, "update", status=["draft", "published"],
               published_at=[None, published_at.isoformat()])  # fmt: skip
        row["status"] = "published"
        if kind > 0.90:
            later()
            change(author, "update", status=["published", "archived"])
            row["status"] = "archived"
    if rng.random() < 0.25:  # retitled by someone else
        later()
        row["title"] = f"{title} (revised)"
        change(rng.choice(user_ids), "update", title=[title, row["title"]])
    if rng.random() < 0.01:
        deleted_at = later()
        row.update(deleted_at=deleted_at, deleted_by_id=author)
        change(author, "soft_delete", deleted_at=[None, deleted_at.isoformat()])
    data.add("posts", **row)


@dataclass(frozen=True)
class Seeded:
    writer_id: int
    token: str
    """A bearer token of the writer, for ``createPost``."""
    counts: dict[str, int]
    """Rows per table, the writer included."""


_COPY_ORDER = ("users", "tags", "posts", "post_tags", "audit_log")  # references first


async def seed(database_url: str, dsn: str, profile: Profile) -> Seeded:
    """Seed the empty database at ``database_url`` (SQLAlchemy URL; ``dsn`` for asyncpg)."""
    settings = in_process(database_url)
    writer_id = await admin.create_user(
        settings, WRITER_EMAIL, "writer", "Bench Writer", None, superuser=False
    )
    token = await admin.create_token(settings, WRITER_EMAIL, "bench", None)
    data = generate(profile, writer_id)
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            for table in _COPY_ORDER:
                rows = data.tables[table]
                columns = list(rows[0])
                records = [tuple(row[column] for column in columns) for row in rows]
                await connection.copy_records_to_table(table, records=records, columns=columns)
        # The seeded entries get their positions before anything is measured, as a
        # running service's do within milliseconds of their commit.
        async with sequencer_of(settings) as sequencer:
            await sequencer.sequence()
        await connection.execute("ANALYZE")
        counts = {
            table: await connection.fetchval(f"SELECT count(*) FROM {table}")
            for table in _COPY_ORDER
        }
    finally:
        await connection.close()
    return Seeded(writer_id, token, counts)
