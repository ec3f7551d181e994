"""Canary analysis: after the smoke test, compare the canary with the stable revision under real traffic.

```yaml
with:
  canary_percent: 10
  canary_analysis: {bake_s: 120, min_requests: 50, max_error_rate_increase: 0.0,
                    max_client_error_rate_increase: 0.05, max_p99_ratio: 1.5, max_p99_increase_ms: 20,
                    max_prediction_psi: 0.25}
```

The deploy step holds the canary at `canary_percent` for `bake_s` seconds, then compares the
two revisions' numbers (the local endpoint proxy's per-revision counters, or Prometheus for
KServe; both shaped as `RevisionStats.to_dict()`):

- error rate: the canary's share of 5xx answers (and 429: overloaded by its share of the traffic, its own failure)
  may exceed the stable's by at most `max_error_rate_increase` (default 0: any 5xx where the stable answered none
  rolls back);
- client error rate: the canary's share of 4xx answers (not 429) may exceed the stable's by at most
  `max_client_error_rate_increase` (default 0.05): a canary refusing the real clients' requests
  (400 to a schema it no longer takes) answers no 5xx, and was promoted;
- both share one rule: a share over its limit (stable share + bound) rolls back only where the one-sided binomial
  test of the canary's count at the limit's rate says it is no noise (p < 0.05): 2 refusals in 20 canary answers
  against none of the stable's are not (p 0.26 at 0.05); at a limit of 0 any count is (p 0);
- p99 latency (from the latency histograms): rolled back when the canary's p99 is above both
  `stable p99 x max_p99_ratio` and `stable p99 + max_p99_increase_ms` (the absolute floor keeps
  2 ms -> 4 ms jitter from rolling back a fast model; null switches a bound off); a revision with answers but no
  latency histogram (its series not scraped) is inconclusive while a bound is on;
- predicted labels: PSI of the canary's label distribution against the stable's (the data
  area's `psi`) at most `max_prediction_psi`, unless the chi-square test of the label counts
  (the data area's `chi2_pvalue`) cannot tell them apart (p >= 0.05): few answers make PSI noise;
- fewer than `min_requests` canary answers (or none at all, even at 0) is inconclusive, and inconclusive rolls back;
  so is a canary with answers where the stable revision has none (nothing to compare with: its metrics missing,
  or no traffic on it).

Pure Python apart from `psi` and `chi2_pvalue` (numpy, scipy: imported when analysing): the compile-time check
imports this module.
"""

from __future__ import annotations

import math

from kubepipe.components.checks import CheckIssue, did_you_mean
from kubepipe.components.serving.revision_stats import histogram_quantile

__all__ = ["ANALYSIS_KEYS", "DEFAULTS", "analysis_issues", "analysis_settings", "analyze", "preload", "summary",
           "analysis_markdown"]

DEFAULTS = {"bake_s": 60, "min_requests": 20, "max_error_rate_increase": 0.0, "max_client_error_rate_increase": 0.05,
            "max_p99_ratio": 1.5, "max_p99_increase_ms": 20.0, "max_prediction_psi": 0.25}
ANALYSIS_KEYS = tuple(DEFAULTS)
MAX_BAKE_S = 86400
PSI_SIGNIFICANCE = 0.05  # the label PSI bound holds only at chi-square p below this (detect-drift's default)
RATE_SIGNIFICANCE = 0.05  # a 5xx / 4xx share over its limit rolls back only at binomial p below this
_NULLABLE = ("max_p99_ratio", "max_p99_increase_ms", "max_prediction_psi")


def _num(v) -> bool:
    """A number a bound can be: not a bool, not NaN (every comparison with NaN is false)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def analysis_issues(value, canary_percent=None) -> list[CheckIssue]:
    """Issues in `canary_analysis:` (paths relative to the step's `with:`)."""
    if value is None or value == {}:
        return []
    if not isinstance(value, dict):
        return [CheckIssue(("canary_analysis",), f"must be a mapping, got {type(value).__name__}",
                           "e.g. canary_analysis: {bake_s: 120, max_error_rate_increase: 0.0}")]
    issues = []
    for key in value:
        if key not in ANALYSIS_KEYS:
            issues.append(CheckIssue(("canary_analysis", key), f"unknown canary analysis setting `{key}`",
                                     did_you_mean(key, ANALYSIS_KEYS) or f"known: {', '.join(ANALYSIS_KEYS)}"))

    def bad(key, want, hint=None, number=float):
        issues.append(CheckIssue(("canary_analysis", key), f"must be {want}, got {value[key]!r}", hint, number=number))

    for key, v in value.items():
        if isinstance(v, str) and v.startswith("${"):
            continue  # a parameter: checked when the step runs
        if key == "bake_s" and (not _num(v) or not 0 < v <= MAX_BAKE_S):
            bad(key, f"a number of seconds above 0 (at most {MAX_BAKE_S})", "how long the canary takes traffic")
        elif key == "min_requests" and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            bad(key, "a whole number of requests, 0 or more", None, number=int)
        elif key == "max_error_rate_increase" and (not _num(v) or not 0 <= v <= 1):
            bad(key, "a share of requests from 0 to 1", "0: any 5xx regression rolls back")
        elif key == "max_client_error_rate_increase" and (not _num(v) or not 0 <= v <= 1):
            bad(key, "a share of requests from 0 to 1",
                "0.05: the canary may refuse (4xx) 5 in 100 requests more than the stable")
        elif key == "max_p99_ratio" and v is not None and (not _num(v) or v < 1):
            bad(key, "a ratio of 1 or more, or null", "1.5: the canary's p99 may be 50% above the stable's")
        elif key in ("max_p99_increase_ms", "max_prediction_psi") and v is not None and (not _num(v) or v < 0):
            bad(key, "a number of 0 or more, or null", None)
    if canary_percent is not None and not isinstance(canary_percent, str) and (
            not isinstance(canary_percent, int) or not 1 <= canary_percent <= 99):
        issues.append(CheckIssue(("canary_percent",), f"must be from 1 to 99 with canary_analysis, got {canary_percent!r}",
                                 "analysis compares the canary with the stable revision: both need traffic"))
    return issues


def preload() -> None:
    """Import what `analyze` computes with (numpy, scipy.stats: ~2 s cold) while the canary bakes, so that the
    decision after the last scrape takes milliseconds and a bad canary serves no longer than it must."""
    import numpy  # noqa: F401
    import scipy.stats  # noqa: F401


def analysis_settings(value: dict | None) -> dict | None:
    """The settings with defaults filled in, or None when no analysis is asked for."""
    return _filled(value) if value else None


def _filled(value: dict) -> dict:
    """`value` over DEFAULTS, each number as the analysis reads it (null: that bound is off)."""
    out = {**DEFAULTS, **value}
    for key in ANALYSIS_KEYS:
        if out[key] is None and key in _NULLABLE:
            continue  # that bound is off
        out[key] = int(out[key]) if key == "min_requests" else float(out[key])
    return out


def _shown(x: float) -> float:
    """A share as the report shows it: 6 significant digits (rounding to 6 decimals showed 1 5xx in 3 million
    requests as 0.0, and compared it so: the canary passed `max_error_rate_increase: 0`)."""
    return float(f"{x:.6g}")


def summary(stats: dict) -> dict:
    """requests, errors_5xx, error_rate, errors_4xx, client_error_rate, p50_ms, p99_ms and label counts of one
    revision's numbers."""
    n, errors = int(stats.get("requests") or 0), int(stats.get("errors_5xx") or 0)
    refused = int(stats.get("errors_4xx") or 0)
    buckets = stats.get("latency_ms_buckets") or {}
    p50, p99 = histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)
    return {"requests": n, "errors_5xx": errors, "error_rate": _shown(errors / n) if n else 0.0,
            "errors_4xx": refused, "client_error_rate": _shown(refused / n) if n else 0.0,
            "p50_ms": None if p50 is None else round(p50, 3), "p99_ms": None if p99 is None else round(p99, 3),
            "labels": {str(k): int(v) for k, v in sorted((stats.get("labels") or {}).items())}}


def _label_psi(stable: dict, canary: dict) -> tuple[float | None, float]:
    """(PSI of the canary's label shares against the stable's, chi-square p of the same counts); (None, 1.0) when
    a side has no labels. The data area's two functions: one PSI, one test."""
    from kubepipe.components.data.drift import chi2_pvalue, psi

    labels = sorted(set(stable) | set(canary))
    ns, nc = sum(stable.values()), sum(canary.values())
    if not labels or not ns or not nc:
        return None, 1.0
    value = round(psi([stable.get(k, 0) / ns for k in labels], [canary.get(k, 0) / nc for k in labels]), 6)
    return value, chi2_pvalue([stable.get(k, 0) for k in labels], [canary.get(k, 0) for k in labels])


def _excess_pvalue(count: int, n: int, rate: float) -> float:
    """One-sided binomial p of `count` or more of `n` canary answers where each is one at `rate` (the stable's share
    plus the bound): the chance the canary's excess is noise. 0 at a rate of 0: none can be noise."""
    if rate <= 0:
        return 0.0
    if rate >= 1:
        return 1.0
    from scipy.stats import binom

    return float(binom.sf(count - 1, n, rate))


def analyze(stable_stats: dict, canary_stats: dict, settings: dict) -> dict:
    """{decision: promote | rollback, why, checks: [...], stable, canary, settings}."""
    s = _filled(settings or {})
    st, ca = summary(stable_stats), summary(canary_stats)
    checks = []

    def check(name, passed, canary_value, stable_value, limit, note=""):
        checks.append({"check": name, "passed": passed, "canary": canary_value, "stable": stable_value,
                       "limit": limit, **({"note": note} if note else {})})

    # no canary answers are never a pass, whatever min_requests says (`min_requests: 0` promoted an unused canary)
    enough = ca["requests"] >= max(1, s["min_requests"])
    check("min_requests", enough, ca["requests"], st["requests"], s["min_requests"],
          "" if enough else "too little canary traffic to judge: inconclusive rolls back")
    # a stable revision with no answers (its series missing in Prometheus, or no traffic on it) has no error rate, p99
    # or labels: each comparison passed against nothing, and a canary of 5 s p99 was promoted
    baseless = ca["requests"] > 0 and st["requests"] == 0
    check("stable_requests", not baseless, ca["requests"], st["requests"], 1,
          "no stable answers to compare the canary with: inconclusive rolls back" if baseless else "")
    # compared on the exact shares, shown as the report rounds them; one rule for 5xx and 4xx (_excess_pvalue)
    for name, count, bound in (("error_rate", "errors_5xx", "max_error_rate_increase"),
                               ("client_error_rate", "errors_4xx", "max_client_error_rate_increase")):
        limit = (st[count] / st["requests"] if st["requests"] else 0.0) + s[bound]
        over = ca["requests"] > 0 and ca[count] / ca["requests"] > limit + 1e-12
        p = _excess_pvalue(ca[count], ca["requests"], limit) if over else 1.0
        check(name, not over or p >= RATE_SIGNIFICANCE, ca[name], st[name], _shown(limit),
              f"binomial p={p:.2g}" + (f" >= {RATE_SIGNIFICANCE}: not told apart from noise"
                                       if p >= RATE_SIGNIFICANCE else "") if over else "")
    bounds = [b for b in ((st["p99_ms"] * s["max_p99_ratio"]) if s["max_p99_ratio"] is not None and st["p99_ms"] is not None else None,
                          (st["p99_ms"] + s["max_p99_increase_ms"]) if s["max_p99_increase_ms"] is not None and st["p99_ms"] is not None else None)
              if b is not None]
    undefined = [k for k, x in (("canary", ca), ("stable", st)) if x["p99_ms"] is not None and math.isnan(x["p99_ms"])]
    # answers without latencies (that revision's histogram series missing): p99 passed against nothing, and a canary
    # of 5 s p99 was promoted over a stable revision whose histogram Prometheus did not have
    blind = [k for k, x in (("canary", ca), ("stable", st)) if x["requests"] and x["p99_ms"] is None]
    if blind and (s["max_p99_ratio"] is not None or s["max_p99_increase_ms"] is not None):
        check("p99_ms", False, ca["p99_ms"], st["p99_ms"], None,
              f"the {' and '.join(blind)} revision answered with no latency histogram: nothing to compare (are its "
              "latency metrics scraped? null max_p99_ratio and max_p99_increase_ms switch this check off); "
              "inconclusive rolls back")
    elif bounds and undefined:  # NaN compares false with every bound: it passed (or failed) on nothing
        check("p99_ms", False, ca["p99_ms"], st["p99_ms"], None,
              f"the {' and '.join(undefined)} p99 is undefined (NaN: every answer in the +Inf latency bucket, or a "
              "histogram without one): inconclusive rolls back")
    elif bounds and ca["p99_ms"] is not None:
        p99_limit = round(max(bounds), 3)
        check("p99_ms", ca["p99_ms"] <= p99_limit, ca["p99_ms"], st["p99_ms"], p99_limit)
    else:
        check("p99_ms", True, ca["p99_ms"], st["p99_ms"], None, "not compared (bounds off or no latencies)")
    value, pvalue = _label_psi(st["labels"], ca["labels"])
    if s["max_prediction_psi"] is not None and value is not None:
        # a PSI above the bound counts only where the chi-square test of the label counts says it is no noise:
        # 20 canary answers from the stable's own label mix have PSI > 0.25 four times in ten
        real = pvalue < PSI_SIGNIFICANCE
        check("prediction_psi", value <= s["max_prediction_psi"] or not real, value, 0.0, s["max_prediction_psi"],
              f"chi-square p={pvalue:.2g}" + ("" if real or value <= s["max_prediction_psi"] else
                                               f" >= {PSI_SIGNIFICANCE}: not told apart from noise"))
    else:
        check("prediction_psi", True, value, 0.0, s["max_prediction_psi"], "not compared (off or no predicted labels)")
    failed = [c for c in checks if not c["passed"]]
    if failed:
        why = "canary analysis failed: " + "; ".join(_failure(c, s["bake_s"]) for c in failed)
    else:
        why = (f"canary analysis passed over {s['bake_s']:g}s: {ca['requests']} canary / {st['requests']} stable "
               f"requests, error rate {ca['error_rate']} vs {st['error_rate']}, 4xx rate {ca['client_error_rate']} vs "
               f"{st['client_error_rate']}, p99 {ca['p99_ms']} vs {st['p99_ms']} ms, "
               f"prediction PSI {value}")
    return {"decision": "rollback" if failed else "promote", "why": why, "checks": checks, "stable": st,
            "canary": ca, "settings": s}


def _failure(c: dict, bake_s: float) -> str:
    if c["check"] == "min_requests" and not c["canary"]:
        return (f"the canary answered no requests in {bake_s:g}s: nothing to judge it on (does it take traffic? "
                "canary_percent routes it a share)")
    if c["check"] == "min_requests":
        return f"only {c['canary']} canary requests in {bake_s:g}s (min_requests {c['limit']})"
    if c["check"] == "p99_ms" and "note" in c:
        return f"p99_ms: {c['note']}"
    if c["check"] == "stable_requests":
        return (f"the stable revision answered no requests in {bake_s:g}s ({c['canary']} canary requests): nothing to "
                "compare the canary with (are its metrics there, and does it take traffic?)")
    if c["check"] == "client_error_rate":
        return (f"client_error_rate {c['canary']} > {c['limit']} (stable {c['stable']}): the canary refuses (4xx) "
                "more of the same requests; does it take the clients' request schema?")
    return f"{c['check']} {c['canary']} > {c['limit']} (stable {c['stable']})"


def analysis_markdown(analysis: dict | None) -> list[str]:
    """The analysis as report lines: the decision and a canary-vs-stable table."""
    if not analysis:
        return []
    lines = ["", f"## Canary analysis: {analysis['decision']}", "", analysis["why"], "",
             "| check | canary | stable | limit | passed | note |", "|---|---|---|---|---|---|"]
    for c in analysis["checks"]:
        # the note says why a value over its limit passed (binomial or chi-square p: noise), or why it was not compared
        note = str(c.get("note", "")).replace("|", "\\|")
        passed = "yes" if c["passed"] else "NO"
        lines.append(f"| {c['check']} | {c['canary']} | {c['stable']} | {c['limit']} | {passed} | {note} |")
    return lines
