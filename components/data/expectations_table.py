"""Generate `expectations_table.json`: GX 1.x expectation names -> allowed kwargs, read from the installed classes.

`python -m kubepipe.components.data.expectations_table --write` regenerates it; a unit test
regenerates it in memory and compares, so the table cannot go stale. `checks.py` reads the JSON
and never imports GX (that keeps `kubepipe validate` fast).
"""

from __future__ import annotations

import json
import os
import sys
import typing
from pathlib import Path

from kubepipe.util import atomic_write_text

__all__ = ["TABLE_PATH", "INTERNAL_FIELDS", "build_table", "render", "main"]

TABLE_PATH = Path(__file__).with_name("expectations_table.json")

# Fields every Expectation carries that kubepipe sets itself (severity: ours is fail|warn) or that are GX bookkeeping.
INTERNAL_FIELDS = {"id", "rendered_content", "batch_id", "windows", "result_format", "severity", "catch_exceptions"}


def build_table() -> dict:
    """Walk `great_expectations.expectations` and describe each expectation usable on a pandas batch."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    table: dict[str, dict] = {}
    for attr in sorted(dir(gxe)):
        cls = getattr(gxe, attr)
        name = getattr(cls, "expectation_type", "") if attr.startswith("Expect") else ""
        if not name:  # the base class and deprecated shells have no expectation type
            continue
        fields = {f.alias or k: f for k, f in cls.__fields__.items() if k not in INTERNAL_FIELDS}
        required = sorted(k for k, f in fields.items() if f.required)
        if any("query" in k or "other_table" in k for k in required):
            continue  # SQL-only: a pandas batch cannot run these
        table[name] = {
            "required": required,
            "optional": sorted(k for k, f in fields.items() if not f.required),
            "kinds": {k: sorted(_kinds(f.annotation)) for k, f in sorted(fields.items())},
        }
    return {"gx_version": gx.__version__, "expectations": table}


def _kinds(annotation) -> set[str]:
    """Coarse YAML kinds a field accepts: str, int (a whole number), number, bool, list, dict, null (or any)."""
    import datetime
    import enum

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin is typing.Union:
        return set().union(*(_kinds(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {"str"}
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, typing.List, typing.Sequence):
        return {"list"}
    if origin is dict or annotation in (dict, typing.Dict):
        return {"dict"}
    if annotation is type(None):
        return {"null"}
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return {"bool"}
        if issubclass(annotation, int):  # GX's pydantic cuts a fraction given for an int (5.5 -> 5)
            return {"int"}
        if issubclass(annotation, float):
            return {"number"}
        if issubclass(annotation, (str, enum.Enum)):
            return {"str"}
        if issubclass(annotation, (datetime.date, datetime.datetime)):
            return {"str"}
    return {"any"}


def render(table: dict) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render(build_table())
    if "--write" in args:
        atomic_write_text(TABLE_PATH, text)
        print(f"wrote {TABLE_PATH} ({len(json.loads(text)['expectations'])} expectations)")
    elif "--check" in args:
        same = TABLE_PATH.exists() and TABLE_PATH.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{TABLE_PATH} is stale; run with --write")
        return 0 if same else 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
