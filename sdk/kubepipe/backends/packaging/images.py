"""Images: the runtime image every built-in step runs in, and a project image that layers the
user's own code (`pip install .`) on it; the commands that build and push them, and the digest
reference a target profile pins (`runtime_image: REG/kubepipe-runtime@sha256:...`; reading and checking
digests and writing them into a profile are pins.py).

The Dockerfiles ship in the package (`kubepipe/templates/docker/`): `kubepipe image build`
works from any folder, and `kubepipe image init` copies them into a repository to customise
(a `docker/Dockerfile.<kind>` in the build context then wins over the packaged one).
Nothing here needs docker unless asked to run the command (`--run`); CI runs the printed
line, and the digest comes back through buildx's metadata file or `--digest`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kubepipe.backends.packaging.pins import image_problems, parse_digest
from kubepipe.errors import UserError
from kubepipe.util import DEFAULT_HOME, atomic_write_text, did_you_mean, k8s_name_like

__all__ = [
    "KINDS",
    "PLATFORM",
    "TEMPLATES",
    "FROM_SOURCE",
    "ImageBuild",
    "image_build",
    "dockerfile_for",
    "write_templates",
    "pinned_reference",
    "registry_of",
    "ignore_gaps",
]

# kind -> (repository name, Dockerfile); a project image is named after the project.
KINDS: dict[str, tuple[str, str]] = {
    "cpu": ("kubepipe-runtime", "Dockerfile.cpu"),
    "cuda": ("kubepipe-runtime-cuda", "Dockerfile.cuda"),
    "project": ("", "Dockerfile.project"),
}
# What `image init` writes under docker/: each Dockerfile with its own ignore file (BuildKit reads
# `<Dockerfile>.dockerignore` beside it, so a repository's own .dockerignore is left alone).
TEMPLATES = tuple(f for _, d in KINDS.values() for f in (d, f"{d}.dockerignore"))
# `--from-source`: install the kubepipe checkout in the build context instead of the released package.
FROM_SOURCE = "/src[all,gcs,s3]"
# GKE and Vertex AI nodes are x86-64; a laptop build must not default to arm64.
PLATFORM = "linux/amd64"

_REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_REPO_NAME = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_ENV_DEFAULT = re.compile(r"\$\{env\.[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}")


def _template(name: str) -> Path:
    return Path(str(resources.files("kubepipe.templates").joinpath("docker", name)))


def dockerfile_for(kind: str, context: str | Path = ".") -> str:
    """`<context>/docker/Dockerfile.<kind>` when the repository has one (`image init`), else the packaged one."""
    name = KINDS[kind][1]
    own = Path(context) / "docker" / name
    return str(own) if own.is_file() else str(_template(name))


def write_templates(directory: str | Path = ".", *, force: bool = False) -> list[Path]:
    """Copy the Dockerfiles (and their ignore files) into `<directory>/docker/`; refuse to overwrite."""
    from kubepipe._version import __version__

    folder = Path(directory) / "docker"
    targets = {folder / name: _template(name).read_text(encoding="utf-8") for name in TEMPLATES}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise UserError(f"{existing[0]} exists; pass --force to overwrite it, or edit it in place")
    for path, text in targets.items():
        # A copied Dockerfile builds the kubepipe it was written with, also under plain `docker build`.
        atomic_write_text(path, text.replace("ARG KUBEPIPE_VERSION\n", f"ARG KUBEPIPE_VERSION={__version__}\n", 1))
    return list(targets)


def _ignore_patterns(text: str) -> set[str]:
    """The exclusions of a .dockerignore, compared loosely: `.env`, `/.env` and `**/.env` are one rule here
    (a root-only pattern is weaker than `**/`, but that is the repository's choice, not a file it forgot)."""
    out = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            while line.startswith(("**/", "/")):
                line = line[3:] if line.startswith("**/") else line[1:]
            out.add(line)
    return out


def ignore_gaps(kind: str, context: str | Path = ".") -> str | None:
    """A warning when the repository's own Dockerfile (`image init`) builds with an ignore file that lacks
    exclusions the packaged one has: a copy made by an older kubepipe, edited, or deleted. Files matching a
    missing exclusion (credentials, state) go into the build context and can end up in a pushed layer."""
    name = KINDS[kind][1]
    own = Path(context) / "docker" / name
    if not own.is_file():
        return None  # the packaged Dockerfile builds with the packaged ignore file
    ignore = own.with_name(f"{name}.dockerignore")
    if not ignore.is_file():  # BuildKit then reads the context root's .dockerignore, if any
        ignore = Path(context) / ".dockerignore"
    have = _ignore_patterns(ignore.read_text(encoding="utf-8", errors="replace")) if ignore.is_file() else set()
    packaged = _template(f"{name}.dockerignore").read_text(encoding="utf-8")
    missing = [line.strip() for line in packaged.splitlines()
               if line.strip() and not line.lstrip().startswith("#")
               and _ignore_patterns(line) and not _ignore_patterns(line) <= have]
    if not missing:
        return None
    shown = ", ".join(missing)  # all of them: each is a line to add
    where = (f"{ignore} lacks {len(missing)} exclusion(s) the packaged {name}.dockerignore has"
             if ignore.is_file() else f"{own} builds with no ignore file ({ignore} is not there)")
    return (f"{where}: {shown}; matching files (credentials, state) go into the build context and can end up "
            f"in a pushed layer. Add them to {own.with_name(name + '.dockerignore')}, or re-write the templates "
            "with `kubepipe image init --force` (it overwrites your Dockerfiles too)")


@dataclass(frozen=True)
class ImageBuild:
    """One image to build: kind (cpu | cuda | project), registry path, tag and where from."""

    kind: str
    registry: str
    tag: str
    context: str = "."
    from_source: bool = False  # cpu / cuda: the kubepipe checkout in the context, not the release
    base: str | None = None  # project: the runtime image it layers on
    project_name: str = ""
    home: str = DEFAULT_HOME  # buildx writes the pushed digest to <home>/image-<kind>.json

    @property
    def name(self) -> str:
        return KINDS[self.kind][0] or self.project_name

    @property
    def dockerfile(self) -> str:
        return dockerfile_for(self.kind, self.context)

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.name}"

    @property
    def tag_ref(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def metadata_file(self) -> str:
        return (Path(self.home) / f"image-{self.kind}.json").as_posix()

    def command(self, *, revision: str | None = None) -> list[str]:
        """docker buildx build ... --push, writing the pushed digest to metadata_file."""
        from kubepipe._version import __version__

        cmd = ["docker", "buildx", "build", "--platform", PLATFORM, "-f", self.dockerfile, "-t", self.tag_ref]
        if self.kind == "project":
            cmd += ["--build-arg", f"RUNTIME_IMAGE={self.base}"]
        else:
            cmd += ["--build-arg", f"KUBEPIPE_VERSION={__version__}"]
            if self.from_source:
                cmd += ["--build-arg", f"KUBEPIPE_REQUIREMENT={FROM_SOURCE}"]
        if revision:
            cmd += ["--build-arg", f"VCS_REF={revision}"]
        cmd += ["--provenance=false", "--push", "--metadata-file", self.metadata_file, self.context]
        return cmd

    def shell_command(self, **kwargs) -> str:
        """The command as one shell line; buildx does not create the metadata file's folder."""
        folder = str(Path(self.metadata_file).parent)
        return f"mkdir -p {shlex.quote(folder)} && {shlex.join(self.command(**kwargs))}"

    def digest_commands(self) -> list[str]:
        """Ways to read the digest of the pushed image, best first."""
        return [
            f"kubepipe image --kind {self.kind} --registry {self.registry} --metadata {shlex.quote(self.metadata_file)}"
            + (f" --name {self.name}" if self.kind == "project" else ""),
            f"docker buildx imagetools inspect {self.tag_ref} --format '{{{{json .Manifest.Digest}}}}'",
        ]

    def pinned(self, digest: str) -> str:
        return f"{self.repository}@{parse_digest(digest)}"


def _project_name(context: str | Path) -> tuple[str, str]:
    """(image name, where it came from): the project's name in its pyproject.toml, else the folder's name, as
    kubepipe names things (`k8s_name_like`: `Café ML` -> `cafe-ml`); '' when nothing of it can be kept."""
    import tomllib

    folder = Path(context).resolve()
    name, where = folder.name, f"the folder name {folder.name!r}"
    pyproject = folder / "pyproject.toml"
    try:
        name = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]
        where = f"[project].name {name!r} in {pyproject}"
    except tomllib.TOMLDecodeError as exc:  # `pip install .` in the build would fail on it too
        raise UserError(f"{pyproject}: not valid TOML ({exc}); fix it, the project image runs "
                        "`pip install .`") from None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return k8s_name_like(name) or "", where


def image_build(kind: str = "cpu", registry: str | None = None, tag: str | None = None, *,
                context: str | Path = ".", from_source: bool = False, base: str | None = None,
                name: str | None = None, home: str | Path = DEFAULT_HOME) -> ImageBuild:
    """Check the inputs and describe the build; errors name the option and what to pass."""
    from kubepipe._version import __version__

    if kind not in KINDS:
        hint = ("did you mean `cuda`?" if kind.lower() in ("gpu", "nvidia")
                else did_you_mean(kind, KINDS) or f"choose one of {', '.join(KINDS)}")
        raise UserError(f"--kind {kind}: unknown image kind; {hint}")
    if not registry:
        raise UserError("--registry is required: the image registry path, e.g. "
                        "europe-west4-docker.pkg.dev/PROJECT/kubepipe (terraform output image_repository)")
    reg = registry.strip().rstrip("/")
    userinfo, at, _ = reg.split("://", 1)[-1].partition("/")[0].rpartition("@")
    if at:  # `user:password@host/path`: said back in every message, written into image names and profiles
        host_path = reg.split("://", 1)[-1].split("@", 1)[1]
        raise UserError(f"--registry: credentials ({userinfo.split(':', 1)[0]}:<redacted>@) do not go in the "
                        f"registry path; log in with `docker login {host_path.split('/', 1)[0]}` and pass "
                        f"{host_path}")
    if "://" in reg:
        raise UserError(f"--registry {registry}: leave out the scheme; e.g. {reg.split('://', 1)[1]}")
    if not _REGISTRY.match(reg) or "/" not in reg:
        raise UserError(f"--registry {registry}: expected HOST[:PORT]/PATH in lower case, with no tag or digest "
                        "(e.g. europe-west4-docker.pkg.dev/PROJECT/kubepipe or ghcr.io/ORG)")
    tag = tag or __version__
    if not _TAG.match(tag):
        raise UserError(f"--tag {tag}: a tag is up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'")
    if not Path(context).is_dir():
        raise UserError(f"--context {context}: no such folder; the build context is your repository's root")
    project = ""
    if kind == "project":
        if from_source:
            raise UserError("--from-source builds the kubepipe runtime from a checkout; a project image "
                            "installs your repository (the --context) on --base")
        if not base:
            raise UserError("--base is required for a project image: the kubepipe runtime image it layers on, "
                            "pinned by digest (REG/kubepipe-runtime@sha256:..., your profile's runtime_image)")
        from kubepipe.spec.profiles import IMAGE_NOT_SET

        if base == IMAGE_NOT_SET:  # was 'runtime_image: the any profile sets no runtime image; ...'
            raise UserError(f"--base {base}: the placeholder a profile's runtime_image holds until an image is "
                            "pinned; build and push the runtime image first (`kubepipe image build --registry "
                            "REG`), then pass it pinned: REG/kubepipe-runtime@sha256:...")
        errors, unpinned = image_problems([base], "any")
        if errors:
            raise UserError(f"--base {errors[0]}")
        if unpinned:  # Dockerfile.project's FROM is checked as digest-pinned (CKV_DOCKER_7's skip says why)
            raise UserError(f"--base {base}: not pinned by digest; a re-pushed tag would change what the project "
                            "image runs on: pass REG/kubepipe-runtime@sha256:... (`kubepipe image --kind cpu "
                            "--registry REG --metadata .kubepipe/image-cpu.json` prints it)")
        project, where = (name, f"--name {name!r}") if name else _project_name(context)
        if not _REPO_NAME.match(project):
            rule = "an image name is lower-case letters and digits, separated by '.', '_' or '-'"
            raise UserError(f"{where}: {rule}" if name else f"{where} gives no image name ({rule}); pass --name NAME")
        if not (Path(context) / "pyproject.toml").is_file() and not (Path(context) / "setup.py").is_file():
            raise UserError(f"--context {context}: no pyproject.toml or setup.py; a project image runs "
                            "`pip install .` on your repository")
    elif base:
        raise UserError(f"--base is for --kind project; a {kind} runtime image starts from its Dockerfile's base")
    elif from_source and not (Path(context) / "sdk" / "kubepipe" / "__init__.py").is_file():
        # else the build fails inside docker, after the torch install: /src is not kubepipe
        raise UserError(f"--from-source: --context {context} holds no kubepipe checkout (sdk/kubepipe/); it "
                        "installs kubepipe from those sources. In your project's repository leave it out: the "
                        "image installs the released kubepipe of this version")
    return ImageBuild(kind=kind, registry=reg, tag=tag, context=str(context), from_source=from_source,
                      base=base, project_name=project, home=str(home))


def pinned_reference(registry: str | None, digest: str, kind: str = "cpu", name: str | None = None) -> str:
    """REG/<image name>@sha256:... for a target profile's runtime_image (or a step's `image:`)."""
    if kind not in KINDS:
        image_build(kind, registry)  # raises the unknown-kind error
    reg = image_build("cpu", registry, "pinned").registry
    repo = name or KINDS[kind][0]
    if not repo:
        raise UserError("--name is required to pin a project image: the image name that "
                        "`kubepipe image build --kind project` printed")
    if not _REPO_NAME.match(repo):
        raise UserError(f"--name {repo!r}: an image name is lower-case letters and digits, separated by '.', '_' or '-'")
    return f"{reg}/{repo}@{parse_digest(digest)}"


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
    return head if head and KINDS.get(kind, ("",))[0] and name == KINDS[kind][0] else None
