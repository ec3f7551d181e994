"""Resolve a step's `component:` to a KFP component: built-in name, module:function, or YAML file."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kubepipe.catalog.pip_prelude import PipInstall
from kubepipe.catalog.ports import CONTEXT_INPUTS, Port, ports_of
from kubepipe.catalog.user_modules import (USER_IMPORTS, failed_at, fresh_imports, make_importable, module_root,
                                          note_imports, shadowed_note, take_over)
from kubepipe.errors import UserError
from kubepipe.util import did_you_mean

__all__ = ["ComponentInfo", "CatalogError", "resolve_component", "builtin_names", "load_builtin_check",
           "load_builtin_reference"]

class CatalogError(UserError):
    def __init__(self, message: str, hint: str | None = None):
        # the hint is in the text too: `kubepipe components NAME` prints the error as it is
        super().__init__(f"{message}; {hint}" if hint else message)
        self.message, self.hint = message, hint


@dataclass
class ComponentInfo:
    ref: str
    name: str
    origin: str  # builtin | python | file
    loaded: Any  # the kfp BaseComponent, or a callable that imports it on first use
    inputs: dict[str, Port]
    outputs: dict[str, Port]
    summary: str = ""
    check: Callable[[dict], list] | None = None
    notes: list[str] = field(default_factory=list)
    description: str = ""  # the component's docstring / description
    # third-party files: the pip installs taken out of their commands for a local run, and
    # their kfp-kubernetes settings (which Vertex cannot load)
    pip: list[PipInstall] = field(default_factory=list)
    platform: list[str] = field(default_factory=list)
    paths: tuple[str, ...] = ()  # inputs naming a local file or a URI (see kubepipe.spec.paths)
    local_paths: tuple[str, ...] = ()  # inputs that name a local file on the local target only
    optional_files: tuple[str, ...] = ()  # path inputs whose file may be missing (the step warns and goes on)
    import_root: str | None = None  # the folder of your repository a python component was found in (user_modules)

    @property
    def packages(self) -> list[str]:
        """The component's own packages (packages_to_install), in order, without kfp's."""
        return list(dict.fromkeys(p for inst in self.pip for p in inst.packages))

    @property
    def component(self) -> Any:
        if callable(self.loaded) and not hasattr(self.loaded, "component_spec"):
            self.loaded = self.loaded()
        return self.loaded

    def check_with(self, values: dict, **context: Any) -> list:
        """The compile-time check of `with:` values. `context` is what the target profile says (target,
        deployment_mode, prometheus_url, gpu_types); a check gets the names it takes, as its step gets them
        at run time."""
        if not self.check:
            return []
        params = inspect.signature(self.check).parameters
        return self.check(values, **{k: v for k, v in context.items() if k in params}) or []

    @property
    def user_inputs(self) -> dict[str, Port]:
        return {n: p for n, p in self.inputs.items() if n not in CONTEXT_INPUTS and p.type != "task_status"}


def builtin_names() -> dict[str, str]:
    from kubepipe.components.builtins import BUILTINS

    return {name: b.summary for name, b in BUILTINS.items()}


def builtin_paths(name: str) -> tuple[str, ...]:
    """The inputs of built-in `name` that name a local file on the local target (none for other components)."""
    from kubepipe.components.builtins import BUILTINS

    b = BUILTINS.get(str(name).strip())
    return (*b.paths, *b.local_paths) if b else ()


def load_builtin_check(name: str) -> Callable | None:
    from kubepipe.components.builtins import BUILTINS

    b = BUILTINS.get(name)
    return _import_attr(b.check, f"check of `{name}`") if b and b.check else None


def load_builtin_reference(name: str) -> Any:
    """The built-in's `Reference` (allowed values, example), or None for other components."""
    from kubepipe.components.builtins import BUILTINS

    b = BUILTINS.get(name)
    return _import_attr(b.reference, f"reference of `{name}`")() if b and b.reference else None


def resolve_component(ref: str, base_dir: Path, *, local: bool = False) -> ComponentInfo:
    from kubepipe.components.builtins import BUILTINS

    ref = ref.strip()
    if ref in BUILTINS:
        from kubepipe.catalog.signatures import cached_description, cached_ports

        b = BUILTINS[ref]
        cached = cached_ports(ref, b.ref)
        if cached:  # validate without importing kfp; compile imports the component itself
            name, inputs, outputs = cached
            info = ComponentInfo(ref, name, "builtin", lambda: _import_attr(b.ref, f"built-in `{ref}`"),
                                 inputs, outputs, b.summary, load_builtin_check(ref),
                                 description=cached_description(ref))
        else:
            info = _info(ref, "builtin", _import_attr(b.ref, f"built-in `{ref}`"), b.summary, load_builtin_check(ref))
        info.paths, info.local_paths, info.optional_files = tuple(b.paths), tuple(b.local_paths), tuple(b.optional_files)
        return info
    if ref.partition(":")[0].endswith(".py"):
        raise _python_file(ref)
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        return _from_file(ref, base_dir, local)
    if ":" in ref:
        module = ref.partition(":")[0]
        # one thread at a time: fresh_imports / take_over take modules out of sys.modules, and another thread's
        # import of the same module then failed ('importing `ops` failed: KeyError: ops', two kubepipe.run at once)
        with USER_IMPORTS:
            repository, root = _importable(module, base_dir)  # root None: it imports as is (a notebook's folder)
            try:
                comp = _import_attr(ref, f"`{ref}`")
                note_imports(repository)
                if not hasattr(comp, "component_spec"):
                    raise CatalogError(f"`{ref}` is not a KFP component", "decorate the function with @dsl.component")
            except CatalogError as exc:
                shadowed = shadowed_note(module, base_dir)
                if not shadowed:
                    raise
                raise CatalogError(exc.message, shadowed) from exc.__cause__  # the user's exception, if one
        info = _info(ref, "python", comp, (comp.description or "").strip().split("\n")[0])
        info.import_root = str(root) if root else None
        return info
    hint = did_you_mean(ref, BUILTINS)
    if hint is None and module_root(ref, base_dir) is not None:
        raise _module_without_function(ref, base_dir)
    raise CatalogError(f"unknown component `{ref}`", hint or "use a built-in name (`kubepipe components`), "
                       "package.module:function, or a .yaml path")


def _python_file(ref: str) -> CatalogError:
    """`mycomps.py:total`, `./pkg/steps.py`: a python component is named by its module, as Python imports it."""
    path, _, func = ref.partition(":")
    parts = Path(path).with_suffix("").parts
    module = ".".join(p for p in parts if p != ".")
    spelled = f"`{module}:{func or '<function>'}`" if all(p.isidentifier() for p in module.split(".")) else None
    return CatalogError(f"`{ref}` names a Python file; a python component is `package.module:function`",
                        f"write {spelled} (a module is found next to the pipeline file or in a folder above it)"
                        if spelled else "write the module as Python imports it, e.g. `mypkg.steps:train`")


def _info(ref: str, origin: str, comp: Any, summary: str, check: Callable | None = None) -> ComponentInfo:
    inputs, outputs = ports_of(comp)
    return ComponentInfo(ref, comp.name, origin, comp, inputs, outputs, summary, check,
                         description=(getattr(comp, "description", None) or "").strip())


def _import_attr(target: str, what: str) -> Any:
    mod_name, _, attr = target.partition(":")
    if not attr:
        raise CatalogError(f"{what}: expected package.module:function", None)
    module = _import_module(mod_name, what)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise CatalogError(f"{what}: module `{mod_name}` has no `{attr}`", _missing_attr_hint(module, attr)) from None
    except Exception as exc:  # noqa: BLE001 - a module whose attribute access itself fails
        raise CatalogError(f"{what}: reading `{attr}` from `{mod_name}` failed: {type(exc).__name__}: {exc}") from exc


# kfp's notice that @dsl.component's default base_image moves to python:3.12 in Oct 2027 was printed with the user's
# file:line on every validate and run of a component without base_image: kubepipe pins kfp, so that default changes
# only with a kubepipe release, and a step's `image:` sets the image on kubeflow and vertex. Only that notice.
# A filter of the process, added once at import, not warnings.catch_warnings() around the user's import: that
# swaps the process's one filter list for the block (not thread-safe, say the warnings docs), and two threads'
# blocks overlapping (validate in a service's or notebook's threads) left one's filters in place for good.
warnings.filterwarnings("ignore", message=r"The default base_image used by the @dsl\.component decorator will switch",
                        category=FutureWarning)


def _import_module(mod_name: str, what: str) -> Any:
    """The user's module. What its import prints goes to stderr: stdout carries a command's result, and a
    module's `print("loaded")` made `kubepipe run --format json` print text before the JSON document."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return importlib.import_module(mod_name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a user module that fails (or exits) on import
        # its exception is the cause, as raised: a caller (and --verbose) sees the traceback into the user's file
        raise _import_error(what, mod_name, exc) from exc


def _import_error(what: str, mod_name: str, exc: BaseException) -> CatalogError:
    """Why `mod_name` did not import: not found at all, or found and failing (at file:line of its code)."""
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if missing and (mod_name == missing or mod_name.startswith(missing + ".")):
        return CatalogError(f"{what}: cannot import module `{mod_name}` ({exc})",
                            "is the package installed in this environment? A module of your repository is found "
                            "next to the pipeline file or in a folder above it")
    where = failed_at(exc)
    at = f" at {where}" if where else ""
    hint = (f"install `{missing.split('.')[0]}` in this environment (the module imports it)" if missing
            else "fix the module; it must import without side effects")
    text = exc.msg if isinstance(exc, SyntaxError) and where else exc  # its "(file, line n)" is `at` already
    return CatalogError(f"{what}: importing `{mod_name}` failed{at}: {type(exc).__name__}: {text}", hint)


def _missing_attr_hint(module: Any, attr: str) -> str | None:
    """A close name, its KFP components first (what `component:` wants), else the list of them."""
    names = [n for n in dir(module) if not n.startswith("_")]
    comps = _component_names(module)
    close = did_you_mean(attr, comps) or did_you_mean(attr, names)
    if close or not comps:
        return close
    return f"its KFP components: {_listed(comps)}"


def _component_names(module: Any) -> list[str]:
    names = [n for n in dir(module) if not n.startswith("_")]
    return [n for n in names if hasattr(vars(module).get(n), "component_spec")]  # no lazy __getattr__ runs


def _listed(comps: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in comps[:8]) + (f" and {len(comps) - 8} more" if len(comps) > 8 else "")


def _importable(module: str, base_dir: Path) -> tuple[Path | None, Path | None]:
    """(the repository at or above `base_dir` holding `module`, the folder put on sys.path for it), its modules
    edited since imported read again and another repository's module of that name taken over. Hold USER_IMPORTS."""
    repository = module_root(module, base_dir)
    fresh_imports(repository)
    take_over(module, repository)
    return repository, make_importable(module, base_dir)


def _module_without_function(ref: str, base_dir: Path) -> CatalogError:
    """`component: mycomps`, a module of the repository: which of its functions to write (this repository's
    module, as `mycomps:f` imports it: the one another pipeline in the process had imported was named)."""
    with USER_IMPORTS:
        repository, _root = _importable(ref, base_dir)
        comps = _component_names(_import_module(ref, f"`{ref}`"))
        note_imports(repository)
    return CatalogError(f"`{ref}` is a module of your repository; a python component is `{ref}:<function>`",
                        f"write `{ref}:{comps[0]}`" + (f" (its KFP components: {_listed(comps)})" if comps[1:] else "")
                        if comps else "it has no KFP component: decorate a function with @dsl.component")


def _from_file(ref: str, base_dir: Path, local: bool) -> ComponentInfo:
    import yaml
    from kfp import components

    from kubepipe.catalog.foreign import inspect_documents
    from kubepipe.catalog.pip_prelude import strip_preludes

    path = (base_dir / ref) if not Path(ref).is_absolute() else Path(ref)
    if not path.is_file():
        raise CatalogError(f"component file `{ref}` not found (looked in {os.path.normpath(path.parent)})",
                           "paths are relative to the pipeline file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"component file `{ref}` cannot be read: {exc}") from None
    docs = _documents(text, ref, path)
    first = (docs or [None])[0]
    if isinstance(first, dict) and str(first.get("apiVersion", "")).startswith("kubepipe/"):
        raise CatalogError(f"component file `{ref}` is a kubepipe pipeline, not a KFP component",
                           f"compile it first (kubepipe compile {ref} -o {Path(ref).stem}.ir.yaml) and point "
                           "`component:` at the compiled file, or copy its steps into this pipeline")
    facts = inspect_documents(docs or [])
    if facts.workspace:
        raise CatalogError(
            f"component file `{ref}` needs a pipeline workspace ({facts.workspace}); kubepipe pipelines do "
            "not create one, so it would fail (or lose its workspace) when compiled",
            "run that pipeline with kfp directly, or rewrite it to pass data as artifacts")
    notes: list[str] = []
    pip: list[PipInstall] = []
    if local and docs is not None:
        stripped, pip, unparsed = strip_preludes(docs)
        if unparsed:
            raise CatalogError(
                f"component file `{ref}`: {', '.join(unparsed)} runs `pip install` in a form kubepipe cannot "
                "take apart; a local run shares your Python environment, so it is not run here",
                "run it on kubeflow or vertex, or rebuild it with @dsl.component(packages_to_install=...)")
        if pip:
            text = yaml.safe_dump_all(stripped, sort_keys=False)
            dropped = sorted({k for inst in pip for k in inst.kfp})
            if dropped:
                notes.append(f"{ref}: its `pip install {' '.join(dropped)}` is skipped on local runs "
                             "(the kfp installed here runs it)")
    if local and facts.local_blockers:
        notes.append(f"{ref}: kfp.local cannot resolve {'; '.join(facts.local_blockers)}; "
                     "a local run of it fails, it compiles for kubeflow and vertex")
    try:
        comp = components.load_component_from_text(text)
    except Exception as exc:  # noqa: BLE001 - kfp raises many types for bad files
        why = f"it has no `{exc.args[0]}`" if isinstance(exc, KeyError) and exc.args else str(exc)  # was 'pipelineInfo'
        raise CatalogError(f"component file `{ref}` is not a KFP component or pipeline: {why}",
                           "compile it with kfp, or check it is a component.yaml") from None
    info = _info(ref, "file", comp, (comp.description or "").strip().split("\n")[0])
    info.notes, info.pip, info.platform = notes, pip, facts.platform
    return info


def _documents(text: str, ref: str, path: Path) -> list | None:
    import yaml

    try:
        return list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:  # where in the file, as a pipeline's own YAML errors say it
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}: " if mark else ""
        raise CatalogError(f"component file `{ref}` is not valid YAML: {where}"
                           f"{(exc.problem or exc.context or 'invalid YAML').strip()}",
                           "check indentation, quotes and colons there") from None
    except yaml.YAMLError:
        return None  # kfp's loader reports it
