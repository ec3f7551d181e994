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

__all__ = ["is_local_path", "resolve_path", "run_path", "pod_readable", "REMOTE_PATH_HINT"]

# scheme:// or a reference like champion:<model>; a drive letter (C:\) is one character, so never matches.
_NOT_LOCAL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
# Cloud Storage FUSE: Vertex AI mounts every bucket the job can read at /gcs/<bucket>/.
_VERTEX_MOUNTS = ("/gcs/",)
REMOTE_PATH_HINT = ("a pod cannot read files on this machine: upload the file and use a gs:// or s3:// URI, "
                    "or take the value from a param and pass --param NAME=gs://... when you submit")


def is_local_path(value: object) -> bool:
    """True for a non-empty string that names a file on this machine (relative, absolute or file://)."""
    if not isinstance(value, str) or not value.strip() or "${" in value:
        return False
    v = value.strip()
    return v.startswith("file://") or not _NOT_LOCAL.match(v)


def resolve_path(value: str, base_dir: str | Path) -> str:
    """`value` as an absolute local path when it is a relative local path; anything else unchanged.

    `~` is expanded; a `file://` prefix is kept (`file://data.csv` -> `file:///abs/dir/data.csv`).
    """
    if not is_local_path(value):
        return value
    v = value.strip()
    prefix, rest = ("file://", v[len("file://"):]) if v.startswith("file://") else ("", v)
    p = Path(rest).expanduser()
    if not p.is_absolute():
        p = Path(os.path.abspath(Path(base_dir) / p))
    return prefix + str(p)


def run_path(value: str, base_dir: str | Path) -> str:
    """`resolve_path`, written as the working directory reaches it: relative when the file is
    below the working directory (portable compiled output), absolute otherwise."""
    resolved = resolve_path(value, base_dir)
    if resolved == value or resolved.startswith("file://"):
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
    v = value.strip()
    v = v[len("file://"):] if v.startswith("file://") else v
    return target == "vertex" and v.startswith(_VERTEX_MOUNTS)
