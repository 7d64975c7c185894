"""What ``verifyAudit`` answers: the audit trail recomputed, and what does not match."""

from __future__ import annotations

import enum

import strawberry

from gql.engine.cost import MAX_ITEMS
from gql.schema.entities import entry_global_id
from persistence.verification import MAX_PROBLEMS, Problem, Report


@strawberry.enum(description="How the audit trail differs from what was recorded.")
class AuditProblemKind(enum.Enum):
    DELETED = strawberry.enum_value("deleted", description="A position or its entry is gone.")
    EDITED = strawberry.enum_value(
        "edited", description="An entry no longer hashes to what the chain recorded."
    )
    REORDERED = strawberry.enum_value(
        "reordered", description="An entry sits at another entry's position."
    )
    INSERTED = strawberry.enum_value(
        "inserted",
        description="An entry the sequencer never saw, or one backdated: created long "
        "before it was committed.",
    )
    CHAIN_ALTERED = strawberry.enum_value(
        "chain_altered", description="A link of the chain does not follow from the one before."
    )
    REWRITTEN = strawberry.enum_value(
        "rewritten", description="The trail up to a signed checkpoint hashes to something else."
    )
    TRUNCATED = strawberry.enum_value(
        "truncated", description="A signed checkpoint names a position past the trail's end."
    )
    FORGED_CHECKPOINT = strawberry.enum_value(
        "forged_checkpoint", description="A checkpoint whose signature or key does not hold."
    )


@strawberry.type(description="One way the audit trail differs from what was recorded.")
class AuditProblem:
    kind: AuditProblemKind
    position: str | None = strawberry.field(
        description="Where in commit order; null for an entry that has no position."
    )
    entry_id: strawberry.ID | None = strawberry.field(
        description="The global id of the audit entry concerned, when one is."
    )
    detail: str = strawberry.field(description="What was found, in a sentence.")

    @classmethod
    def of(cls, problem: Problem) -> AuditProblem:
        return cls(
            kind=AuditProblemKind(problem.kind),
            position=None if problem.position is None else str(problem.position),
            entry_id=None
            if problem.entry_id is None
            else strawberry.ID(entry_global_id("audit_log", str(problem.entry_id))),
            detail=problem.detail,
        )


@strawberry.type(
    description="The audit trail recomputed from its entries: positions are 64-bit numbers "
    "as decimal strings."
)
class AuditVerification:
    ok: bool = strawberry.field(description="True when nothing differs.")
    anchor: str = strawberry.field(
        description="The position the check started after: 0 for the beginning, or the "
        "signed checkpoint before `from`."
    )
    through: str = strawberry.field(description="The last position checked.")
    head: str = strawberry.field(description="The last position of the trail.")
    checked: int = strawberry.field(description="How many entries were checked.")
    last_checkpoint: str | None = strawberry.field(
        description="The last signed checkpoint within what was checked."
    )
    unattested: int = strawberry.field(
        description="Entries after that checkpoint: removing them could not be told from "
        "never having written them, until the next checkpoint."
    )
    pending: int = strawberry.field(
        description="Committed entries still waiting for their position."
    )
    problems: list[AuditProblem] = strawberry.field(
        description=f"What differs, first found first (at most {MAX_PROBLEMS}).",
        metadata={MAX_ITEMS: MAX_PROBLEMS},
    )

    @classmethod
    def of(cls, report: Report) -> AuditVerification:
        return cls(
            ok=report.ok,
            anchor=str(report.anchor),
            through=str(report.through),
            head=str(report.head),
            checked=report.checked,
            last_checkpoint=None if report.last_checkpoint is None else str(report.last_checkpoint),
            unattested=report.unattested,
            pending=report.pending,
            problems=[AuditProblem.of(problem) for problem in report.problems],
        )
