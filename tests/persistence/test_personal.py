"""Personal values in audit entries: sealed under their user's key as they are written,
opened only with it, bound to their user and column, and erased with the key."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from domain import erasure
from domain.tokens import issue_token
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.errors import ForbiddenError, NotFoundError, ValidationError
from persistence.key_file import load_or_create
from persistence.keyring import KeyRing, UnreadableValueError, key_ring
from persistence.models import ApiToken, User
from persistence.models.user_key import UserKey
from persistence.personal import ERASED, load_deks, open_column, rotate, seal, unseal
from persistence.settings import DatabaseSettings
from persistence.unit_of_work import UnitOfWork
from persistence.write_guard import auditing
from tests.factories.user import create_user
from tests.support.audit import audit_entries, opened_entries

SYSTEM = AuditContext(actor_id=None)
DEK = bytes(32)


def random_key() -> bytes:
    return os.urandom(32)


def test_a_sealed_value_opens_as_itself_under_its_user_and_column() -> None:
    token = seal(DEK, 7, "users.email", "ada@example.com")

    assert token.startswith("aqe1:7:")
    assert "ada@example.com" not in token
    assert unseal(token, {7: DEK}, "users.email") == "ada@example.com"
    assert unseal(token, {}, "users.email") == ERASED  # no key: erased
    assert unseal("192.0.2.1", {}, "audit_log.ip_address") == "192.0.2.1"  # from before sealing


@pytest.mark.parametrize(
    "moved",
    [
        lambda token: (token, "users.username"),  # to another column
        lambda token: (token.replace("aqe1:7:", "aqe1:8:"), "users.email"),  # to another user
        lambda token: (token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"), "users.email"),
    ],
    ids=["column", "user", "edited"],
)
def test_a_moved_or_edited_value_fails_loudly_instead_of_passing_for_erased(moved: object) -> None:
    token, where = moved(seal(DEK, 7, "users.email", "ada@example.com"))  # type: ignore[operator]
    with pytest.raises(UnreadableValueError):
        unseal(token, {7: DEK, 8: DEK}, where)


def test_the_key_ring_parses_the_setting_and_names_what_is_wrong() -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    ring = KeyRing.parse(f"new:{key}, old:{base64.b64encode(bytes(32)).decode()}")
    assert ring.primary == "new"
    wrapped = ring.wrap(5, DEK)
    assert wrapped.kek_id == "new"
    assert ring.unwrap(5, wrapped) == DEK
    with pytest.raises(UnreadableValueError):
        ring.unwrap(6, wrapped)  # a wrapped key is bound to its user
    with pytest.raises(UnreadableValueError, match="'gone'"):
        ring.unwrap(5, wrapped._replace(kek_id="gone"))
    for bad, problem in [
        ("k1:c2hvcnQ=", "is not the base64 of 32 bytes"),
        (f"k 1:{key}", "is not a key id"),
        (f"k1:{key},k1:{key}", "appears twice"),
    ]:
        with pytest.raises(ValueError, match=problem):
            KeyRing.parse(bad)


def test_the_key_file_is_made_once_private_and_shared_by_concurrent_starts(tmp_path: Path) -> None:
    path = tmp_path / "dev" / "auditql.keys.json"
    found: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: found.append(load_or_create(path, "a", random_key)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(found)) == 1
    assert len(found[0]) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = load_or_create(path, "b", lambda: b"second")
    assert (load_or_create(path, "a", random_key), other) == (found[0], b"second")
    assert sorted(p.name for p in path.parent.iterdir()) == ["auditql.keys.json"]


def test_development_keeps_its_key_beside_the_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDITQL_AUDIT_KEKS")
    settings = DatabaseSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/data.db")
    assert settings.audit_key_path == tmp_path / "data.keys.json"
    first = key_ring("", settings.audit_key_path).wrap(1, DEK)
    assert key_ring("", settings.audit_key_path).unwrap(1, first) == DEK  # read at next start


async def test_a_new_user_gets_a_key_and_their_values_are_stored_sealed(
    database: Database,
) -> None:
    async with UnitOfWork(database, SYSTEM) as uow:
        user = await create_user(uow, email="ada@example.com", full_name="Ada Lovelace")

    [stored] = await audit_entries(database, user.id)
    # Whole values: a short fragment like "ada" turns up in random ciphertext now and then.
    for plain in ("ada@example.com", "Ada Lovelace", "Lovelace"):
        assert plain not in str(stored.changes)
    assert stored.changes["is_active"] == [None, True]  # not personal: as it was
    [opened] = await opened_entries(database, user.id)
    assert opened.changes["email"] == [None, "ada@example.com"]
    assert opened.changes["full_name"] == [None, "Ada Lovelace"]


async def test_the_actor_s_address_and_user_agent_are_sealed_once_per_unit_of_work(
    database: Database,
) -> None:
    async with UnitOfWork(database, SYSTEM) as uow:
        ada = await create_user(uow)
    context = AuditContext(ada.id, ip_address="192.0.2.7", user_agent="pytest")
    async with UnitOfWork(database, context) as uow:
        await issue_token(uow, ada, "one", None)
        await issue_token(uow, ada, "two", None)

    stored = [e for e in await audit_entries(database) if e.entity_type == "api_tokens"]
    assert {e.ip_address for e in stored} != {"192.0.2.7"}
    assert len({(e.ip_address, e.user_agent) for e in stored}) == 1  # sealed once
    opened = [e for e in await opened_entries(database) if e.entity_type == "api_tokens"]
    assert {(e.ip_address, e.user_agent) for e in opened} == {("192.0.2.7", "pytest")}


async def test_a_user_from_before_sealing_gets_a_key_at_their_first_sealed_write(
    database: Database,
) -> None:
    async with UnitOfWork(database, SYSTEM) as uow:
        ada = await create_user(uow)
        with auditing():  # as if the migration had found them
            await uow.session.execute(delete(UserKey).where(UserKey.user_id == ada.id))

    async with UnitOfWork(database, AuditContext(ada.id, ip_address="192.0.2.7")) as uow:
        await issue_token(uow, ada, "one", None)

    # Their entries from before (here: their creation, sealed under the key removed
    # above) stay unreadable; the new one opens.
    [entry] = [e for e in await audit_entries(database) if e.entity_type == "api_tokens"]
    assert database.keys is not None
    async with database.reader() as session:
        deks = await load_deks(session, database.keys, [ada.id])
    assert open_column(entry.ip_address, "ip_address", deks) == "192.0.2.7"


async def test_erasing_destroys_the_key_and_leaves_everyone_else_s_values(
    database: Database,
) -> None:
    async with UnitOfWork(database, SYSTEM) as uow:
        root = await create_user(uow, is_superuser=True, full_name="Root")
        ada = await create_user(uow, full_name="Ada")
    async with UnitOfWork(database, AuditContext(ada.id, ip_address="192.0.2.7")) as uow:
        await issue_token(uow, ada, "mine", None)
    before = {e.id: (e.ip_address, e.changes) for e in await audit_entries(database)}

    async with UnitOfWork(database, AuditContext(root.id, ip_address="198.51.100.1")) as uow:
        erased = await erasure.erase_user(uow, root, ada.id)

    assert (erased.email, erased.username, erased.full_name) == (
        f"erased-{ada.id}@erased.invalid", f"erased-{ada.id}", "",
    )  # fmt: skip
    assert (erased.is_active, erased.password_hash) == (False, None)
    entries = await audit_entries(database)
    assert {e.id: (e.ip_address, e.changes) for e in entries if e.id in before} == before
    opened = {e.id: e for e in await opened_entries(database)}
    adas = [e for e in opened.values() if e.entity_id == str(ada.id)]
    assert [e.action for e in adas] == ["create", "erase"]
    assert all(v == ERASED for e in adas for pair in e.changes.values() for v in pair
               if isinstance(v, str) and v != "[redacted]")  # fmt: skip
    assert adas[1].changes["is_active"] == [True, False]
    assert adas[1].ip_address == "198.51.100.1"  # the eraser's, who is not erased
    [token_entry] = [
        e for e in opened.values() if e.entity_type == "api_tokens" and e.action == "create"
    ]
    assert token_entry.ip_address == ERASED  # ada's own request
    roots = [e for e in opened.values() if e.entity_id == str(root.id)]
    assert roots[0].changes["full_name"] == [None, "Root"]
    async with database.reader() as session:
        tokens = (await session.scalars(select(ApiToken).where(ApiToken.user_id == ada.id))).all()
        assert database.keys is not None
        deks = await load_deks(session, database.keys, [ada.id, root.id])
    assert (tokens, set(deks)) == ([], {root.id})


async def test_erasure_refuses_twice_yourself_strangers_and_non_superusers(
    database: Database,
) -> None:
    async with UnitOfWork(database, SYSTEM) as uow:
        root = await create_user(uow, is_superuser=True)
        ada = await create_user(uow)
    async with UnitOfWork(database, SYSTEM) as uow:
        await erasure.erase_user(uow, None, ada.id)  # the system (the command line) may

    for actor, user_id, error in [
        (root, ada.id, ValidationError),
        (root, root.id, ValidationError),
        (root, 10**6, NotFoundError),
        (ada, root.id, ForbiddenError),
    ]:
        with pytest.raises(error):
            async with UnitOfWork(database, AuditContext(actor.id)) as uow:
                await erasure.erase_user(uow, actor, user_id)


async def test_a_user_written_after_erasure_stays_erased(database: Database) -> None:
    async with UnitOfWork(database, SYSTEM) as uow:
        ada = await create_user(uow)
    async with UnitOfWork(database, SYSTEM) as uow:
        await erasure.erase_user(uow, None, ada.id)
    async with UnitOfWork(database, SYSTEM) as uow:
        user = await uow.session.get_one(User, ada.id)
        user.full_name = "Someone New"
        await uow.session.flush()

    last = (await opened_entries(database, ada.id))[-1]
    assert last.changes["full_name"] == [ERASED, ERASED]
    raw = (await audit_entries(database, ada.id))[-1]
    assert raw.changes["full_name"] == [ERASED, ERASED]  # no new key: nothing to open, ever


async def test_rotation_rewraps_every_key_under_the_first_kek(database: Database) -> None:
    old = database.keys
    assert old is not None
    async with UnitOfWork(database, SYSTEM) as uow:
        users = [await create_user(uow, full_name=f"Person {n}") for n in range(3)]
    new_kek, old_kek = random_key(), bytes(range(32))  # the tests' KEK (tests/conftest.py)
    both = KeyRing([("new", new_kek), (old.primary, old_kek)])
    rotating = Database(database.engine, database.reader, database.writer, keys=both)

    async with UnitOfWork(rotating, SYSTEM) as uow:
        while await rotate(uow.session, both, batch=2):
            pass
    async with database.reader() as session:
        kek_ids = set((await session.scalars(select(UserKey.kek_id))).all())
    assert kek_ids == {"new"}
    rotated = Database(database.engine, database.reader, database.writer,
                       keys=KeyRing([("new", new_kek)]))  # fmt: skip
    [entry] = [e for e in await opened_entries(rotated, users[0].id) if e.action == "create"]
    assert entry.changes["full_name"] == [None, "Person 0"]


async def test_entries_without_keys_cannot_be_written(database: Database) -> None:
    keyless = Database(database.engine, database.reader, database.writer)
    with pytest.raises(RuntimeError, match="no audit keys"):
        async with UnitOfWork(keyless, SYSTEM) as uow:
            await create_user(uow)
