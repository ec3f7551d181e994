"""Your `package.module:function` components, found in your repository without PYTHONPATH.

`kubepipe` is a console script, so the folder it is started from is not on `sys.path` (as it is for
`python -m`). A module that Python cannot import as things stand is looked for next to the pipeline
file, then in each folder above it (the nearest first): the first folder holding `module.py`, or the
folder `package/` of `package.module`, is appended to `sys.path`, after the installed packages, so an
installed module of the same name is never shadowed. A local run puts the same folder on PYTHONPATH
for its steps, so a component's body can import your other modules too (docs/decisions/0008).

In a long-lived process (a notebook, a scheduler, a script running several pipelines), a module of your
repository edited since it was imported is imported again by the next validate / compile / run, with every
other module of that repository, since one may import from another (`fresh_imports`); and a module of the
same name that an earlier pipeline imported from another repository gives way to this repository's
(`take_over`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import sysconfig
import threading
import traceback
from pathlib import Path
from typing import Any, Iterable

__all__ = ["USER_IMPORTS", "module_root", "make_importable", "fresh_imports", "note_imports", "take_over", "failed_at",
           "shadowed_note", "code_place", "library_file",
           "roots_of_refs", "ref_modules", "module_files", "repository_imports"]

# held around finding, evicting and importing a user module: sys.modules is one per process, and threads share it;
# and around building a pipeline (compiler.compile_plan): kfp's pipeline context, which a user module's @dsl.pipeline
# enters on import too, is one per process as well
USER_IMPORTS = threading.RLock()


def _installed(top: str) -> bool:
    """Whether Python finds `top` as things stand (a namespace folder somewhere does not count)."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):  # a broken package: importing it says why
        return True
    return spec is not None and spec.origin is not None


def module_root(module: str, base_dir: Path) -> Path | None:
    """The nearest folder at or above `base_dir` that holds the top package of `module` (dotted), or None."""
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    start = base_dir.resolve()
    for d in [start, *start.parents]:
        package = (d / parts[0] / "__init__.py").is_file() if len(parts) == 1 else (d / parts[0]).is_dir()
        if package or (d / f"{parts[0]}.py").is_file():
            return d
    return None


def make_importable(module: str, base_dir: Path) -> Path | None:
    """The folder at or above `base_dir` that holds `module`, put on sys.path if it is not there; None when
    there is none, or when Python finds another module of that name (installed: it is not shadowed)."""
    root = module_root(module, base_dir)
    if root is None or str(root) in sys.path:
        return root
    if _installed(module.split(".")[0]):
        return None
    sys.path.append(str(root))
    importlib.invalidate_caches()
    return root


_STAMPS: dict[str, tuple[int, int] | None] = {}  # a repository module's file -> (mtime_ns, size) as imported


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _repository_modules(root: Path) -> dict[str, str]:
    """Imported modules (name -> file) whose file lies in the repository at `root`: not Python's own, an
    installed package's (a virtualenv inside the repository) or kubepipe's."""
    # by the text of the path first: realpath of every module a notebook has (2,000 with torch) took 0.5 s a step
    prefixes = tuple({str(root) + os.sep, os.path.realpath(root) + os.sep})
    found = {}
    # one C-level copy: list(items()) builds a tuple per module, and a collection it triggers can run code that
    # imports ('dictionary changed size during iteration' in CI, two kubepipe.run in threads)
    for name, mod in sys.modules.copy().items():
        path = (getattr(mod, "__dict__", None) or {}).get("__file__")  # no lazy module's __getattr__ runs
        if isinstance(path, str) and path.startswith(prefixes) and not library_file(path):
            found[name] = path
    return found


def note_imports(root: Path | None) -> None:
    """Remember the files of the repository's imported modules as they are now (see `fresh_imports`)."""
    if root is not None:
        for path in _repository_modules(root).values():
            _STAMPS.setdefault(path, _stamp(path))


def fresh_imports(root: Path | None) -> list[str]:
    """When a module of the repository at `root` was edited (or removed) since it was imported, every module of
    that repository leaves sys.modules, so that the next import reads the files as they are; the edited ones."""
    if root is None:
        return []
    modules = _repository_modules(root)
    edited = [name for name, path in modules.items() if path in _STAMPS and _STAMPS[path] != _stamp(path)]
    if edited:
        for name, path in modules.items():
            sys.modules.pop(name, None)
            _STAMPS.pop(path, None)
        importlib.invalidate_caches()
    return sorted(edited)


def _loaded_from(module: Any) -> str | None:
    path = getattr(module, "__file__", None)
    if isinstance(path, str):
        return path
    folders = list(getattr(module, "__path__", None) or [])  # a namespace package: its folder
    return folders[0] if folders and isinstance(folders[0], str) else None


def _under(path: str, folder: str) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(folder or ".") + os.sep)


def _roots_own(where: str, root: Path, top: str) -> bool:
    """`where` (a loaded module's file or folder) is `root`'s own `top`: its `top.py` or inside its `top/`, not any
    file under `root` (a repository inside it has its own `top`)."""
    mine = os.path.realpath(root / top)
    path = os.path.realpath(where)
    return path in (mine, mine + ".py") or path.startswith(mine + os.sep)


def take_over(module: str, root: Path | None) -> None:
    """When `module` is imported already from another repository's folder (the pipeline run before, in this
    process, had its own `steps.py`), that module and its submodules leave sys.modules and `root` goes on sys.path
    ahead of that folder, so the import reads this repository's: the second pipeline ran the first's `steps:train`,
    silently. A module installed or of Python's own is left as it is (make_importable never shadows one)."""
    top = module.split(".")[0]
    loaded = sys.modules.get(top)
    where = _loaded_from(loaded) if loaded is not None else None
    if root is None or where is None or library_file(where) or _roots_own(where, root, top):
        return
    for name in [n for n in sys.modules.copy() if n == top or n.startswith(top + ".")]:
        sys.modules.pop(name, None)
    mine = str(root)
    if mine in sys.path:
        sys.path.remove(mine)
    at = next((i for i, entry in enumerate(sys.path) if isinstance(entry, str) and _under(where, entry)),
              len(sys.path))
    sys.path.insert(at, mine)
    importlib.invalidate_caches()


_REF = re.compile(r"^([A-Za-z_][\w.]*):[A-Za-z_]\w*$")


def ref_modules(values: Iterable[Any]) -> list[str]:
    """The modules of the `package.module:Name` strings among `values` (nested lists and dicts too): a step's own
    class, such as train-torch's `architecture: mymodels:TinyNet`."""
    found: dict[str, None] = {}
    stack = list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str) and (m := _REF.match(v)):
            found[m.group(1)] = None
    return list(found)


def roots_of_refs(values: Iterable[Any], base_dir: Path) -> list[Path]:
    """The folders at or above `base_dir` holding the modules of `package.module:Name` strings among `values`."""
    roots = (module_root(module, base_dir) for module in ref_modules(values))
    return list(dict.fromkeys(root for root in roots if root is not None))


def module_files(module: str, base_dir: Path) -> list[Path]:
    """The files of your repository's `module` (dotted) as `module_root` finds it from `base_dir`: its `.py` file,
    or every `.py` file of its package folder; none when it is not there."""
    root = module_root(module, base_dir)
    if root is None:
        return []
    path = root.joinpath(*module.split("."))
    if path.with_suffix(".py").is_file():
        return [path.with_suffix(".py")]
    return sorted(path.rglob("*.py")) if path.is_dir() else []


def repository_imports(component: Any, root: str | Path) -> list[str]:
    """The modules of the repository at `root` that a python component's function imports in its body (the body
    alone runs in the step's container, so they must be installed there), e.g. `mypkg` for `from mypkg import x`."""
    import ast

    try:
        tree = ast.parse(component.component_spec.implementation.container.command[-1])
    except (AttributeError, IndexError, SyntaxError, TypeError):
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module.split(".")[0])
    return [n for n in dict.fromkeys(names) if module_root(n, Path(root)) == Path(root)]


def shadowed_note(module: str, base_dir: Path) -> str | None:
    """When the repository has its own `module` but Python imports another of that name (the standard library's
    `json`, an installed `datasets`): which one, and what to do."""
    top = module.split(".")[0]
    root = module_root(module, base_dir)
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if root is None or spec is None or spec.origin is None:
        return None
    mine = root / top if (root / top).is_dir() else root / f"{top}.py"
    if Path(spec.origin).resolve().is_relative_to(mine.resolve()):
        return None
    return (f"Python imports `{top}` from {spec.origin}, not your {mine}: rename your module "
            f"(e.g. `{top}_steps`), as an installed or standard module of the same name always wins")


def library_file(filename: str) -> bool:
    """Python's own files, installed packages and kubepipe: not where your module went wrong."""
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return True
    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(str(Path(__file__).resolve().parents[1]))  # kubepipe itself
    components = importlib.util.find_spec("kubepipe.components")  # its built-ins: a folder of their own in a checkout
    roots.update(components.submodule_search_locations or () if components else ())
    path = os.path.realpath(filename)
    return any(path.startswith(os.path.realpath(r) + os.sep) for r in roots)


def failed_at(exc: BaseException) -> str | None:
    """`file:line` in your code where importing a module failed: a SyntaxError's own place, else the innermost
    frame of the traceback outside Python, installed packages and kubepipe; None when there is none."""
    where: tuple[str, int | None]
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        where = (exc.filename, exc.lineno)
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if not library_file(f.filename)]
        if not frames:
            return None
        where = (frames[-1].filename, frames[-1].lineno)
    return code_place(*where)


def code_place(filename: str, line: int | None) -> str:
    """`file:line` as an error shows it: relative to the working directory when the file is below it."""
    path = Path(filename)
    try:
        shown = path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = path
    return f"{shown}:{line}" if line is not None else str(shown)
