"""Run a model (or retriever) on a probe set, one call per probe, and judge its outputs by the rules.

`validate_outputs(...)` returns the result record (JSON-able, every text redacted) that the step
writes as its violations artifact and renders as its HTML report.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from kubepipe.components.checks import did_you_mean, issues_text
from kubepipe.components.errors import ConfigError, ComponentError, DataError
from kubepipe.components.guardrail.checks import inline_probe_issues
from kubepipe.components.pii import redact_shown, redact_value
from kubepipe.components.guardrail.rules import DEFAULT_PII, judge, masked_kinds, rule_issues

__all__ = ["validate_outputs", "load_probes", "MAX_SHOWN"]

MAX_SHOWN = 50  # probes whose outputs the report lists (all violations are listed)


def _shown(probe: Any) -> str:
    return probe if isinstance(probe, str) else json.dumps(probe, sort_keys=True, default=str)


def load_probes(prober, *, probes_path: str = "", inline: list | None = None, probe_column: str = "",
                max_probes: int = 1000) -> list[Any]:
    """The probes: the dataset's rows (its probe column, or whole rows for a tabular model), then `inline`."""
    rows: list[Any] = []
    if probes_path:
        from kubepipe.components.data.io import id_text
        from kubepipe.components.data.sources import read_source

        tabular = getattr(prober, "tabular", False) and not probe_column
        col = "" if tabular else probe_column or prober.probe_column
        df = read_source(probes_path, text_columns=(col,) if col else ())  # a CSV's probe text as written
        if tabular:
            rows += df.to_dict("records")
        else:
            cols = [str(c) for c in df.columns]
            if col not in cols:
                hint = did_you_mean(col, cols)
                raise DataError(f"probes: no column `{col}` (columns: {cols}); set `probe_column` on the step"
                                + (f" ({hint})" if hint else ""))
            rows += [id_text(v) or "" for v in df[col].tolist()]  # a missing cell is no text, never 'nan'
    rows += list(inline or [])
    if not rows:
        raise ConfigError("validate-outputs has no probes: wire a dataset into `probes` or set `inline_probes`")
    if len(rows) > max_probes:
        raise DataError(f"{len(rows)} probes, more than max_probes={max_probes}; sample them upstream "
                        "(load-data sample_n) or raise max_probes")
    return rows


def _check_label_field(rules: dict, prober) -> None:
    """A label rule must read a field the prober's records have: a retriever's hits have no `label`
    (an `allowed_labels` on it would fail every hit as "missing", which says nothing useful)."""
    fields = getattr(prober, "fields", None)
    if not rules.get("allowed_labels") or fields is None:
        return
    field = rules.get("label_field") or "label"
    if field in fields:
        return
    where = "rules.label_field" if "label_field" in rules else "rules.allowed_labels"
    hint = did_you_mean(field, list(fields))
    raise ConfigError(f"validate-outputs: {where}: a {prober.kind}'s records have no field `{field}` (fields: "
                      f"{', '.join(fields)}); set rules.label_field to the field allowed_labels should read "
                      + (f"({hint}) " if hint else "(e.g. label_field: category) ")
                      + "or remove allowed_labels")


def _call(prober, probe) -> tuple[list[dict], float, str]:
    t0 = time.perf_counter()
    try:
        records = prober(probe)
    except ComponentError:
        raise  # the probe does not fit the model: a configuration error, not a model output
    except Exception as exc:  # a model that crashes on a probe fails the guardrail, with the reason shown (redacted
        # where it is shown: a client's error names the URL it called, with its token)
        return [], (time.perf_counter() - t0) * 1000, f"{type(exc).__name__}: {exc}"
    ms = (time.perf_counter() - t0) * 1000
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ComponentError(f"{type(prober).__name__} returned {type(records).__name__}, not a list of records; "
                             "a prober returns [{field: value, ...}] per probe (see guardrail.probers)")
    return [_python(r) for r in records], ms, ""


def _located(prober, probes: list, i: int, inline: int) -> tuple[list[dict], float, str]:
    """`_call` of probe i; a probe that does not fit the model is named by its place (the last `inline` probes are
    inline_probes, the others the probes dataset's rows)."""
    try:
        return _call(prober, probes[i])
    except ComponentError as exc:
        first = len(probes) - inline
        where = f"inline_probes[{i - first}]" if i >= first else f"row {i} of the probes dataset"
        raise type(exc)(f"validate-outputs: probe {i} ({where}): {exc}") from None


def _python(value: Any) -> Any:
    """`value` with numpy scalars and arrays as Python values: a plugged-in prober's np.float32 score is a
    number to the score rule, and its np.int64 card number is a whole number the pii rule reads."""
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_python(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return _python(value.tolist())  # a scalar's tolist() is its Python value
    return value


def validate_outputs(model_dir: str, *, probes_path: str = "", inline_probes: list | None = None,
                     probe_column: str = "", rules: dict | None = None, top_k: int = 5, max_probes: int = 1000,
                     warmup: int = 3, prober=None, limit=None) -> dict:
    """Probe the model once per probe (after `warmup` untimed calls) and judge the outputs by `rules`; `limit`:
    the served endpoint's text limit (served_limits.TextLimit; None: kubepipe serve's default)."""
    from kubepipe.components.guardrail.probers import open_prober

    rules = dict(rules or {})
    issues = rule_issues(rules) + inline_probe_issues(inline_probes or [])
    if issues:  # checked again here: values may come from run-time parameters
        raise ConfigError(issues_text("validate-outputs", issues))
    if not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"validate-outputs: top_k must be a positive integer, got {top_k!r}")
    prober = prober or open_prober(model_dir, top_k=top_k, limit=limit)
    _check_label_field(rules, prober)
    probes = load_probes(prober, probes_path=probes_path, inline=inline_probes, probe_column=probe_column,
                         max_probes=max_probes)
    inline = len(inline_probes or [])
    for i in range(min(warmup, len(probes))):
        _located(prober, probes, i, inline)
    outputs, latencies, errors = [], [], []
    for i in range(len(probes)):
        records, ms, error = _located(prober, probes, i, inline)
        outputs.append(records)
        latencies.append(ms)
        errors.append(error)
    shown = [_shown(p) for p in probes]
    masked = masked_kinds(rules)
    violations, figures = judge(rules, shown, outputs, latencies)
    violations += [{"probe": i, "input": redact_shown(shown[i], masked), "rule": "error", "field": "*",
                    "value": redact_shown(e, masked), "limit": "no exception"} for i, e in enumerate(errors) if e]
    # no record at all: every rule would hold of nothing (allowed_labels, score), so an empty answer is its own
    # violation, whatever the rules
    violations += [{"probe": i, "input": redact_shown(shown[i], masked), "rule": "no_answer", "field": "*",
                    "value": f"no answer for probe {i}: the model returned no record", "limit": "at least one record"}
                   for i, (records, e) in enumerate(zip(outputs, errors)) if not records and not e]
    violations.sort(key=lambda v: (v["probe"], v["rule"], v["field"]))
    by_rule: dict[str, int] = {}
    for v in violations:
        by_rule[v["rule"]] = by_rule.get(v["rule"], 0) + 1
    passed = not violations
    decision = ("pass: " + f"{len(probes)} probe(s), no violation" if passed else
                "fail: " + ", ".join(f"{n} {r}" for r, n in sorted(by_rule.items())) + f" violation(s) in {len(probes)} probe(s)")
    return {
        "model": {"path": os.fspath(model_dir), "kind": prober.kind},
        "rules": {**rules, "pii": list(rules.get("pii", DEFAULT_PII))},
        "probes": len(probes), "passed": passed, "decision": decision, "violations": violations,
        "by_rule": by_rule, "figures": {**figures, "probes": len(probes), "violations": len(violations)},
        "outputs": [{"probe": i, "input": redact_shown(shown[i], masked), "latency_ms": round(latencies[i], 3),
                     "records": redact_value(outputs[i][:top_k], masked, credentials=True)}
                    for i in range(min(MAX_SHOWN, len(probes)))],
    }
