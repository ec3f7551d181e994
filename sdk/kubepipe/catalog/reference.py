"""The component reference: what `kubepipe components [NAME]` prints and docs/components.md holds.

One source for both: each component's signature and docstring (for built-ins, cached in
components/builtins.lock.json, so listing the catalog imports neither kfp nor a component module),
plus, for built-ins, the allowed values its compile-time check uses and an example step
(`Builtin.reference`). A `package.module:function` or a YAML file gets its signature and docstring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubepipe.catalog.resolve import builtin_names, load_builtin_reference, resolve_component

__all__ = ["component_reference", "catalog_reference", "reference_markdown", "nested_input_hint"]


def _allowed(a: Any) -> dict | None:
    if a is None:
        return None
    return {"values": list(a.values), "note": a.note, "by": dict(a.by) if a.by else None,
            "by_label": list(a.by_label) if a.by else None}


def component_reference(ref: str, base_dir: Path | str = ".") -> dict:
    """Everything a user needs to write a step with this component, as plain data (the JSON shape)."""
    info = resolve_component(ref, Path(base_dir))
    extra = load_builtin_reference(ref) if info.origin == "builtin" else None
    allowed = dict(extra.allowed) if extra else {}
    inputs = []
    for name, port in info.user_inputs.items():
        inputs.append({"name": name, "kind": port.kind, "type": f"{port.type}[]" if port.is_list else port.type,
                       "required": port.required, "default": None if port.required else port.default,
                       "description": port.description, "allowed": _allowed(allowed.get(name))})
    outputs = [{"name": name, "kind": port.kind, "type": port.type, "description": port.description}
               for name, port in info.outputs.items()]
    return {"name": ref, "origin": info.origin, "summary": info.summary, "description": info.description,
            "inputs": inputs, "outputs": outputs, "example": extra.example if extra else None}


def nested_input_hint(ref: str, key: str) -> str | None:
    """Where a built-in takes `key` one level down, for a key given as an input it does not have: train-torch's
    `max_length: 64` is a hyperparameter (`with: {hyperparameters: {max_length: 64}}`), of the architectures
    its reference lists it for. None when no input of `ref` holds such a key."""
    extra = load_builtin_reference(ref) if ref in builtin_names() else None
    for name, allowed in (extra.allowed if extra else {}).items():
        cases = [case for case, keys in (allowed.by or {}).items() if key in [k.strip() for k in str(keys).split(",")]]
        if cases:
            of = "" if len(cases) == len(allowed.by) else f" ({allowed.by_label[0]}: {', '.join(cases)})"
            return f"`{key}` is a setting inside `{name}`{of}: write `with: {{{name}: {{{key}: ...}}}}`"
    return None


def catalog_reference() -> list[dict]:
    """Every built-in's reference, by name."""
    return [component_reference(name) for name in sorted(builtin_names())]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_INLINE = 12  # more allowed values than this are counted in the table's cell and listed below it


def allowed_text(a: dict | None, quote: str = "") -> str:
    """An input's allowed values for its table cell: the values (each in `quote`s), or their count when they are
    many (`long_lists` gives those, to list below the table), then the note."""
    if not a:
        return ""
    shown = ", ".join(f"{quote}{v}{quote}" for v in a["values"]) if len(a["values"]) <= _INLINE else \
        f"{len(a['values'])} names, listed below"
    return "; ".join(x for x in (shown, a["note"]) if x)


def long_lists(c: dict) -> list[tuple[str, list[str]]]:
    """(input, its allowed values) of each input whose cell only counts them (allowed_text) and that has no table
    of its own per value (validate-data's expectations, listed with their arguments)."""
    return [(i["name"], list(i["allowed"]["values"])) for i in c["inputs"]
            if i["allowed"] and len(i["allowed"]["values"]) > _INLINE and not i["allowed"]["by"]]


def _default(i: dict) -> str:
    return "required" if i["required"] else f"`{i['default']!r}`"


def _markdown_one(c: dict) -> list[str]:
    out = [f"## `{c['name']}`", "", c["description"] or c["summary"], "", "| input | type | default | meaning | allowed |",
           "|---|---|---|---|---|"]
    for i in c["inputs"]:
        out.append(f"| `{i['name']}` | {i['type']} | {_cell(_default(i))} | {_cell(i['description'])} | "
                   f"{_cell(allowed_text(i['allowed'], '`'))} |")
    for i in c["inputs"]:
        a = i["allowed"]
        if a and a["by"]:
            label, what = a["by_label"]
            out += ["", f"`{i['name']}`: {what} per {label}", "", f"| {label} | {what} |", "|---|---|"]
            out += [f"| `{k}` | {_cell(v)} |" for k, v in a["by"].items()]
    for name, values in long_lists(c):
        out += ["", f"`{name}`: the {len(values)} names: " + ", ".join(f"`{v}`" for v in values)]
    out += ["", "| output | type | meaning |", "|---|---|---|"]
    out += [f"| `{o['name']}` | {o['type']} | {_cell(o['description'])} |" for o in c["outputs"]]
    if c["example"]:
        out += ["", "Example:", "", "```yaml", c["example"], "```"]
    return out + [""]


def reference_markdown() -> str:
    """docs/components.md (a test regenerates it and compares)."""
    comps = catalog_reference()
    lines = ["# Component reference", "",
             "<!-- generated by `kubepipe components --format markdown -o docs/components.md`; do not edit -->", "",
             "The built-in components, generated from each component's docstring and the allowed values its "
             "compile-time check uses (`kubepipe components NAME` prints the same). `with:` sets the parameters, "
             "`inputs:` wires artifacts and run-time values from other steps. A step can also use your own "
             "`package.module:function` (`@dsl.component`) or a KFP component / compiled pipeline YAML file by "
             "path; `kubepipe components package.module:function` shows its signature and docstring.", ""]
    lines += [f"- [`{c['name']}`](#{c['name']}): {c['summary']}" for c in comps] + [""]
    for c in comps:
        lines += _markdown_one(c)
    return "\n".join(lines).rstrip("\n") + "\n"
