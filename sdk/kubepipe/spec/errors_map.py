"""Turn pydantic errors into located, human issues (YAML path, line:col, hint)."""

from __future__ import annotations

import types
import typing
from typing import Any, Mapping, Sequence

from pydantic import BaseModel

from kubepipe.errors import Issue
from kubepipe.resources import memory_problem
from kubepipe.spec.values import exponent_hint, quote_hint
from kubepipe.spec.source import Locator
from kubepipe.util import HTTP_URL, IMAGE_REF, K8S_NAME, closest, did_you_mean, k8s_name_like

__all__ = ["issues_from_pydantic", "MAPPING_HINT", "LABEL_ONE_TEXT", "known_keys", "meant_key"]

LABEL_ONE_TEXT = "a label's value is one text"  # `team: [a]`: the message begins so (a --set one's hint differs)
MAPPING_HINT = "write `name: value` lines under it, or leave the key out"  # a YAML file's advice for a mapping


def issues_from_pydantic(errors: Sequence[Mapping[str, Any]], data: Any, locator: Locator, root: type[BaseModel],
                         prefix: tuple = ()) -> list[Issue]:
    out: list[Issue] = []
    seen: set[tuple] = set()
    cleaned = [(_clean_loc(err["loc"], data), err) for err in errors]
    deeper = {p[:i] for p, _ in cleaned for i in range(len(p))}
    meant = {m for p, err in cleaned if err["type"] == "extra_forbidden" and (m := meant_key(root, p)) is not None}
    misplaced = _keys_read_as_steps(cleaned, data, root)
    for path, above in misplaced.items():
        out.append(locator.issue(prefix + path, f"`{path[1]}:` is indented as a step name, so it reads as a step "
                                 f"named `{path[1]}`", hint=f"indent it under its step{f' (`{above}`)' if above else ''}"
                                 f", as deep as that step's `component:`"))
    for path, err in cleaned:
        if path[:2] in misplaced:
            continue  # its key-by-key errors ('missing `component`', 'unknown key `epochs`') would mislead
        if err["type"] == "missing" and path in meant:
            continue  # `componnet:`: its did-you-mean says it; 'missing `component`' would be the same twice
        if path in deeper and err["type"].endswith("_type"):
            continue  # a union branch that did not apply; the deeper error says more
        etype = err["type"]
        key = (path, etype if etype in ("extra_forbidden", "missing") else "value")
        if key in seen:
            continue  # one message per place; unions report every branch
        seen.add(key)
        out.append(_issue(err, path, data, locator, root, prefix))
    return out


def _keys_read_as_steps(cleaned: list, data: Any, root: type[BaseModel]) -> dict[tuple, str | None]:
    """("steps", key) -> the step above it, for each step named like a step's own key (`with`, `inputs`, `when`)
    that has no `component` and errors: that key, dedented to a step name's depth, which validate reported as
    'steps.with.component: missing' and 'steps.with.epochs: unknown key; component parameters go under `with:`'."""
    steps = data.get("steps") if isinstance(data, dict) else None
    keys = known_keys(root, ("steps", "")) if isinstance(steps, dict) else None
    if not keys or not isinstance(steps, dict):
        return {}
    names, failed = list(steps), {p[1] for p, _ in cleaned if len(p) > 1 and p[0] == "steps"}
    return {("steps", n): (names[i - 1] if i else None) for i, n in enumerate(names)
            if n in keys and n in failed and not (isinstance(steps[n], dict) and "component" in steps[n])}


def _issue(err: Mapping[str, Any], path: tuple, data: Any, locator: Locator, root: type[BaseModel],
           prefix: tuple) -> Issue:
    etype, msg = err["type"], err["msg"]
    full = prefix + path
    if etype == "extra_forbidden":
        allowed = _fields_at(root, path[:-1])
        hint = did_you_mean(path[-1], allowed) or (
            f"allowed keys: {', '.join(sorted(allowed))}" if allowed else None)
        if "with" in allowed and "component" in allowed and not did_you_mean(path[-1], allowed):
            hint = "component parameters go under `with:`"
        return locator.issue(full, f"unknown key `{path[-1]}`", hint=hint)
    if etype == "missing":
        return locator.issue(full, f"missing required key `{path[-1]}`",
                             hint="add it (see `kubepipe schema`)")
    if etype == "too_short" and path == ("steps",):  # was "dictionary should have at least 1 item after validation"
        return locator.issue(full, "a pipeline needs at least one step",
                             hint="add one under `steps:` (`kubepipe components` lists them)")
    value = _value_at(data, path)
    if etype in ("model_type", "dict_type"):  # was "input should be a valid dictionary or instance of Param"
        got = "nothing (an empty key)" if value is None else f"{type(value).__name__} {_short(value)!r}"
        model = _model_at(root, path)
        needed = [f.alias or n for n, f in model.model_fields.items() if f.is_required()] if model else []
        hint = (f"it needs {', '.join(f'`{k}:`' for k in needed)}" if needed else
                f"its keys: {', '.join(sorted(_fields_at(root, path)))}" if model else
                MAPPING_HINT)
        return locator.issue(full, f"expected a mapping, got {got}", hint=hint)
    if etype == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return locator.issue(full, f"must be one of {expected}", value=_short(value))
    if etype == "string_pattern_mismatch" and path and path[-1] == "name":
        return locator.issue(full, "must be lowercase letters, digits and dashes, starting and ending with a letter "
                             "or digit (max 63)", value=_short(value),
                             hint=f"e.g. {k8s_name_like(value) or 'merchant-categorizer'}")
    if etype == "string_too_long" and isinstance(value, str):  # was 'string should have at most 63 characters'
        most = err.get("ctx", {}).get("max_length")
        return locator.issue(full, f"is {len(value)} characters long, at most {most} are allowed",
                             value=_short(value), hint="shorten it")
    if etype == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == K8S_NAME:
        return locator.issue(full, "must be a Kubernetes name: lowercase letters, digits and '-', starting and ending "
                             "with a letter or digit, at most 63", value=_short(value))
    if etype == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == HTTP_URL:
        return locator.issue(full, url_problem(value), value=_short(value),
                             hint="write the URL alone, e.g. http://prometheus-operated.monitoring:9090")
    if etype == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == IMAGE_REF:  # was the regex
        return locator.issue(full, "must be a container image, one word without spaces" if value else
                             "is empty: a container image is needed here", value=_short(value) if value else None,
                             hint="e.g. REG/kubepipe-runtime@sha256:... (`kubepipe image build` makes one), or leave "
                                  "it out for the default")
    if etype == "string_pattern_mismatch" and path and path[-1] == "memory":
        return locator.issue(full, memory_problem(value) or "expected a memory amount like 512Mi or 16Gi",
                             value=_short(value))
    text = msg[0].lower() + msg[1:] if msg else "invalid value"
    if text.startswith("value error, "):
        text = text[len("value error, "):]
    hint = quote_hint(value, "str") if etype == "string_type" else None  # `version: 1.10`, `team: yes`
    if value is None and etype.endswith("_type") and _has(data, path):  # `team: null`: Issue shows no None
        text += " (got null)"
        hint = hint or ("give it a zone such as `UTC` or `Europe/Stockholm`, or leave the key out (UTC)"
                        if tuple(full) == ("schedule", "timezone")  # an empty zone is refused (check_timezone)
                        else "give it a value (`''` for empty text), or leave the key out" if etype == "string_type"
                        else "give it a value, or leave the key out")
    elif isinstance(value, (dict, list)) and etype.endswith("_type"):  # nor a mapping or list: it may be long
        got = 'mapping' if isinstance(value, dict) else 'list'
        text += f" (got a {got})"
        if etype == "string_type" and len(full) >= 2 and full[-2] == "labels":  # `team: [a]`: said nothing more
            text = f"{LABEL_ONE_TEXT}, not a {got}"
            hint = (f"write one text, quoted if it holds brackets or braces: `{full[-1]}: \"...\"`; "
                    "a label per value needs a key each")
    elif etype == "list_type" and isinstance(full[-1], str):  # `after: b`, `include: x.yaml`: said nothing to do
        hint = f"write a list, even of one item: `{full[-1]}: [{_short(str(value))}]`, or `- item` lines under it"
    else:
        hint = hint or exponent_hint(value)  # `timeout: 1e3`: text in YAML 1.1
    return locator.issue(full, text, value=_short(value), hint=hint)


def url_problem(value: Any) -> str:
    """What keeps `value` from being an http(s) URL (HTTP_URL): pydantic said only 'string should match pattern'."""
    text = str(value)
    if not text.lower().startswith(("http://", "https://")):
        return "must be an http:// or https:// URL"
    at = next((i for i, c in enumerate(text) if c.isspace() or ord(c) < 32 or ord(c) == 127), None)
    if at is None:
        return "must be an http:// or https:// URL with a host"
    c = text[at]
    what = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a line break"}.get(
        c, f"a control character (U+{ord(c):04X})" if ord(c) < 32 or ord(c) == 127 else f"a space (U+{ord(c):04X})")
    where = "at its end" if not text[at:].strip() else f"at character {at + 1}"
    return f"must be an http(s) URL without spaces or control characters: it holds {what} {where}"


_MISSING = object()


def _has(data: Any, path: tuple) -> bool:
    """Whether the data holds `path` (with any value, None too)."""
    return _value_at(data, path, _MISSING) is not _MISSING


def _short(value: Any) -> Any:
    """The value an issue shows: a URL's password and credential query values redacted (a signed URL refused at
    registry_uri was echoed whole), at most 80 characters."""
    if isinstance(value, str):
        from kubepipe.secrets import redact_url

        value = redact_url(value)
    if isinstance(value, str) and len(value) > 80:
        return value[:77] + "..."
    return value


def _clean_loc(loc: tuple, data: Any) -> tuple:
    """Drop pydantic's union-branch tags: keep only parts that walk the data."""
    out: list = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and isinstance(part, str) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and not _looks_like_tag(part):
            out.append(part)  # a missing key: name it
            cur = None
        else:
            continue
    return tuple(out)


def _looks_like_tag(part: str) -> bool:
    # pydantic names union branches after types: 'int', 'RetryPolicy', 'function-after[...]'.
    return part[:1].isupper() or part in {"int", "str", "float", "bool", "list", "dict", "none"} \
        or "[" in part


def _value_at(data: Any, path: tuple, missing: Any = None) -> Any:
    """The value at `path` in the data, or `missing` where it holds none."""
    cur = data
    for part in path:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return missing
    return cur


def meant_key(root: type[BaseModel], path: tuple) -> tuple | None:
    """The path of the key an unknown one at `path` (`componnet`) is closest to, or None."""
    meant = closest(path[-1], known_keys(root, path[:-1]) or ()) if path else None
    return None if meant is None else path[:-1] + (meant,)


def known_keys(root: type[BaseModel], path: tuple) -> set[str] | None:
    """The keys the model at `path` (under `root`) takes, or None where no model holds the keys (labels, `with:`)."""
    model = _model_at(root, path)
    return None if model is None else {f.alias or name for name, f in model.model_fields.items()}


def _fields_at(root: type, path: tuple) -> set[str]:
    model = _model_at(root, path)
    if model is None:
        return set()
    return {f.alias or name for name, f in model.model_fields.items()}


def _model_at(tp: Any, path: tuple) -> type[BaseModel] | None:
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next((f for n, f in tp.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            tp = field.annotation
            continue
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (dict, typing.Dict) and len(args) == 2:
            tp = args[1]
        elif origin in (list, typing.List) and args:
            tp = args[0]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
        for arg in typing.get_args(tp):
            if typing.get_origin(arg) in (dict, list):
                return arg
    return tp
