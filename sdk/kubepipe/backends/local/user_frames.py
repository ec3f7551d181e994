"""Where in your code a python component's step failed.

The traceback of a failed step names the lines of kfp's copy of your component (catalog/source_map): mapped
back, the step's error says `at mycomps.py:19, in total` (or the line of another module of yours it called).
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from kubepipe.catalog.source_map import SourceMap, source_map
from kubepipe.catalog.user_modules import code_place, library_file

__all__ = ["SourceMap", "source_maps", "user_frame"]

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


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
