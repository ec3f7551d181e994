"""The guardrail's rules: what they are, how a `rules:` block is checked, and how outputs are judged.

A probe's output is a list of records (dicts): a classifier returns one, `{label, score}`; a retriever
returns its top-k hits, each a record with a `score`. Rules judge every record of every probe:

    allowed_labels     the record's `label_field` (default `label`) is one of these values
    label_field        which record field `allowed_labels` reads (a retriever's e.g. `category`)
    score              {min, max}: every `score` within the bounds (a non-finite score always fails)
    pii                patterns no returned value may contain: pan, email, iban, phone (default [pan]; []
                       turns off); every string is searched, and every number as its whole part's digits
    max_latency_ms     p99 over the probes of one model call per probe, in milliseconds; under MIN_P99_PROBES
                       (100) probes, the slowest probe's (the max, named as such)
    max_output_length  characters of text in one probe's output (all string values, summed)

Whatever the rules, a probe answered with no record at all is a `no_answer` violation (validate_outputs): each rule
above would hold of nothing.

Checking a `rules:` block imports nothing heavy; compile time and run time use the same `rule_issues`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, TypeGuard

from kubepipe.components.checks import CheckIssue, did_you_mean
from kubepipe.components.pii import MASKED, PII_KINDS, find_pii, number_digits, redact_shown

__all__ = ["RULE_KEYS", "SCORE_BOUNDS", "DEFAULT_PII", "MIN_P99_PROBES", "rule_issues", "judge", "text_values",
           "number_digits", "masked_kinds", "latency_figures"]

RULE_KEYS = ("allowed_labels", "label_field", "score", "pii", "max_latency_ms", "max_output_length")
SCORE_BOUNDS = ("min", "max")
DEFAULT_PII = ("pan",)
_EXAMPLE = "e.g. rules: {allowed_labels: [groceries, travel], score: {min: 0, max: 1}, pii: [pan], max_latency_ms: 50}"


def _placeholder(v: Any) -> bool:
    return isinstance(v, str) and "${" in v


def _number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def rule_issues(rules: Any, prefix: tuple = ("rules",)) -> list[CheckIssue]:
    """Everything wrong with a `rules:` block, each at its path (e.g. rules.score.min)."""
    if rules is None or _placeholder(rules):
        return []
    if not isinstance(rules, dict):
        return [CheckIssue(prefix, f"must be a mapping, got {rules!r}", _EXAMPLE)]
    issues: list[CheckIssue] = []
    for key in rules:
        if key not in RULE_KEYS:
            issues.append(CheckIssue(prefix + (key,), f"unknown rule `{key}`",
                                     did_you_mean(str(key), RULE_KEYS) or f"rules are {', '.join(RULE_KEYS)}"))
    labels = rules.get("allowed_labels")
    if labels is not None and not _placeholder(labels):
        if not isinstance(labels, list) or not labels:
            issues.append(CheckIssue(prefix + ("allowed_labels",), f"must be a non-empty list of labels, got {labels!r}",
                                     "e.g. allowed_labels: [groceries, travel]"))
        else:
            issues += [CheckIssue(prefix + ("allowed_labels", i), f"a label is text or a number, got {v!r}")
                       for i, v in enumerate(labels) if not isinstance(v, (str, int, float)) or isinstance(v, bool)]
    field = rules.get("label_field", "label")
    if not _placeholder(field) and (not isinstance(field, str) or not field):
        issues.append(CheckIssue(prefix + ("label_field",), f"must be a record field name, got {field!r}"))
    issues += _score_issues(rules.get("score"), prefix + ("score",))
    issues += _pii_issues(rules.get("pii", list(DEFAULT_PII)), prefix + ("pii",))
    for key, kind in (("max_latency_ms", "a positive number of milliseconds"), ("max_output_length", "a positive integer")):
        v = rules.get(key)
        if v is None or _placeholder(v):
            continue
        ok = _number(v) and v > 0 and (key != "max_output_length" or float(v).is_integer())
        if not ok:
            issues.append(CheckIssue(prefix + (key,), f"must be {kind}, got {v!r}"))
    return issues


def _score_issues(score: Any, path: tuple) -> list[CheckIssue]:
    if score is None or _placeholder(score):
        return []
    if not isinstance(score, dict) or not score:
        return [CheckIssue(path, f"must be a mapping with min and/or max, got {score!r}", "e.g. score: {min: 0, max: 1}")]
    issues = [CheckIssue(path + (k,), f"unknown bound `{k}`", did_you_mean(str(k), SCORE_BOUNDS) or "use min and/or max")
              for k in score if k not in SCORE_BOUNDS]
    for k in SCORE_BOUNDS:
        v = score.get(k)
        if v is not None and not _placeholder(v) and not _number(v):
            issues.append(CheckIssue(path + (k,), f"must be a finite number, got {v!r}"))
    lo, hi = score.get("min"), score.get("max")
    if _number(lo) and _number(hi) and lo > hi:
        issues.append(CheckIssue(path, f"min {lo} is above max {hi}", "swap them"))
    return issues


def _pii_issues(pii: Any, path: tuple) -> list[CheckIssue]:
    if _placeholder(pii):
        return []
    if not isinstance(pii, list):
        return [CheckIssue(path, f"must be a list of {', '.join(PII_KINDS)} (or [] for none), got {pii!r}")]
    return [CheckIssue(path + (i,), f"unknown PII pattern {v!r}",
                       did_you_mean(str(v), PII_KINDS) or f"use {', '.join(PII_KINDS)}")
            for i, v in enumerate(pii) if v not in PII_KINDS]


def text_values(value: Any, where: str = "", *, numbers: bool = False,
                keys: Callable[[str], str] | None = None) -> Iterator[tuple[str, str]]:
    """(field path, text) of every string inside a record (nested dicts and lists included); with
    `numbers`, numbers too, as their whole part's digits (see number_digits); with `keys`, every mapping's keys too
    (`{"jane@example.com": 0.9}`), at the path `<key's path> (key)`, each key in a path shown as keys(key)."""
    if isinstance(value, str):
        yield where, value
    elif numbers and (digits := number_digits(value)) is not None:
        yield where, digits
    elif isinstance(value, dict):
        for k, v in value.items():
            shown = keys(str(k)) if keys else str(k)
            path = f"{where}.{shown}" if where else shown
            if keys:
                yield from text_values(k, f"{path} (key)", numbers=numbers)
            yield from text_values(v, path, numbers=numbers, keys=keys)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from text_values(v, f"{where}[{i}]", numbers=numbers, keys=keys)


def masked_kinds(rules: dict) -> tuple:
    """What the step's shown texts mask: PANs, IBANs and e-mail addresses always, and what `pii` checks
    (a phone number the rule flags must not stand in clear in the violation that names it)."""
    return tuple(dict.fromkeys(MASKED + tuple(k for k in rules.get("pii", DEFAULT_PII) if k in PII_KINDS)))


def _v(probe: int, text: str, rule: str, field: str, value: Any, limit: Any, masked: tuple = MASKED) -> dict:
    """One violation; every text in it is redacted, credentials and PII (it ends up in the report, logs and JSON)."""
    return {"probe": probe, "input": redact_shown(str(text), masked), "rule": rule, "field": field,
            "value": redact_shown(value, masked) if isinstance(value, str) else value, "limit": limit}


def judge(rules: dict, probes: list[str], outputs: list[list[dict]], latencies_ms: list[float]) -> tuple[list[dict], dict]:
    """(violations, figures) of the outputs of each probe under `rules` (checked already)."""
    from kubepipe.components.data.io import id_text  # a label 5411.0 (an int column with gaps) is the label 5411

    allowed = rules.get("allowed_labels")
    allowed_set = {id_text(x) for x in allowed} if allowed else None
    field = rules.get("label_field") or "label"
    score = rules.get("score") or {}
    lo, hi = score.get("min"), score.get("max")
    pii = tuple(rules.get("pii", DEFAULT_PII))
    masked = masked_kinds(rules)
    max_len = rules.get("max_output_length")
    out: list[dict] = []
    for i, (text, records) in enumerate(zip(probes, outputs)):
        length = 0
        for r, rec in enumerate(records):
            at = f"[{r}]"
            if allowed_set is not None:
                label = id_text(rec.get(field))
                if label is None or label not in allowed_set:
                    out.append(_v(i, text, "allowed_labels", f"{at}.{field}", "missing" if label is None else label,
                                  sorted(allowed_set), masked))
            if score:
                s = rec.get("score")
                bad = not _number(s) or (lo is not None and s < lo) or (hi is not None and s > hi)
                if bad:
                    out.append(_v(i, text, "score", f"{at}.score", s if _number(s) else str(s), dict(score), masked))
            length += sum(len(value) for _, value in text_values(rec))
            for path, value in text_values(rec, at, numbers=True, keys=lambda k: redact_shown(k, masked)):
                for f in find_pii(value, pii):
                    out.append(_v(i, text, f"pii:{f.kind}", path, value, "none", masked))
        if max_len is not None and length > max_len:
            out.append(_v(i, text, "max_output_length", "*", length, max_len, masked))
    figures = latency_figures(latencies_ms)
    limit = rules.get("max_latency_ms")
    judged = figures["p99_ms"] if len(latencies_ms) >= MIN_P99_PROBES else figures["max_ms"]
    if limit is not None and judged > limit:
        slowest = max(range(len(latencies_ms)), key=latencies_ms.__getitem__)
        out.append(_v(slowest, probes[slowest], "max_latency_ms", figures["latency_judged"], round(judged, 3),
                      limit, masked))
    return out, figures


# A p99 of fewer probes is no percentile: numpy's interpolation lies between the two slowest (of 3 probes, 98% of
# the way to the max), so `max_latency_ms` holds the slowest probe to the limit and says so.
MIN_P99_PROBES = 100


def latency_figures(latencies_ms: list[float]) -> dict:
    """p50, p99 and max in ms, and `latency_judged`: what `max_latency_ms` is held to (the p99 of n probes, or,
    under MIN_P99_PROBES, their max)."""
    import numpy as np

    n = len(latencies_ms)
    judged = (f"p99 over {n} probes" if n >= MIN_P99_PROBES else
              f"max over {n} probe(s) (a p99 needs {MIN_P99_PROBES} or more)")
    if not latencies_ms:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "latency_judged": judged}
    p50, p99 = np.percentile(np.asarray(latencies_ms, dtype=float), [50, 99])
    return {"p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(max(latencies_ms)), "latency_judged": judged}
