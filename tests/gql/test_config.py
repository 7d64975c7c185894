"""Configuration: invalid values stop start-up with one line naming the variable, and
the README's table lists exactly the settings the code reads, with their defaults."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gql.settings import Settings
from tests.support.server import AUDITQL, ROOT


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"AUDITQL_PORT": "eighty"}, "AUDITQL_PORT: Input should be a valid integer"),
        ({"AUDITQL_ENVIRONMENT": "staging"}, "AUDITQL_ENVIRONMENT: Input should be"),
        ({"AUDITQL_LOG_LEVEL": "LOUD"}, "AUDITQL_LOG_LEVEL: must be DEBUG, INFO"),
        ({"AUDITQL_CORS_ALLOWED_ORIGINS": "*"}, "AUDITQL_CORS_ALLOWED_ORIGINS: '*' is not"),
        ({"AUDITQL_ENVIRONMENT": "production"}, "production mode refuses the embedded SQLite"),
        (
            {"AUDITQL_RATE_LIMIT_PER_TOKEN": "lots"},
            "AUDITQL_RATE_LIMIT_PER_TOKEN: 'lots' is not a rate",
        ),
        ({"AUDITQL_RATE_LIMIT_STORAGE": "mysql://x"}, "AUDITQL_RATE_LIMIT_STORAGE: must be memory"),
        (
            {"AUDITQL_ENVIRONMENT": "production", "AUDITQL_ALLOW_SQLITE_IN_PRODUCTION": "true"},
            "production mode needs AUDITQL_AUDIT_KEKS",
        ),
        (
            {"AUDITQL_AUDIT_KEKS": "k1:c2VjcmV0"},
            "AUDITQL_AUDIT_KEKS: key 'k1' is not the base64 of 32 bytes",
        ),
    ],
)
def test_invalid_configuration_stops_start_up_with_one_clear_line(
    env: dict[str, str], line: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [AUDITQL, "serve"], env={"PATH": "/usr/bin:/bin", **env}, cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: invalid configuration: ")
    assert line in result.stderr
    assert not (tmp_path / "auditql.db").exists()  # nothing was started or migrated


def test_production_may_run_on_sqlite_when_told_to() -> None:
    settings = Settings(environment="production", allow_sqlite_in_production=True)
    assert not settings.is_development


def test_production_takes_its_audit_keys_from_the_setting_or_a_named_key_file(
    tmp_path: Path,
) -> None:
    production = {"environment": "production", "allow_sqlite_in_production": True}
    with pytest.raises(ValueError, match="production mode needs AUDITQL_AUDIT_KEKS"):
        Settings(**production, audit_keks="")  # type: ignore[arg-type]
    settings = Settings(**production, audit_keks="", audit_key_file=tmp_path / "k.json")  # type: ignore[arg-type]
    assert settings.audit_key_path == tmp_path / "k.json"


def readme_settings() -> dict[str, str]:
    rows = re.findall(r"^\| `AUDITQL_(\w+)` \| (.*?) \|", (ROOT / "README.md").read_text(), re.M)
    return {name.lower(): default for name, default in rows}


def test_the_readme_table_lists_every_setting_with_its_default() -> None:
    documented = readme_settings()
    assert sorted(documented) == sorted(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = ",".join(default) if isinstance(default, list) else str(default)
        expected = f"`{shown.lower() if isinstance(default, bool) else shown}`"
        if default is None or shown == "":
            expected = "(none)"
        assert documented[name] == expected, f"AUDITQL_{name.upper()}"
