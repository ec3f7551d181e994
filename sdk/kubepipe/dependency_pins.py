"""The one text for a dependency's undocumented API that kubepipe relies on and an installed release changed.

kubepipe uses a few internals of kfp, kubernetes, kserve and great_expectations that have no public API
(decision 0018). Each use checks what it needs first; a mismatch raises an error (each caller's own kind)
with this text: the installed version, what changed, and the version kubepipe declares.
"""

from __future__ import annotations

__all__ = ["changed", "installed"]


def installed(package: str) -> str:
    """The installed version of `package` (its distribution name), or '(not installed)'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"


def changed(head: str, package: str, why: str, declared: str, then: str = "") -> str:
    """'<head> <package> <version>: <why>. <then>Install the <package> version kubepipe declares (pip install
    '<declared>') or upgrade kubepipe' (`then`: what this means, a sentence or two ending in '. ')."""
    return (f"{head} {package} {installed(package)}: {why}. {then}Install the {package} version kubepipe declares "
            f"(pip install '{declared}') or upgrade kubepipe")
