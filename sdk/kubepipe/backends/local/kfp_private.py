"""The one error for a private kfp.local API that kubepipe's local fixes rely on and a kfp release moved.

condition_fix.py and retry.py patch kfp.local internals (decision 0018): each checks the names and
signatures it needs before patching, and a mismatch stops the local run with this error, which names
the installed kfp version and what changed, instead of an AttributeError deep inside a run.
"""

from __future__ import annotations

from kubepipe.errors import UserError

__all__ = ["missing"]

PINNED = "kfp==2.17.3"


def missing(fix: str, why: str, without: str) -> UserError:
    """UserError: kubepipe's `fix` cannot be applied to the installed kfp (`why`); `without` says what would go wrong."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("kfp")
    except PackageNotFoundError:
        installed = "(not installed)"
    return UserError(
        f"kubepipe's {fix} cannot be applied to kfp {installed}: {why}. {without}, so local runs stop here. "
        f"Install the kfp version kubepipe declares (pip install '{PINNED}') or upgrade kubepipe")
