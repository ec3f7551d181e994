"""Pins: the digest reference a target profile pins (`runtime_image: REG/kubepipe-runtime@sha256:...`).

A digest as given (`--digest`) or as buildx wrote it (`--metadata-file`), the check that a pipeline's images are
pinned and pullable, and `runtime_image:` written into a profile YAML. Building the images, and the references
named after their kinds, are images.py.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from kubepipe.errors import UserError
from kubepipe.util import IMAGE_REF, atomic_write_text

__all__ = ["parse_digest", "digest_from_metadata", "write_runtime_image", "image_problem", "image_problems",
           "NOT_ONE_WORD", "PLACEHOLDER"]

NOT_ONE_WORD = "must be a container image, one word without spaces"
PLACEHOLDER = "a placeholder that cannot be pulled"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PLACEHOLDER_DIGEST = re.compile(r"@sha256:([0-9a-f])\1{63}$")  # sha256:000..., sha256:111...


def parse_digest(text: str, where: str = "--digest") -> str:
    """`sha256:<64 hex>` from a digest or a full `...@sha256:...` reference; `where` names its source."""
    value = (text if isinstance(text, str) else "").strip().strip('"')
    if "@" in value:
        value = value.rsplit("@", 1)[1]
    if not _DIGEST.fullmatch(value):
        raise UserError(f"{where} {text!r}: expected sha256: followed by 64 lower-case hex digits "
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
    return parse_digest(digest, f"{p}: containerimage.digest")  # the file, not --digest, which was not given


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


def image_problem(image: str) -> tuple[bool, str] | None:
    """(is_error, why) for one image reference; None when it is pinned by digest and can be pulled.

    Errors: not one word (no registry resolves `a b`), the unset-profile placeholder, a placeholder digest (one
    repeated hex digit) or a CHANGE-ME name. Warning: a tag without a digest (a re-pushed tag changes what runs).
    """
    from kubepipe.spec.profiles import IMAGE_NOT_SET

    if not re.fullmatch(IMAGE_REF, image):  # fullmatch: `$` alone lets a trailing newline through
        return True, NOT_ONE_WORD
    if image == IMAGE_NOT_SET or _PLACEHOLDER_DIGEST.search(image) or "CHANGE-ME" in image:
        return True, PLACEHOLDER
    if "@sha256:" not in image:
        return False, "not pinned by digest: a re-pushed tag changes what runs"
    return None


def image_problems(images: list[str], target: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) for the images a pipeline would run on `target` (each as `image_problem` finds it)."""
    from kubepipe.spec.profiles import IMAGE_NOT_SET
    from kubepipe.spec.runtime_image import runtime_image_fix

    fix = runtime_image_fix(target)
    errors, warnings = [], []
    for image in images:
        found = image_problem(image)
        if found is None:
            continue
        is_error, why = found
        if image == IMAGE_NOT_SET:
            errors.append(f"runtime_image: the {target} profile sets no runtime image; {fix}")
        elif why == NOT_ONE_WORD:
            errors.append(f"image {image!r}: {why}, e.g. REG/kubepipe-runtime@sha256:...")
        elif is_error:
            errors.append(f"image {image}: {why}; {fix}")
        else:
            warnings.append(f"image {image} is {why}; pin REPO@sha256:... (kubepipe image --digest ...)")
    return errors, warnings
