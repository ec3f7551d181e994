"""Where a line of kfp's copy of your python component is in your file.

kfp runs a copy of the component function's source (`ephemeral_component.py` in a temp folder that is
gone once the step ends), so a traceback names that copy's lines, not your file's. The copy is the
function from its `def` line on (decorators dropped), so a line of the copy is the same line of your
file shifted by a constant. The local runner maps a failed step's frame with it (backends/local/user_frames);
the compiler gives it to the failure boundary of a python step on kubeflow and vertex (components/boundary).
"""

from __future__ import annotations

import inspect
import os
import textwrap
from dataclasses import dataclass
from typing import Any

__all__ = ["SourceMap", "source_map"]


@dataclass(frozen=True)
class SourceMap:
    file: str  # absolute, on this machine
    offset: int  # the line in your file = the line in the copy + offset
    module: str = ""  # the function's module, dotted (`mypkg.steps`)

    @property
    def shown(self) -> str:
        """The file as its module names it (`mypkg/steps.py`): the same on every machine, so compiled output
        holding it stays byte-identical."""
        parts = self.module.split(".") if self.module and self.module != "__main__" else []
        name = os.path.basename(self.file)
        if not parts or os.path.splitext(name)[0] not in (parts[-1], "__init__"):
            return name
        folders = parts if name == "__init__.py" else parts[:-1]
        return "/".join([*folders, name])


def _def_line(lines: list[str]) -> int | None:
    """1-based line of the first `def` at the left margin (as kfp finds the function in its source)."""
    return next((i + 1 for i, ln in enumerate(lines) if ln.startswith("def ")), None)


def source_map(component: Any) -> SourceMap | None:
    """The map of a python component (a kfp function component); None for others or when its source is not there."""
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
    return SourceMap(file, start - 1 + mine - theirs, getattr(func, "__module__", "") or "")
