"""Expectation lists: the kubepipe YAML form and GX suite JSON, parsed into one shape. Imports no GX."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubepipe.components.checks import CheckIssue
from kubepipe.components.errors import DataError

__all__ = ["ExpectationSpec", "SEVERITIES", "parse_items", "load_suite_file", "issues_text"]

SEVERITIES = ("fail", "warn")
# GX 1.x's own severities, as written in suite JSON files, mapped onto kubepipe's.
_GX_SEVERITY = {"critical": "fail", "warning": "warn", "info": "warn"}


@dataclass(frozen=True)
class ExpectationSpec:
    index: int  # position in the list: reports and errors point back to it
    name: str  # GX expectation type, e.g. expect_column_values_to_not_be_null
    kwargs: dict  # GX kwargs, without `severity`
    severity: str  # fail | warn
    # where a person finds it: `expectations[2]` of the step, or `<suite file>: expectations[0]` (index is the
    # position in the combined list, which is in neither)
    where: str = ""

    @property
    def place(self) -> str:
        return self.where or f"expectations[{self.index}]"


def parse_items(items: Any, prefix: tuple = ("expectations",)) -> tuple[list[ExpectationSpec], list[CheckIssue]]:
    """Structure only (names and kwargs are checked against the GX table in checks.py)."""
    specs: list[ExpectationSpec] = []
    issues: list[CheckIssue] = []
    if items is None:
        return specs, issues
    if not isinstance(items, list):
        return specs, [CheckIssue(prefix, f"must be a list of expectations, got {type(items).__name__}",
                                  "write `- expect_column_values_to_not_be_null: {column: description}`")]
    for i, item in enumerate(items):
        where = prefix + (i,)
        if isinstance(item, dict) and "type" in item and ("kwargs" in item or len(item) > 1):  # GX's own form
            name, kwargs, meta = item.get("type"), item.get("kwargs") or {}, item.get("meta") or {}
            if not isinstance(meta, dict):
                issues.append(CheckIssue(where + ("meta",), f"meta must be a mapping, got {type(meta).__name__}",
                                         "write e.g. `meta: {notes: ...}`"))
                continue
            kw_path = where + ("kwargs",)
            if isinstance(kwargs, dict) and "severity" not in kwargs:
                kwargs = {**kwargs, "severity": item.get("severity", meta.get("severity", "fail"))}
        elif isinstance(item, dict) and len(item) == 1:
            name, kwargs = next(iter(item.items()))
            kwargs = {} if kwargs is None else kwargs
            kw_path = where + (name,)
        elif isinstance(item, str):
            name, kwargs, kw_path = item, {}, where
        elif isinstance(item, dict) and "expectation_type" in item:  # a GX 0.x suite: the common migration case
            issues.append(CheckIssue(where, f"`expectation_type: {item['expectation_type']}` is GX 0.x's spelling; "
                                            "validate-data runs GX 1.x, which names the expectation `type`",
                                     "rename `expectation_type` to `type` in the suite (its kwargs stay)"))
            continue
        else:
            issues.append(CheckIssue(where, "each expectation is a mapping with one key, the expectation name",
                                     "write `- expect_column_values_to_not_be_null: {column: description}`"))
            continue
        if not isinstance(name, str):
            issues.append(CheckIssue(where, f"expectation name must be a string, got {name!r}"))
            continue
        if not isinstance(kwargs, dict):
            issues.append(CheckIssue(kw_path, f"kwargs must be a mapping, got {type(kwargs).__name__}",
                                     "write e.g. `{column: description, mostly: 0.99}`"))
            continue
        kwargs = dict(kwargs)
        severity = kwargs.pop("severity", "fail")
        severity = _GX_SEVERITY.get(str(severity).lower(), severity)
        if severity not in SEVERITIES:
            issues.append(CheckIssue(where + (name, "severity"), f"unknown severity {severity!r}",
                                     "use `fail` (stops the run) or `warn` (reported only)"))
            continue
        specs.append(ExpectationSpec(i, name, kwargs, severity))
    return specs, issues


def load_suite_file(path: str) -> list:
    """The expectation items of a GX suite JSON file (`{"expectations": [...]}`), as raw dicts. `path`: a local path,
    `file://`, or a URI read as load-data reads its source (gs://, s3://, https://): on Kubeflow and Vertex a
    suite can only be one (a local path is refused there), and a URI was 'suite file not found'."""
    from kubepipe.components.data.sources import fetch_bytes
    from kubepipe.components.errors import SourceMissing
    from kubepipe.secrets import redact_url
    from kubepipe.util import local_path

    local = local_path(path)
    if local is None:
        try:
            raw = fetch_bytes(path)
        except SourceMissing:
            raise DataError(f"{redact_url(path)}: expectation suite file not found; check `suite_path`") from None
    elif not Path(local).expanduser().is_file():
        raise DataError(f"{path}: expectation suite file not found; check `suite_path`")
    else:
        raw = Path(local).expanduser().read_bytes()
    path = redact_url(path)  # a signed URL's signature is no part of a message
    try:
        text = raw.decode("utf-8-sig")  # a BOM (Windows editors write one) was 'decode using utf-8-sig'
    except UnicodeDecodeError:
        raise DataError(f"{path}: expectation suite is not UTF-8 text; is it the right file?") from None
    if not text.strip():
        raise DataError(f"{path}: expectation suite file is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: expectation suite is not valid JSON: {exc.msg}") from None
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise DataError(f"{path}: a GX suite is a JSON object with an `expectations` list")
    return doc["expectations"]


def issues_text(issues: list[CheckIssue], where: str = "") -> str:
    lines = []
    for iss in issues:
        path = ".".join(str(p) for p in iss.path)
        lines.append(f"  {where}{path}: {iss.message}" + (f"; {iss.hint}" if iss.hint else ""))
    return "\n".join(lines)
