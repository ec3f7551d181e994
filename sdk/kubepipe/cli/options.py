"""Options shared by several commands, declared once."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Callable, Optional

import typer
import typer.core

__all__ = ["TARGET", "PROFILE", "SET", "PARAM", "PIPELINE", "given_location", "given_path", "given_pipeline", "out_file", "out_option", "parse_params", "parse_labels", "finite",
           "VersionCommand"]


def given_location(value: str, give: str = "a path") -> str:
    """The parser of a path-or-URI option typed `str` (`--registry`, `serve MODEL_DIR`, `serve --log-file`): an
    empty value, as an unset shell variable gives (`--registry "$REG"`), is refused, not read as 'not given' (the
    local registry, no log file) or as the working folder. A leading `~` is the home folder, as in the shell."""
    from kubepipe.util import empty_location

    problem = empty_location(value, give)
    if problem:
        raise typer.BadParameter(problem)
    if isinstance(value, str) and value.startswith("~"):  # quoted, the shell left it: `init "~/p"` made a `~` folder
        expanded = os.path.expanduser(value)
        if expanded.startswith("~"):
            raise typer.BadParameter(f"{value}: `~` names no home folder here; give the full path (or ./{value} "
                                     "for a folder of that name)")
        return expanded
    return value


def given_pipeline(value: str) -> str:
    """`--pipeline NAME|FILE` (runs list, runs prune): empty is refused as a path is; it meant every pipeline, and
    `runs prune --keep 1 --pipeline "$P"` with P unset pruned them all."""
    return given_location(value, "a pipeline's name or its YAML file")


def given_path(value: str | Path) -> Path:
    """The parser of every path argument and option (`parser=given_path`). typer reads an empty value as Path("."):
    `validate ""` said '.: is a folder', `init ""` scaffolded into the working folder, `--home ""` kept state there.
    tests/unit/test_cli_paths.py runs every one with ''."""
    return Path(given_location(value)) if isinstance(value, str) else Path(value)


PIPELINE = typer.Argument(..., parser=given_path, help="Pipeline YAML.")
TARGET = typer.Option("local", "--target", "-t", help="local | kubeflow | vertex")
PROFILE = typer.Option(None, "--profile", parser=given_path,
                       help="Target profile file (default: the nearest configs/<target>.yaml above the pipeline, "
                            "else above the working directory).")
SET = typer.Option(None, "--set", help="Override a profile value: key=value (repeatable).")
PARAM = typer.Option(None, "--param", "-p", help="Run-time param: name=value (repeatable).")


def out_file(value: Optional[Path]) -> Optional[Path]:
    """Every `--out` option's callback, one rule: `-o -` is stdout, as for most tools (it wrote a file named `-`);
    folders missing above the file are created when it is written; a folder or a file in the way is refused now,
    before the command's work (the write would refuse it only after)."""
    if value is None or str(value) == "-":
        return None
    from kubepipe.util import file_target_problem

    problem = file_target_problem(value)
    if problem:
        raise typer.BadParameter(problem)
    return value


def out_option(help_: str, *names: str):
    """An `--out` option: a path, `-` for stdout, checked by `out_file`."""
    return typer.Option(None, *(names or ("--out", "-o")), parser=given_path, callback=out_file, help=help_)


def parse_params(items: list[str] | None, flag: str = "--param", name: str = "name") -> dict[str, str]:
    """`name=value` items of a repeatable option (`--param`; `--label`, whose name is a key) -> a dict."""
    from kubepipe.errors import UserError, one_line

    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise UserError(one_line(f"{flag} {item}: expected {name}=value"))
        k, v = item.split("=", 1)
        k = k.strip()
        if k in out and out[k] != v:  # the last won, silently
            from kubepipe.secrets import redacted

            raise UserError(one_line(f"{flag} {k} is given twice, {k}={redacted(out[k], k)} and "
                                     f"{k}={redacted(v, k)}; give it once"))
        out[k] = v
    return out


_NEXT_PAIR = re.compile(r"[,;\s]\s*([^,;=\s]+)=")  # `team=ml,owner=x`, `team=ml owner=x`, `team=ml;owner=x`
_PAIR_SEP = re.compile(r"\s*[,;\s]\s*(?=[^,;=\s]+=)")


def parse_labels(items: list[str] | None, flag: str = "--label") -> dict[str, str]:
    """`key=value` items of a repeatable label option -> a dict; a value holding `,k=` (`team=ml,owner=x`, read
    as one label `team` = `ml,owner=x`, which no run carries; or `;` or a space between them) is refused saying to
    repeat the option, and so is a value with whitespace around it (`team= ml`: no label value holds any)."""
    from kubepipe.errors import UserError, one_line

    labels = parse_params(items, flag, "key")
    for key, value in labels.items():
        if _NEXT_PAIR.search(value):
            first, *rest = _PAIR_SEP.split(value.strip())
            pairs = [f"{key}={first.strip(',; ')}"] + [p.strip(",; ") for p in rest if p.strip(",; ")]
            raise UserError(one_line(f"{flag} {key}={value}: one {flag} holds one label (this one would be `{key}` = "
                                     f"`{value}`); repeat {flag} for each: " + " ".join(f"{flag} {p}" for p in pairs)))
        if value != value.strip():  # ` ml` was compared as Vertex spells it, `-ml`: no run carries it
            raise UserError(one_line(f"{flag} '{key}={value}': label `{key}`'s value begins or ends with whitespace, "
                                     "which no Kubernetes or Vertex label value holds, so no run would match it; "
                                     f"write {flag} {key}={value.strip()}"))
    return labels


def finite(minimum: float, *, above: bool = False) -> Callable[[Optional[float]], Optional[float]]:
    """A float option's callback: a finite number, at least (or above) `minimum`.

    click's `min=` lets nan through (it fails every comparison) and inf overflows a wait."""
    def check(value: Optional[float]) -> Optional[float]:
        if value is None:
            return value
        if not math.isfinite(value):
            raise typer.BadParameter(f"must be a finite number (got {value})")
        if value <= minimum if above else value < minimum:
            raise typer.BadParameter(f"must be {'more than' if above else 'at least'} {minimum:g} (got {value:g})")
        return value
    return check


def minutes(value: str | float | None) -> float | None:
    """A minutes option's parser: a number is minutes (`--older-than 90`); a duration with its unit (90s, 30m, 2h,
    1d: spec.values.parse_duration's) is converted. `1h` was 'Input should be a valid number', the unit unsaid."""
    if value is None:
        return None
    from kubepipe.spec.values import parse_duration

    text = str(value).strip()
    try:
        n = float(text)
    except ValueError:
        n = None
    try:
        if n is not None:
            if not math.isfinite(n) or n < 0:
                raise ValueError
            return n
        return parse_duration(text) / 60
    except ValueError:
        raise typer.BadParameter(f"{str(value)!r} is no duration: give minutes (e.g. 60) or a duration with its unit "
                                 "(90s, 30m, 2h, 1d), at least 0") from None


class VersionCommand(typer.core.TyperCommand):
    """A command whose VERSION argument click would read `-1` as an option of ('No such option: -1'): a negative
    number there is refused as the version it is meant to be."""

    def parse_args(self, ctx, args):
        given = list(args)  # the parser consumes `args`
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:  # typer's click's NoSuchOption, told by its (documented) option_name
            unknown = getattr(exc, "option_name", None)
            negative = next((a for a in given if unknown and re.fullmatch(r"-\d+", a) and a.startswith(unknown)), None)
            param = next((p for p in self.params if p.name == "version"), None)
            if negative is None or param is None:
                raise
            raise typer.BadParameter(f"{negative} is not a version: a version is a whole number from 1 (e.g. 3), "
                                     "`champion` or `previous` (see `kubepipe models list`)",
                                     ctx=ctx, param=param) from None
