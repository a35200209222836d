"""Export the JSON Schema of every model we put on Kafka: ``python -m schemas.export <dir>``.

One file per model (``<stem>.schema.json``), deterministic (sorted keys, two-space indent,
trailing newline) so the committed files in ``schemas/json/`` diff cleanly and a test can tell
when they are stale. ``*.schema.json`` files in the directory that are no longer produced are
deleted. Register further models (our own event models) in ``SCHEMA_MODELS``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.events import PROGRESS_EVENT_ADAPTER
from schemas.ocpi import MODULES, VERSIONS, model_for
from schemas.records import CHECKPOINT_ADAPTER, DeadLetter

__all__ = ["SCHEMA_MODELS", "main", "render_schemas", "write_schemas"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SUFFIX = ".schema.json"

SCHEMA_MODELS: dict[str, type[BaseModel] | TypeAdapter[Any]] = {
    **{
        f"ocpi-{version}-{module}": model_for(version, module)
        for version in VERSIONS
        for module in MODULES
    },
    # Our own contracts: <prefix>.progress, <prefix>.deadletter, <prefix>.checkpoints values.
    "progress-event": PROGRESS_EVENT_ADAPTER,
    "deadletter": DeadLetter,
    "checkpoint-record": CHECKPOINT_ADAPTER,
}
"""File stem -> model (or adapter of a discriminated union). Every value we put on Kafka."""


def render_schemas() -> dict[str, str]:
    """Return ``{file name: JSON Schema text}`` for every model in ``SCHEMA_MODELS``."""
    rendered = {}
    for stem, model in sorted(SCHEMA_MODELS.items()):
        generated = (
            model.json_schema(mode="validation")
            if isinstance(model, TypeAdapter)
            else model.model_json_schema(mode="validation")
        )
        schema = {"$schema": JSON_SCHEMA_DIALECT, **generated}
        text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        rendered[stem + SUFFIX] = text
    return rendered


def write_schemas(directory: Path) -> tuple[list[str], list[str]]:
    """Write the rendered schemas into ``directory`` and delete stale ``*.schema.json`` files.

    Files whose content is unchanged are not rewritten. Returns ``(written, deleted)`` names.
    """
    directory.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    written = []
    for name, text in rendered.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name)
    deleted = []
    for path in sorted(directory.glob("*" + SUFFIX)):
        if path.name not in rendered:
            path.unlink()
            deleted.append(path.name)
    return written, deleted


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: ``python -m schemas.export <dir>``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m schemas.export <dir>", file=sys.stderr)
        return 2
    written, deleted = write_schemas(Path(args[0]))
    print(
        f"{len(SCHEMA_MODELS)} schemas in {args[0]}: "
        f"{len(written)} written, {len(deleted)} stale deleted"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
