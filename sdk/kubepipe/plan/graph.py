"""Mermaid flowchart of a plan: steps, wiring, conditions and the exit step."""

from __future__ import annotations

from kubepipe.plan.model import OutputRef, Plan

__all__ = ["to_mermaid"]


def _id(name: str) -> str:
    return "s_" + name.replace("-", "_")


_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;"}


def _quoted(text: str) -> str:
    """Text as it reads inside a Mermaid label, one line. A `"` (a `when:` comparing with "ok") ended the quoted
    string, so the chart did not render; `<b>` was HTML to Mermaid and `#amp;` its escape of `&`."""
    return "".join(_ENTITIES.get(c, c) for c in " ".join(text.split()))


def to_mermaid(plan: Plan) -> str:
    lines = ["flowchart TD"]
    by_name = {s.name: s for s in plan.steps}
    for s in plan.steps:
        label = f"{s.name}<br/><small>{_quoted(s.info.ref)}</small>"
        if s.condition and all(by_name[d].condition == s.condition for d in s.deps):  # on no edge into it
            label += f"<br/><small>when {_quoted(s.condition.text)}</small>"
        shape = f'{{{{"{label}"}}}}' if s.foreach is not None else f'["{label}"]'
        lines.append(f"    {_id(s.name)}{shape}")
    for s in plan.steps:
        wired: dict[str, list[str]] = {}
        for inp, b in s.args.items():
            if isinstance(b, OutputRef):
                wired.setdefault(b.step, []).append(f"{b.output}→{inp}")
        for d in s.deps:
            label = ", ".join(wired.get(d, []))
            cond = s.condition.text if s.condition and by_name[d].condition != s.condition else ""
            text = " | ".join(t for t in (label, f"when {cond}" if cond else "") if t)
            arrow = f' -- "{_quoted(text)}" -->' if text else " -->"
            lines.append(f"    {_id(d)}{arrow} {_id(s.name)}")
    if plan.exit_step:
        lines.append(f'    {_id("on_exit")}(["on_exit: {_quoted(plan.exit_step.info.ref)}"])')
        needed = {d for o in plan.steps for d in o.deps}
        lasts = [s.name for s in plan.steps if s.name not in needed]
        for n in lasts:
            lines.append(f"    {_id(n)} -. finally .-> {_id('on_exit')}")
    return "\n".join(lines) + "\n"
