"""kubepipe components | schema."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console, output
from kubepipe.cli.options import out_option

__all__ = ["register"]


class RefFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


def components(name: Optional[str] = typer.Argument(
                   None, help="A built-in name, package.module:function or component YAML: its full reference."),
               fmt: RefFormat = typer.Option(RefFormat.text, "--format", callback=output.remember_format,
                                             case_sensitive=False,
                                             help="text | json (docs/cli.md) | markdown (docs/components.md)."),
               out: Optional[Path] = out_option("Write here instead of stdout.")) -> None:
    """The component catalog; with NAME, each input's meaning, allowed values and an example."""
    from kubepipe.catalog.reference import reference_markdown

    if fmt is RefFormat.markdown:
        if name:
            from kubepipe.errors import UserError

            raise UserError("--format markdown writes the whole catalog (docs/components.md); drop NAME")
        return _write(reference_markdown(), out)
    if out:  # was ignored: the text or JSON went to stdout and no file was written
        with console.stdout_text() as text:
            _reference(name, fmt)
        return _write(text.getvalue(), out)
    _reference(name, fmt)


def _reference(name: Optional[str], fmt: RefFormat) -> None:
    from kubepipe.catalog.reference import catalog_reference, component_reference

    if fmt is RefFormat.json:
        if name:
            output.emit("Component", component_reference(name))
        else:
            output.emit("ComponentList", {"items": catalog_reference()})
        return
    if name:
        return _show(component_reference(name))
    items = catalog_reference()
    output.table(("component", "inputs", "outputs", "summary"),
                 [(c["name"], "\n".join(f"{i['name']}: {_sig(i)}" for i in c["inputs"]),
                   "\n".join(f"{o['name']}: {o['type']}" for o in c["outputs"]), c["summary"]) for c in items],
                 title="kubepipe components")
    console.note("`kubepipe components NAME` shows one component's inputs, allowed values and an example; also: "
                 "any `package.module:function` (@dsl.component) or a KFP component / compiled pipeline .yaml path")


def _sig(i: dict) -> str:
    return i["type"] if i["required"] else f"{i['type']} = {i['default']!r}"


def _show(c: dict) -> None:
    from kubepipe.catalog.reference import allowed_text, long_lists

    console.out.print(f"[bold]{console.escape(c['name'])}[/bold]: {console.escape(c['description'] or c['summary'])}")
    output.table(("input", "type", "default", "meaning", "allowed"),
                 [(i["name"], i["type"], "required" if i["required"] else repr(i["default"]), i["description"],
                   allowed_text(i["allowed"])) for i in c["inputs"]], title="inputs")
    for i in c["inputs"]:
        a = i["allowed"]
        if a and a["by"]:
            label, what = a["by_label"]
            output.table((label, what), list(a["by"].items()), title=f"{i['name']}: {what} per {label}")
    if long_lists(c):
        output.table(("input", "allowed"), [(name, ", ".join(values)) for name, values in long_lists(c)],
                     title="allowed values listed below the inputs")
    output.table(("output", "type", "meaning"), [(o["name"], o["type"], o["description"]) for o in c["outputs"]],
                 title="outputs")
    if c["example"]:
        console.out.print("example:")
        console.out.print(console.escape(c["example"]), soft_wrap=True)


def _write(text: str, out: Optional[Path]) -> None:
    if out:
        from kubepipe.util import atomic_write_text

        atomic_write_text(out, text)
        console.err.print(f"[green]✓[/green] wrote {console.escape(str(out))}")
    else:
        console.out.file.write(text)


def schema(out: Optional[Path] = out_option("Write here instead of stdout."),
           format_: str = typer.Option("json", "--format", help="json (JSON Schema) | markdown (reference)")) -> None:
    """JSON Schema of the pipeline YAML (for editors: yaml-language-server), or its Markdown reference."""
    from kubepipe.errors import UserError
    from kubepipe.spec.schema import reference_markdown, schema_json

    if format_ not in ("json", "markdown"):
        raise UserError(f"--format {format_}: use json or markdown")
    _write(schema_json() if format_ == "json" else reference_markdown(), out)


def register(app: typer.Typer) -> None:
    app.command("components")(components)
    app.command("schema")(schema)
