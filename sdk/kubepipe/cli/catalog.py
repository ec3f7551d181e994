"""kubepipe components | schema."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console

__all__ = ["register"]


def components(name: Optional[str] = typer.Argument(None, help="Show one component's signature.")) -> None:
    """List the component catalog with signatures."""
    from rich.table import Table

    from kubepipe.catalog import builtin_names, resolve_component

    names = [name] if name else sorted(builtin_names())
    table = Table(title="kubepipe components")
    for col in ("component", "inputs", "outputs", "summary"):
        table.add_column(col)
    for n in names:
        info = resolve_component(n, Path("."))
        ins = "\n".join(f"{k}: {p.describe()}" for k, p in info.user_inputs.items())
        outs = "\n".join(f"{k}: {p.type}" for k, p in info.outputs.items())
        table.add_row(n, console.escape(ins), console.escape(outs), console.escape(info.summary))
    console.out.print(table)
    if not name:
        console.out.print("also: any `package.module:function` (@dsl.component) or a KFP component / "
                          "compiled pipeline .yaml path")


def schema(out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write here instead of stdout."),
           format_: str = typer.Option("json", "--format", help="json (JSON Schema) | markdown (reference)")) -> None:
    """JSON Schema of the pipeline YAML (for editors: yaml-language-server), or its Markdown reference."""
    from kubepipe.errors import UserError
    from kubepipe.spec.schema import reference_markdown, schema_json

    if format_ not in ("json", "markdown"):
        raise UserError(f"--format {format_}: use json or markdown")
    text = schema_json() if format_ == "json" else reference_markdown()
    if out:
        from kubepipe.util import atomic_write_text

        atomic_write_text(out, text)
        console.err.print(f"[green]✓[/green] wrote {out}")
    else:
        console.out.file.write(text)


def register(app: typer.Typer) -> None:
    app.command("components")(components)
    app.command("schema")(schema)
