"""Compile a plan to KFP IR YAML: deterministic, with a header naming source, hash and version."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kubepipe._version import __version__
from kubepipe.errors import Issue
from kubepipe.labels import labels_header
from kubepipe.plan.model import Plan
from kubepipe.spec.profiles import Profile
from kubepipe.util import sha256_text

__all__ = ["Compiled", "compile_plan", "MAX_SPEC_BYTES", "strip_header"]

MAX_SPEC_BYTES = 1024 * 1024  # KFP keeps specs in etcd; ~1.5 MiB breaks


@dataclass
class Compiled:
    # a notebook prints a Compiled as a line: `Compiled(pipeline_name='p', content_hash=..., target='local', ...)`,
    # not the IR text and the plan (~10 kB for two steps)
    ir_yaml: str = field(repr=False)  # header + IR
    body: str = field(repr=False)  # IR only
    pipeline_name: str
    content_hash: str
    target: str
    plan: Plan = field(repr=False)
    profile: Profile = field(repr=False)
    notes: list[str] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)  # severity "warning"; located where they can be
    # what the profile was read from (api.compile): the file (None: the target's defaults) and the --set values
    profile_source: dict = field(default_factory=lambda: {"file": None, "set": {}}, repr=False)

    @property
    def ir(self) -> dict:
        import yaml

        return next(yaml.safe_load_all(self.body))

    @property
    def schedule(self) -> dict | None:
        return self.plan.schedule.model_dump() if self.plan.schedule else None

    def write(self, path: str | Path) -> Path:
        from kubepipe.util import atomic_write_text

        src = Path(self.plan.source_path)
        if src.is_file() and Path(path).is_file() and os.path.samefile(src, path):
            from kubepipe.errors import UserError

            raise UserError(f"{path}: is the pipeline being compiled, and the IR would replace it; "
                            f"write it to another file, e.g. {src.stem}.ir.yaml")
        atomic_write_text(path, self._relative_to(Path(path).parent))
        return Path(path)

    def _relative_to(self, folder: Path) -> str:
        """The IR with its `# source:` line relative to `folder` (the output's), so the file is byte-identical
        from whichever folder `kubepipe compile -o` ran (`git diff --exit-code` checks of compiled files)."""
        src = self.plan.source_path
        shown = _display_path(src)
        try:
            rel = os.path.relpath(os.path.abspath(src), os.path.abspath(folder))
        except ValueError:  # another drive (Windows)
            return self.ir_yaml
        return self.ir_yaml.replace(f"# source: {shown} (", f"# source: {rel} (", 1)


def strip_header(text: str) -> str:
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        i += 1
    return "".join(lines[i:])


def compile_plan(plan: Plan, profile: Profile) -> Compiled:
    from kfp import compiler

    from kubepipe.catalog.user_modules import USER_IMPORTS
    from kubepipe.compiler.loop_inputs import drop_dangling_loop_inputs
    from kubepipe.compiler.pipeline_fn import build_pipeline

    notes = list(plan.notes)
    fd, tmp = tempfile.mkstemp(suffix=".yaml")
    os.close(fd)
    try:
        # kfp builds a pipeline inside its one process-wide pipeline context: two threads compiling at once (a
        # service's kubepipe.compile / run / submit) failed with 'Exception: Nested pipelines are not allowed.'
        with USER_IMPORTS:
            pipeline = build_pipeline(plan, profile, notes)
            compiler.Compiler().compile(pipeline, package_path=tmp)
        body = drop_dangling_loop_inputs(Path(tmp).read_text(encoding="utf-8"))  # a `when:` on a `foreach:` step
    finally:
        os.unlink(tmp)
    if profile.target == "vertex" and re.search(r"(?m)^---\s*$", body):
        # Vertex's PipelineJob loads one document; validation refuses platform specs before this
        from kubepipe.errors import UserError

        raise UserError("the vertex IR came out with a kfp-kubernetes platform document, which Vertex AI "
                        "cannot load; a step's component carries kfp-kubernetes settings: run it on kubeflow")
    digest = sha256_text(body)
    header = (
        f"# Compiled by kubepipe {__version__} for target `{profile.target}`. Do not edit: "
        f"regenerate with `kubepipe compile`.\n"
        f"# source: {_display_path(plan.source_path)} ({plan.source_hash})\n"
        f"# content-hash: {digest}\n"
        f"{labels_header(plan.labels)}"
    )
    warnings = list(plan.warnings)  # located Issues
    if len(body.encode()) > MAX_SPEC_BYTES:
        warnings.append(Issue(f"compiled spec is {len(body.encode()) / 1048576:.2f} MiB; KFP stores specs in "
                              "etcd and ~1.5 MiB fails", file=_display_path(plan.source_path), severity="warning",
                              hint="split the pipeline or move data out of `with:`"))
    return Compiled(ir_yaml=header + body, body=body, pipeline_name=plan.name, content_hash=digest,
                    target=profile.target, plan=plan, profile=profile, notes=sorted(set(notes)),
                    warnings=warnings)


def _display_path(path: str) -> str:
    try:
        return os.path.relpath(path) if os.path.isabs(path) else path
    except ValueError:
        return path
