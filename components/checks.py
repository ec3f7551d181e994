"""Compile-time checks of a step's `with:` values; fast, nothing heavy imported."""

from __future__ import annotations

import re
from typing import NamedTuple

from kubepipe.util import K8S_NAME, did_you_mean

__all__ = ["CheckIssue", "bound_at_run", "errors_only", "did_you_mean", "MODEL_NAME", "MODEL_NAME_RULE", "K8S_NAMESPACE", "model_name_issues",
           "namespace_issues", "is_blank", "Allowed", "Reference", "issues_text", "DEVICE", "device_issues"]

# A model name becomes a registry folder, an endpoint record's file name and a served model's name:
# nothing that can leave a folder (no `/`, no leading `.`), 128 characters at most.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")  # \Z: `$` let 'clf\n' (a YAML `>` scalar) through
# What MODEL_NAME allows, in words, for every message that refuses a name ('münchen' was told to 'use letters').
MODEL_NAME_RULE = "use ASCII letters, digits, '.', '_' or '-' (start with a letter or digit, max 128)"

K8S_NAMESPACE = re.compile(K8S_NAME)  # a DNS-1123 label: it reaches API paths (/namespaces/<ns>/...) as it is

# A torch device a step or server runs on (serving.artifact_loader.resolve_device: auto is cuda when torch sees one).
DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


class CheckIssue(NamedTuple):
    path: tuple  # relative to the step's `with:` block, e.g. ("expectations", 0, "expect_x")
    message: str
    hint: str | None = None
    # "warning": said by `kubepipe validate`, located, and the step still runs (e.g. a value the target ignores)
    severity: str = "error"
    # int or float where the value must be a number: `validate` tells a quoted one ('120') to be unquoted
    number: type | None = None


def errors_only(issues: list[CheckIssue]) -> list[CheckIssue]:
    """What refuses a run: a check's warnings are for `validate` to say."""
    return [i for i in issues if i.severity == "error"]


def issues_text(component: str, issues: list[CheckIssue]) -> str:
    """A step's check refusing its run-time values: `component: path: message (hint); ...`; no `component: `
    when `component` is empty (a library function whose caller names the step)."""
    return (f"{component}: " if component else "") + "; ".join(
        f"{'.'.join(map(str, i.path))}: {i.message}" + (f" ({i.hint})" if i.hint else "") for i in issues)


def _name_issues(with_values: dict, key: str, pattern: re.Pattern, what: str, hint: str,
                 required: bool = False) -> list[CheckIssue]:
    """A literal name must match `pattern`; `${...}` values are checked when the step runs. An empty one is
    refused where the step needs the name (`required`), else it means none."""
    name = (with_values or {}).get(key, "")
    if required and key in (with_values or {}) and (name is None or (isinstance(name, str) and not name.strip())):
        return [CheckIssue((key,), f"{what} is empty: the step needs one", hint)]
    if name == "" or name is None or (isinstance(name, str) and "${" in name):
        return []
    if not isinstance(name, str) or not pattern.fullmatch(name):  # `$` alone matches before a final newline
        return [CheckIssue((key,), f"bad {what} {name!r}", hint)]
    return []


def model_name_issues(with_values: dict, key: str = "model_name", *, required: bool = False) -> list[CheckIssue]:
    """`model_name` must be a safe name: it names registry folders and endpoint files; `required`: a component
    whose signature has no default for it (an empty one is refused, not read as none)."""
    return _name_issues(with_values, key, MODEL_NAME, "model name",
                        f"{MODEL_NAME_RULE}; it names registry folders and endpoint files", required)


def namespace_issues(with_values: dict, key: str = "namespace") -> list[CheckIssue]:
    """A Kubernetes namespace must be a DNS-1123 label: it goes into API paths as it is."""
    return _name_issues(with_values, key, K8S_NAMESPACE, "Kubernetes namespace",
                        "lowercase letters, digits and '-', starting and ending with a letter or digit, max 63")


class Allowed(NamedTuple):
    """What one input accepts, as `kubepipe components NAME` and docs/components.md show it.

    Built from the same tuples the check uses, so the reference cannot drift from what validates.
    """

    values: tuple = ()  # the allowed values, or the keys of a mapping input
    note: str = ""  # the form of a value, or what else is accepted
    by: dict | None = None  # values per case, e.g. hyperparameters per architecture
    by_label: tuple = ("value", "accepts")  # the column titles of `by` as a table


class Reference(NamedTuple):
    """A built-in's reference beyond its signature and docstring (a module-level function returns it)."""

    allowed: dict  # input name -> Allowed
    example: str  # one YAML step using the component; a test validates it inside a pipeline


def device_issues(with_values: dict, key: str = "device") -> list[CheckIssue]:
    """`device:` as resolve_device takes it: `cuda:1` (a node's second GPU) was refused at validate, and the run-time
    error for `gpu` told the user to write it."""
    v = with_values.get(key)
    if v is None or (isinstance(v, str) and ("${" in v or DEVICE.fullmatch(v))):
        return []
    return [CheckIssue((key,), f"must be one of auto, cpu, cuda, cuda:N, got {v!r}",
                       did_you_mean(str(v), ("auto", "cpu", "cuda")))]


def is_blank(text: str) -> bool:
    """No character to search for: empty, whitespace, or only invisible ones (zero-width spaces, control
    characters), which the encoder's normalizer drops: such a query embeds as the empty input."""
    return not any(c.isprintable() and not c.isspace() for c in text)


def bound_at_run(value) -> bool:
    """A value bound at run time (`${params.x}`, `${steps.s.outputs.y}`): it cannot be checked now."""
    return isinstance(value, str) and "${" in value
