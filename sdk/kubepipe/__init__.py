"""kubepipe: declarative pipeline-as-code SDK on Kubeflow Pipelines."""

from kubepipe._version import __version__  # noqa: E402

from kubepipe.api import compile, load, load_target, run, submit, validate  # noqa: E402
from kubepipe.errors import Issue, KubepipeError, UserError, ValidationError  # noqa: E402

__all__ = ["__version__", "load", "load_target", "validate", "compile", "run", "submit", "Issue", "KubepipeError",
           "UserError", "ValidationError"]
