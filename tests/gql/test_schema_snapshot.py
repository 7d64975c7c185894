"""schema.graphql is the contract clients generate code from: it must match the code."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gql.cli.main import cli, schema_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == schema_sdl(), (
        "schema.graphql is stale: run 'uv run auditql export-schema' and commit the result"
    )


def test_export_schema_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "schema.graphql"
    stale.write_text(schema_sdl().replace("type Query {", "type Query {\n  gone: String", 1))
    result = CliRunner().invoke(cli, ["export-schema", "--output", str(stale), "--check"])
    assert result.exit_code == 1
    assert "stale" in result.output
    result = CliRunner().invoke(cli, ["export-schema", "--output", str(ROOT / "schema.graphql"),
                                      "--check"])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_check_breaking_lists_breaking_and_dangerous_changes(tmp_path: Path) -> None:
    old = tmp_path / "old.graphql"
    sdl = schema_sdl()
    # The old schema had a field we no longer serve (breaking) and lacked an enum value
    # we now have (dangerous: old clients may not expect it).
    old.write_text(
        sdl.replace("type Query {", "type Query {\n  legacyPosts: [Post!]!", 1).replace(
            "  ARCHIVED\n", "", 1
        )
    )
    result = CliRunner().invoke(cli, ["export-schema", "--check-breaking", str(old)])
    assert result.exit_code == 1
    assert "BREAKING  FIELD_REMOVED: Field Query.legacyPosts was removed." in result.output
    assert "DANGEROUS VALUE_ADDED_TO_ENUM: Enum value PostStatus.ARCHIVED was added." in (
        result.output
    )
    assert "1 breaking, 1 dangerous" in result.output


def test_check_breaking_passes_against_the_same_schema(tmp_path: Path) -> None:
    old = tmp_path / "old.graphql"
    old.write_text(schema_sdl())
    result = CliRunner().invoke(cli, ["export-schema", "--check-breaking", str(old)])
    assert result.exit_code == 0, result.output
    assert "0 breaking, 0 dangerous" in result.output


def test_every_type_and_field_a_client_reads_is_described() -> None:
    from graphql import GraphQLObjectType, build_schema

    schema = build_schema(schema_sdl())
    missing = []
    for name, type_ in schema.type_map.items():
        if name.startswith("__") or not isinstance(type_, GraphQLObjectType):
            continue
        if name in ("Query", "Mutation", "Subscription"):
            missing += [f"{name}.{f}" for f, d in type_.fields.items() if not d.description]
        elif not type_.description and not name.endswith(("Success", "Connection", "Edge")):
            missing.append(name)
    assert missing == []
