"""What `--set` (the API's `sets=`) gives a profile: its `key=value` items parsed and nested, and the issues of the
values it gave blamed on it (not on the profile file)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from kubepipe.arguments import from_cli, set_hint, sets_place
from kubepipe.errors import Issue, ValidationError
from kubepipe.labels import gcp_label
from kubepipe.spec.errors_map import LABEL_ONE_TEXT, MAPPING_HINT
from kubepipe.spec.source import parse_yaml
from kubepipe.spec.values import quote_hint

__all__ = ["parse_set", "nest_sets", "set_labels", "on_set", "given_by_set"]


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """--set a.b=value (value parsed as YAML) -> nested dict."""
    flat: dict[str, Any] = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        if not eq or not _dotted(key):
            said = f"--set {item}" if from_cli() else f"sets item {item!r}"
            raise ValidationError([Issue(f"{said}: expected key=value", file=sets_place(),
                                         hint=f"e.g. {set_hint('region', 'europe-west4', repr('europe-west4'))}")])
        flat[key.strip()] = parse_yaml(raw or '""', sets_place()).data if raw.strip() else ""
    return nest_sets(flat)


def _dotted(key: Any) -> bool:
    return isinstance(key, str) and bool(key.strip()) and all(part.strip() for part in key.split("."))


def nest_sets(sets: Mapping[str, Any] | None) -> dict[str, Any]:
    """Profile overrides with each dotted key (`auth.token_env`, from --set or the API's `sets=`) as the nested
    mapping it names: the API's {'auth.token_env': 'X'} was the unknown key `auth.token_env`."""
    out: dict[str, Any] = {}
    for key, value in (sets or {}).items():
        if not _dotted(key):
            raise ValidationError([Issue(f"{key!r}: not a profile key", file=sets_place(),
                                         hint="give keys as text, dotted for nested ones: region, auth.token_env")])
        cur = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(cur.get(part), dict):  # {'auth': 'x', 'auth.token_env': 'y'}: the later key wins
                cur[part] = {}
            cur = cur[part]
        last = parts[-1]
        both = isinstance(value, Mapping) and isinstance(cur.get(last), dict)
        cur[last] = {**cur[last], **value} if both else value
    return out


def set_labels(given: dict, written: dict, issues: list[Issue]) -> dict:
    """`given` (--set labels.*) without a label that is one of the profile's `written` under another spelling
    (`--set labels.team=x` over `Team: ML`: 'keep one' said nothing of replacing it), each said with how to replace
    it: the profile's own key."""
    kept = {}
    for key, value in given.items():
        twin = next((o for o in written if o != key and gcp_label(o, key=True) == gcp_label(key, key=True)), None)
        if twin is None:
            kept[key] = value
            continue
        issues.append(Issue(f"`{key}` is the profile's label `{twin}` on Vertex (lowercase, `-` for other "
                            "characters), so both would be one label", path=f"labels.{key}", file=sets_place(),
                            hint=f"to replace the profile's, name it as the profile does: "
                                 f"{set_hint(f'labels.{twin}', str(value), repr(value))}"))
    return kept


def on_set(issue: Issue) -> Issue:
    """An issue of a value --set (the API's sets=) gave, blamed on it; YAML's quotes (`--set labels.cc=4200` read as a
    number) said as a command line keeps them: the shell drops the quotes of `--set labels.cc="4200"`."""
    hint = issue.hint
    if hint and hint == quote_hint(issue.value, "str") and from_cli():
        text = str(issue.value).lower() if isinstance(issue.value, bool) else str(issue.value)
        hint += f"; on a command line, inside the shell's quotes: --set '{issue.path}=\"{text}\"'"
    if hint == MAPPING_HINT:  # `--set labels=[team=ml]`: not YAML lines under a key, one dotted key per entry
        name, value = ("team", "ml") if issue.path == "labels" else ("NAME", "VALUE")
        hint = f"give each entry its own dotted key: {set_hint(f'{issue.path}.{name}', value, repr(value))}"
    if issue.message.startswith(LABEL_ONE_TEXT):  # `--set labels.team=[a]`: YAML's `team: "..."` is no command line
        one = (f"inside the shell's quotes if it holds brackets or braces: --set '{issue.path}=\"...\"'" if from_cli()
               else f"a str: {set_hint(issue.path, python=repr('...'))}")
        hint = f"write one text, {one}; a label per value needs a key each"
    return replace(issue, file=sets_place(), line=None, col=None, hint=hint)


def given_by_set(sets: Mapping[str, Any], path: tuple) -> bool:
    """Whether --set gave the value at `path` (itself, or a mapping holding it)."""
    cur: Any = sets
    for part in path:
        if not isinstance(cur, Mapping):
            return True
        if part not in cur:
            return False
        cur = cur[part]
    return bool(path)
