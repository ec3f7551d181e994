"""Compile-time checks of data steps' `with:` values. Reads expectations_table.json; never imports GX."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from kubepipe.components.checks import bound_at_run, Allowed, CheckIssue, Reference, did_you_mean
from kubepipe.components.data.suite import SEVERITIES, parse_items
from kubepipe.components.monitoring.window_checks import window_record_issues
from kubepipe.util import local_path

__all__ = ["check_validate", "check_expectations", "int_arguments", "check_drift", "check_load", "expectation_table",
           "sampling_problem", "suite_issues", "MAX_SAMPLE_SEED", "repeated", "window_problem", "window_schedule_problem", "WINDOW_SCHEDULE_HINT", "settle_problem", "as_of_problem", "as_of_time", "AS_OF_HINT", "WINDOW", "WINDOW_UNITS",
           "load_reference", "validate_reference", "drift_reference", "FORMATS", "DTYPE_KINDS"]

_TABLE = Path(__file__).with_name("expectations_table.json")
FORMATS = ("auto", "csv", "parquet")
DTYPE_KINDS = ("int", "float", "number", "bool", "str", "datetime")  # io.DTYPE_KINDS, without importing pandas
# Arguments every GX expectation takes; the reference lists each expectation's own arguments.
_GX_COMMON = ("condition_parser", "description", "meta", "notes", "row_condition")


@lru_cache(maxsize=1)
def expectation_table() -> dict:
    return json.loads(_TABLE.read_text(encoding="utf-8"))["expectations"]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    return "dict" if isinstance(value, dict) else "any"


def check_expectations(items: Any, prefix: tuple = ("expectations",)) -> list[CheckIssue]:
    """Unknown expectation names, unknown / missing kwargs and wrong kinds, with did-you-mean hints."""
    if bound_at_run(items):
        return []
    table = expectation_table()
    specs, issues = parse_items(items, prefix)
    for spec in specs:
        where = prefix + (spec.index, spec.name)
        entry = table.get(spec.name)
        if entry is None:
            hint = did_you_mean(spec.name, table) or "see `great_expectations.expectations` for the names"
            issues.append(CheckIssue(where, f"unknown expectation `{spec.name}`", hint))
            continue
        allowed = entry["required"] + entry["optional"]
        for key, value in spec.kwargs.items():
            if key not in entry["kinds"]:
                hint = did_you_mean(key, allowed + ["severity"]) or f"allowed: {', '.join(allowed)}, severity"
                issues.append(CheckIssue(where + (key,), f"unknown argument `{key}` for {spec.name}", hint))
                continue
            kinds = entry["kinds"][key]
            kind = _kind(value)
            if isinstance(value, float) and value != value:  # `.nan`: GX's suite rebuild raised a pydantic error
                issues.append(CheckIssue(where + (key,), f"`{key}` is NaN (.nan), which is no value to compare with",
                                         "leave the argument out (for a bound: no bound), or write a number"))
                continue
            if kind == "number" and "int" in kinds and "number" not in kinds:  # 5.0 from a whole list param is 5
                if not float(value).is_integer():
                    issues.append(CheckIssue(where + (key,), f"`{key}` must be a whole number, got {value!r}"))
            elif "any" not in kinds and not bound_at_run(value) and kind not in kinds:
                issues.append(CheckIssue(where + (key,), f"`{key}` must be {' or '.join(kinds)}, got {value!r}"))
        for key in entry["required"]:
            if key not in spec.kwargs:
                issues.append(CheckIssue(where, f"{spec.name} needs `{key}`",
                                         f"add `{key}: ...` (required: {', '.join(entry['required'])})"))
        low, high = spec.kwargs.get("min_value"), spec.kwargs.get("max_value")
        if (isinstance(low, (int, float)) and isinstance(high, (int, float)) and not isinstance(low, bool)
                and not isinstance(high, bool) and low > high):
            # GX fails it at run time, after loading, as 'data validation failed': the settings are wrong
            issues.append(CheckIssue(where + ("min_value",), f"`min_value` {low} is above `max_value` {high}: "
                                     "no value can pass", "swap them"))
        mostly = spec.kwargs.get("mostly")
        if isinstance(mostly, (int, float)) and not isinstance(mostly, bool) and mostly == mostly and not 0 <= mostly <= 1:
            issues.append(CheckIssue(where + ("mostly",), f"`mostly` is a fraction in [0, 1], got {mostly}"))
    return issues


def suite_issues(items: Any, suite: str) -> list[CheckIssue]:
    """check_expectations of a GX suite file's items, at `suite_path.<i>`, each message naming the file: the path
    alone read as the step's own list ('suite_path.0.expect_x: unknown expectation'), the file unnamed."""
    from kubepipe.secrets import redact_url

    shown = redact_url(suite)
    return [iss._replace(message=f"in {shown}: {iss.message}") for iss in check_expectations(items, ("suite_path",))]


def int_arguments(name: str) -> tuple[str, ...]:
    """The arguments of expectation `name` that GX takes as ints (row counts, lengths, a column index)."""
    kinds = expectation_table().get(name, {}).get("kinds", {})
    return tuple(k for k, v in kinds.items() if "int" in v and "number" not in v)


def check_validate(with_values: dict) -> list[CheckIssue]:
    """validate-data: `expectations` (inline list) and/or `suite_path` (GX suite JSON)."""
    issues = check_expectations(with_values.get("expectations") or [])
    suite = with_values.get("suite_path") or ""
    if not isinstance(suite, str):
        issues.append(CheckIssue(("suite_path",), f"must be a path string, got {suite!r}"))
    elif suite and not bound_at_run(suite) and (local := local_path(suite)) and Path(local).expanduser().is_file():
        from kubepipe.components.data.suite import load_suite_file
        from kubepipe.components.errors import DataError

        try:
            issues += suite_issues(load_suite_file(suite), suite)
        except DataError as exc:
            issues.append(CheckIssue(("suite_path",), str(exc)))
    if not with_values.get("expectations") and not suite:
        issues.append(CheckIssue((), "validate-data needs `expectations` or `suite_path`",
                                 "bootstrap a list with `kubepipe expectations infer DATA`"))
    n = with_values.get("unexpected_sample", 10)
    if not bound_at_run(n) and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
        issues.append(CheckIssue(("unexpected_sample",), f"must be a non-negative integer, got {n!r}"))
    gate = with_values.get("gate", True)
    if not isinstance(gate, bool) and not bound_at_run(gate):
        issues.append(CheckIssue(("gate",), f"must be true or false, got {gate!r}"))
    return issues


_DRIFT_KEYS = ("psi", "chi2_pvalue", "ks_statistic", "ks_pvalue")
# above 1, a p-value bound holds for every p (the test is off: PSI or the KS statistic alone decides) and a KS bound
# for no statistic (KS never flags drift), silently
_DRIFT_UNIT = {"chi2_pvalue": "a p-value: 0.05 is 5%", "ks_pvalue": "a p-value: 0.05 is 5%",
               "ks_statistic": "the KS statistic is a distance from 0 to 1: 0.1 is 10 points of the CDFs"}


def check_drift(with_values: dict) -> list[CheckIssue]:
    """detect-drift: `thresholds: {psi, ks_statistic, ks_pvalue, columns: {name: {...}}}`, `bins`, `max_categories`."""
    issues: list[CheckIssue] = []
    for key, least, why in (("bins", 2, "one bin holds every value, so a numeric column's PSI is always 0"),
                            ("max_categories", 1, "every string column would be skipped or read as free text")):
        n = with_values.get(key)
        if n is not None and not bound_at_run(n) and isinstance(n, int) and not isinstance(n, bool) and n < least:
            issues.append(CheckIssue((key,), f"must be {least} or more, got {n}" + (f": {why}" if n >= 0 else ""),
                                     f"the default is {10 if key == 'bins' else 50}"))
    th = with_values.get("thresholds") or {}
    if not isinstance(th, dict):
        return [CheckIssue(("thresholds",), f"must be a mapping, got {th!r}", "e.g. `{psi: 0.2, ks_statistic: 0.1}`")]

    def _one(block: dict, path: tuple) -> None:
        for key, value in block.items():
            if key not in _DRIFT_KEYS:
                issues.append(CheckIssue(path + (key,), f"unknown threshold `{key}`",
                                         did_you_mean(key, _DRIFT_KEYS) or f"use {', '.join(_DRIFT_KEYS)}"))
            elif not bound_at_run(value) and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                               or not value >= 0):  # NaN: no PSI or statistic is above it, silently
                issues.append(CheckIssue(path + (key,), f"must be a non-negative number, got {value!r}"))
            elif not bound_at_run(value) and key in _DRIFT_UNIT and value > 1:  # `ks_pvalue: 5` meant 5%
                issues.append(CheckIssue(path + (key,), f"must be from 0 to 1, got {value!r}", _DRIFT_UNIT[key]))

    cols = th.get("columns") or {}
    _one({k: v for k, v in th.items() if k != "columns"}, ("thresholds",))
    if not isinstance(cols, dict):
        issues.append(CheckIssue(("thresholds", "columns"), "must map column names to thresholds"))
    else:
        for name, block in cols.items():
            if isinstance(block, dict):
                _one(block, ("thresholds", "columns", name))
            else:
                issues.append(CheckIssue(("thresholds", "columns", name), "must be a mapping like `{psi: 0.3}`"))
    return issues


def check_load(with_values: dict) -> list[CheckIssue]:
    """load-data: window syntax, sampling bounds, format."""
    issues: list[CheckIssue] = []
    window = with_values.get("window") or ""
    problem = window_problem(window) if window and not bound_at_run(window) else None
    if problem:
        issues.append(CheckIssue(("window",), f"{window!r} {problem}", "write e.g. `7d`, `12h`, `2w`"))
    schedule = with_values.get("window_schedule") or ""
    problem = window_schedule_problem(schedule) if schedule and not bound_at_run(schedule) else None
    if problem:
        issues.append(CheckIssue(("window_schedule",), f"{schedule!r} {problem}", WINDOW_SCHEDULE_HINT))
    if window and schedule:
        issues.append(CheckIssue(("window_schedule",), "is set beside `window`",
                                 "set one: `window_schedule` bounds the window by the schedule's fires"))
    settle = with_values.get("settle_s", 30.0)
    problem = settle_problem(settle) if not bound_at_run(settle) else None
    if problem:
        issues.append(CheckIssue(("settle_s",), problem))
    issues += window_record_issues(with_values)  # late_horizon_h, state_uri
    as_of = with_values.get("as_of") or ""
    problem = as_of_problem(as_of) if not bound_at_run(as_of) else None
    if problem:
        issues.append(CheckIssue(("as_of",), f"{as_of!r} {problem}", AS_OF_HINT))
    if (window or schedule) and not with_values.get("time_column") and not str(with_values.get("source", "")).startswith("predictions:"):
        issues.append(CheckIssue(("time_column",), "a `window` needs a `time_column`"))
    frac = with_values.get("sample_fraction", 0.0)
    if isinstance(frac, (int, float)) and not isinstance(frac, bool) and not 0 <= frac <= 1:
        issues.append(CheckIssue(("sample_fraction",), f"must be in (0, 1], got {frac}"))
    if with_values.get("sample_fraction") and with_values.get("sample_n"):
        issues.append(CheckIssue(("sample_n",), "set `sample_fraction` or `sample_n`, not both"))
    cols = with_values.get("columns")
    twice = repeated(cols) if isinstance(cols, list) else []
    if twice:
        issues.append(CheckIssue(("columns",), f"lists `{twice[0]}` more than once",
                                 "name each column once (the dataset would have two columns of that name)"))
    for key in ("sample_n", "seed"):
        problem = sampling_problem(key, with_values.get(key, 0))
        if problem:
            issues.append(CheckIssue((key,), problem))
    dtypes = with_values.get("dtypes") or {}
    for col, kind in (dtypes.items() if isinstance(dtypes, dict) else []):
        if kind not in DTYPE_KINDS and not bound_at_run(kind):
            issues.append(CheckIssue(("dtypes", col), f"unknown dtype {kind!r}",
                                     did_you_mean(kind, DTYPE_KINDS) or f"use {', '.join(DTYPE_KINDS)}"))
    marks = {k: with_values.get(k, d) for k, d in (("delimiter", ","), ("decimal", "."), ("thousands", ""))}
    if not any(bound_at_run(v) for v in marks.values()):
        from kubepipe.components.data.sources import mark_problem

        mark = mark_problem(**marks)
        if mark:
            issues.append(CheckIssue((mark[0],), mark[1],
                                     'e.g. delimiter: ";", decimal: ",", thousands: "." (or delimiter: "\\t" '
                                     'for a tab)'))
    fmt = with_values.get("format", "auto")
    if fmt not in (*FORMATS, "") and not bound_at_run(fmt):
        issues.append(CheckIssue(("format",), f"unknown format {fmt!r}", did_you_mean(fmt, FORMATS)))
    return issues


WINDOW = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
WINDOW_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_UNIT_DAYS = {"s": 1 / 86400, "m": 1 / 1440, "h": 1 / 24, "d": 1, "w": 7}
MAX_WINDOW_DAYS = 100 * 365  # pandas' times end 292 years from 1970: `999999d` was 'OutOfBoundsTimedelta: ...'


def window_problem(window: Any) -> str | None:
    """What is wrong with a load-data `window` (`7d`), else None: the one rule of validate and the step."""
    m = WINDOW.match(str(window))
    if not m:
        return "is not a duration"
    if int(m.group(1)) == 0:  # 0h holds no row, ever
        return "is an empty window"
    if int(m.group(1)) * _UNIT_DAYS[m.group(2)] > MAX_WINDOW_DAYS:
        return f"is longer than 100 years ({MAX_WINDOW_DAYS}d); for every row, leave `window` empty"
    return None


WINDOW_SCHEDULE_HINT = ("write the cron of the schedule that runs the step, its zone first: "
                        "`TZ=Europe/Stockholm 0 3 * * *`")


def window_schedule_problem(cron: Any) -> str | None:
    """What is wrong with a load-data `window_schedule` (a cron, `TZ=<zone> ` first), else None: the one rule of
    validate and the step, read as `schedule:` is (`kubepipe.spec.cron`)."""
    from kubepipe.spec.cron import CronError, check_timezone, normalize_cron, split_tz

    if not isinstance(cron, str):
        return f"must be a cron text, got {type(cron).__name__}"
    text, zone = split_tz(cron)
    try:
        check_timezone(zone)
        normalize_cron(text)
    except CronError as exc:
        return f"is no schedule ({exc.field}: {exc.message})"
    return None


def settle_problem(value: Any) -> str | None:
    """What is wrong with load-data's `settle_s` (seconds from 0 to a day; NaN too), else None: validate and the step."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 86400:
        return (f"must be a number of seconds from 0 to 86400, got {value!r}; keep it above the servers' "
                "serving.log.flush_s (default 10)")
    return None


AS_OF_HINT = "use ISO 8601, e.g. 2026-03-02T03:00:00Z (UTC unless it has an offset)"


def as_of_time(as_of: Any):
    """The time an `as_of` names (aware: UTC unless it has an offset), None when it is empty or a backend's placeholder
    (KFP's [[ScheduledTime.*]]); a ValueError when it is no ISO 8601 time."""
    import datetime as dt

    text = str(as_of).strip()
    if not text or re.fullmatch(r"\[\[.+\]\]|\{\{.+\}\}", text):  # a backend fills it in
        return None
    # `date -u '+%F %T UTC'` prints a zone name where ISO 8601 has +00:00 (pandas reads both, the step too)
    when = dt.datetime.fromisoformat(re.sub(r"\s+(?:UTC|GMT)$", "+00:00", text, flags=re.IGNORECASE))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def as_of_problem(as_of: Any) -> str | None:
    """What is wrong with a load-data `as_of` (an ISO 8601 time; empty: the newest row), else None: the one rule of
    validate, a run's `--param` values and the step."""
    text = str(as_of).strip()
    try:
        when = as_of_time(text)
    except ValueError:
        return "is not a timestamp"
    if when is None:
        return None
    if not re.match(r"\d{4}-?\d{2}-?\d{2}(?!\d)", text):  # a week or ordinal date (2026-W10-1): pandas reads neither
        return "is not a calendar date and time"
    if not 1678 <= when.year <= 2261:  # pandas' times end there; the window is counted back from it
        return "is outside the years 1678 to 2261"
    return None


def repeated(names: list) -> list[str]:
    """The names listed more than once, in order of their second appearance."""
    seen: set[str] = set()
    twice: list[str] = []
    for name in map(str, names):
        if name in seen:
            twice.append(name)
        seen.add(name)
    return twice


MAX_SAMPLE_SEED = 2**32 - 1  # pandas' (numpy's RandomState) seeds; -1 or 2**40 was 'ValueError: Seed must be ...'


def sampling_problem(key: str, value: Any) -> str | None:
    """What is wrong with load-data's `sample_n` or `seed` (whole numbers; a seed up to MAX_SAMPLE_SEED), else None:
    the one rule of validate and of the running step (a `${params.x}` is checked there)."""
    if bound_at_run(value):
        return None
    top = MAX_SAMPLE_SEED if key == "seed" else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (top is not None and value > top):
        span = f"from 0 to {top}" if top is not None else ">= 0 (0: every row)"
        return f"must be a whole number {span}, got {value!r}"
    return None


def load_reference() -> Reference:
    return Reference(
        allowed={"format": Allowed(FORMATS), "dtypes": Allowed(DTYPE_KINDS, "as values: `{<column>: <kind>}`"),
                 "window": Allowed(note="a number and s, m, h, d or w, e.g. `7d`; needs `time_column`"),
                 "window_schedule": Allowed(note="instead of `window`: the cron of the schedule that runs the step "
                                                 "(`TZ=Europe/Stockholm 0 3 * * *`); the window is then from its "
                                                 "fire before `as_of` to `as_of`"),
                 "delimiter": Allowed(note='one character: `,` (default), `;`, `"\\t"` (a tab, in double quotes), `|`'),
                 "decimal": Allowed(note="one character: `.` (default) or `,`; not the delimiter"),
                 "thousands": Allowed(note="one character, e.g. `.` (`1.234,50`) or `,` (`1,234.50`); empty "
                                           "(default): none; not the delimiter or the decimal mark")},
        example="""load:
  component: load-data
  with:
    source: ${params.data_uri}
    time_column: timestamp
    window: 7d
    dtypes: {amount: float}""")


def validate_reference() -> Reference:
    table = expectation_table()
    args = {name: ", ".join(e["required"]) + (" (optional: " + ", ".join(o) + ")" if (o := [
        k for k in e["optional"] if k not in _GX_COMMON]) else "") for name, e in sorted(table.items())}
    return Reference(
        allowed={"expectations": Allowed(
            tuple(sorted(table)), f"each `- <name>: {{<arguments>, severity: {' | '.join(SEVERITIES)}}}` (fail stops "
            "the run, warn is reported); every expectation also takes " + ", ".join(_GX_COMMON),
            by=args, by_label=("expectation", "arguments"))},
        example="""validate:
  component: validate-data
  inputs: {data: "${steps.load.outputs.dataset}"}
  with:
    expectations:
      - expect_column_values_to_not_be_null: {column: description}
      - expect_column_values_to_be_unique: {column: transaction_id, severity: warn}
      - expect_column_values_to_be_between: {column: amount, min_value: 0}""")


def drift_reference() -> Reference:
    return Reference(
        allowed={"thresholds": Allowed((*_DRIFT_KEYS, "columns"), "numbers >= 0, p-values and "
                                       "ks_statistic at most 1; per column: "
                                       "`columns: {<column>: {psi: 0.3}}`"),
                 "bins": Allowed(note="a whole number, 2 or more"),
                 "max_categories": Allowed(note="a whole number, 1 or more")},
        example="""drift:
  component: detect-drift
  inputs: {data: "${steps.load.outputs.dataset}", reference: "${steps.holdout.outputs.dataset}"}
  with:
    thresholds: {psi: 0.2, columns: {amount: {psi: 0.3}}}""")
