"""The contract frontend clients build on: one error shape, scalars with a stated
format, shipped client artifacts that are never stale, and breaking changes that are
listed in the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

from graphql import (
    GraphQLScalarType,
    GraphQLUnionType,
    build_schema,
    is_object_type,
    parse,
    validate,
)
from typer.testing import CliRunner

from gql.cli.contract import SCALAR_TYPES, possible_types
from gql.cli.main import cli
from tests.gql.conftest import Person
from tests.support.graphql import GraphQLClient
from tests.support.schema import committed_schema, input_type, mutation_type
from tests.support.server import ROOT

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def test_a_field_has_one_type_across_every_union_it_appears_in() -> None:
    schema = committed_schema()
    types: dict[str, set[str]] = {}
    for union in schema.type_map.values():
        if isinstance(union, GraphQLUnionType):
            for member in union.types:
                for name, field in member.fields.items():
                    types.setdefault(name, set()).add(str(field.type))
    mixed = {name: found for name, found in types.items() if len(found) > 1}
    assert not mixed, mixed


def test_one_fragment_selects_every_error_of_every_mutation() -> None:
    schema = committed_schema()
    names = list(mutation_type().fields)
    variables = ", ".join(f"${name}: {input_type(name)}" for name in names)
    fields = " ".join(
        f"{name}(input: ${name}) {{ __typename ... on Error {{ code message field }} }}"
        for name in names
    )
    document = parse(f"mutation({variables}) {{ {fields} }}")
    assert validate(schema, document) == []


def test_every_scalar_has_a_client_type_and_a_format() -> None:
    schema = committed_schema()
    custom = [t for t in schema.type_map.values()
              if isinstance(t, GraphQLScalarType) and t.ast_node is not None]  # fmt: skip
    assert {t.name for t in custom} == {"DateTime", "JSON"}
    for scalar in custom:
        assert scalar.specified_by_url, scalar.name
        assert scalar.description, scalar.name
        assert scalar.name in SCALAR_TYPES
    assert "Z" in (schema.type_map["DateTime"].description or "")


async def test_date_times_are_rfc3339_in_utc_with_z(client: GraphQLClient, alice: Person) -> None:
    data = await client.execute(
        """mutation { createPost(input: {title: "When"}) { ... on PostSuccess {
             post { createdAt updatedAt history { edges { node { at } } } } } } }""",
        token=alice.token,
    )
    post = data["createPost"]["post"]
    values = [post["createdAt"], post["updatedAt"], post["history"]["edges"][0]["node"]["at"]]
    assert all(RFC3339_UTC.fullmatch(v) for v in values), values
    # An argument with an offset is the same instant.
    filtered = await client.execute(
        '{ posts(filter: {createdAfter: "2000-01-01T02:00:00+02:00"}) { totalCount } }',
        token=alice.token,
    )
    assert filtered["posts"]["totalCount"] == 1


def test_possible_types_cover_every_interface_and_union() -> None:
    schema = committed_schema()
    shipped = json.loads((ROOT / "possible-types.json").read_text())
    assert shipped == possible_types(schema)
    assert "Audited" in shipped
    assert "Error" in shipped
    assert "UpdatePostResult" in shipped
    assert "ConflictError" in shipped["UpdatePostResult"]
    assert sorted(shipped["Error"]) == sorted(
        t.name for t in schema.type_map.values()
        if is_object_type(t) and any(i.name == "Error" for i in t.interfaces)
    )  # fmt: skip


def test_the_codegen_configuration_maps_every_scalar() -> None:
    config = json.loads((ROOT / "codegen.json").read_text())
    assert config["schema"] == "schema.graphql"
    [output] = config["generates"].values()
    assert output["config"]["strictScalars"] is True
    assert set(output["config"]["scalars"]) == {"DateTime", "JSON", "ID"}
    assert output["presetConfig"]["persistedDocuments"]["hashAlgorithm"] == "sha256"


def test_export_schema_check_fails_when_a_client_artifact_is_stale(tmp_path: Path) -> None:
    for name in ("schema.graphql", "possible-types.json", "codegen.json"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    schema_file = str(tmp_path / "schema.graphql")
    fresh = CliRunner().invoke(cli, ["export-schema", "--output", schema_file, "--check"])
    assert fresh.exit_code == 0, fresh.output
    types = json.loads((tmp_path / "possible-types.json").read_text())
    types["Audited"].remove("Post")
    (tmp_path / "possible-types.json").write_text(json.dumps(types))
    stale = CliRunner().invoke(cli, ["export-schema", "--output", schema_file, "--check"])
    assert stale.exit_code == 1
    assert "possible-types.json is stale" in stale.output


def test_check_breaking_without_the_old_file_says_where_one_comes_from(tmp_path: Path) -> None:
    missing = tmp_path / "OLD.graphql"
    result = CliRunner().invoke(cli, ["export-schema", "--check-breaking", str(missing)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "git show" in result.output
    assert str(missing) in result.output


def readme_breaking_changes() -> set[str]:
    """The field coordinates the README lists under this release's breaking changes,
    ``Type.*`` meaning every field of Type and ``*.field`` that field on every type, of
    the fields 0.1.0 had (one added since broke nothing)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Breaking changes in 0.2.0", 1)[1].split("\n#", 1)[0]
    schema = build_schema((ROOT / "tests/gql/schema-0.1.0.graphql").read_text())
    listed: set[str] = set()
    for owner, field in re.findall(r"`(\*|\w+)\.(\*|\w+)`", section):
        for type_name, graphql_type in schema.type_map.items():
            fields = getattr(graphql_type, "fields", None)
            if owner in ("*", type_name) and fields and not type_name.startswith("__"):
                listed |= {f"{type_name}.{f}" for f in fields if field in ("*", f)}
    return listed


def test_the_readme_lists_exactly_the_breaking_changes_since_0_1_0() -> None:
    result = CliRunner().invoke(
        cli, ["export-schema", "--check-breaking", "tests/gql/schema-0.1.0.graphql"]
    )
    changed = set(re.findall(r"BREAKING  \w+: Field (\w+\.\w+) ", result.output))
    assert changed
    assert readme_breaking_changes() == changed
    assert result.output.count("BREAKING") == len(changed)  # nothing but fields changed
    for field in changed:  # each became nullable, nothing else
        assert re.search(rf"{re.escape(field)} changed type from (\w+)! to \1\.", result.output)
