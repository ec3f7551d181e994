"""validate-data logic: run an expectation list through Great Expectations 1.x as a gate.

GX 1.x reports `success=False` without raising; this module turns a failed `fail`-severity
expectation into `GateFailed`, and keeps `warn` failures in the report only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from kubepipe.components.checks import did_you_mean
from kubepipe.components.data.checks import check_expectations, int_arguments, suite_issues
from kubepipe.components.data.suite import ExpectationSpec, issues_text, load_suite_file, parse_items
from kubepipe.components.errors import ConfigError, DataError, GateFailed
from kubepipe.components.kfp_values import whole_numbers
from kubepipe.components.pii import redact_value
from kubepipe.secrets import redact_url

__all__ = ["ExpectationResult", "ValidationOutcome", "validate_frame", "resolve_expectations", "gate_message",
           "raise_if_failed", "raise_if_misconfigured", "warnings_summary"]

_COLUMN_KEYS = ("column", "column_A", "column_B")


@dataclass
class ExpectationResult:
    index: int
    name: str
    kwargs: dict
    severity: str
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample: list = field(default_factory=list)
    error: str | None = None
    missing_column: str | None = None  # the expectation names a column the data does not have
    nulls: int = 0  # null values GX left out: unexpected_percent is of the non-null ones
    rows: int | None = None
    where: str = ""  # ExpectationSpec.place: where the expectation is written

    @property
    def column(self) -> str:
        k = self.kwargs
        return str(k.get("column") or k.get("column_list") or f"{k.get('column_A', '')},{k.get('column_B', '')}".strip(",") or "(table)")

    @property
    def unchecked(self) -> bool:
        """A per-value expectation that saw no value (0 rows, or every value null): GX passes it, having checked
        nothing."""
        return (self.success and self.unexpected_count is not None and self.rows is not None
                and self.rows - self.nulls <= 0)

    def observed_text(self) -> str:
        if self.error:
            return self.error
        if self.unchecked:
            return ("no value checked: the data has 0 rows" if not self.rows
                    else f"no value checked: all {self.rows} value(s) are null")
        if self.unexpected_count is not None:
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            if pct and self.nulls and self.rows is not None:  # 3 of 8 checked values is not 3 of 10 rows
                pct = f" ({self.unexpected_percent:.2f}% of the {self.rows - self.nulls} non-null values)"
            return f"{self.unexpected_count} unexpected{pct}"
        return "—" if self.observed is None else _short(self.observed)


@dataclass
class ValidationOutcome:
    results: list[ExpectationResult]
    raw: dict
    rows: int

    @property
    def failed(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success]

    @property
    def passed(self) -> bool:
        return not any(r.severity == "fail" for r in self.failed)

    @property
    def unchecked(self) -> list[ExpectationResult]:
        return [r for r in self.results if r.unchecked]

    @property
    def metrics(self) -> dict:
        n, bad = len(self.results), len(self.failed)
        return {
            "expectations_evaluated": n,
            "expectations_failed": bad,
            "failed_fail": sum(r.severity == "fail" for r in self.failed),
            "failed_warn": sum(r.severity == "warn" for r in self.failed),
            "success_percent": round(100.0 * (n - bad) / n, 4) if n else 100.0,
            "expectations_unchecked": len(self.unchecked),  # passed, having seen no value
            "rows": self.rows,
        }

    def unchecked_text(self) -> str:
        """'3 expectation(s) checked no value: the data has 0 rows' ('' when each saw values): what a pass that
        checked nothing must say."""
        found = self.unchecked
        if not found:
            return ""
        why = "the data has 0 rows" if not self.rows else "their columns hold only nulls"
        return (f"{len(found)} of {len(self.results)} expectation(s) checked no value ({why}): "
                + ", ".join(f"{r.name} on `{r.column}`" for r in found[:3]) + (" ..." if len(found) > 3 else ""))


def resolve_expectations(expectations: list | None, suite_path: str = "") -> list[ExpectationSpec]:
    """Inline items plus a GX suite file's items, checked against the GX table; DataError lists every problem."""
    items = list(expectations or [])
    problems = check_expectations(items)
    suite_items = load_suite_file(suite_path) if suite_path else []
    if suite_path:
        problems += suite_issues(suite_items, suite_path)
    if problems:
        raise DataError("the expectation list has problems:\n" + issues_text(problems))
    if not items and not suite_items:
        raise DataError(f"{suite_path}: the suite's `expectations` list is empty; add expectations to it or set "
                        "`expectations` on the step" if suite_path else
                        "no expectations to validate; set `expectations` or `suite_path`")
    # each keeps its own place: a suite's item i was `expectations[len(inline) + i]`, a place in neither list
    shown = redact_url(suite_path)  # a signed URL's signature reaches no message or report
    specs = parse_items(items)[0] + [replace(s, index=len(items) + s.index, where=f"{shown}: expectations[{s.index}]")
                                     for s in parse_items(suite_items)[0]]
    # a whole list param: KFP's Struct made `value: 5` 5.0; GX takes it, but the report should say 5
    return [replace(s, kwargs=whole_numbers(s.kwargs, int_arguments(s.name))) for s in specs]


def validate_frame(df, specs: list[ExpectationSpec], *, unexpected_sample: int = 10) -> ValidationOutcome:
    """One GX validation run for the whole suite on one whole-dataframe batch."""
    from kubepipe.components.data.gx_runtime import fast_pandas, gx_context, gx_internal

    import great_expectations as gx
    get_expectation_impl = gx_internal("great_expectations.expectations.registry", "get_expectation_impl",
                                       ["expectation_name"])

    have = [str(c) for c in df.columns]
    missing: dict[int, ExpectationResult] = {}
    exps = []
    for spec in specs:
        absent = [c for c in _columns_of(spec.kwargs) if c not in have]
        if absent:  # GX would fail with a stack trace in exception_info; say it plainly instead
            hint = did_you_mean(absent[0], have)
            msg = f"column `{absent[0]}` not found" + (f" ({hint})" if hint else "")
            # expect_column_to_exist checks the data's columns: its failure is a data failure; any other
            # expectation on an absent column is misconfigured (ConfigError in raise_if_misconfigured)
            config = None if spec.name == "expect_column_to_exist" else absent[0]
            missing[spec.index] = ExpectationResult(spec.index, spec.name, spec.kwargs, spec.severity, False, error=msg,
                                                    missing_column=config, where=spec.place)
            continue
        cls = get_expectation_impl(spec.name)
        meta = {**(spec.kwargs.get("meta") or {}), "kubepipe_index": spec.index}
        severity = "critical" if spec.severity == "fail" else "warning"
        try:
            exps.append(cls(**{**spec.kwargs, "meta": meta, "severity": severity}))
        except Exception as exc:  # noqa: BLE001 - pydantic errors from GX's classes
            raise DataError(f"{spec.place} {spec.name}: invalid arguments: {_invalid(exc)}") from None

    results = dict(missing)
    raw: dict = {"success": None, "results": [], "statistics": {}}
    if exps:
        ctx = gx_context()
        batch_def = ctx.data_sources.add_pandas("kubepipe").add_dataframe_asset("data").add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name="kubepipe", expectations=exps))
        result_format = {
            # BASIC still returns unexpected counts and the first N unexpected values; SUMMARY adds
            # an index list that filters the whole frame once more per expectation, and we never show it.
            "result_format": "BASIC",
            "partial_unexpected_count": max(int(unexpected_sample), 1),
            "include_unexpected_rows": False,
            "return_unexpected_index_query": False,
        }
        with fast_pandas(df) as frame:
            run = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format=result_format)
        raw = redact_value(run.to_json_dict())  # the validation artifact: GX's unexpected values, masked
        for res in run.results:
            r = _result(res, specs, unexpected_sample)
            results[r.index] = r
    ordered = [results[s.index] for s in specs if s.index in results]
    raw["kubepipe"] = {"missing_columns": [r.__dict__ for r in missing.values()]}
    return ValidationOutcome(ordered, raw, int(len(df)))


def gate_message(outcome: ValidationOutcome, source: str = "", report: str = "") -> str:
    """The user-facing reason the gate failed: one line per failed `fail` expectation; then where the report is
    (a failed step's outputs are listed nowhere else: `runs show` has none for it)."""
    bad = [r for r in outcome.failed if r.severity == "fail"]
    head = f"data validation failed{f' for {source}' if source else ''}: {len(bad)} of {len(outcome.results)} expectations"
    lines = [head]
    for r in bad:
        line = f"  - {r.where or f'[{r.index}]'} {r.name} on `{r.column}`: " + (r.error or f"observed {r.observed_text()}")
        distinct = list(dict.fromkeys(json.dumps(v, default=str) for v in r.sample if v is not None))
        if distinct:
            line += f"; e.g. {', '.join(_short(json.loads(v), 40) for v in distinct[:5])}"
        lines.append(line)
    warns = [r for r in outcome.failed if r.severity == "warn"]
    if warns:
        lines.append(f"  ({len(warns)} warn-severity expectation(s) also failed; see the report)")
    if report:
        lines.append(f"  report: {report}")
    return "\n".join(lines)


def raise_if_failed(outcome: ValidationOutcome, source: str = "", report: str = "") -> None:
    """`raise_if_misconfigured`, then GateFailed when a `fail` expectation failed (naming the `report`)."""
    raise_if_misconfigured(outcome, source)
    if not outcome.passed:
        raise GateFailed(gate_message(outcome, source, report))


def raise_if_misconfigured(outcome: ValidationOutcome, source: str = "") -> None:
    """ConfigError when an expectation names a column the data lacks: the settings are wrong, not the data
    values, so neither a retry nor the data owner can fix it (whatever the severity or `gate`)."""
    absent = [r for r in outcome.results if r.missing_column]
    if absent:
        lines = [f"validate-data: {len(absent)} expectation(s) name a column that {source or 'the data'} does not "
                 "have; fix the column name where each is written (the step's `expectations` or the suite file), "
                 "or the data's header:"]
        lines += [f"  - {r.where or f'expectations[{r.index}]'} {r.name}: {r.error}" for r in absent]
        rest = ValidationOutcome([r for r in outcome.results if not r.missing_column], outcome.raw, outcome.rows)
        if not rest.passed:
            lines.append("and the data gate failed too (" + gate_message(rest, source).split("\n", 1)[0].split(": ", 1)[-1]
                         + "):")
            lines += gate_message(rest, source).split("\n")[1:]
        raise ConfigError("\n".join(lines))


def warnings_summary(outcome: ValidationOutcome) -> str:
    """One line naming each failed `warn` expectation, and those that checked no value ("" when none): what a run
    table shows."""
    warns = [r for r in outcome.failed if r.severity == "warn"]
    said = [outcome.unchecked_text()] if outcome.unchecked else []
    if warns:
        parts = [f"{r.name} on `{r.column}`: {r.observed_text()}" for r in warns[:3]]
        more = f"; +{len(warns) - 3} more" if len(warns) > 3 else ""
        said.insert(0, f"{len(warns)} warn-level expectation(s) failed: " + "; ".join(parts) + more)
    return "; ".join(said)


def _result(res, specs: list[ExpectationSpec], sample_n: int) -> ExpectationResult:
    cfg = res.expectation_config
    index = int((cfg.meta or {}).get("kubepipe_index", -1))
    spec = next(s for s in specs if s.index == index)
    body = res.result or {}
    err = _exception(res.exception_info or {})
    sample = body.get("partial_unexpected_list") or []
    return ExpectationResult(
        index=index,
        name=spec.name,
        kwargs=spec.kwargs,
        severity=spec.severity,
        success=bool(res.success),
        observed=_plain(body.get("observed_value")),
        unexpected_count=body.get("unexpected_count"),
        unexpected_percent=body.get("unexpected_percent"),
        # the gate's message (the run's error, logs, notify) and the report quote these: a card number or an
        # address in a failing column is shown masked, its last four digits kept to find the row by
        sample=[redact_value(_plain(v)) for v in sample[:sample_n]],
        error=err,
        nulls=int(body.get("missing_count") or 0),
        rows=body.get("element_count"),
        where=spec.place,
    )


def _exception(info: dict) -> str | None:
    """GX 1.x reports errors either flat or keyed by the metric that raised; the first message, short."""
    found = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for item in found:
        if item.get("raised_exception"):
            return "error: " + _first(item.get("exception_message") or "GX raised an exception")
    return None


def _columns_of(kwargs: dict) -> list[str]:
    cols = [kwargs[k] for k in _COLUMN_KEYS if isinstance(kwargs.get(k), str)]
    if isinstance(kwargs.get("column_list"), list):
        cols += [c for c in kwargs["column_list"] if isinstance(c, str)]
    return cols


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalars -> Python, for JSON and readable messages
    if isinstance(value, float) and value != value:
        return None  # NaN is a null to the reader
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(_plain(value), default=str)
    text = repr(value) if isinstance(value, str) else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _invalid(exc: Any) -> str:
    """A GX class's pydantic error by argument: its first line, '5 validation errors for
    ExpectColumnValuesToBeBetween', named no argument."""
    errors = exc.errors() if callable(getattr(exc, "errors", None)) else None
    if not errors:
        return _first(exc)
    by_arg: dict[str, list[str]] = {}
    for err in errors:
        by_arg.setdefault(".".join(map(str, err.get("loc") or ())), []).append(str(err.get("msg", "")))
    return "; ".join((f"`{arg}`: " if arg not in ("", "__root__") else "") + " or ".join(dict.fromkeys(msgs))
                     for arg, msgs in by_arg.items())


def _first(exc: Any) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
