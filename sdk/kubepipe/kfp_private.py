"""The one error for a private kfp API that kubepipe relies on and a kfp release moved.

The kfp.local fixes (backends/local/condition_fix.py, retry.py) and kubepipe's kfp.Client
(kfp_client_build.py) use kfp internals that have no public API (decision 0018). Each checks the
names and signatures it needs before use. A mismatch raises this error, which names the installed
kfp version and what changed, instead of an AttributeError deep inside a run.
"""

from __future__ import annotations

from kubepipe.dependency_pins import changed
from kubepipe.errors import UserError

__all__ = ["missing", "PINNED"]

PINNED = "kfp==2.17.3"


def missing(fix: str, why: str, without: str, stops: str = "local runs stop here") -> UserError:
    """UserError: kubepipe's `fix` cannot be applied to the installed kfp (`why`); `without`: what would go wrong."""
    return UserError(changed(f"kubepipe's {fix} cannot be applied to", "kfp", why, PINNED, f"{without}, so {stops}. "))
