"""kubepipe image [init | build]: runtime and project images, from any folder.

`kubepipe image` (no subcommand) prints the build command, or pins a pushed digest in a
target profile; `image build` prints it too, and runs it with --run; `image init` copies
the Dockerfiles into a repository. stdout carries only what a script wants (the command,
or the pinned reference); explanations go to stderr.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console, output
from kubepipe.cli.options import given_path
from kubepipe.cli.output import HOME

__all__ = ["register"]

image_app = typer.Typer(name="image", help="Runtime images (cpu, cuda) and a project image with your code.")

KIND = typer.Option("cpu", "--kind", help="cpu | cuda (the kubepipe runtime) | project (your code on it)")
REGISTRY = typer.Option(
    None, "--registry", envvar="KUBEPIPE_IMAGE_REGISTRY",
    help="Registry path, e.g. europe-west4-docker.pkg.dev/PROJECT/kubepipe (default: from --write-profile's runtime_image).")
TAG = typer.Option(None, "--tag", help="Image tag (default: the kubepipe version).")
REVISION = typer.Option(None, "--revision", help="VCS revision recorded in the image labels.")
NAME = typer.Option(None, "--name", help="Project image name (default: [project].name of the context's pyproject.toml).")
CONTEXT = typer.Option(Path("."), "--context", parser=given_path, help="Build context: your repository's root.")
FROM_SOURCE = typer.Option(False, "--from-source",
                           help="Install the kubepipe checkout in the context instead of the released package.")
# Not typer's envvar: $KUBEPIPE_IMAGE (the runtime the profiles read) must not turn a cpu build into an error.
BASE = typer.Option(None, "--base",
                    help="Project image: the runtime image it layers on, pinned (REG/kubepipe-runtime@sha256:...; "
                         "default: $KUBEPIPE_IMAGE).")


def _base(kind: str, base: Optional[str]) -> Optional[str]:
    """--base, else $KUBEPIPE_IMAGE for a project image (the runtime image it layers on)."""
    return base or (os.environ.get("KUBEPIPE_IMAGE") or None if kind == "project" else None)


@image_app.callback(invoke_without_command=True)
def image(
    ctx: typer.Context,
    kind: str = KIND,
    registry: Optional[str] = REGISTRY,
    tag: Optional[str] = TAG,
    digest: Optional[str] = typer.Option(None, "--digest", help="Pushed digest sha256:...; prints the pinned reference."),
    metadata: Optional[Path] = typer.Option(None, "--metadata", parser=given_path, help="Read the digest from buildx's --metadata-file JSON."),
    write_profile: Optional[Path] = typer.Option(
        None, "--write-profile", parser=given_path, help="Profile YAML whose runtime_image gets the pinned reference (comments kept)."),
    revision: Optional[str] = REVISION,
    name: Optional[str] = NAME,
    context: Path = CONTEXT,
    from_source: bool = FROM_SOURCE,
    base: Optional[str] = BASE,
    home: Path = HOME,
) -> None:
    """Print the build command for an image, or pin its pushed digest in a target profile.

    The build command has buildx write the pushed digest to <home>/image-<kind>.json (--home).
    """
    if ctx.invoked_subcommand is not None:
        return
    from kubepipe.backends.packaging import images, pins
    from kubepipe.errors import UserError

    if registry is None and write_profile is not None:
        registry = images.registry_of(_current_image(write_profile), kind)
    if digest and metadata:
        raise UserError("pass either --digest or --metadata, not both")
    if digest:
        found = digest
    elif metadata:
        found = pins.digest_from_metadata(metadata)
    else:
        spec = images.image_build(kind, registry, tag, context=context, from_source=from_source,
                                  base=_base(kind, base), name=name, home=output.home_path(home))
        _print_build(spec, revision, write_profile)
        return
    ref = images.pinned_reference(registry, found, kind, name)
    if write_profile is not None:  # first: a profile it cannot write is an error with nothing on stdout
        previous = pins.write_runtime_image(write_profile, ref)
        was = f" (was {previous})" if previous else ""
        console.err.print(f"wrote runtime_image to {write_profile}{was}", markup=False, soft_wrap=True)
    console.out.print(ref, markup=False, soft_wrap=True)


@image_app.command("build")
def build(kind: str = KIND, registry: Optional[str] = REGISTRY, tag: Optional[str] = TAG,
          revision: Optional[str] = REVISION, name: Optional[str] = NAME, context: Path = CONTEXT,
          from_source: bool = FROM_SOURCE, base: Optional[str] = BASE, home: Path = HOME,
          run: bool = typer.Option(False, "--run", help="Run the command (needs docker with buildx) instead of printing it.")
          ) -> None:
    """Build and push an image: print the `docker buildx build` command, or run it with --run."""
    from kubepipe.backends.packaging import images

    spec = images.image_build(kind, registry, tag, context=context, from_source=from_source, base=_base(kind, base),
                              name=name,
                              home=output.home_path(home))
    if not run:
        _print_build(spec, revision, None)
        return
    _run(spec, revision)


@image_app.command("init")
def init(directory: Path = typer.Argument(Path("."), parser=given_path, help="Your repository (the Dockerfiles go to DIR/docker/)."),
         force: bool = typer.Option(False, "--force", help="Overwrite Dockerfiles already there.")) -> None:
    """Copy the Dockerfiles into your repository to customise; `image build` then uses them."""
    from kubepipe.backends.packaging import images
    from kubepipe.errors import UserError

    if not directory.is_dir():
        raise UserError(f"{directory}: no such folder; pass your repository's root")
    for path in images.write_templates(directory, force=force):
        console.out.print(f"wrote {path}", markup=False, soft_wrap=True)
    console.err.print(f"# next: kubepipe image build --context {directory} --registry REG "
                      "(cpu runtime, then --kind project --base REG/kubepipe-runtime@sha256:...)",
                      markup=False, soft_wrap=True)


def _warn_ignore_gaps(spec) -> None:
    from kubepipe.backends.packaging.images import ignore_gaps

    gaps = ignore_gaps(spec.kind, spec.context)
    if gaps:
        console.warn(gaps)


def _print_build(spec, revision: Optional[str], write_profile: Optional[Path]) -> None:
    _warn_ignore_gaps(spec)
    console.out.print(spec.shell_command(revision=revision), markup=False, soft_wrap=True)
    console.err.print(f"# builds {spec.tag_ref} from {spec.dockerfile} and writes the digest to "
                      f"{spec.metadata_file}", markup=False, soft_wrap=True)
    then = spec.digest_commands()[0] + (f" --write-profile {write_profile}" if write_profile else "")
    console.err.print(f"# then pin it in a profile:  {then}", markup=False, soft_wrap=True)
    console.err.print(f"# or read the digest from the registry:  {spec.digest_commands()[1]}",
                      markup=False, soft_wrap=True)


def _run(spec, revision: Optional[str]) -> None:
    """Run the build (docker's own output streams through); then say how to pin the result."""
    import shutil
    import subprocess  # noqa: S404 - runs docker with an argument list, no shell

    from kubepipe.errors import UserError

    if shutil.which("docker") is None:
        raise UserError("docker is not on PATH; install Docker with buildx, or run the command "
                        "`kubepipe image build` prints (without --run) where docker is")
    # Without the plugin docker answers the build with "unknown flag: --platform", which names nothing to install.
    try:
        probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True,  # noqa: S603, S607
                               timeout=30, check=False)
        said = (probe.stderr or probe.stdout).strip().splitlines()
        why = probe.returncode and (said[0] if said else f"exit {probe.returncode}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = str(exc)
    if why:
        raise UserError(f"docker has no buildx (`docker buildx version`: {why}); install the Docker Buildx "
                        "plugin, or run the command `kubepipe image build` prints (without --run) where docker "
                        "with buildx is")
    _warn_ignore_gaps(spec)
    Path(spec.metadata_file).parent.mkdir(parents=True, exist_ok=True)
    console.err.print("+ " + " ".join(spec.command(revision=revision)), markup=False, soft_wrap=True)
    done = subprocess.run(spec.command(revision=revision), check=False)  # noqa: S603 - fixed argv
    if done.returncode != 0:
        raise UserError(f"docker buildx build failed (exit {done.returncode}); see its output above")
    console.err.print(f"# pushed {spec.tag_ref}; pin it:  {spec.digest_commands()[0]} --write-profile "
                      "configs/<target>.yaml", markup=False, soft_wrap=True)


def _current_image(profile: Path) -> str | None:
    """runtime_image of a profile, read safely, or None."""
    from kubepipe.errors import KubepipeError
    from kubepipe.spec.source import read_source

    try:
        data = read_source(profile).data
    except KubepipeError:  # the write step reports a missing or broken file with its own message
        return None
    value = data.get("runtime_image") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def register(app: typer.Typer) -> None:
    app.add_typer(image_app)
