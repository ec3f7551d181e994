"""Whether a user's python component can raise GateFailed through the helpers it calls (decision 0010).

kfp runs its own copy of the component's function in the task (the function's source alone); what else the step
runs, it imports from your modules, which the step's image holds (your project image: docs/decisions/0008). So the
walk starts at the function's code and follows, by the objects themselves, what each code object names: the names
it loads (resolved in its module's globals, as Python resolves them), the modules and names it imports, attributes
of your modules, the cells of a closure (a decorated helper), the methods of your classes and the class of your
instances. It goes on only into code defined in your files (not Python's own, an installed package's or kubepipe's:
`user_modules.library_file`), each code object once (cycle-safe), at most `LIMIT` of them; a module the code imports
that is not imported yet is imported only when it is yours. It stops at the first class that is GateFailed or a
subclass of it (by identity: `issubclass`), and says where it found it.

What no walk sees (a name built at run time, a gate raised inside a library the step wraps) the step says itself:
`gate: true` in the pipeline YAML.
"""

from __future__ import annotations

import dis
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Iterator

from kubepipe.catalog.user_modules import USER_IMPORTS, library_file, module_root, note_imports, take_over

__all__ = ["LIMIT", "gate_raised_in"]

LIMIT = 400  # code objects walked for one step: a big repository's helpers are tens; an endless walk is a bug


def gate_raised_in(func: Any, root: str | None = None) -> str | None:
    """Where `func` (a component's python_func) or a helper it reaches names GateFailed or a subclass of it:
    `module.qualname names Class`, None when none does. Past `LIMIT` code objects with more to follow, one may: the
    step is then taken as a gate (that costs its cache; a gate missed would exit 1 remotely, compile notes which).
    `root`: the repository the component was found in (ComponentInfo.import_root): a module of that name another
    repository's folder gave this process earlier gives way to this one's (`user_modules.take_over`), as the step's
    own module does."""
    from kubepipe.components.errors import GateFailed

    code = getattr(func, "__code__", None)
    if not isinstance(code, types.CodeType):
        return None
    todo: list[tuple[types.CodeType, dict, str]] = [(code, getattr(func, "__globals__", {}), _name(func))]
    seen: set[int] = set()
    while todo and len(seen) < LIMIT:
        code, globs, where = todo.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        for obj in _named_by(code, globs, root):
            if _is_gate(obj, GateFailed):
                return f"{where} names {obj.__qualname__}"
            todo += [(c, g, _name(f)) for c, g, f in _code_of(obj) if id(c) not in seen]
    if any(id(c) not in seen for c, _, _ in todo):
        return f"{_name(func)} reaches more than {LIMIT} functions of yours, not all followed"
    return None


def _is_gate(obj: Any, gate: type) -> bool:
    try:
        return isinstance(obj, type) and issubclass(obj, gate)
    except Exception:  # noqa: BLE001 - a metaclass's own __subclasscheck__ failing: not a GateFailed
        return False


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """`code` and the code nested in it: its inner functions, classes, lambdas and comprehensions."""
    stack = [code]
    while stack:
        c = stack.pop()
        yield c
        stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]


def _named_by(code: types.CodeType, globs: dict, root: str | None) -> Iterator[Any]:
    """The objects `code` (and the code nested in it) names: globals it loads, what it imports, and the attributes
    it reads of those that are modules."""
    names: set[str] = set()
    found: list[Any] = []
    for c in _codes(code):
        names.update(c.co_names)
        found += _imported(c, globs, root)
    found += [globs[n] for n in names if n in globs]
    yield from found
    for mod in [o for o in found if isinstance(o, types.ModuleType)]:
        yield from (vars(mod)[n] for n in names if n in vars(mod))


def _imported(code: types.CodeType, globs: dict, root: str | None) -> list[Any]:
    """The modules `code` imports (`import a.b`, `from a import b`, `from .a import b` in `globs`' package) and the
    names it takes from them."""
    out: list[Any] = []
    module = None
    before: list[Any] = [None, None]  # the two constants an IMPORT_NAME follows: its level, its fromlist
    for ins in dis.get_instructions(code):
        if ins.opname == "IMPORT_NAME":
            level = before[0] if isinstance(before[0], int) else 0
            module = _module(_absolute(str(ins.argval), level, globs), root)
            out.append(module)
        elif ins.opname == "IMPORT_FROM" and module is not None:
            name = str(ins.argval)  # vars, not getattr: a lazy module's __getattr__ would import its library
            out.append(vars(module).get(name) or _module(f"{module.__name__}.{name}", root))
        before = [before[1], ins.argval if ins.opname == "LOAD_CONST" else None]
    return [o for o in out if o is not None]


def _absolute(name: str, level: int, globs: dict) -> str:
    """An import's module name as Python resolves it; "" where a relative one has no package to resolve in."""
    if not level:
        return name
    package = globs.get("__package__")
    try:
        return importlib.util.resolve_name("." * level + name, package) if package else ""
    except (ImportError, ValueError):
        return ""


def _module(name: str, root: str | None) -> types.ModuleType | None:
    """Module `name` as imported now; one not imported yet only when it is yours (importing runs its code). None
    when there is none or it does not import."""
    if not name:
        return None
    with USER_IMPORTS:
        if root is not None and name in sys.modules and module_root(name, Path(root)) == Path(root).resolve():
            take_over(name, Path(root))  # this repository holds `name`: its own, not another's imported before
        if name in sys.modules:
            return sys.modules[name]
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.origin or library_file(spec.origin):
            return None
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - your module failing to import at compile time: the task will say why
            return None
        note_imports(Path(spec.origin).parent)  # edited later, the next compile reads it again (fresh_imports)
    return module


def _yours(func: Any) -> bool:
    code = getattr(func, "__code__", None)
    return isinstance(code, types.CodeType) and not library_file(code.co_filename)


def _code_of(obj: Any) -> list[tuple[types.CodeType, dict, Any]]:
    """The code of yours `obj` runs, with the globals it resolves names in: a function's (and its closure's
    cells'), a bound method's, a class's methods (an instance's class's)."""
    if isinstance(obj, (staticmethod, classmethod, types.MethodType)):
        obj = obj.__func__
    if isinstance(obj, property):
        return [x for f in (obj.fget, obj.fset) if f is not None for x in _code_of(f)]
    if isinstance(obj, types.FunctionType):
        if not _yours(obj):
            return []
        cells = [c.cell_contents for c in obj.__closure__ or () if _filled(c)]
        return [(obj.__code__, obj.__globals__, obj), *(x for cell in cells for x in _code_of(cell))]
    if isinstance(obj, (types.ModuleType, types.BuiltinFunctionType)) or obj is None:
        return []
    kind = obj if isinstance(obj, type) else type(obj)
    if not any(_yours(v) for v in vars(kind).values() if isinstance(v, types.FunctionType)):
        return []
    return [x for v in vars(kind).values() if not isinstance(v, type) for x in _code_of(v)]


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True
