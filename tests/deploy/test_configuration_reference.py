"""docs/configuration.md, the operators' reference of every OTV_* variable: current with the source, complete,
and free of the development secrets' values. No database and no broker needed."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from services.gateway.config import Settings as GatewaySettings
from shared.config import SERVICE_NAMES, CommonSettings
from tests.deploy.test_manifests import SETTINGS_CLASSES, known_environment_variables
from tools import config_reference
from tools.config_reference import DEV_SECRET, OUTPUT, ROOT, explanations, render, settings_rows

ROW = re.compile(r"^\| `(OTV_[A-Z0-9_]+)` \|(.*)$", re.MULTILINE)
# Where processes read the environment themselves (the settings classes are covered by their fields).
SOURCE_DIRS = ("shared", "services", "tools", "deploy", "scripts")


def reference() -> str:
    return OUTPUT.read_text(encoding="utf-8")


def settings_tables() -> str:
    """The reference after its first table (which repeats what must be set in production)."""
    return reference().split("\n## Shared by all services", 1)[1]


def documented() -> set[str]:
    return {match.group(1) for match in ROW.finditer(settings_tables())}


def rows_of(name: str) -> list[str]:
    return [match.group(2) for match in ROW.finditer(settings_tables()) if match.group(1) == name]


def read_directly() -> set[str]:
    """OTV_* names passed to os.environ.get, os.getenv or os.environ[...] anywhere in the source."""
    found = set()
    for top in SOURCE_DIRS:
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                key: ast.expr | None = None
                if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv"):
                    key = node.args[0] if node.args else None
                elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                    key = node.slice
                if isinstance(key, ast.Constant) and str(key.value).startswith("OTV_"):
                    found.add(str(key.value))
    return found


def test_the_configuration_reference_is_generated_from_the_current_source() -> None:
    assert reference() == render(), (
        "docs/configuration.md is stale: run `.venv/bin/python -m tools.config_reference`"
    )


def test_every_variable_a_process_reads_has_a_row_in_the_configuration_reference() -> None:
    readers = known_environment_variables() | read_directly()
    assert {"OTV_ADMIN_PASSWORD", "OTV_HEALTH_URL", "OTV_MAILSINK_MAX_MESSAGES"} <= readers
    missing = readers - documented()
    assert not missing, f"not in docs/configuration.md: {sorted(missing)}"
    assert documented() - readers <= {"OTV_SKIP_DEMO"}, "a row names what nothing reads (scripts/setup.sh)"


def test_every_row_explains_its_variable_and_gives_its_default_and_type() -> None:
    for match in ROW.finditer(settings_tables()):
        default, kind, meaning = match.group(2).strip().removesuffix(" |").split(" | ")
        assert default and kind and len(meaning) > 10, match.group(0)
    (hold,) = rows_of("OTV_HOLD_MINUTES")
    assert hold.startswith(" 5 | number > 0, ≤ 60 | R38: how long a chosen slot is held")
    (pause,) = rows_of("OTV_WEBHOOK_PAUSE_AFTER_FAILURES")
    assert pause.startswith(" unset | integer ≥ 1 or unset |")
    # A field of a group whose comment stands above its first field points there.
    (burst,) = rows_of("OTV_BOT_BOOKING_BURST")
    assert burst.endswith("See `OTV_BOT_DEFENCE`. |")
    # Each service's own port, with the shared explanation.
    ports = rows_of("OTV_PORT")
    assert [row.split(" | ")[0].strip() for row in ports[:6]] == [
        "per service",
        "8080",
        "8081",
        "8082",
        "8084",
        "8083",
    ]


def test_the_secrets_development_values_never_stand_in_the_reference_and_must_be_set() -> None:
    text = reference()
    secrets = {
        (cls, name)
        for cls in (CommonSettings, *SETTINGS_CLASSES)
        for name, field in cls.model_fields.items()
        if isinstance(field.default, str)
        and ("change-me" in field.default or "guest:guest@" in field.default)
    }
    assert {name for _, name in secrets} >= {"internal_secret", "web_secret", "mail_hash_key", "broker_url"}
    for cls, name in secrets:
        default = cls.model_fields[name].default
        assert isinstance(default, str) and default not in text
        assert all(row.startswith(f" {DEV_SECRET} |") for row in rows_of(f"OTV_{name.upper()}"))
    production = text.split("## Must set in production", 1)[1].split("\n## ", 1)[0]
    must_set = set(re.findall(r"`(OTV_[A-Z0-9_]+)`", production))
    assert {f"OTV_{name.upper()}" for _, name in secrets} <= must_set
    assert {f"OTV_{s.upper()}_DB_PASSWORD" for s in SERVICE_NAMES} <= must_set
    assert {"OTV_REFUSE_DEV_DEFAULTS", "OTV_PUBLIC_BASE_URL", "OTV_TRUSTED_PROXIES"} <= must_set
    for service in SERVICE_NAMES:  # the development default is the role's name
        assert rows_of(f"OTV_{service.upper()}_DB_PASSWORD")[0].startswith(f" {DEV_SECRET} |")


class _Example(CommonSettings):
    service_name: ClassVar[str] = "example"

    # Explained above,
    # over two lines.
    explained: int = 1
    grouped: int = 2  # ... and on its line
    described: int = Field(default=3, description="from the field")
    bare: int = 4


def test_the_explanation_is_the_comment_above_or_on_the_line_else_the_fields_description() -> None:
    assert explanations(_Example) == {
        "explained": "Explained above, over two lines.",
        "grouped": "... and on its line. See `OTV_EXPLAINED`.",
        "described": "From the field.",
        "bare": "",
    }


def test_a_setting_without_any_explanation_stops_the_generation() -> None:
    with pytest.raises(ValueError, match="above bare") as refused:
        settings_rows(_Example)
    assert "explained" not in str(refused.value)
    assert all(explanations(cls).values() for cls in (CommonSettings, GatewaySettings))


def test_the_readmes_keep_a_short_table_and_point_to_the_reference() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/configuration.md" in readme
    assert "docs/configuration.md" in (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    configuration = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert 10 <= configuration.count("\n| `OTV_") <= 20
    # Every variable the README names can be looked up in the reference.
    named = set(re.findall(r"OTV_[A-Z][A-Z0-9_]*[A-Z0-9]", readme))
    assert named - documented() == set()


def test_the_check_mode_reports_a_stale_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(reference().replace("OTV_HOLD_MINUTES", "OTV_HOLD_MINUTEZ"), encoding="utf-8")
    monkeypatch.setattr(config_reference, "OUTPUT", stale)
    monkeypatch.setattr(config_reference, "ROOT", tmp_path)
    assert config_reference.main(["--check"]) == 1
    assert config_reference.main([]) == 0
    assert stale.read_text(encoding="utf-8") == render()
    assert config_reference.main(["--check"]) == 0
