"""kubepipe image: the runtime-image build command and the digest a profile pins.

stdout carries only what a script wants (the command, or the pinned
reference); explanations go to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubepipe.cli import console

__all__ = ["register"]


def image(
    kind: str = typer.Option("cpu", "--kind", help="cpu | cuda"),
    registry: Optional[str] = typer.Option(
        None, "--registry", envvar="KUBEPIPE_IMAGE_REGISTRY",
        help="Registry path, e.g. europe-west4-docker.pkg.dev/PROJECT/kubepipe (default: from --write-profile's runtime_image)."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Image tag (default: the kubepipe version)."),
    digest: Optional[str] = typer.Option(None, "--digest", help="Pushed digest sha256:...; prints the pinned reference."),
    metadata: Optional[Path] = typer.Option(None, "--metadata", help="Read the digest from buildx's --metadata-file JSON."),
    write_profile: Optional[Path] = typer.Option(
        None, "--write-profile", help="Profile YAML whose runtime_image gets the pinned reference (comments kept)."),
    revision: Optional[str] = typer.Option(None, "--revision", help="VCS revision recorded in the image labels."),
) -> None:
    """Print the build command for a runtime image, or pin its digest in a target profile."""
    from kubepipe.backends import images
    from kubepipe.errors import UserError

    if registry is None and write_profile is not None:
        registry = images.registry_of(_current_image(write_profile), kind)
    build = images.image_build(kind, registry, tag)
    if digest and metadata:
        raise UserError("pass either --digest or --metadata, not both")
    if not digest and not metadata:
        console.out.print(build.shell_command(revision=revision), markup=False, soft_wrap=True)
        console.err.print(f"# builds {build.tag_ref} from {build.dockerfile} and writes the digest to "
                          f"{build.metadata_file}", markup=False, soft_wrap=True)
        then = build.digest_commands()[0] + (f" --write-profile {write_profile}" if write_profile else "")
        console.err.print(f"# then pin it in a profile:  {then}", markup=False, soft_wrap=True)
        console.err.print(f"# or read the digest from the registry:  {build.digest_commands()[1]}",
                          markup=False, soft_wrap=True)
        return
    found = digest if digest else images.digest_from_metadata(metadata)
    ref = build.pinned(found)
    console.out.print(ref, markup=False, soft_wrap=True)
    if write_profile is not None:
        previous = images.write_runtime_image(write_profile, ref)
        was = f" (was {previous})" if previous else ""
        console.err.print(f"wrote runtime_image to {write_profile}{was}", markup=False, soft_wrap=True)


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
    app.command("image")(image)
