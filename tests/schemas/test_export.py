"""Tests for ``schemas.export``: committed JSON Schemas are current and the export is tidy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from schemas.export import SCHEMA_MODELS, main, render_schemas, write_schemas
from schemas.ocpi import MODULES, VERSIONS, model_for

COMMITTED = Path(__file__).parent.parent.parent / "schemas" / "json"


def test_committed_schemas_are_current() -> None:
    rendered = render_schemas()
    committed = {p.name: p.read_text(encoding="utf-8") for p in COMMITTED.glob("*.schema.json")}
    stale = sorted(
        n for n in rendered.keys() | committed.keys() if rendered.get(n) != committed.get(n)
    )
    assert not stale, f"run `make schemas` (python -m schemas.export schemas/json); stale: {stale}"


def test_one_schema_per_version_and_module() -> None:
    expected = {f"ocpi-{v}-{m}.schema.json" for v in VERSIONS for m in MODULES}
    assert expected <= set(render_schemas())
    assert SCHEMA_MODELS["ocpi-2.2.1-tokens"] is model_for("2.2.1", "tokens")


def test_rendering_is_deterministic_and_canonical() -> None:
    first, second = render_schemas(), render_schemas()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n")
        parsed = json.loads(text)
        assert parsed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert text == json.dumps(parsed, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_schemas_keep_unknown_fields_and_mark_open_enums() -> None:
    schema = json.loads(render_schemas()["ocpi-2.3.0-tokens.schema.json"])
    assert schema["additionalProperties"] is True
    assert "EMAID" in schema["properties"]["type"]["examples"]
    closed = json.loads(render_schemas()["ocpi-2.2.1-tokens.schema.json"])
    assert closed["properties"]["whitelist"]["enum"] == [
        "ALWAYS",
        "ALLOWED",
        "ALLOWED_OFFLINE",
        "NEVER",
    ]
    assert closed["properties"]["last_updated"]["format"] == "date-time"


def test_write_schemas_deletes_stale_files_only(tmp_path: Path) -> None:
    (tmp_path / "ocpi-1.0-tokens.schema.json").write_text("{}\n")
    (tmp_path / "README.md").write_text("keep me\n")
    written, deleted = write_schemas(tmp_path)
    assert sorted(written) == sorted(render_schemas())
    assert deleted == ["ocpi-1.0-tokens.schema.json"]
    assert (tmp_path / "README.md").exists()
    assert write_schemas(tmp_path) == ([], [])  # unchanged files are not rewritten


def test_command_line(tmp_path: Path) -> None:
    assert main([str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out").glob("*.schema.json"))) == len(SCHEMA_MODELS)
    assert main([]) == 2
    done = subprocess.run(
        [sys.executable, "-m", "schemas.export", str(tmp_path / "cli")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"{len(SCHEMA_MODELS)} schemas" in done.stdout
