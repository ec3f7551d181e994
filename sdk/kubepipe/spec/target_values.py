"""What a target makes of a profile's `pipeline_root` and `region`: the rules `Profile` checks at the key that gave
the value (the profile file's line, or --set), not at `<vertex defaults>` nor at submit."""

from __future__ import annotations

import re

__all__ = ["target_value_problem"]

_GS_ROOT = re.compile(r"^gs://[a-z0-9][a-z0-9._-]*(/|$)")  # a bucket name, then its path


def target_value_problem(target: object, key: str, value: str) -> str | None:
    """What is wrong with `value` at profile key `key` (pipeline_root, region) on `target`, or None."""
    if key == "region" and target == "vertex":  # `region: europe-wst4` was refused by aiplatform at submit
        from kubepipe.vertex_clients import region_problem

        return region_problem(value)
    if key != "pipeline_root":
        return None
    if target == "vertex" and not _GS_ROOT.match(value):  # `gs://` was submitted
        return "vertex pipeline_root must be a gs:// URI with a bucket, e.g. gs://my-bucket/pipelines"
    return None
