"""No list to forget: every model with audit columns (``updated_by_id``) is a declared
entity of the schema, reachable through ``node(id:)``, with ``history``; every
soft-deletable one has its ``delete``, ``restore`` and ``deleted`` fields; and the
``entityId`` of each model's audit entries resolves through ``node`` to the object. The
models are read from the metadata, so a new one that lacks any of this fails here."""

from __future__ import annotations

import pytest
import strawberry
from graphql import GraphQLObjectType

from gql.schema.build import build_schema
from gql.schema.entities import entities, extend
from gql.settings import Settings
from persistence.base import Base
from persistence.engine import Database
from persistence.mixins import SoftDeleteMixin
from tests.gql.conftest import Person
from tests.gql.test_audit_log import AUDIT_LOG, CASES, World, mutation_inputs
from tests.support.graphql import GraphQLClient

AUDITED: list[type[Base]] = sorted(
    (m.class_ for m in Base.registry.mappers if "updated_by_id" in m.columns),
    key=lambda model: model.__name__,
)
SCHEMA = build_schema(Settings.model_construct())._schema


def test_every_audited_model_is_a_node_with_history() -> None:
    declared = {found.model: found.name for found in entities()}
    for model in AUDITED:
        assert model in declared, f"{model.__name__} has no @entity"
        graphql_type = SCHEMA.type_map[declared[model]]
        assert isinstance(graphql_type, GraphQLObjectType)
        assert {"Node", "Audited"} <= {i.name for i in graphql_type.interfaces}, model
        assert "history" in graphql_type.fields


def test_every_soft_deletable_entity_can_be_deleted_restored_and_listed() -> None:
    assert SCHEMA.mutation_type is not None
    for found in entities():
        if not issubclass(found.model, SoftDeleteMixin):
            continue
        assert {f"delete{found.name}", f"restore{found.name}"} <= set(SCHEMA.mutation_type.fields)
        assert f"deleted{found.name}s" in SCHEMA.query_type.fields  # type: ignore[union-attr]


@pytest.mark.parametrize("model", AUDITED, ids=lambda model: model.__name__)
async def test_a_new_row_s_audit_entry_names_it_by_a_global_id_node_resolves(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, model: type
) -> None:
    table = model.__tablename__  # type: ignore[attr-defined]
    creating = [name for name, make in CASES.items() if name.startswith(("create", "set"))]
    world = World(app_database, admin, alice)
    inputs = await mutation_inputs(client)
    for name in creating:
        call = await CASES[name](world)
        if (table, "create") not in call.expected:
            continue
        assert call.caller is not None
        document = f"mutation($i: {inputs[name]}!) {{ {name}(input: $i) {{ __typename }} }}"
        await client.execute(document, {"i": call.input}, token=call.caller.token)
        variables = {"filter": {"entityType": table, "action": "CREATE"}}
        log = await client.execute(AUDIT_LOG, variables, token=admin.token)
        entity_id = log["auditLog"]["edges"][0]["node"]["entityId"]
        # As its creator, who may see it whoever else may not (a bookmark is its owner's).
        found = await client.execute(
            "query($id: ID!) { node(id: $id) { __typename id } }", {"id": entity_id},
            token=call.caller.token,
        )  # fmt: skip
        assert found["node"] == {"__typename": model.__name__, "id": entity_id}
        return
    pytest.fail(f"no audit case creates a row of {table}")


@strawberry.type
class Thing:
    name: str


@strawberry.type
class ThingQuery:
    thing: Thing = strawberry.field(default_factory=lambda: Thing(name="x"))


def test_a_type_gains_the_fields_another_module_extends_it_with() -> None:
    def shout(root: strawberry.Parent[Thing]) -> str:
        return root.name.upper()

    extend(Thing, shout=strawberry.field(resolver=shout))  # type: ignore[arg-type]

    result = strawberry.Schema(query=ThingQuery).execute_sync(
        "{ thing { name shout } }", root_value=ThingQuery()
    )
    assert result.errors is None
    assert result.data == {"thing": {"name": "x", "shout": "X"}}
