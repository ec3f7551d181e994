"""Resolve a step's `component:` to a KFP component: built-in name, module:function, or YAML file."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kubepipe.catalog.ports import Port, ports_of
from kubepipe.errors import UserError
from kubepipe.util import did_you_mean

__all__ = ["ComponentInfo", "CatalogError", "resolve_component", "builtin_names", "load_builtin_check"]

_PIP_INSTALL = re.compile(r'PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install[^\n]*?&& "\$0" "\$@"')


class CatalogError(UserError):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
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

    @property
    def component(self) -> Any:
        if callable(self.loaded) and not hasattr(self.loaded, "component_spec"):
            self.loaded = self.loaded()
        return self.loaded

    @property
    def user_inputs(self) -> dict[str, Port]:
        return {n: p for n, p in self.inputs.items() if not n.startswith("ctx_") and p.type != "task_status"}


def builtin_names() -> dict[str, str]:
    from kubepipe.components.builtins import BUILTINS

    return {name: b.summary for name, b in BUILTINS.items()}


def load_builtin_check(name: str) -> Callable | None:
    from kubepipe.components.builtins import BUILTINS

    b = BUILTINS.get(name)
    return _import_attr(b.check, f"check of `{name}`") if b and b.check else None


def resolve_component(ref: str, base_dir: Path, *, local: bool = False) -> ComponentInfo:
    from kubepipe.components.builtins import BUILTINS

    ref = ref.strip()
    if ref in BUILTINS:
        from kubepipe.catalog.signatures import cached_ports

        b = BUILTINS[ref]
        cached = cached_ports(ref, b.ref)
        if cached:  # validate without importing kfp; compile imports the component itself
            name, inputs, outputs = cached
            return ComponentInfo(ref, name, "builtin", lambda: _import_attr(b.ref, f"built-in `{ref}`"),
                                 inputs, outputs, b.summary, load_builtin_check(ref))
        comp = _import_attr(b.ref, f"built-in `{ref}`")
        return _info(ref, "builtin", comp, b.summary, load_builtin_check(ref))
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        return _from_file(ref, base_dir, local)
    if ":" in ref:
        comp = _import_attr(ref, f"`{ref}`")
        if not hasattr(comp, "component_spec"):
            raise CatalogError(f"`{ref}` is not a KFP component",
                               "decorate the function with @dsl.component")
        return _info(ref, "python", comp, (comp.description or "").strip().split("\n")[0])
    hint = did_you_mean(ref, BUILTINS) or "use a built-in name (`kubepipe components`), package.module:function, or a .yaml path"
    raise CatalogError(f"unknown component `{ref}`", hint)


def _info(ref: str, origin: str, comp: Any, summary: str, check: Callable | None = None) -> ComponentInfo:
    inputs, outputs = ports_of(comp)
    return ComponentInfo(ref, comp.name, origin, comp, inputs, outputs, summary, check)


def _import_attr(target: str, what: str) -> Any:
    mod_name, _, attr = target.partition(":")
    if not attr:
        raise CatalogError(f"{what}: expected package.module:function", None)
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise CatalogError(f"{what}: cannot import module `{mod_name}` ({exc})",
                           "is the package installed in this environment?") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a user module that fails (or exits) on import
        raise CatalogError(f"{what}: importing `{mod_name}` failed: {type(exc).__name__}: {exc}",
                           "fix the module; it must import without side effects") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise CatalogError(f"{what}: module `{mod_name}` has no `{attr}`", did_you_mean(attr, names)) from None
    except Exception as exc:  # noqa: BLE001 - a module whose attribute access itself fails
        raise CatalogError(f"{what}: reading `{attr}` from `{mod_name}` failed: {type(exc).__name__}: {exc}") from None


def _without_pip_install(text: str) -> tuple[str, bool]:
    """Local runs share this environment: a third-party `pip install kfp==x` would replace ours."""
    import yaml

    changed = False

    def walk(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and _PIP_INSTALL.search(node):
            changed = True
            return _PIP_INSTALL.sub('"$0" "$@"', node)
        return node

    try:
        docs = [walk(d) for d in yaml.safe_load_all(text)]
    except yaml.YAMLError:
        return text, False
    return (yaml.safe_dump_all(docs, sort_keys=False) if changed else text), changed


def _from_file(ref: str, base_dir: Path, local: bool) -> ComponentInfo:
    from kfp import components

    path = (base_dir / ref) if not Path(ref).is_absolute() else Path(ref)
    if not path.is_file():
        raise CatalogError(f"component file `{ref}` not found (looked in {path.parent})",
                           "paths are relative to the pipeline file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"component file `{ref}` cannot be read: {exc}") from None
    notes = []
    if local and "pip install" in text:
        text, changed = _without_pip_install(text)
        if changed:
            notes.append(f"{ref}: skipped its `pip install` for the local run (kfp is already installed)")
    if local and "isArtifactList: true" in text:
        notes.append(f"{ref}: uses artifact lists (dsl.Collected), which kfp.local 2.17 cannot run; "
                     "it compiles for kubeflow and vertex")
    try:
        comp = components.load_component_from_text(text)
    except Exception as exc:  # noqa: BLE001 - kfp raises many types for bad files
        raise CatalogError(f"component file `{ref}` is not a KFP component or pipeline: {exc}",
                           "compile it with kfp, or check it is a component.yaml") from None
    info = _info(ref, "file", comp, (comp.description or "").strip().split("\n")[0])
    info.notes = notes
    return info
