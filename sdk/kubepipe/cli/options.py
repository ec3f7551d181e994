"""Options shared by several commands, declared once."""

from __future__ import annotations

import typer

__all__ = ["TARGET", "PROFILE", "SET", "PARAM", "parse_params"]

TARGET = typer.Option("local", "--target", "-t", help="local | kubeflow | vertex")
PROFILE = typer.Option(None, "--profile", help="Target profile file (default: configs/<target>.yaml).")
SET = typer.Option(None, "--set", help="Override a profile value: key=value (repeatable).")
PARAM = typer.Option(None, "--param", "-p", help="Run-time param: name=value (repeatable).")


def parse_params(items: list[str] | None) -> dict[str, str]:
    from kubepipe.errors import UserError

    out = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--param {item}: expected name=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out
