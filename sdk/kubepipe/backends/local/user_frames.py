"""Where in your code a python component's step failed.

kfp runs a copy of the component function's source (`ephemeral_component.py` in a temp folder that is
gone once the step ends), so the traceback of a failed step names that copy's lines, not your file's.
The copy is the function from its `def` line on (decorators dropped), so a line of the copy is the same
line of your file shifted by a constant: the step's error then says `at mycomps.py:19, in total`
(or the line of another module of yours it called).
"""

from __future__ import annotations

import inspect
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Iterable

from kubepipe.catalog.user_modules import code_place, library_file

__all__ = ["SourceMap", "source_maps", "user_frame"]

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


@dataclass(frozen=True)
class SourceMap:
    file: str
    offset: int  # the line in your file = the line in the copy + offset


def _def_line(lines: list[str]) -> int | None:
    """1-based line of the first `def` at the left margin (as kfp finds the function in its source)."""
    return next((i + 1 for i, ln in enumerate(lines) if ln.startswith("def ")), None)


def source_map(component: Any) -> SourceMap | None:
    func = getattr(component, "python_func", None)
    if func is None:
        return None
    try:
        lines, start = inspect.getsourcelines(func)
        file = inspect.getsourcefile(func)
        copy = component.component_spec.implementation.container.command[-1]
    except (AttributeError, IndexError, OSError, TypeError):
        return None
    mine, theirs = _def_line(textwrap.dedent("".join(lines)).split("\n")), _def_line(copy.split("\n"))
    if file is None or mine is None or theirs is None:
        return None
    return SourceMap(file, start - 1 + mine - theirs)


def source_maps(steps: Iterable[Any]) -> dict[str, SourceMap]:
    """Plan step name -> the map of its python component (other components have none)."""
    out = {}
    for step in steps:
        if step.info.origin == "python":
            found = source_map(step.info.component)
            if found is not None:
                out[step.name] = found
    return out


def user_frame(lines: list[str], smap: SourceMap | None) -> str | None:
    """`file:line, in function` of the innermost frame of your code in a step's output lines: kfp's copy of your
    component mapped back onto your file, or a module of yours it called (not Python's, a package's, kfp's or
    kubepipe's), such as the model class a built-in step trains."""
    found = None
    for line in lines:
        m = _FRAME.search(line)
        if m is None:
            continue
        file, number, func = m.group(1), int(m.group(2)), m.group(3)
        if file.endswith("/ephemeral_component.py"):  # a built-in's copy (no map) is kubepipe's code
            found = (smap.file, number + smap.offset, func) if smap else found
        elif not library_file(file):
            found = (file, number, func)
    return f"{code_place(found[0], found[1])}, in {found[2]}" if found else None
