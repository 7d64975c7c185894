"""What frontend clients build on, derived from the schema: the SDL, Apollo's
``possibleTypes`` and a GraphQL Code Generator configuration with the scalars' types.

``auditql export-schema`` writes the three side by side; ``--check`` fails when any is
stale, and so does ``tests/gql/test_schema_snapshot.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphql import GraphQLScalarType, GraphQLSchema, build_schema, is_abstract_type

SCALAR_TYPES = {
    "ID": "string",
    "DateTime": "string",
    "JSON": "string | number | boolean | null | { [key: string]: unknown } | unknown[]",
}
"""The TypeScript type each scalar arrives as (``strictScalars``: a scalar missing here
fails code generation rather than becoming ``any``)."""

_TYPESCRIPT_NATIVE = {"String", "Int", "Float", "Boolean"}  # codegen maps these itself

CODEGEN_DOCUMENTS = ["client/src/**/*.ts", "!client/src/gql/**"]
CODEGEN_OUTPUT = "client/src/gql/"
# client-preset's own transform, re-exported by a module (JSON cannot name an export).
CODEGEN_TYPENAME_TRANSFORM = "./client/add-typename.js"


def possible_types(schema: GraphQLSchema) -> dict[str, list[str]]:
    """Each interface and union, with the object types that can stand for it: what
    Apollo's ``InMemoryCache({possibleTypes})`` needs to match fragments on them."""
    abstract = sorted(
        (
            t
            for t in schema.type_map.values()
            if is_abstract_type(t) and not t.name.startswith("__")
        ),
        key=lambda t: t.name,
    )
    return {t.name: sorted(o.name for o in schema.get_possible_types(t)) for t in abstract}


def codegen_config(schema_file: str) -> dict[str, Any]:
    """GraphQL Code Generator's client-preset over ``schema_file``: typed documents,
    every scalar mapped, ``__typename`` selected everywhere (Apollo's cache and urql add
    it to what they send, so the manifest holds what they send), and a
    persisted-documents manifest (SHA-256, what the server's trusted documents and
    automatic persisted queries take)."""
    return {
        "schema": schema_file,
        "documents": CODEGEN_DOCUMENTS,
        "generates": {
            CODEGEN_OUTPUT: {
                "preset": "client",
                "documentTransforms": [CODEGEN_TYPENAME_TRANSFORM],
                "config": {
                    "strictScalars": True,
                    "scalars": SCALAR_TYPES,
                    "enumType": "string-literal",
                    "useTypeImports": True,
                    "importExtension": ".js",
                },
                "presetConfig": {
                    "fragmentMasking": False,
                    "persistedDocuments": {"hashAlgorithm": "sha256"},
                },
            }
        },
    }


def artifacts(sdl: str, schema_file: Path) -> dict[Path, str]:
    """The files to write beside ``schema_file`` (which holds ``sdl``), by path."""
    schema = build_schema(sdl)
    scalars = {name for name, t in schema.type_map.items() if isinstance(t, GraphQLScalarType)}
    unmapped = scalars - SCALAR_TYPES.keys() - _TYPESCRIPT_NATIVE
    if unmapped:
        raise ValueError(f"no TypeScript type for the scalars {sorted(unmapped)}")
    folder = schema_file.parent
    return {
        schema_file: sdl,
        folder / "possible-types.json": _json(possible_types(schema)),
        folder / "codegen.json": _json(codegen_config(schema_file.name)),
    }


def _json(value: object) -> str:
    return json.dumps(value, indent=2) + "\n"
