"""Paths written in a pipeline: local files resolve against the YAML file's folder.

One rule for every path-like value (data sources, expectation suites, component
files, includes, param defaults used as paths): a relative local path means
"next to the pipeline file", never "next to wherever kubepipe was started".
Values given on the command line (`--param x=data.csv`) are relative to the
working directory, like any command-line argument.

A URI (`gs://`, `s3://`, `https://`, `memory://`, ...) or a reference such as
`champion:<model>` is not a local path and is left alone. `file://` URIs are local.

For remote targets a local path is a file on this machine that a pod cannot
read; the one exception is Vertex AI's Cloud Storage FUSE mount under `/gcs/`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kubepipe.util import FILE_SCHEME, is_file_uri, local_path

__all__ = ["is_local_path", "resolve_path", "local_file", "run_path", "pod_readable", "remote_path_hint"]

# scheme:// or a reference like champion:<model>; a drive letter (C:\) is one character, so never matches.
_NOT_LOCAL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
# Cloud Storage FUSE: Vertex AI mounts every bucket the job can read at /gcs/<bucket>/.
_VERTEX_MOUNTS = ("/gcs/",)


def remote_path_hint() -> str:
    """What to do about a local path a pod cannot read (the message before it says why)."""
    from kubepipe.arguments import param_hint

    return ("upload the file and use a gs:// or s3:// URI, or take the value from a param and pass "
            f"{param_hint('NAME', 'gs://...', repr('gs://...'))} when you submit")


def is_local_path(value: object) -> bool:
    """True for a non-empty string that names a file on this machine (relative, absolute or file://)."""
    if not isinstance(value, str) or not value.strip() or "${" in value:
        return False
    v = value.strip()
    return is_file_uri(v) or not _NOT_LOCAL.match(v)


def resolve_path(value: str, base_dir: str | Path) -> str:
    """`value` as an absolute local path when it is a relative local path; anything else unchanged.

    `~` is expanded; a `file://` prefix is kept, in lower case (`FILE://data.csv` -> `file:///abs/dir/data.csv`).
    """
    if not is_local_path(value):
        return value
    v = value.strip()
    prefix = FILE_SCHEME if is_file_uri(v) else ""
    p = Path(local_path(v) or "").expanduser()
    if not p.is_absolute():
        p = Path(os.path.abspath(Path(base_dir) / p))
    return prefix + str(p)


def local_file(value: str, base_dir: str | Path) -> Path | None:
    """The file or folder on this machine that `value` names, resolved as `resolve_path` does (no `file://`), or None
    for a URI or a reference (`gs://...`, `champion:<model>`)."""
    if not is_local_path(value):
        return None
    return Path(local_path(resolve_path(value, base_dir)) or "")


def run_path(value: str, base_dir: str | Path) -> str:
    """`resolve_path`, written as the working directory reaches it: relative when the file is
    below the working directory (portable compiled output), absolute otherwise."""
    resolved = resolve_path(value, base_dir)
    if resolved == value or is_file_uri(resolved):
        return resolved
    try:
        rel = os.path.relpath(resolved)
    except ValueError:  # another drive
        return resolved
    return resolved if rel == ".." or rel.startswith(".." + os.sep) else rel


def pod_readable(value: str, target: str) -> bool:
    """Whether a step running on `target` can read `value` (a URI, or a mounted local path)."""
    if target == "local" or not is_local_path(value):
        return True
    v = local_path(value.strip()) or ""
    return target == "vertex" and v.startswith(_VERTEX_MOUNTS)
