"""How a message names what its caller gave: the CLI's options (`--param`, `--set`, `--profile`, `--resume`) or
the Python API's arguments (`params=`, `sets=`, `profile=`, `resume=`), which a notebook calling kubepipe.run was
told as `--param n=abc` or `--set ...` it never typed.

The CLI's entry point marks its work (`cli_arguments`); everything else reads as the API: a notebook, a service,
the threads it starts. A ContextVar, so each thread (and asyncio task) has its own.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, Iterator

__all__ = ["cli_arguments", "from_cli", "param_place", "param_given", "param_hint", "sets_place", "set_hint",
           "profile_hint", "resume_place", "resume_given", "params_hint", "target_place", "check_api_arguments"]

_CLI: ContextVar[bool] = ContextVar("kubepipe_cli_arguments", default=False)


@contextlib.contextmanager
def cli_arguments() -> Iterator[None]:
    """Messages raised inside name the CLI's options."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


def from_cli() -> bool:
    return _CLI.get()


def param_place(name: str) -> str:
    """Where param `name`'s value came from: `--param epochs` / `params['epochs']`."""
    return f"--param {name}" if from_cli() else f"params[{name!r}]"


def param_given(name: str, text: str, value: Any) -> str:
    """The value given, as the caller wrote it: `--param epochs=abc` (`text`) / `params['epochs']='abc'`."""
    return f"--param {name}={text}" if from_cli() else f"params[{name!r}]={value!r}"


def param_hint(name: str, example: str = "...", python: str | None = None) -> str:
    """How to give param `name` a value: `--param epochs=3` / `params={'epochs': 3}` (`python`: the value as
    Python writes it, where it differs from the command line's `example`)."""
    return f"--param {name}={example}" if from_cli() else f"params={{{name!r}: {python or example}}}"


def params_hint(names: list[str]) -> str:
    """How to give several params values: `--param a=... --param b=...` / `params={'a': ..., 'b': ...}`."""
    if from_cli():
        return " ".join(param_hint(name) for name in names)
    return "params={" + ", ".join(f"{name!r}: ..." for name in names) + "}"


def sets_place() -> str:
    """Where a profile override came from, as an issue's file: `--set` / `sets=`."""
    return "--set" if from_cli() else "sets="


def set_hint(key: str, example: str = "...", python: str | None = None) -> str:
    """How to override profile key `key` (dotted): `--set region=europe-west4` / `sets={'region': 'europe-west4'}`
    (`python`: the value as Python writes it, where it differs from the command line's `example`)."""
    return f"--set {key}={example}" if from_cli() else f"sets={{{key!r}: {python or example}}}"


def profile_hint() -> str:
    """How to name a profile file: `--profile FILE` / `profile='configs/<target>.yaml'`."""
    return "--profile FILE" if from_cli() else "profile=<path of a profile YAML>"


def resume_place() -> str:
    return "--resume" if from_cli() else "resume="


def resume_given(value: Any) -> str:
    """The run to resume, as the caller gave it: `--resume RUN` / `resume='RUN'`."""
    if from_cli():  # a blank one (`--resume "$RUN"`, RUN unset) quoted, to be seen
        return f"--resume {value if str(value).strip() else repr(value)}"
    return f"resume={value!r}"


def target_place() -> str:
    return "--target" if from_cli() else "target="


def check_api_arguments(**given: Any) -> None:
    """The API's arguments of the wrong kind, refused by name before anything is read: `params='n=3'` stopped with
    'ValueError: dictionary update sequence element #0 ...', `sets='a=1'`, `profile=5` or `on_event='x'` with a
    TypeError or AttributeError from deep inside. None is allowed (the default) but for `path`, which has none."""
    from collections.abc import Mapping
    from os import PathLike

    from kubepipe.errors import UserError

    wants = {
        "params": (lambda v: isinstance(v, Mapping), "a mapping of param name to value, e.g. params={'epochs': 3}"),
        "sets": (lambda v: isinstance(v, Mapping) or (isinstance(v, (list, tuple)) and all(isinstance(i, str)
                                                                                           for i in v)),
                 "a mapping of profile key to value, e.g. sets={'region': 'europe-west4'}, or a list of 'key=value' "
                 "texts as --set takes them"),
        "target": (lambda v: isinstance(v, str), "the target's name: local, kubeflow or vertex"),
        "run_id": (lambda v: isinstance(v, str), "a str (letters, digits, '.', '_' or '-')"),
        "on_event": (callable, "a function, called with each step's event"),
        "on_log": (callable, "a function, called with a step's name and each warning line it writes"),
        "slot": (lambda v: isinstance(v, str), "a str"),
        "poll_s": (_seconds, "a number of seconds"),
        "timeout_s": (_seconds, "a number of seconds"),
    }
    for name, value in given.items():
        if value is None and name == "path":  # the one with no default: open(None) raised a bare TypeError
            raise UserError("path=: expected the pipeline YAML's path (a str or a pathlib.Path); got None")
        if value is None:
            continue
        ok, what = wants.get(name, (lambda v: isinstance(v, (str, PathLike)), "a path (a str or a pathlib.Path)"))
        if not ok(value):
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            raise UserError(f"{name}=: expected {what}; got {type(value).__name__} {shown}")


def _seconds(value: Any) -> bool:
    from numbers import Real

    return isinstance(value, Real) and not isinstance(value, bool)
