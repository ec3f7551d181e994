"""`kubepipe init`: a starter project (pipeline, target profiles, sample data) that validates and runs."""

from __future__ import annotations

import contextlib
import re
from importlib import resources
from pathlib import Path

from kubepipe.errors import UserError
from kubepipe.spec.profiles import PLACEHOLDER_BUCKET
from kubepipe.spec.schema import schema_json
from kubepipe.util import DEFAULT_HOME, K8S_NAME, k8s_name_like

__all__ = ["init_project", "kept_paths"]

SCHEMA = "kubepipe.schema.json"  # the starter's `yaml-language-server: $schema=../kubepipe.schema.json` names it
# The default home's runs hold copies of the data and its registry model weights: never for the repository's git.
HOME_GITIGNORE = "# kubepipe's state (runs, registry, scheduler): local, not for git\n*\n"

_PROFILES = {
    "local.yaml": "target: local\nruntime_image: python:3.11-slim\n"
                  "# runs/, state/ and registry/ live in the kubepipe home: --home / KUBEPIPE_HOME (default .kubepipe);\n"
                  "# set pipeline_root, state_dir or registry_uri here to put one elsewhere\n",
    "kubeflow.yaml": "target: kubeflow\nhost: ${env.KFP_HOST}\nnamespace: kubeflow\n"
                     "pipeline_root: ${env.KUBEPIPE_PIPELINE_ROOT:-minio://mlpipeline/kubepipe}\n"
                     "runtime_image: ${env.KUBEPIPE_IMAGE:-kubepipe-runtime-image-not-set}  # kubepipe image build, then pin\n"
                     f"registry_uri: ${{env.KUBEPIPE_REGISTRY:-gs://{PLACEHOLDER_BUCKET}/registry}}\n"
                     "auth: {token_env: KFP_TOKEN}  # the token itself stays in the environment\n",
    "vertex.yaml": "target: vertex\nproject: ${env.GOOGLE_CLOUD_PROJECT}\nregion: ${env.GOOGLE_CLOUD_REGION:-europe-west4}\n"
                   f"pipeline_root: ${{env.KUBEPIPE_PIPELINE_ROOT:-gs://{PLACEHOLDER_BUCKET}/pipeline-root}}\n"
                   "runtime_image: ${env.KUBEPIPE_IMAGE:-kubepipe-runtime-image-not-set}  # kubepipe image build, then pin\n"
                   f"registry_uri: ${{env.KUBEPIPE_REGISTRY:-gs://{PLACEHOLDER_BUCKET}/registry}}\n"
                   "service_account: ${env.KUBEPIPE_SERVICE_ACCOUNT:-}\n",
}


def profile_paths(directory: str | Path) -> list[Path]:
    """The target profiles `init` writes into `directory`."""
    return [Path(directory) / "configs" / fname for fname in _PROFILES]


def kept_paths(directory: str | Path) -> list[Path]:
    """The project's shared files `init` writes into `directory` only where they are missing (or with force)."""
    return [*profile_paths(directory), Path(directory) / SCHEMA, Path(directory) / DEFAULT_HOME / ".gitignore"]


def init_project(directory: str | Path = ".", name: str = "my-pipeline", *, force: bool = False) -> list[Path]:
    """Write the starter files; refuses to overwrite unless force. Returns the paths written.

    Target profiles and the editors' JSON Schema (kubepipe.schema.json, which the starter's
    yaml-language-server line names) that exist are the project's own and are kept (a second pipeline
    in the same project), unless force. Needs only the core install (the sample data is package data). All or
    nothing: a failure part-way removes what this call wrote and puts back what --force replaced.
    """
    if not re.match(K8S_NAME, name):  # metadata.name's rule: the starter must validate
        long = f" ({len(name)} characters; at most 63)" if len(name) > 63 else ""
        raise UserError(f"--name {name}{long}: use lowercase letters, digits and dashes, at most 63, "
                        f"e.g. {k8s_name_like(name) or 'my-pipeline'}")
    root = Path(directory)
    templates = resources.files("kubepipe.templates")
    files: dict[Path, str] = {
        root / "pipelines" / f"{name}.yaml": templates.joinpath("pipeline.yaml").read_text(encoding="utf-8")
        .format(name=name, yaml_name=_yaml_text(name))}
    shared = {path: f"# Target profile written by `kubepipe init`.\n{text}"
              for path, text in zip(profile_paths(root), _PROFILES.values())}
    shared[root / SCHEMA] = schema_json()
    if not (root / DEFAULT_HOME).exists() or (root / DEFAULT_HOME).is_dir():  # a file there is not ours to move
        shared[root / DEFAULT_HOME / ".gitignore"] = HOME_GITIGNORE
    files.update({path: text for path, text in shared.items() if force or not (path.exists() or path.is_symlink())})
    for path in profile_paths(root):
        if path not in files and path.is_file() and (why := _not_a_profile(path)):  # a FIFO would block
            raise UserError(f"{path} is not a kubepipe target profile ({why}), and kubepipe reads the nearest "
                            f"configs/{path.name} as one: make the kubepipe project a folder of its own "
                            f"(e.g. kubepipe init ml) or move that file; --force overwrites it")
    for part in ("train", "holdout"):
        files[root / "pipelines" / "data" / f"{name}_{part}.csv"] = \
            templates.joinpath(f"starter_{part}.csv").read_text(encoding="utf-8")
    folder = next((p for p in files if p.is_dir()), None)  # --force cannot write a file there either
    if folder is not None:
        raise UserError(f"{folder} is a folder where init writes a file; choose another --name or folder")
    existing = [p for p in files if p.exists() or p.is_symlink()]
    if existing and not force:
        raise UserError(f"{existing[0]} exists; pass --force to overwrite, or choose another --name or folder")
    return _write_all(files, shared=set(shared))


def _yaml_text(text: str) -> str:
    """`text` as a YAML scalar that reads back as text: `123`, `no`, `null` and `0x1f` are quoted."""
    import yaml

    return text if yaml.safe_load(text) == text else f"'{text}'"  # a Kubernetes name holds no quote


def _not_a_profile(path: Path) -> str | None:
    """Why a file in a profile's place is the repository's own, not a kubepipe profile; None when it is one."""
    import yaml

    from kubepipe.spec.profiles import unknown_profile_keys

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError) as exc:
        return f"unreadable as YAML: {type(exc).__name__}"
    if data is None:
        return None
    if not isinstance(data, dict):
        return "not a YAML mapping"
    foreign = unknown_profile_keys(data)
    return f"unknown keys: {', '.join(foreign[:3])}" if foreign else None


def _write_all(files: dict[Path, str], shared: set[Path]) -> list[Path]:
    """Write every file atomically, a missing one exclusively; return those written. A `shared` file (a profile, the
    schema) that another init wrote meanwhile is the project's now, kept as one that was there; on any other failure
    undo this call's writes and folders, then re-raise."""
    from kubepipe.util import atomic_write_bytes, atomic_write_text

    folders = sorted({q for p in files for q in [p.parent, *p.parent.parents] if not q.exists()},
                     key=lambda q: len(q.parts), reverse=True)
    before = {p: p.read_bytes() for p in files if p.is_file()}
    written: list[Path] = []
    try:
        for path, text in files.items():
            try:
                atomic_write_text(path, text, exclusive=path not in before)
            except FileExistsError:
                if path in shared:
                    continue
                raise
            written.append(path)
    except BaseException as exc:
        for path in written:
            if path in before:
                atomic_write_bytes(path, before[path])
            else:
                path.unlink(missing_ok=True)
        for folder in folders:  # deepest first; only those this call created, only if empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, FileExistsError):
            raise UserError(f"{exc.filename} appeared while init was writing (another `kubepipe init` here?): it is "
                            "kept and this init wrote nothing; choose another --name, or --force to overwrite") from None
        raise
    return written
