"""The environment of a local run's task processes: PYTHONPATH for the user's modules, UTF-8 output, set for the
run only (process_state.run_environ)."""

from __future__ import annotations

import os
from pathlib import Path

from kubepipe.compiler import Compiled

__all__ = ["user_module_path", "utf8_io"]


def user_module_path(compiled: Compiled, env: dict[str, str]) -> dict[str, str]:
    """`env` with the folders your python components were found in (catalog.user_modules) on PYTHONPATH, after
    what is there, so that a step's body imports your other modules as validate imported the component; and so
    the folders of `package.module:Class` values a step takes (train-torch's `architecture: mymodels:TinyNet`)."""
    from kubepipe.catalog.user_modules import roots_of_refs
    from kubepipe.plan.model import Literal

    plan = compiled.plan
    steps = [*plan.steps, *([plan.exit_step] if plan.exit_step else [])]
    literals = [b.value for s in steps for b in s.args.values() if isinstance(b, Literal)]
    classes = roots_of_refs(literals, Path(plan.source_path).parent)
    roots = [s.info.import_root for s in steps] + [str(r) for r in classes]
    extra = list(dict.fromkeys(r for r in roots if r))
    if not extra:
        return env
    before = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (before, *extra) if p)}


def utf8_io(environ) -> dict[str, str]:
    """PYTHONIOENCODING for the steps: UTF-8, as in the image a cluster runs them in. An ASCII one (a CI job's
    PYTHONIOENCODING=ascii) made a step that prints 'café' fail locally with UnicodeEncodeError."""
    current = environ.get("PYTHONIOENCODING", "")
    return {} if current.lower().replace("_", "-").startswith(("utf-8", "utf8")) else {"PYTHONIOENCODING": "utf-8"}

