"""`kubepipe init`'s placeholder bucket in a profile: one rule, warned by `validate` and `compile`, refused by
`submit` and `schedule` before anything is uploaded (docs/decisions/0008)."""

from __future__ import annotations

from typing import Any, Mapping

from kubepipe.spec.profiles import PLACEHOLDER_BUCKET, PLACEHOLDER_ENV

__all__ = ["placeholder_buckets"]


def placeholder_buckets(values: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(key, what is wrong with its value, what to do) for each of a profile's `values` (pipeline_root,
    registry_uri) that is still the placeholder bucket, which anyone can create."""
    out = []
    for key, var in PLACEHOLDER_ENV.items():
        value = values.get(key)
        if f"//{PLACEHOLDER_BUCKET}/" in f"{value or ''}/":
            out.append((key, f"{value} is `kubepipe init`'s placeholder bucket, which anyone can create (runs "
                             "would write models and data there)",
                        f"export {var}=gs://<your bucket>/... or set {key} in the profile"))
    return out
