"""kubepipe: declarative pipeline-as-code SDK on Kubeflow Pipelines."""

from kubepipe._version import __version__  # noqa: E402

from kubepipe.api import (compile, list_model_versions, list_models, list_runs, load, load_target, run,  # noqa: E402
                          submit, validate)
from kubepipe.errors import Issue, KubepipeError, UserError, ValidationError  # noqa: E402

__all__ = ["__version__", "load", "load_target", "validate", "compile", "run", "submit", "list_runs", "list_models",
           "list_model_versions", "Issue", "KubepipeError", "UserError", "ValidationError"]
