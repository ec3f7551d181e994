"""The name a pipeline's runs are recorded and listed under, read from its file: one rule for `runs list --pipeline
FILE`, a queued retrain request and `retrain resume NAME`."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from pydantic import ValidationError as PydanticError

from kubepipe.errors import ValidationError
from kubepipe.secrets import is_secret_name
from kubepipe.spec.interpolation import resolve_env
from kubepipe.spec.models import Metadata
from kubepipe.spec.source import read_source

__all__ = ["pipeline_name", "valid_name", "name_note"]


def pipeline_name(path: str | Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The `metadata.name` of the pipeline file at `path` as its run records it (`Plan.name`): `${env.X}` in it
    resolved from `environ` (os.environ when None), as the loader resolves it, whatever else in the file is wrong
    or takes an unset variable. None when the file is no readable YAML, names none, or its name is not one a run
    gets: it takes a variable that is not set, or a credential's (refused by the loader), or is no valid name."""
    try:
        data = read_source(path).data
    except (ValidationError, OSError):
        return None
    meta = data.get("metadata") if isinstance(data, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str):
        return None
    # an unset variable's `${env.X}`, or a credential's (the loader refuses it), stays as text, which no name matches
    name = resolve_env(name, lambda _path, _var: None, environ, refuse=lambda _path, var: is_secret_name(var))
    return valid_name(name)


def valid_name(name: object) -> str | None:
    """`name` when it is one a run may take (metadata.name's rule: it names the run's folder), else None."""
    try:
        return Metadata.model_validate({"name": name}).name
    except PydanticError:
        return None


def name_note(name: str, path: str | Path, how: str) -> str | None:
    """The note of a run named `name` `how` (`as ... recorded it`) where the file `path` names it otherwise in this
    environment, or takes a variable not set here; None when the file gives that name here too."""
    own = pipeline_name(path)
    if own == name:
        return None
    here = f"is `{own}`" if own else "takes a variable not set"
    return f"named `{name}` {how} (metadata.name {here} in this environment)"
