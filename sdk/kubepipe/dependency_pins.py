"""The one text for a dependency's undocumented API that kubepipe relies on and an installed release changed.

kubepipe uses a few internals of kfp, kubernetes, kserve and great_expectations that have no public API
(decision 0018). Each use checks what it needs first; a mismatch raises an error (each caller's own kind)
with this text: the installed version, what changed, and the version kubepipe declares.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, Sequence

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
    if _first_below(spec, Version(version.base_version)) is None:  # '<have' would leave nothing of the range
        return ""
    # the declared bounds as written would read best, but a SpecifierSet keeps no order: lower bounds first, then
    # the rest, then the new upper bound (a set's own str sorts them by text, '<0.21.3,<0.22,>=0.21')
    kept = sorted(spec, key=lambda s: (not s.operator.startswith((">", "~")), str(s)))
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    specifier = ",".join([*map(str, kept), f"<{version.base_version}"])
    return f"{req.name}{extras}{specifier}{marker}"


def _first_below(spec: Any, base: Any) -> Any:
    """The least version the range `spec` (a SpecifierSet) allows below `base` as '<base' takes it (none of base's
    pre-releases, PEP 440), or None. The range below is an interval less its `!=` exclusions (a version, or a
    prefix's run of them: `!=1.0.*` leaves nothing of `>=1.0` below 1.1), so where it holds any version it holds
    one at an edge: a version its clauses name, just above one (its post-release, a longer release), or just past
    a prefix's run (its next release and that release's first dev release); packaging decides each."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    below = spec & SpecifierSet(f"<{base}")
    named = [s.version for s in spec]
    depth = max([len(Version(v.removesuffix(".*")).release) for v in named] + [len(base.release)]) + 1
    edges = {Version("0.dev0"), Version("0")}
    for text in named:
        if text.endswith(".*"):  # the run `!=P.*` excludes ends where the release after P begins
            prefix = Version(text[:-2])
            after = ".".join(map(str, (*prefix.release[:-1], prefix.release[-1] + 1)))
            epoch = f"{prefix.epoch}!" if prefix.epoch else ""
            edges |= {Version(f"{epoch}{after}.dev0"), Version(f"{epoch}{after}")}
            continue
        v = Version(text)
        release = ".".join(map(str, (*v.release, *[0] * (depth - len(v.release) - 1), 1)))
        edges |= {Version(v.public), Version(v.base_version),
                  Version(f"{v.base_version}.post{0 if v.post is None else v.post + 1}"),
                  Version(f"{v.epoch}!{release}" if v.epoch else release)}
    return next((v for v in sorted(edges) if below.contains(v, prereleases=True)), None)


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
