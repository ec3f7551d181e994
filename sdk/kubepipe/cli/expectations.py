"""kubepipe expectations infer DATA: bootstrap a validate-data expectation list from a data sample."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console
from kubepipe.cli.options import given_location, out_option

__all__ = ["register"]

expectations_app = typer.Typer(help="Great Expectations helpers for the validate-data step.", no_args_is_help=True)


@expectations_app.command("infer")
def infer(
    data: str = typer.Argument(..., parser=given_location, help="CSV or Parquet file (local path, gs:// or http(s)://)."),
    out: Optional[Path] = out_option("Write the YAML here instead of stdout."),
    max_categories: int = typer.Option(20, "--max-categories", min=0,
                                       help="Columns with at most this many values get a value set."),
    sample: int = typer.Option(100_000, "--sample", min=0, help="Rows to look at (seeded sample); 0 = all."),
    delimiter: str = typer.Option(",", "--delimiter", help="The character between a CSV's fields, e.g. ';' or "
                                                             "$'\\t' (as load-data's `delimiter`)."),
    decimal: str = typer.Option(".", "--decimal", help="A CSV's decimal mark: '.' or ',' (as load-data's `decimal`)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="A CSV's text encoding, e.g. latin-1 or utf-16 (as "
                                                              "load-data's `encoding`)."),
    thousands: str = typer.Option("", "--thousands", help="A CSV's thousands separator, e.g. '.' for 1.234,50 "
                                                          "(as load-data's `thousands`); default: none."),
) -> None:
    """Print an `expectations:` list in kubepipe YAML that the sample passes; review it, then paste it under `with:`."""
    from kubepipe.extras import require

    require("local", feature="`kubepipe expectations infer`")
    from kubepipe.components.data.infer import infer_expectations, to_yaml
    from kubepipe.components.data.load import load
    from kubepipe.errors import UserError

    from kubepipe.components.data.sources import mark_problem

    marks = {"delimiter": delimiter, "decimal": decimal, "thousands": thousands}
    problem = mark_problem(**marks)
    if problem:
        key, what = problem
        raise UserError(f"--{key} {marks[key]!r}: {what}")
    df = load(data, sample_n=sample if sample else 0, encoding=encoding, delimiter=delimiter, decimal=decimal,
              thousands=thousands)
    notes: list[str] = []
    total = df.attrs.get("rows_before_sample", len(df))
    items = infer_expectations(df, max_categories=max_categories, notes=notes, sampled=len(df) < total)
    from kubepipe.secrets import redact_url

    # the YAML is pasted into a pipeline and committed: never a signed URL's signature
    rows = f"a sample of {len(df)} of its {total} rows" if len(df) < total else f"{len(df)} rows"
    header = (f"inferred by `kubepipe expectations infer` from {redact_url(data)} ({rows});\n"
              "review the ranges and value sets (severity: warn ones are guesses from a sample)")
    if notes:
        header += "\nskipped (only not-null inferred):\n" + "\n".join(f"  {n}" for n in notes)
    text = to_yaml(items, header=header)
    if out:
        from kubepipe.util import atomic_write_text

        try:
            atomic_write_text(out, text)
        except OSError as exc:
            raise UserError(f"--out {out}: cannot write it ({exc.strerror or exc}); pick a writable path") from None
        console.err.print(f"[green]✓[/green] wrote {len(items)} expectations to {console.escape(str(out))}")
    else:
        console.out.file.write(text)
    for note in notes:
        console.err.print(f"[yellow]note:[/yellow] {console.escape(note)}")


def register(app: typer.Typer) -> None:
    app.add_typer(expectations_app, name="expectations")
