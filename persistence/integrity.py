"""The audit chain's machinery as the settings configure it: the signing key, the keys
checkpoints are verified with, and the sequencer.

Development without ``AUDITQL_AUDIT_SIGNING_KEY`` signs with an Ed25519 key kept in the
development key file (:mod:`persistence.key_file`), so checkpoints stay verifiable
across restarts; production refuses to start without a configured key.
"""

from __future__ import annotations

import os
from datetime import timedelta

from persistence import key_file
from persistence.chain import Sequencer
from persistence.checkpoints import (
    Checkpointer,
    SigningKey,
    VerifyingKey,
    signing_key,
    verifying_keys,
)
from persistence.engine import create_engine, writing
from persistence.settings import DatabaseSettings

_DEVELOPMENT_KEY = "audit-signing:dev"
LONG_STATEMENT_MS = 3_600_000
"""The statement timeout of work on the whole trail: sequencing a backlog, operators'
commands (verify, export, prune)."""


def signing_key_of(settings: DatabaseSettings) -> SigningKey:
    configured = settings.audit_signing_key.get_secret_value()
    if configured:
        return signing_key(configured)
    seed = key_file.load_or_create(
        settings.audit_key_path, _DEVELOPMENT_KEY, lambda: os.urandom(32)
    )
    return SigningKey("dev", "ed25519", seed)


def trusted_keys_of(settings: DatabaseSettings) -> dict[str, VerifyingKey]:
    """The keys checkpoints may be signed with: the signing key and the retired ones."""
    return verifying_keys(settings.audit_verify_keys, signing_key_of(settings))


def checkpointer_of(settings: DatabaseSettings) -> Checkpointer:
    return Checkpointer(
        signing_key_of(settings),
        every_entries=settings.audit_checkpoint_every,
        every=timedelta(seconds=settings.audit_checkpoint_interval_s),
    )


def sequencer_of(settings: DatabaseSettings) -> Sequencer:
    """A sequencer on a connection of its own (use it as an async context manager: it
    closes that connection)."""
    # One connection; and the time a backlog takes: after a long stop a pass may hash a
    # million entries (about a minute), more than a request's statement may take.
    bounds = {"db_pool_size": 1, "db_max_overflow": 0, "db_statement_timeout_ms": LONG_STATEMENT_MS}
    engine = create_engine(settings.model_copy(update=bounds), name="auditql-sequencer")
    return Sequencer(
        engine,
        checkpointer_of(settings),
        interval=settings.audit_sequence_interval_ms / 1000,
        writer=writing(engine),
    )
