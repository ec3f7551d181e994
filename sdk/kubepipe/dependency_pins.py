"""The one text for a dependency's undocumented API that kubepipe relies on and an installed release changed.

kubepipe uses a few internals of kfp, kubernetes, kserve and great_expectations that have no public API
(decision 0018). Each use checks what it needs first; a mismatch raises an error (each caller's own kind)
with this text: the installed version, what changed, and the version kubepipe declares.
"""

from __future__ import annotations

import inspect
from typing import Literal, Sequence

__all__ = ["changed", "installed", "signature_problem"]


def installed(package: str) -> str:
    """The installed version of `package` (its distribution name), or '(not installed)'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"


def changed(head: str, package: str, why: str, declared: str, then: str = "") -> str:
    """'<head> <package> <version>: <why>. <then>Install the <package> version kubepipe declares (pip install
    '<declared>') or upgrade kubepipe' (`then`: what this means, a sentence or two ending in '. '). When the installed
    version is within the range kubepipe declares, installing that range changes nothing: an earlier release in it
    is what to install ('pip install '<declared>,<version>'')."""
    have = installed(package)
    earlier = _earlier(declared, have)
    if earlier == "":  # '<have' would leave nothing of the range: pip answers ResolutionImpossible
        return (f"{head} {package} {have}: {why}. {then}{package} {have} is the earliest release the range kubepipe "
                f"declares ({declared}) allows, yet changed this: no release kubepipe supports is without the "
                "change; upgrade kubepipe")
    if earlier is None:
        fix = f"Install the {package} version kubepipe declares (pip install '{declared}')"
    else:
        fix = (f"{package} {have} is within the range kubepipe declares ({declared}) yet changed this: install an "
               f"earlier release (pip install '{earlier}')")
    return f"{head} {package} {have}: {why}. {then}{fix} or upgrade kubepipe"


def _earlier(declared: str, have: str) -> str | None:
    """`declared` with '<have' added to its range (extras and environment marker kept: 'pkg[x]>=1,<1.5;
    python_version<"3.12"') where `have` satisfies the range `declared` (not one exact version, not a URL); "" where
    it is the earliest release the range allows (a lower bound at it: `>=0.21` of 0.21.0); else None."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    try:
        req, version = Requirement(declared), Version(have)
    except (InvalidRequirement, InvalidVersion):  # '(not installed)'
        return None
    spec = req.specifier
    if req.url or any(s.operator in ("==", "===") for s in spec) or not spec.contains(version, prereleases=True):
        return None
    base = Version(version.base_version)
    # nothing of the range is below it: no release is below 0, and '<0.21.0' leaves out 0.21.0rc1 (PEP 440)
    if not any(base.release) or any(s.operator in (">=", "~=", ">") and Version(Version(s.version).base_version) >= base
                                    for s in spec):
        return ""
    # the declared bounds as written would read best, but a SpecifierSet keeps no order: lower bounds first, then
    # the rest, then the new upper bound (a set's own str sorts them by text, '<0.21.3,<0.22,>=0.21')
    kept = sorted(spec, key=lambda s: (not s.operator.startswith((">", "~")), str(s)))
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    specifier = ",".join([*map(str, kept), f"<{version.base_version}"])
    return f"{req.name}{extras}{specifier}{marker}"


def signature_problem(fn: object, params: Sequence[str], *,
                      match: Literal["exact", "prefix", "includes"] = "exact") -> str | None:
    """None when `fn` takes `params` as kubepipe calls it; else what changed, to follow the function's name:
    'is gone' (not callable), 'now takes (a, b), not (x, y)'. `match`: the parameter names are exactly `params`
    ('exact'), start with them ('prefix', said 'not (x, y, ...)'), or hold each of them ('includes', said
    'now takes (a, b), no x or y')."""
    if not callable(fn):
        return "is gone"
    try:
        got = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError) as exc:  # a builtin or C function without a readable signature
        return f"has no signature to check ({exc})"
    takes = f"now takes ({', '.join(got)})"
    if match == "includes":
        lost = [name for name in params if name not in got]
        return f"{takes}, no {' or '.join(lost)}" if lost else None
    if match == "prefix":
        return None if got[:len(params)] == list(params) else f"{takes}, not ({', '.join([*params, '...'])})"
    if match != "exact":
        raise ValueError(f"signature_problem: match={match!r}, not 'exact', 'prefix' or 'includes'")
    return None if got == list(params) else f"{takes}, not ({', '.join(params)})"
