"""`${...}` references: parsing, and resolving `${env.NAME}` at load time."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

__all__ = ["Ref", "REF_RE", "parse_ref", "find_refs", "resolve_env", "ENV_RE", "without_unset_env",
           "foreign_refs", "env_paths"]

# Possessive (Python 3.11): the spaces around the inside are taken one way only, so a `${` followed by a long run of
# spaces and no `}` fails at once; `\s*([^}]*?)\s*\}` tried every split of that run (1,000 spaces: a second).
REF_RE = re.compile(r"\$\{\s*+((?:[^}\s]|\s++(?=[^}\s]))*+)\s*+\}")
_FOREIGN = ((re.compile(r"\{\{\s*+((?:[^{}\s]|\s++(?=[^{}\s]))*+)\s*+\}\}"), "Jinja / KFP template syntax"),
            (re.compile(r"\$\(\s*+((?:[^()\s]|\s++(?=[^()\s]))*+)\s*+\)"), "shell / Tekton syntax"),
            (re.compile(r"\$([A-Za-z_]\w*(?:\.[A-Za-z0-9_-]+)*)"), "shell syntax"))
ENV_RE = re.compile(r"^env\.([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$")


@dataclass(frozen=True)
class Ref:
    """A parsed reference: params.x | steps.s.outputs.o | item[.field] | env.NAME."""

    kind: str  # "param" | "output" | "item" | "env"
    name: str = ""  # param name, step name, env var
    output: str = ""  # output name for kind == "output"
    field: str = ""  # item field
    text: str = ""

    def __str__(self) -> str:
        return self.text


def parse_ref(expr: str) -> Ref | str:
    """A Ref, or an error message saying what forms are allowed."""
    text = "${" + expr + "}"
    parts = expr.split(".")
    if parts[0] == "params" and len(parts) == 2 and parts[1]:
        return Ref("param", name=parts[1], text=text)
    if parts[0] == "steps":
        if len(parts) == 4 and parts[2] == "outputs" and parts[1] and parts[3]:
            return Ref("output", name=parts[1], output=parts[3], text=text)
        return f"`{text}`: a step output is written ${{steps.<step>.outputs.<output>}}"
    if parts[0] == "item" and len(parts) <= 2:
        return Ref("item", field=parts[1] if len(parts) == 2 else "", text=text)
    m = ENV_RE.match(expr)
    if m:
        return Ref("env", name=m.group(1), field=m.group(2) or "", text=text)
    return (f"`{text}` is not a reference kubepipe knows; use ${{params.<name>}}, "
            f"${{steps.<step>.outputs.<output>}}, ${{item}} or ${{env.<NAME>}}")


def find_refs(value: str) -> list[tuple[re.Match, Ref | str]]:
    return [(m, parse_ref(m.group(1))) for m in REF_RE.finditer(value)]


def foreign_refs(value: Any, path: tuple = ()) -> list[tuple[tuple, str, str]]:
    """Where `value` (a step's input, `when:` or `foreach:`, nested or not) writes a kubepipe reference another
    tool's way: `{{ params.x }}` (Jinja, KFP placeholders, Argo; GitHub's `${{ }}`), `$(params.x)` (Tekton, make)
    or `$params.x` (shell), for `${params.x}`: (path inside value, message, hint), one per string.

    Only one whose inside is a reference kubepipe knows (params.x, steps.s.outputs.o, item[.f], env.NAME) is
    one: `{{ question }}` in a prompt template, `$HOME` or `$item` (a shell variable), `{{$.inputs...}}` or any of them in free text
    (metadata.description, a param's description) is left as it is.
    """
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in foreign_refs(v, path + (k,))]
    if isinstance(value, list):
        return [m for i, v in enumerate(value) for m in foreign_refs(v, path + (i,))]
    if not isinstance(value, str) or ("{{" not in value and "$" not in value):
        return []
    for pattern, syntax in _FOREIGN:
        for m in pattern.finditer(value):
            ref = parse_ref(m.group(1))
            if isinstance(ref, Ref) and not (ref.kind == "item" and syntax == "shell syntax"):  # `echo $item`
                return [(path, f"`{m.group(0)}` is {syntax}, which kubepipe does not read",
                         f"kubepipe's syntax is `{ref.text}`")]
    return []


def env_paths(data: Any, path: tuple = ()) -> set[tuple]:
    """The paths of the strings in `data` that reference `${env.NAME}`: values the environment gives."""
    if isinstance(data, dict):
        return {p for k, v in data.items() for p in env_paths(v, path + (k,))}
    if isinstance(data, list):
        return {p for i, v in enumerate(data) for p in env_paths(v, path + (i,))}
    if isinstance(data, str) and "${" in data and any(ENV_RE.match(m.group(1).strip()) for m in REF_RE.finditer(data)):
        return {path}
    return set()


def resolve_env(data: Any, on_missing: Callable[[tuple, str], None],
                environ: Mapping[str, str] | None = None, path: tuple = (), *,
                refuse: Callable[[tuple, str], bool] | None = None,
                on_verbatim: Callable[[tuple], None] | None = None) -> Any:
    """Replace ${env.NAME} / ${env.NAME:-default} in every string; other refs are left alone.

    `refuse(path, name)` returning True leaves that reference unresolved (the caller reports
    it). The substituted text is never read again: where it contains `${`, `on_verbatim(path)`
    is told, so that the string is later taken as a literal, not as a reference.
    """
    env = os.environ if environ is None else environ
    kw: dict[str, Any] = {"refuse": refuse, "on_verbatim": on_verbatim}
    if isinstance(data, dict):
        return {k: resolve_env(v, on_missing, env, path + (k,), **kw) for k, v in data.items()}
    if isinstance(data, list):
        return [resolve_env(v, on_missing, env, path + (i,), **kw) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def sub(m: re.Match) -> str:
        em = ENV_RE.match(m.group(1).strip())
        if not em:
            return m.group(0)
        name, default = em.group(1), em.group(2)
        if refuse is not None and refuse(path, name):
            return m.group(0)
        value = env[name] if name in env else default
        if value is None:
            on_missing(path, name)
            return m.group(0)
        if "${" in value and on_verbatim is not None:
            on_verbatim(path)
        return value

    return REF_RE.sub(sub, data)


def without_unset_env(issues: list, unset: set[str]) -> list:
    """Validation issues less those an unset `${env.NAME}` causes. Its text stays in place and was checked as the
    value (`host: a KFP host is a URL ... (got '${env.KFP_HOST}')`, `params.n: default '${env.N}' is not of type
    int`); the missing variable is said once, at its key. `unset`: the keys' paths as the issues write them."""
    def caused(issue) -> bool:
        path = issue.path or ""
        return any(path == k or path.startswith((k + ".", k + "[")) or
                   (k.startswith((path + ".", path + "[")) and "${env." in issue.message) for k in unset)

    return [i for i in issues if not caused(i)]
