"""The evaluation gate: absolute, per-slice and champion-relative thresholds; first run; force.

Semantics (tested as a matrix in tests/unit/test_eval_gate.py):
- `thresholds: {metric: {min: x, max: y}}` must hold on the whole holdout;
- `slices: {column: c, thresholds: {...}, min_rows: 1}` must hold on every value of column c
  (values with fewer than `min_rows` rows are skipped and reported);
- `relative: {metric: {min_improvement: x} | {max_regression: y}}` compares with the champion
  re-evaluated on the SAME holdout; "improvement" follows the metric's direction
  (lower is better for log_loss, ece, latency_ms, p50_ms, p99_ms);
- serving figures (p50_ms, p99_ms, tokens_per_s) are whole-model figures measured on the serving
  path (serving_latency.py); the decision ends with them and how they were measured;
- no champion (first run): relative thresholds are skipped and the decision says so;
- the candidate IS the champion (the same files: a run resumed after it promoted its model): relative
  thresholds hold (no `min_improvement` reject of the champion against itself), and the decision says so;
- no thresholds at all: an error (never a silent pass);
- `force: true` passes whatever the checks say, with an audit record (who, when, why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kubepipe.components.checks import CheckIssue, bound_at_run, did_you_mean, issues_text
from kubepipe.components.errors import ComponentError, ModelError
from kubepipe.components.evaluation.metric_names import CLASSIFICATION, SERVING, MetricSet
from kubepipe.components.evaluation.serving_latency import latency_issues
from kubepipe.components.kfp_values import as_kind

__all__ = ["GateResult", "gate_issues", "decide", "TOL", "BASELINES", "BOUNDS", "RELATIVE", "SLICE_KEYS",
           "threshold_issues", "absolute_checks", "unloadable_champion", "champion_of", "undefined_reason"]

TOL = 1e-9  # float noise: 0.9 computed as 0.8999999999 still meets `min: 0.9`
BOUNDS = ("min", "max")
RELATIVE = ("min_improvement", "max_regression")
SLICE_KEYS = ("column", "thresholds", "min_rows")
BASELINES = ("champion", "none")


@dataclass
class GateResult:
    passed: bool
    decision: str
    checks: list = field(default_factory=list)  # {scope, metric, value, op, bound, passed, note}
    first_run: bool = False
    forced: bool = False
    audit: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "decision": self.decision, "checks": self.checks,
                "first_run": self.first_run, "forced": self.forced, "audit": self.audit}


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int past float's range: the gate compares floats
        return False


def _number_issue(path: tuple, v) -> list[CheckIssue]:
    v = as_kind(v, "float")  # pipeline params inside a dict reach the step as strings ("0.9")
    if bound_at_run(v) or (isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v)):
        return []
    return [CheckIssue(path, f"must be a number, got {v!r}", None)]


def _metric_issue(path: tuple, name, names: MetricSet) -> list[CheckIssue]:
    if names.known(name):
        return []
    if name in names.renamed:
        return [CheckIssue(path, f"`{name}` is now `{names.renamed[name]}`",
                           "rename it: the value is sklearn's average precision (step-wise), not a trapezoidal area")]
    choices = list(names.choices)
    head, _, k = str(name).rpartition("@")
    if k.isdigit() and head in {c.partition("@")[0] for c in names.choices if "@" in c}:
        # `ndcg@2000`: the metric is right and its K is not; 'did you mean `ndcg@10`?' offered another K
        return [CheckIssue(path, f"unknown metric `{name}`", names.hint)]
    if k.isdigit():  # `recal@5`: the user's K, not an example's (it suggested recall@10)
        choices += [c.partition("@")[0] + "@" + k for c in names.choices if "@" in c]
    choices = [c for c in choices if c != name]  # `recall@0` is no typo of itself: its K is out of range
    return [CheckIssue(path, f"unknown metric `{name}`", did_you_mean(name, choices) or names.hint)]


def _threshold_issues(base: tuple, thresholds, names: MetricSet) -> list[CheckIssue]:
    if not isinstance(thresholds, dict):
        return [CheckIssue(base, "must be a mapping {metric: {min: x, max: y}}", f"e.g. {{{names.example}: {{min: 0.9}}}}")]
    issues: list[CheckIssue] = []
    for metric, bound in thresholds.items():
        path = base + (metric,)
        issues += _metric_issue(path, metric, names)
        if not isinstance(bound, dict) or not bound:
            issues.append(CheckIssue(path, "must be {min: x} and/or {max: y}", f"e.g. {metric}: {{min: 0.9}}"))
            continue
        for k, v in bound.items():
            if k not in BOUNDS:
                issues.append(CheckIssue(path + (k,), f"unknown bound `{k}`", did_you_mean(k, BOUNDS) or "use min or max"))
            else:
                issues += _number_issue(path + (k,), v) or _score_bound_issue(path + (k,), metric, k, v, names)
        issues += _crossed_bounds(path, bound)
    return issues


def _score_change_issue(path: tuple, metric, kind: str, v, names: MetricSet) -> list[CheckIssue]:
    """A change of a score in [0, 1] is at most 1: `max_regression: 2` (2 points meant) always holds, and
    `min_improvement: 2` never does."""
    v = as_kind(v, "float")
    if bound_at_run(v) or not names.scores(metric) or abs(v) <= 1 + TOL:
        return []
    what = ("always holds: the rule never rejects" if (kind == "max_regression") == (v > 0)
            else "can never be met")
    hint = f"write {v / 100:g} for {v:g} points" if abs(v) <= 100 else "a change of a score runs from -1 to 1"
    return [CheckIssue(path, f"`{metric}` is a score in [0, 1], so it changes by at most 1: {kind} {v:g} {what}",
                       hint)]


def _score_bound_issue(path: tuple, metric, op: str, v, names: MetricSet) -> list[CheckIssue]:
    """`f1_macro: {min: 85}` (a percentage) or `{max: -1}` on a score in [0, 1]: no model can meet it; `{min: -1}`
    or `{max: 2}`: every model meets it (as `max_regression: 2`, the rule never rejects)."""
    v = as_kind(v, "float")
    if not bound_at_run(v) and not names.scores(metric) and op == "max" and v < -TOL:
        # every metric a gate knows is >= 0 (scores, log_loss, latencies, throughput): `query_p99_ms: {max: -5}`
        # validated, and the gate rejected every model
        return [CheckIssue(path, f"`{metric}` is never negative: max {v:g} can never be met",
                           f"give the most `{metric}` may be (0 or more)")]
    if bound_at_run(v) or not names.scores(metric):
        return []
    if v < -TOL if op == "min" else v > 1 + TOL:
        return [CheckIssue(path, f"`{metric}` is a score in [0, 1]: {op} {v:g} always holds: the rule never rejects",
                           f"scores run from 0 to 1; write the {'least' if op == 'min' else 'most'} `{metric}` may be, "
                           "or leave the bound out")]
    if v <= 1 + TOL if op == "min" else v >= -TOL:
        return []
    hint = f"write {v / 100:g} for {v:g}%" if op == "min" and 1 < v <= 100 else "scores run from 0 to 1"
    return [CheckIssue(path, f"`{metric}` is a score in [0, 1]: {op} {v:g} can never be met", hint)]


def _crossed_bounds(path: tuple, bound: dict) -> list[CheckIssue]:
    """`{min: 0.9, max: 0.5}`: no value can meet both; the gate would reject every model."""
    low, high = (as_kind(bound.get(k), "float") for k in BOUNDS)
    numbers = [v for v in (low, high) if isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v)]
    if len(numbers) < 2 or low <= high + TOL:
        return []
    return [CheckIssue(path, f"min {low!r} is above max {high!r}: no value can meet both, the gate would reject "
                             "every model", "swap them, or keep one bound")]


def gate_issues(thresholds=None, relative=None, slices=None, baseline="champion", force=False, force_reason="",
                latency=None, names: MetricSet = CLASSIFICATION) -> list[CheckIssue]:
    """Everything wrong with a gate's settings (paths relative to the step's `with:`); `names`: the metrics
    this kind of gate knows (classification by default; retrieval: kubepipe.components.retrieval.metric_names)."""
    thresholds, relative, slices = thresholds or {}, relative or {}, slices or {}
    issues = _threshold_issues(("thresholds",), thresholds, names) + latency_issues(latency)
    if not isinstance(relative, dict):
        issues.append(CheckIssue(("relative",), "must be a mapping {metric: {min_improvement: x}}", None))
        relative = {}
    for metric, rule in relative.items():
        path = ("relative", metric)
        issues += _metric_issue(path, metric, names)
        if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in RELATIVE:
            bad = next(iter(rule), None) if isinstance(rule, dict) and len(rule) == 1 else None
            hint = (did_you_mean(bad, RELATIVE) if bad else None) or f"e.g. {metric}: {{min_improvement: 0.0}} or {{max_regression: 0.01}}"
            issues.append(CheckIssue(path, "must be exactly one of {min_improvement: x} or {max_regression: y}", hint))
        else:
            (kind, v), = rule.items()
            issues += _number_issue(path + (kind,), v) or _score_change_issue(path + (kind,), metric, kind, v, names)
    if not isinstance(slices, dict):
        issues.append(CheckIssue(("slices",), "must be a mapping {column: name, thresholds: {...}}", None))
        slices = {}
    if slices:
        for k in slices:
            if k not in SLICE_KEYS:
                issues.append(CheckIssue(("slices", k), f"unknown key `{k}`", did_you_mean(k, SLICE_KEYS)))
        if not isinstance(slices.get("column"), str) or not slices.get("column"):
            issues.append(CheckIssue(("slices", "column"), "name the column whose values are the slices", "e.g. column: country"))
        if not slices.get("thresholds"):
            issues.append(CheckIssue(("slices", "thresholds"), "give the thresholds each slice must meet", "e.g. {accuracy: {min: 0.8}}"))
        else:
            issues += _threshold_issues(("slices", "thresholds"), slices["thresholds"], names)
            issues += [CheckIssue(("slices", "thresholds", m), f"`{m}` is measured for the whole model, not per slice",
                                  f"move it to thresholds: {{{m}: ...}}")
                       for m in slices["thresholds"] if m in SERVING] if isinstance(slices["thresholds"], dict) else []
        mr = slices.get("min_rows", 1)
        if not bound_at_run(mr) and (not isinstance(mr, int) or isinstance(mr, bool) or mr < 1):
            issues.append(CheckIssue(("slices", "min_rows"), f"must be a whole number >= 1, got {mr!r}", None))
    if baseline not in BASELINES and not bound_at_run(baseline):
        issues.append(CheckIssue(("baseline",), f"must be `champion` or `none`, got {baseline!r}", did_you_mean(baseline, BASELINES)))
    if relative and baseline == "none":
        issues.append(CheckIssue(("relative",), "relative thresholds need a champion to compare with", "set baseline: champion or remove `relative`"))
    if not thresholds and not relative and not (slices and slices.get("thresholds")):
        issues.append(CheckIssue(
            ("thresholds",), "the gate has no thresholds: it would pass every model",
            f"add e.g. thresholds: {{{names.example}: {{min: 0.9}}}}" + ("" if baseline == "none" else
            f" and/or relative: {{{names.example}: {{max_regression: 0.0}}}}"),
        ))
    if not isinstance(force, bool) and not bound_at_run(force):  # "false" is truthy: it forced the gate
        issues.append(CheckIssue(("force",), f"must be true or false, got {force!r}", None))
    if force is True and not str(force_reason or "").strip():
        issues.append(CheckIssue(("force_reason",), "force: true needs a reason for the audit record", "set force_reason: '...'"))
    return issues


def _fmt(v) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}" if abs(v) < 1e-3 and v else f"{v:.3f}"


# Why a per-class metric is NaN (metrics.per_class_metrics): precision needs predictions of the label, recall
# true rows of it, f1 either.
_UNDEFINED_PER_CLASS = {"precision": "the model predicted no `{label}` row", "recall": "{rows} no `{label}` rows",
                        "f1": "{rows} no `{label}` rows and the model predicted none"}


def undefined_reason(metric: str, scope: str = "holdout") -> str:
    """Why `metric` is NaN: 'undefined: the model predicted no `x` row' for a per-class one."""
    head, sep, label = str(metric).partition(":")
    if sep and head in _UNDEFINED_PER_CLASS:
        rows = "this window has" if scope == "live" else "the holdout has"
        return "undefined: " + _UNDEFINED_PER_CLASS[head].format(label=label, rows=rows)
    return "undefined on this holdout (e.g. one class only)"


def _absolute(scope: str, metrics: dict, thresholds: dict) -> list[dict]:
    out = []
    prefix = "" if scope == "overall" else f"[{scope}] "
    for metric, bound in thresholds.items():
        value = metrics.get(metric)
        for op, b in bound.items():
            b = float(b)
            if value is None or not math.isfinite(value):
                why = "not computed for this model/holdout" if value is None else undefined_reason(metric, scope)
                out.append({"scope": scope, "metric": metric, "value": None, "op": op, "bound": b, "passed": False,
                            "note": f"{prefix}{metric} is {why}"})
                continue
            ok = value >= b - TOL if op == "min" else value <= b + TOL
            sym = (">=" if ok else "<") if op == "min" else ("<=" if ok else ">")
            out.append({"scope": scope, "metric": metric, "value": value, "op": op, "bound": b, "passed": ok,
                        "note": f"{prefix}{metric} {_fmt(value)} {sym} {op} {_fmt(b)}" if not ok else f"{prefix}{metric} {_fmt(value)} {sym} {_fmt(b)}"})
    return out


def _relative(metrics: dict, champ: dict, relative: dict, champ_label: str, lower: frozenset) -> list[dict]:
    out = []
    for metric, rule in relative.items():
        (kind, b), = rule.items()
        b = float(b)
        v, c = metrics.get(metric), champ.get(metric)
        if v is None or c is None or not (math.isfinite(v) and math.isfinite(c)):
            # which side is undefined, and why: the candidate's own threshold may hold while the champion's is NaN
            whose = " and ".join(w for w, x in (("the candidate", v), (champ_label, c))
                                 if x is None or not math.isfinite(x))
            out.append({"scope": "relative", "metric": metric, "value": v, "champion": c, "op": kind, "bound": b,
                        "passed": False, "note": f"{metric} cannot be compared with {champ_label}: {metric} of "
                                                 f"{whose} is {undefined_reason(metric)}"})
            continue
        gain = (c - v) if metric in lower else (v - c)
        ok = gain >= b - TOL if kind == "min_improvement" else gain >= -b - TOL
        note = f"{'+' if gain >= 0 else ''}{_fmt(gain)} {metric} vs {champ_label}"
        if not ok:
            note += f" (needs {'improvement >= ' if kind == 'min_improvement' else 'regression <= '}{_fmt(b)})"
        out.append({"scope": "relative", "metric": metric, "value": v, "champion": c, "op": kind, "bound": b,
                    "delta": gain, "passed": ok, "note": note})
    return out


def _context(metrics: dict, champ: dict, thresholds: dict, label: str, lower: frozenset) -> str:
    """For information only: how the first thresholded metric compares with the champion."""
    for metric in thresholds:
        v, c = metrics.get(metric), champ.get(metric)
        if isinstance(v, float) and isinstance(c, float) and math.isfinite(v) and math.isfinite(c):
            gain = (c - v) if metric in lower else (v - c)
            return f"; {'+' if gain >= 0 else ''}{_fmt(gain)} {metric} vs {label}"
    return ""


def decide(
    metrics: dict,
    *,
    thresholds: dict | None = None,
    relative: dict | None = None,
    slices: dict | None = None,
    slice_metrics: dict | None = None,
    champion_metrics: dict | None = None,
    champion_label: str = "champion",
    baseline: str = "champion",
    force: bool = False,
    force_reason: str = "",
    measured: str = "",
    names: MetricSet = CLASSIFICATION,
    step: str = "evaluate",
    champion_same: bool = False,
    first_run_hint: str = "",
) -> GateResult:
    """Apply the gate. `slice_metrics` maps slice value -> metrics (None rows skipped upstream);
    `measured` (how the serving figures were measured, with the figures) ends the decision text.
    `champion_same`: the candidate's files are the champion's (a run resumed after it registered and promoted its
    model): the relative rules hold, the decision says it is the champion (not a 0 improvement rejected).
    `first_run_hint`: on a first run, the registry's name closest to a possibly misspelt model_name."""
    from kubepipe.components.registry.version import audit_record

    issues = gate_issues(thresholds, relative, slices, baseline, force, force_reason, names=names)
    if issues:
        raise ComponentError(issues_text(f"{step}: bad gate settings", issues))
    thresholds, relative, slices = thresholds or {}, relative or {}, slices or {}
    checks = _absolute("overall", metrics, thresholds)
    for value, sm in sorted((slice_metrics or {}).items(), key=lambda kv: str(kv[0])):
        if sm is None:
            checks.append({"scope": f"{slices.get('column')}={value}", "metric": None, "passed": True,
                           "note": f"[{slices.get('column')}={value}] skipped: fewer than {slices.get('min_rows', 1)} rows"})
            continue
        checks += _absolute(f"{slices.get('column')}={value}", sm, slices.get("thresholds", {}))
    first_run = baseline == "champion" and champion_metrics is None
    if relative and champion_metrics is not None and champion_same:
        checks += [{"scope": "relative", "metric": metric, "value": metrics.get(metric),
                    "champion": champion_metrics.get(metric), "op": next(iter(rule)), "bound": float(next(iter(
                        rule.values()))), "delta": 0.0, "passed": True,
                    "note": f"{metric}: the candidate is {champion_label} (the same files), nothing to compare with"}
                   for metric, rule in relative.items()]
    elif relative and champion_metrics is not None:
        checks += _relative(metrics, champion_metrics, relative, champion_label, names.lower_is_better)
    if slice_metrics and not any(c.get("metric") for c in checks):  # every slice skipped, nothing else gates
        col, min_rows = slices.get("column"), slices.get("min_rows", 1)
        checks.append({"scope": "slices", "metric": None, "passed": False,
                       "note": f"nothing was checked: every value of `{col}` has fewer than {min_rows} rows "
                               "(slices.min_rows) and no other threshold applies; lower `min_rows`, or add "
                               "`thresholds` on the whole holdout"})
    failed = [c for c in checks if not c["passed"]]
    passed = not failed
    # a reject names what failed, plus how it compares with the champion for context
    shown = failed + [c for c in checks if c["scope"] == "relative" and c["passed"]] if failed else [c for c in checks if c.get("metric")]
    same = champion_same and champion_metrics is not None
    if same:  # one sentence says it, not one per relative rule
        shown = [c for c in shown if c["scope"] != "relative"]
    body = "; ".join(c["note"] for c in shown[:4]) + (f"; +{len(shown) - 4} more" if len(shown) > 4 else "")
    if same:
        body = "; ".join(filter(None, [body, f"the candidate IS {champion_label} (the same files: a resumed or "
                                             "re-run pipeline)"]))
    elif champion_metrics is not None and not relative:
        body += _context(metrics, champion_metrics, thresholds, champion_label, names.lower_is_better)
    if first_run:
        skipped = " (relative thresholds skipped)" if relative else ""
        body = (body or "no absolute thresholds") + f"; no champion yet, absolute thresholds only{skipped}"
        if first_run_hint:
            body += f"; {first_run_hint}"
    if passed and baseline == "none":  # register-model may promote it: say that nothing was compared
        body += "; no champion comparison (baseline: none)"
    if measured:
        body += f"; {measured}"
    verdict = "reject" if not passed else ("first-run" if first_run else "promote")
    decision = f"{verdict}: {body}"
    audit = []
    if force:
        audit.append(audit_record("force-gate", str(force_reason), would_have=decision))
        decision = f"forced: {decision} (by {audit[0]['by']}: {force_reason})"
        passed = True
    return GateResult(passed=passed, decision=decision, checks=checks, first_run=first_run, forced=bool(force), audit=audit)


def threshold_issues(base: tuple, thresholds, names: MetricSet = CLASSIFICATION) -> list[CheckIssue]:
    """Issues of a `{metric: {min: x, max: y}}` block at `base` (also live quality's thresholds)."""
    return _threshold_issues(base, thresholds, names)


def absolute_checks(scope: str, metrics: dict, thresholds: dict) -> list[dict]:
    """One check per bound: {scope, metric, value, op, bound, passed, note} (also live quality's)."""
    return _absolute(scope, metrics, thresholds)


def unloadable_champion(champ, exc: Exception) -> ModelError:
    """The champion (a registry ModelVersion, not the candidate) cannot be loaded, e.g. its files changed in the
    registry: whose it is, where it is (the loader names a download's temp path for a remote registry) and what
    to do, instead of the loader's own advice ('retrain or re-copy the artifact')."""
    return ModelError(f"champion `{champ.name}` v{champ.version} ({champ.model_uri}) cannot be loaded to compare the "
                      f"candidate with: {exc}. Promote a sound version (kubepipe models promote {champ.name} VERSION "
                      "--reason ...), or set baseline: none")


def champion_of(reg, name: str):
    """The registry's champion of `name` (None: none yet). One whose entry cannot be read (a damaged version.json)
    is said as the gate's problem: the registry's 'register the model again' alone did not say that the gate needs
    a sound champion, or none. The storage failing (retryable) stays as it is."""
    from kubepipe.components.registry.version import RegistryError, RegistryUnavailable

    try:
        return reg.alias(name, "champion")
    except RegistryUnavailable:
        raise
    except RegistryError as exc:
        raise RegistryError(f"the champion of `{name}` cannot be read to compare the candidate with: {exc}. Promote "
                            f"a sound version (kubepipe models promote {name} VERSION --reason ...), or set baseline: "
                            "none", retryable=exc.retryable) from None
