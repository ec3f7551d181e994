"""A loop item's inputs where KFP leaves them dangling.

kfp 2.17's compiler gives every group around a `dsl.ParallelFor` an input for each `${item.field}` used inside it
(`pipelinechannel--loop-item-param-N-subvar-FIELD`), the groups outside the loop too, where no item exists: a
`when:` on a `foreach:` step whose with: reads `${item.field}` made an If whose task wires that input from
`loop-item-param-N`, which its parent does not have, and the run failed when the branch ran ('Parent pipeline input
argument 'loop-item-param-2' not found', on kfp.local as on Kubeflow). Putting the If inside the loop instead does
not compile (kfp asserts the whole item is an input of the If's DAG, which it gives only the field). Such inputs
are dropped from the IR: only the loop's own DAG, and the groups inside it, read its item. kfp's own wiring of the
loop is kept as it is; an IR without such inputs (a kfp that no longer writes them) is returned unchanged.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["drop_dangling_loop_inputs"]

_ITEM = re.compile(r"^(?:pipelinechannel--)?(loop-item-param-\d+)")


def drop_dangling_loop_inputs(body: str) -> str:
    """The IR YAML `body` (kfp's: leading comments, then its documents) without a loop item's inputs on groups
    outside that loop; the text itself where there are none."""
    if "-subvar-" not in body:  # only a field of a loop item (`${item.field}`) gets them
        return body
    import yaml

    lines = body.splitlines(keepends=True)
    head = 0
    while head < len(lines) and lines[head].startswith("#"):
        head += 1
    docs = list(yaml.safe_load_all("".join(lines[head:])))
    if not docs or not _drop(docs[0]):
        return body
    return "".join(lines[:head]) + yaml.safe_dump_all(docs, sort_keys=True)  # as kfp writes it (sort_keys)


def _drop(spec: Any) -> bool:
    """Drops them from `spec` (a PipelineSpec as a dict) in place; whether any were there."""
    components = spec.get("components") if isinstance(spec, dict) else None
    root = spec.get("root") if isinstance(spec, dict) else None
    if not isinstance(components, dict) or not isinstance(root, dict):
        return False
    dags = {name: c["dag"] for name, c in components.items() if isinstance(c, dict) and isinstance(c.get("dag"), dict)}
    dags[""] = root.get("dag") or {}
    inside: dict[str, set[str]] = {}  # loop item -> the components that are its loop's DAG or inside it
    for dag in dags.values():
        for task in (dag.get("tasks") or {}).values():
            item = _ITEM.match(str((task.get("parameterIterator") or {}).get("itemInput", "")))
            if item:
                inside.setdefault(item.group(1), set()).update(_below(task["componentRef"]["name"], dags))
    dropped = False
    for dag in dags.values():
        for task in (dag.get("tasks") or {}).values():
            child = task.get("componentRef", {}).get("name")
            given = (task.get("inputs") or {}).get("parameters") or {}
            for name in list(given):
                item = _ITEM.match(name)
                if item and item.group(1) in inside and child not in inside[item.group(1)]:
                    _pop(task, "inputs", "parameters", name)
                    _pop(components.get(child, {}), "inputDefinitions", "parameters", name)
                    dropped = True
    return dropped


def _pop(value: dict, section: str, kind: str, name: str) -> None:
    """`value[section][kind][name]` removed, and what it leaves empty (kfp writes no empty section)."""
    held = value.get(section, {})
    held.get(kind, {}).pop(name, None)
    if not held.get(kind, True):
        del held[kind]
    if section in value and not value[section]:
        del value[section]


def _below(name: str, dags: dict[str, dict]) -> set[str]:
    """`name` and every component its DAG (and theirs) runs."""
    found, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        todo += [t["componentRef"]["name"] for t in (dags.get(current, {}).get("tasks") or {}).values()
                 if "componentRef" in t]
    return found
