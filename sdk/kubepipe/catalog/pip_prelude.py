"""The `pip install` prelude of third-party KFP components, taken apart instead of pattern-stripped.

kfp writes a Python component's container command as

    sh -c "<bootstrap pip; [make a venv;] pip install <own packages> && pip install kfp==x && "$0" "$@""
    sh -ec "<write the source to a file; python3 -m kfp.dsl.executor_main ...>" <source>

The first three words are the prelude: a shell script that installs packages and then
runs the rest of the argv (`"$0" "$@"`). Local runs share the caller's Python
environment, so the prelude must not run there. This module tokenises the script the way
`sh` would (shlex, with newlines, `&&`, `;` as separators and line continuations joined),
finds every `pip install`, and returns the command without the prelude plus what the
installs asked for: the component's own requirements (kept, see `PipInstall.packages`),
kfp's own packages (dropped: the installed kfp is the one that runs) and the index options.

A shell script that runs `pip install` in any other shape cannot be taken apart safely;
`unparsed_pip` reports it so that a local run refuses it instead of letting it install.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit
from dataclasses import dataclass
from typing import Any

__all__ = ["PipInstall", "split_prelude", "strip_preludes", "unparsed_pip", "KFP_PACKAGES"]

# kfp's own distributions: never installed by a component on a local run.
KFP_PACKAGES = ("kfp", "kfp-pipeline-spec", "kfp-server-api", "kfp-kubernetes")
_SEPARATORS = {";", "&&", "||", "|", "&", "\n", "(", ")"}
_VALUE_OPTIONS = {"-i", "--index-url", "--extra-index-url", "--trusted-host", "-f", "--find-links"}
_SHELLS = ("sh", "bash", "/bin/sh", "/bin/bash")


@dataclass(frozen=True)
class PipInstall:
    """One `pip install` of a prelude, split into the component's packages and kfp's."""

    packages: tuple[str, ...]  # the component's own requirements (packages_to_install)
    kfp: tuple[str, ...]  # kfp's packages and their helpers (dropped locally)
    options: tuple[str, ...]  # index options (--index-url URL, --trusted-host H, ...) as argv words


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _tokens(script: str) -> list[str]:
    lex = shlex.shlex(script.replace("\\\n", ""), posix=True, punctuation_chars=";&|()\n")
    lex.whitespace = " \t\r"
    lex.whitespace_split = True
    lex.commenters = ""
    return list(lex)


def _commands(script: str) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for tok in _tokens(script):
        if tok in _SEPARATORS or set(tok) <= set(";&|()\n"):
            out.append([])
        else:
            out[-1].append(tok)
    return [c for c in out if c]


def _pip_args(words: list[str]) -> list[str] | None:
    """The arguments of `[VAR=x] [python3 -m] pip install ARGS`, or None for another command."""
    i = 0
    while i < len(words) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[i]):
        i += 1
    rest = words[i:]
    if rest[:1] and re.fullmatch(r"(\S*/)?python[\d.]*", rest[0]) and rest[1:4] == ["-m", "pip", "install"]:
        return rest[4:]
    if rest[:1] and re.fullmatch(r"(\S*/)?pip[\d.]*", rest[0]) and rest[1:2] == ["install"]:
        return rest[2:]
    return None


def _classify(args: list[str]) -> PipInstall:
    from packaging.requirements import InvalidRequirement, Requirement

    packages: list[str] = []
    kfp: list[str] = []
    options: list[str] = []
    it = iter(range(len(args)))
    for i in it:
        word = args[i]
        if word.startswith("-"):
            name, eq, value = word.partition("=")
            if name in _VALUE_OPTIONS:
                if not eq:
                    value = args[i + 1] if i + 1 < len(args) else ""
                    next(it, None)
                if name == "--trusted-host" and "://" in value:
                    value = urlsplit(value).netloc  # kfp writes the index URL; pip wants host[:port]
                options += [name, value]  # where packages come from; other flags are ours to choose
            continue
        try:
            req = Requirement(word)
        except InvalidRequirement:
            packages.append(word)  # a URL or path: the component's own, reported as written
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue  # e.g. typing-extensions; python_version<"3.9": a no-op on this interpreter
        (kfp if _canonical(req.name) in KFP_PACKAGES else packages).append(word)
    return PipInstall(tuple(packages), tuple(kfp), tuple(options))


def _shell_script(argv: list[Any]) -> int | None:
    """Index of the script in `sh -c SCRIPT ...` (also -ec, -ce), or None."""
    if len(argv) >= 3 and argv[0] in _SHELLS and isinstance(argv[1], str) and re.fullmatch(r"-[a-z]*c[a-z]*", argv[1]):
        return 2 if isinstance(argv[2], str) else None
    return None


def split_prelude(argv: list[Any]) -> tuple[list[Any], list[PipInstall]] | None:
    """`(argv without the prelude, its installs)` when argv starts with a pip prelude, else None."""
    at = _shell_script(argv)
    if at is None:
        return None
    commands = _commands(argv[at])
    if not commands or commands[-1] != ["$0", "$@"]:
        return None  # it does not hand over to the rest of the argv: not a prelude
    installs = [_classify(args) for c in commands if (args := _pip_args(c)) is not None]
    if not installs or len(argv) <= at + 1:
        return None
    return list(argv[at + 1:]), installs


def unparsed_pip(argv: list[Any]) -> bool:
    """True when a shell script in argv runs `pip install` outside a prelude we can take apart."""
    at = _shell_script(argv)
    if at is None:
        return False
    try:
        return any(_pip_args(c) is not None for c in _commands(argv[at]))
    except ValueError:  # unbalanced quotes: sh would fail too; look for the words
        return bool(re.search(r"\bpip3?\s+install\b|-m\s+pip\s+install\b", argv[at]))


def strip_preludes(node: Any) -> tuple[Any, list[PipInstall], list[str]]:
    """Walk a component / IR document: drop every pip prelude of a `command`.

    Returns the new document, the installs found, and the paths of commands that run
    `pip install` in a shape this module cannot take apart (the caller refuses those).
    """
    installs: list[PipInstall] = []
    unparsed: list[str] = []

    def walk(n: Any, path: str) -> Any:
        if isinstance(n, dict):
            out = {}
            for k, v in n.items():
                if k == "command" and isinstance(v, list):
                    try:
                        split = split_prelude(v)
                    except ValueError:
                        split = None
                    if split is not None:
                        v, found = split
                        installs.extend(found)
                    elif unparsed_pip(v):
                        unparsed.append(f"{path}.{k}".lstrip("."))
                    out[k] = v
                else:
                    out[k] = walk(v, f"{path}.{k}")
            return out
        if isinstance(n, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(n)]
        return n

    return walk(node, ""), installs, unparsed
