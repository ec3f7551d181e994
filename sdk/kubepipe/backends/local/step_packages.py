"""The packages third-party components ask for (`packages_to_install`) on a local run.

Their pip prelude is taken out of the command (kubepipe.catalog.pip_prelude), so a local
run never installs anything by itself. What the components still need:

- already installed and matching: nothing to do;
- missing, without consent: the run stops before it starts, naming each package and step;
- missing, with consent (profile `install_packages: true`, e.g. `--set install_packages=true`):
  `pip install --target <run>/site-packages`, with the component's own index options and the
  installed kfp pinned as a constraint; the folder is put on PYTHONPATH for the run only.
  Nothing is installed into the caller's environment, and a folder that came out holding a
  kfp package is refused, so a component can never change the kfp that runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 - runs this interpreter's pip with an argv list
import sys
from importlib import metadata
from pathlib import Path

from kubepipe.arguments import set_hint
from kubepipe.catalog.pip_prelude import KFP_PACKAGES
from kubepipe.errors import UserError

__all__ = ["missing_packages", "prepare_packages"]

_PIP_TIMEOUT_S = 900


def _satisfied(requirement: str) -> bool:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return False  # a URL or path: only pip can tell
    if req.url:
        return False
    try:
        have = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    return req.specifier.contains(have, prereleases=True)


def missing_packages(plan) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(step, component ref, requirement, index options) for each package not installed here."""
    steps = list(plan.steps) + ([plan.exit_step] if plan.exit_step else [])
    out = []
    for step in steps:
        for inst in step.info.pip:
            for req in inst.packages:
                if not _satisfied(req):
                    out.append((step.name, step.info.ref, req, inst.options))
    return out


def _kfp_constraints(path: Path) -> Path:
    lines = []
    for name in KFP_PACKAGES:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def prepare_packages(plan, profile, run_dir: Path) -> dict[str, str]:
    """Environment additions for the run (PYTHONPATH), after installing with consent; see module doc."""
    missing = missing_packages(plan)
    if not missing:
        return {}
    listed = "; ".join(f"step `{step}` ({ref}) needs `{req}`" for step, ref, req, _ in missing)
    if not profile.install_packages:
        raise UserError(
            f"third-party components need packages that are not installed here: {listed}. "
            "kubepipe does not pip-install into your environment on its own: install them yourself, "
            f"or allow a per-run install with `{set_hint('install_packages', 'true', 'True')}` (or `install_packages: true` "
            "in configs/local.yaml); kfp itself is never installed")
    target = run_dir / "site-packages"
    target.mkdir(parents=True, exist_ok=True)
    constraints = _kfp_constraints(run_dir / "kfp-constraints.txt")
    by_options: dict[tuple[str, ...], list[str]] = {}
    for _step, _ref, req, options in missing:
        by_options.setdefault(options, [])
        if req not in by_options[options]:
            by_options[options].append(req)
    for options, reqs in by_options.items():
        cmd = [sys.executable, "-m", "pip", "install", "--target", str(target), "--no-input",
               "--disable-pip-version-check", "--quiet", "-c", str(constraints), *options, *reqs]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)  # nosec B603
        except subprocess.TimeoutExpired:
            raise UserError(f"pip install of {', '.join(reqs)} did not finish in {_PIP_TIMEOUT_S}s") from None
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            raise UserError(f"pip install of {', '.join(reqs)} for the run failed:\n{tail}")
    found = sorted({d.metadata["Name"] for d in metadata.distributions(path=[str(target)])
                    if (d.metadata["Name"] or "").lower().replace("_", "-") in KFP_PACKAGES})
    if found:
        shutil.rmtree(target, ignore_errors=True)
        raise UserError(f"the packages of {', '.join(m[2] for m in missing)} pulled in {', '.join(found)}; "
                        "a local run never changes the kfp that runs it: run this component on kubeflow or vertex")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH", "")) if p)}
