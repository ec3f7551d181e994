"""Runtime images: the command that builds and pushes one, and the digest
reference a target profile pins (`runtime_image: REG/kubepipe-runtime@sha256:...`).

Nothing here runs docker: kubepipe prints the command, CI runs it, and the
digest comes back through buildx's metadata file or `--digest`.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from kubepipe.errors import UserError
from kubepipe.util import atomic_write_text, did_you_mean

__all__ = [
    "KINDS",
    "PLATFORM",
    "ImageBuild",
    "image_build",
    "parse_digest",
    "digest_from_metadata",
    "pinned_reference",
    "registry_of",
    "write_runtime_image",
]

# kind -> (repository name, Dockerfile)
KINDS: dict[str, tuple[str, str]] = {
    "cpu": ("kubepipe-runtime", "docker/Dockerfile.cpu"),
    "cuda": ("kubepipe-runtime-cuda", "docker/Dockerfile.cuda"),
}
# GKE and Vertex AI nodes are x86-64; a laptop build must not default to arm64.
PLATFORM = "linux/amd64"

_REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ENV_DEFAULT = re.compile(r"\$\{env\.[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}")


@dataclass(frozen=True)
class ImageBuild:
    """One image to build: kind (cpu | cuda), registry path and tag."""

    kind: str
    registry: str
    tag: str

    @property
    def name(self) -> str:
        return KINDS[self.kind][0]

    @property
    def dockerfile(self) -> str:
        return KINDS[self.kind][1]

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.name}"

    @property
    def tag_ref(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def metadata_file(self) -> str:
        return f".kubepipe/image-{self.kind}.json"

    def command(self, *, context: str = ".", revision: str | None = None) -> list[str]:
        """docker buildx build ... --push, writing the pushed digest to metadata_file."""
        from kubepipe import __version__

        cmd = ["docker", "buildx", "build", "--platform", PLATFORM, "-f", self.dockerfile,
               "-t", self.tag_ref, "--build-arg", f"KUBEPIPE_VERSION={__version__}"]
        if revision:
            cmd += ["--build-arg", f"VCS_REF={revision}"]
        cmd += ["--provenance=false", "--push", "--metadata-file", self.metadata_file, context]
        return cmd

    def shell_command(self, **kwargs) -> str:
        """The command as one shell line; buildx does not create the metadata file's folder."""
        folder = str(Path(self.metadata_file).parent)
        return f"mkdir -p {shlex.quote(folder)} && {shlex.join(self.command(**kwargs))}"

    def digest_commands(self) -> list[str]:
        """Ways to read the digest of the pushed image, best first."""
        return [
            f"kubepipe image --kind {self.kind} --registry {self.registry} --metadata {self.metadata_file}",
            f"docker buildx imagetools inspect {self.tag_ref} --format '{{{{json .Manifest.Digest}}}}'",
        ]

    def pinned(self, digest: str) -> str:
        return f"{self.repository}@{parse_digest(digest)}"


def image_build(kind: str = "cpu", registry: str | None = None, tag: str | None = None) -> ImageBuild:
    """Check the inputs and describe the build; errors name the option and what to pass."""
    from kubepipe import __version__

    if kind not in KINDS:
        hint = ("did you mean `cuda`?" if kind.lower() in ("gpu", "nvidia")
                else did_you_mean(kind, KINDS) or f"choose one of {', '.join(KINDS)}")
        raise UserError(f"--kind {kind}: unknown image kind; {hint}")
    if not registry:
        raise UserError("--registry is required: the image registry path, e.g. "
                        "europe-west4-docker.pkg.dev/PROJECT/kubepipe (terraform output image_repository)")
    reg = registry.strip().rstrip("/")
    if "://" in reg:
        raise UserError(f"--registry {registry}: leave out the scheme; e.g. {reg.split('://', 1)[1]}")
    if not _REGISTRY.match(reg) or "/" not in reg:
        raise UserError(f"--registry {registry}: expected HOST[:PORT]/PATH in lower case, with no tag or digest "
                        "(e.g. europe-west4-docker.pkg.dev/PROJECT/kubepipe or ghcr.io/ORG)")
    tag = tag or __version__
    if not _TAG.match(tag):
        raise UserError(f"--tag {tag}: a tag is up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'")
    return ImageBuild(kind=kind, registry=reg, tag=tag)


def parse_digest(text: str) -> str:
    """`sha256:<64 hex>` from a digest or a full `...@sha256:...` reference."""
    value = (text or "").strip().strip('"')
    if "@" in value:
        value = value.rsplit("@", 1)[1]
    if not _DIGEST.fullmatch(value):
        raise UserError(f"--digest {text!r}: expected sha256: followed by 64 lower-case hex digits "
                        "(docker buildx imagetools inspect REF --format '{{json .Manifest.Digest}}')")
    return value


def digest_from_metadata(path: str | Path) -> str:
    """The pushed digest from a `docker buildx build --metadata-file` JSON file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{p}: no such metadata file; run the build command first "
                        "(it writes the file with --metadata-file)") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{p}: not a buildx metadata JSON file ({exc})") from None
    digest = data.get("containerimage.digest") if isinstance(data, dict) else None
    if not digest:
        raise UserError(f"{p}: has no `containerimage.digest`; was the image pushed (--push)?")
    return parse_digest(digest)


def pinned_reference(registry: str, digest: str, kind: str = "cpu") -> str:
    """REG/kubepipe-runtime@sha256:... for a target profile's runtime_image."""
    return image_build(kind, registry, "pinned").pinned(digest)


def registry_of(image_ref: str | None, kind: str = "cpu") -> str | None:
    """The registry path of an existing kubepipe runtime image reference, if it is one."""
    if not image_ref:
        return None
    env_default = _ENV_DEFAULT.fullmatch(image_ref.strip())
    if env_default:  # ${env.KUBEPIPE_IMAGE:-REG/kubepipe-runtime@sha256:...}
        image_ref = env_default.group(1)
    if "${" in image_ref:
        return None
    repo = image_ref.split("@", 1)[0]
    last = repo.rsplit("/", 1)
    if len(last) == 2 and ":" in last[1]:
        repo = repo.rsplit(":", 1)[0]
    head, _, name = repo.rpartition("/")
    return head if head and name == KINDS[kind][0] else None


def write_runtime_image(profile: str | Path, reference: str) -> str | None:
    """Set `runtime_image:` in a profile YAML, keeping its comments and layout.

    Returns the previous value (None when the key was absent).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    path = Path(profile)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--write-profile {path}: no such file; render one with "
                        "`terraform output -raw <target>_profile > configs/<target>.yaml`") from None
    yaml = YAML(typ="rt")  # round trip: plain data and comments, no Python objects from tags
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    try:
        data = yaml.load(text)
    except YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, CommentedMap):
        raise UserError(f"{path}: a profile must be a YAML mapping with a `runtime_image:` key")
    previous = data.get("runtime_image")
    if "runtime_image" in data:
        data["runtime_image"] = reference
    else:
        keys = list(data.keys())
        at = keys.index("pipeline_root") + 1 if "pipeline_root" in keys else len(keys)
        data.insert(at, "runtime_image", reference)
    buf = io.StringIO()
    yaml.dump(data, buf)
    atomic_write_text(path, buf.getvalue())
    return None if previous is None else str(previous)
