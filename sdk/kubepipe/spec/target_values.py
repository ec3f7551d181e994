"""What a target makes of a profile's `pipeline_root` and `region`: the rules `Profile` checks at the key that gave
the value (the profile file's line, or --set), not at `<vertex defaults>` nor at submit."""

from __future__ import annotations

import re

from kubepipe.uris import uri_scheme

__all__ = ["target_value_problem", "KUBEFLOW_ROOT_SCHEMES"]

_GS_ROOT = re.compile(r"^gs://[a-z0-9][a-z0-9._-]*(/|$)")  # a bucket name, then its path
# The object stores a Kubeflow Pipelines backend writes artifacts to; the pods see no path of this machine.
KUBEFLOW_ROOT_SCHEMES = ("minio", "s3", "gs")


# a project id (a-z, 0-9, -; a letter first, no - last; GCP also wants 6-30 of them, not checked here), a legacy
# domain-scoped one (example.com:my-proj), or a project number
_GCP_PROJECT = re.compile(r"^(?:[a-z0-9][a-z0-9.-]*:)?[a-z](?:[a-z0-9-]*[a-z0-9])?$|^[0-9]{1,20}$")


def target_value_problem(target: object, key: str, value: str) -> str | None:
    """What is wrong with `value` at profile key `key` (pipeline_root, region, project) on `target`, or None."""
    if key == "region" and target == "vertex":  # `region: europe-wst4` was refused by aiplatform at submit
        from kubepipe.vertex_clients import region_problem

        return region_problem(value)
    if key == "project" and target == "vertex":  # `My Project` (its name, not its id) went into every request path
        if not _GCP_PROJECT.match(value):
            return ("not a Google Cloud project id: lowercase letters, digits and dashes, starting with a letter "
                    "(the id `gcloud projects list` shows in PROJECT_ID, not the project's display name), or its "
                    "number")
        return None
    if key != "pipeline_root":
        return None
    if target == "vertex" and not _GS_ROOT.match(value):  # `gs://` was submitted
        return "vertex pipeline_root must be a gs:// URI with a bucket, e.g. gs://my-bucket/pipelines"
    if target == "kubeflow" and uri_scheme(value) in (None, "file"):  # `x` was submitted, and every step failed
        schemes = ", ".join(f"{s}://" for s in KUBEFLOW_ROOT_SCHEMES)
        return (f"kubeflow pipeline_root must be an object store URI the cluster's pods can reach ({schemes}), e.g. "
                "minio://mlpipeline/kubepipe; a path names a folder of this machine (only the local target "
                "takes one)")
    return None
