"""The optional extras: which imports each one provides, and the user error when one is missing.

The core install validates, compiles and submits; running built-ins here, serving, Vertex AI and
object stores come with extras (pyproject.toml). A command that needs one checks up front and
exits 2 with the exact `pip install` line; an import that still fails later (a lazy import deep
in a library call) is turned into the same message by `missing_extra`.
scripts/check_deps.py keeps this table and pyproject.toml in step.
"""

from __future__ import annotations

import importlib.util
import re

from kubepipe.errors import UserError

__all__ = ["EXTRAS", "SETTING_EXTRAS", "STORAGE_EXTRAS", "MissingExtra", "missing_modules", "require", "missing_extra",
           "pip_line", "storage_pip_hint"]

# extra -> the import names it provides (each maps to one requirement of that extra).
# Order matters for `missing_extra`: a module in several extras is reported with the first.
EXTRAS: dict[str, tuple[str, ...]] = {
    "local": ("pandas", "pyarrow", "great_expectations", "scipy", "numpy", "torch", "safetensors"),
    "serve": ("kserve", "fastapi", "starlette", "uvicorn", "prometheus_client", "orjson", "torch", "safetensors",
              "numpy", "httpx", "kubernetes", "jsonschema", "onnx", "onnxruntime", "onnxscript", "pyarrow"),
    "vertex": ("google.cloud.aiplatform", "google.api_core", "google.cloud.storage", "gcsfs"),
    "gcs": ("gcsfs",),
    "s3": ("s3fs",),
    "nlp": ("transformers", "tokenizers"),
    "rag": ("faiss", "transformers", "tokenizers"),
}

# A built-in's `with:` setting whose run here needs another extra: (component, key, value) -> extra. `kubepipe run`
# asks for it before the run, naming the step and setting; a train step failed on it after the steps before it ran.
SETTING_EXTRAS: dict[tuple[str, str, str], str] = {("train-torch", "architecture", "pretrained-encoder"): "nlp"}


# A URI scheme -> the extra with its fsspec driver (fsspec itself only says "Please install gcsfs").
STORAGE_EXTRAS: dict[str, str] = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3"}


class MissingExtra(UserError):
    """A feature needs an extra that is not installed (exit 2, with the pip line)."""

    def __init__(self, extras: list[str] | tuple[str, ...], feature: str, missing: list[str]):
        self.extras, self.feature, self.missing = tuple(extras), feature, list(missing)
        super().__init__(f"{feature} needs {', '.join(missing)}, which this install lacks; "
                         f"install it with: {pip_line(*extras)}")


def pip_line(*extras: str) -> str:
    """The exact command that installs the extras: pip install 'kubepipe[local,serve]'."""
    return f"pip install 'kubepipe[{','.join(extras)}]'"


def storage_pip_hint(uri: str) -> str:
    """`; install it with: pip install 'kubepipe[gcs]'` for a URI whose driver an extra brings (gs://, s3://), else
    ''; appended to a message that says the storage's package is missing."""
    from kubepipe.uris import uri_scheme

    extra = STORAGE_EXTRAS.get(uri_scheme(uri) or "")
    return f"; install it with: {pip_line(extra)}" if extra else ""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or a half-imported module
        return False


def missing_modules(extra: str) -> list[str]:
    """The import names of `extra` that cannot be imported here (without importing them)."""
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    return [m for m in EXTRAS[extra] if not _installed(m)]


def require(*extras: str, feature: str) -> None:
    """Raise MissingExtra naming every missing module when an extra `feature` needs is not installed."""
    missing = [m for extra in extras for m in missing_modules(extra)]
    if missing:
        raise MissingExtra(extras, feature, list(dict.fromkeys(missing)))


_CANNOT_IMPORT = re.compile(r"cannot import name '([\w.]+)' from '([\w.]+)'")


def missing_extra(exc: BaseException, feature: str = "this command") -> MissingExtra | None:
    """A MissingExtra for an ImportError of a module an extra provides (`feature` needs it); None for anything
    else."""
    if not isinstance(exc, ImportError) or not exc.name:
        return None
    names = [exc.name]
    m = _CANNOT_IMPORT.search(str(exc))
    if m:  # `from google.cloud import aiplatform` with only the namespace package installed
        names.insert(0, f"{m.group(2)}.{m.group(1)}")
    for name in names:
        for extra, modules in EXTRAS.items():
            for module in modules:
                # the module, one inside it, a versioned layer of its distribution (google.cloud.aiplatform_v1),
                # or a parent package of it missing (`google.cloud`, when no google-cloud-* is installed)
                if (name == module or name.startswith((module + ".", module + "_v")) or module.startswith(name + ".")) \
                        and not _installed(module):
                    return MissingExtra((extra,), feature, [module])
    return None
