"""Every third-party import in sdk/ and components/ is declared in pyproject.toml, by core or an extra.

    .venv/bin/python scripts/check_deps.py     # make lint; tests/unit/test_pkg_dependencies.py

What it checks (exit 1 and one line per problem, file:line first):
1. each import (module level or lazy, inside a function or a try) resolves to a distribution that
   core or an extra declares: PyYAML for `yaml`, google-cloud-aiplatform for `google.cloud.aiplatform`;
2. each declared distribution is imported somewhere, or NOT_IMPORTED names the distribution that loads it, which
   does not require it itself;
3. kubepipe.extras.EXTRAS (what a missing extra's pip hint is built from) lists, for each extra,
   exactly the distributions that extra declares, so the hint and pyproject.toml cannot drift.

Import names map to distributions through the files each installed distribution records (RECORD),
so namespace packages (google.*) and plugins (kfp.kubernetes is kfp-kubernetes) resolve to the right
one. Run it in the project's venv: `make setup` installs every extra.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "sdk", ROOT / "components")
FIRST_PARTY = {"kubepipe"}
# Declared but never imported by name: the installed distribution that loads it, and why. The loader must not
# require it itself (then declaring it here adds nothing: filelock, which torch requires, was declared for a lock
# kubepipe no longer takes).
NOT_IMPORTED = {
    "s3fs": ("fsspec", "fsspec loads it for s3:// and minio:// URLs"),
    "gcsfs": ("fsspec", "fsspec loads it for gs:// URLs"),
    "orjson": ("fastapi", "fastapi's ORJSONResponse (kserve's V1 answers) needs it"),
    "onnx": ("torch", "torch.onnx.export(dynamo=True) (serving/onnx_export.py) needs it"),
    "onnxscript": ("torch", "torch.onnx.export(dynamo=True) (serving/onnx_export.py) needs it"),
}
# Declared with an environment marker, so EXTRAS (checked up front) leaves them out.
OPTIONAL = {"uvloop": "serve uses it when present; not on Windows"}
IGNORED_EXTRAS = {"dev"}  # tools for this repository, not imports of the package


@dataclass(frozen=True)
class Site:
    file: Path
    line: int
    module: str  # the dotted name that resolves, e.g. google.cloud.aiplatform

    def __str__(self) -> str:
        shown = self.file.relative_to(ROOT) if self.file.is_relative_to(ROOT) else self.file
        return f"{shown}:{self.line}"


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> tuple[str, list[str]]:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
    if not m:
        raise SystemExit(f"pyproject.toml: cannot parse requirement {req!r}")
    return norm(m.group(1)), [e.strip() for e in (m.group(2) or "").split(",") if e.strip()]


def declared(pyproject: Path = ROOT / "pyproject.toml") -> tuple[set[str], dict[str, set[str]]]:
    """(core distributions, extra -> distributions with `kubepipe[x]` self-references expanded)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    own = norm(project["name"])
    core = {_req_name(r)[0] for r in project.get("dependencies", [])}
    raw = project.get("optional-dependencies", {})

    def expand(extra: str, seen: frozenset = frozenset()) -> set[str]:
        if extra in seen:
            return set()
        out: set[str] = set()
        for req in raw[extra]:
            name, sub = _req_name(req)
            if name == own:
                for s in sub:
                    out |= expand(s, seen | {extra})
            else:
                out.add(name)
        return out

    return core, {e: expand(e) for e in raw}


def imports(sources=SOURCES) -> list[Site]:
    """Every absolute import of a non-stdlib, non-kubepipe module; `from a import b` tries a.b first."""
    sites = []
    for folder in sources:
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Import):
                    names = [[a.name] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [[f"{node.module}.{a.name}", node.module] for a in node.names]
                else:
                    continue
                for candidates in names:
                    top = candidates[-1].split(".")[0]
                    if top in sys.stdlib_module_names or top in FIRST_PARTY or top == "__future__":
                        continue
                    sites.append(Site(path, node.lineno, "|".join(candidates)))
    return sites


class Owners:
    """Which installed distribution provides a module, from the files distributions record."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}  # recorded path (site-packages relative) -> distribution
        self.dirs: dict[str, set[str]] = {}  # folder -> distributions with files under it
        for dist in metadata.distributions():
            name = norm(dist.metadata["Name"])
            for f in dist.files or ():
                path = str(f).replace("\\", "/")
                if path.endswith((".so", ".pyd")):  # extension module: index it by its module path
                    self.files.setdefault(path.split(".", 1)[0] + ".py", name)
                self.files.setdefault(path, name)
                parts = path.split("/")
                for i in range(1, len(parts)):
                    self.dirs.setdefault("/".join(parts[:i]), set()).add(name)

    def owner(self, module: str) -> str | None:
        rel = module.replace(".", "/")
        for cand in (f"{rel}.py", f"{rel}/__init__.py"):
            if cand in self.files:
                return self.files[cand]
        owners = self.dirs.get(rel, set())
        return next(iter(owners)) if len(owners) == 1 else None  # a namespace folder several share: no

    def resolve(self, candidates: str) -> str | None:
        for module in candidates.split("|"):
            owner = self.owner(module)
            if owner:
                return owner
        return None


def problems(sources=SOURCES, pyproject: Path = ROOT / "pyproject.toml", extras_table=None,
             owners: Owners | None = None, not_imported=None) -> list[str]:
    """Every problem found, one line each; [] when the declaration is honest."""
    not_imported = NOT_IMPORTED if not_imported is None else not_imported
    core, extras = declared(pyproject)
    if extras_table is None:
        from kubepipe.extras import EXTRAS as extras_table  # the installed (editable) kubepipe
    owners = owners or Owners()
    out: list[str] = []
    any_extra = set().union(*(v for k, v in extras.items() if k not in IGNORED_EXTRAS))
    used: set[str] = set()
    for site in imports(sources):
        dist = owners.resolve(site.module)
        shown = site.module.split("|")[-1]
        if dist is None:
            out.append(f"{site}: `{shown}` is not installed in this environment, so no distribution "
                       "declares it; declare it in pyproject.toml (core or an extra) and run `make setup`")
            continue
        used.add(dist)
        if dist not in core and dist not in any_extra:
            out.append(f"{site}: `{shown}` comes from {dist}, which pyproject.toml does not declare; "
                       "add it to the extra whose feature needs it (or to dependencies if core needs it)")
    for dist in sorted((core | any_extra) - used - set(not_imported)):
        out.append(f"pyproject.toml: {dist} is declared but nothing in sdk/ or components/ imports it; "
                   "remove it, or name what loads it in NOT_IMPORTED (scripts/check_deps.py)")
    for dist, (loader, _why) in sorted(not_imported.items()):
        if dist in (core | any_extra) and dist in _required_by(loader):
            out.append(f"pyproject.toml: {dist} is declared for {loader} to load, but {loader} requires it itself; "
                       "remove it")
    table_extras = set(extras_table)
    real = {e for e, reqs in extras.items() if e not in IGNORED_EXTRAS and not _only_aliases(pyproject, e)}
    if table_extras != real:
        out.append(f"kubepipe/extras.py: EXTRAS has {sorted(table_extras)} but pyproject.toml's extras with "
                   f"their own requirements are {sorted(real)}")
    for extra in sorted(table_extras & real):
        listed = {}
        for module in extras_table[extra]:
            dist = owners.resolve(module)
            if dist is None:
                out.append(f"kubepipe/extras.py: EXTRAS[{extra!r}] lists `{module}`, which is not installed here")
            else:
                listed[dist] = module
        for dist, module in listed.items():
            if dist not in extras[extra]:
                out.append(f"kubepipe/extras.py: EXTRAS[{extra!r}] lists `{module}` ({dist}), which the "
                           f"`{extra}` extra does not declare")
        for dist in sorted(extras[extra] - set(listed) - set(OPTIONAL)):
            out.append(f"kubepipe/extras.py: the `{extra}` extra declares {dist}, but EXTRAS[{extra!r}] "
                       "does not list its import name (a missing one would get no pip hint)")
    return out


def _required_by(dist: str) -> set[str]:
    """The distributions `dist` requires whatever extras it is installed with (none when it is not installed)."""
    from packaging.requirements import Requirement

    try:
        reqs = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return set()
    return {norm(r.name) for r in map(Requirement, reqs) if r.marker is None or r.marker.evaluate({"extra": ""})}


def _only_aliases(pyproject: Path, extra: str) -> bool:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    own = norm(project["name"])
    return all(_req_name(r)[0] == own for r in project["optional-dependencies"][extra])


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    if found:
        print(f"check_deps: {len(found)} problem(s)")
        return 1
    print("check_deps: every import is declared; kubepipe.extras matches pyproject.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
