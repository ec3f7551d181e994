"""KFP components of the data area: load-data, validate-data, detect-drift.

Bodies are thin shims: KFP embeds each function's source in the task, so they import the logic inside.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from kubepipe.components.images import RUNTIME_IMAGE

__all__ = ["load_data", "validate_data", "detect_drift"]


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def load_data(
    source: str,
    dataset: Output[Dataset],
    format: str = "auto",
    encoding: str = "utf-8",
    delimiter: str = ",",
    decimal: str = ".",
    thousands: str = "",
    columns: list = [],  # noqa: B006 - KFP reads defaults from the signature
    dtypes: dict = {},  # noqa: B006
    time_column: str = "",
    window: str = "",
    as_of: str = "",
    sample_fraction: float = 0.0,
    sample_n: int = 0,
    seed: int = 0,
    predictions_uri: str = "",
    allow_empty: bool = False,
    window_schedule: str = "",
    settle_s: float = 30.0,
    late_horizon_h: float = 72.0,
    state_uri: str = "",
    ctx_registry_uri: str = "",
    ctx_profile: dict = {},  # noqa: B006
    ctx_state_dir: str = "",
):
    """Read CSV/Parquet (local, gs://, http(s)://, champion:<model> = the champion's training data,
    predictions:<model> = its served traffic), keep a time window, select columns, sample; write a Dataset.

    Args:
        source: Where the data is: a local path or file://, gs://bucket/file, http(s)://,
            `champion:<model>` (the data the registry's champion of <model> was trained on), or
            `predictions:<model>` (the prediction log of <model>'s endpoint: inputs, prediction,
            probability, request_id, timestamp, model_version, latency_ms).
        format: `auto` (Parquet by its magic bytes, else by extension, else CSV), `csv` or `parquet`.
        encoding: Text encoding of a CSV; bytes that do not decode are an error naming the line.
        delimiter: The character between a CSV's fields: `,` (default), `;`, `\t` (tab), `|`, ...
        decimal: A CSV's decimal mark: `.` (default) or `,` (`12,50`; then the delimiter is usually `;`).
        thousands: A CSV's thousands separator, e.g. `.` for `1.234,50` or `,` for `1,234.50`; empty: none.
        columns: Keep only these columns (empty: all).
        dtypes: Column name to the kind it is coerced to (int, float, number, bool, str, datetime). A CSV
            column with a leading zero in a cell (`01`, `007`: codes, ids, class labels) is read as written,
            as text; `int` reads it as numbers.
        time_column: Timestamp column that `window` filters on (a time without an offset is UTC; numbers
            such as epoch seconds are refused, not guessed).
        window: Keep the rows in this window, ending at `as_of`: a number and s, m, h, d or w (`7d`).
        as_of: End of the window (ISO timestamp, UTC unless it has an offset; bind the scheduled
            time); empty: the latest timestamp in the data, so reruns see the same rows (of a prediction log,
            the latest not after now: rows a server's clock stamped ahead are left out).
        sample_fraction: Keep this fraction of the rows (seeded, source order kept); 0: all.
        sample_n: Keep this many rows (seeded); 0: all. Set this or `sample_fraction`, not both.
        seed: Seed of the sampling.
        predictions_uri: Where `predictions:<model>` is read from (default: the profile's
            predictions_uri, else `predictions` beside the state dir).
        allow_empty: A `window` without rows (a monitor's window without traffic; a file with a header alone
            when `as_of` is given) is a dataset of 0 rows
            (metadata `rows: 0` and `window_range`), which detect-drift, live-quality, trigger-retrain and
            monitor-report record as "no traffic in window", instead of failing the step.
        window_schedule: Instead of `window`: the cron of the schedule that runs the step, its zone first
            (`TZ=Europe/Stockholm 0 3 * * *`); the window is then from that schedule's fire before `as_of` to
            `as_of`, so consecutive runs' windows tile time exactly (a `24h` window of a schedule in a zone with
            daylight saving time overlaps the one before by an hour in spring and leaves an hour out in autumn).
        settle_s: A prediction log's window ending at `as_of` is read no earlier than this many seconds after it:
            the servers write a row up to their flush interval (`serving.log.flush_s`, 10 s) after it was stamped.
            Keep it above that interval. Rows written later are read by the next window of the schedule (late
            rows, docs/monitoring.md).
        late_horizon_h: A prediction log row written after its window was read is read by the next window when it
            is stamped less than this many hours before the end of the window read before it was written (roughly:
            written at most this long after its time); one written later is not read, but counted once
            (`too_late_rows`) and said. A bigger horizon makes each window's record longer (it names the log's
            parts of the horizon) and its check slower; 0 reads no late rows.
        state_uri: Where a window ending at `as_of` records which parts of the log it read (default: `_windows`
            inside the log's location). Set it to a location the monitor may write when the log is read-only to it.

    Returns:
        dataset: The rows as one Parquet file; its metadata has rows, columns, content_hash, source (and
            `window_range`, {from, to}, for a window; of a prediction log's window, `skipped_parts` it could not
            read and `future_rows` stamped after now, left out, `late_rows` of earlier windows written after
            those were read, counted in this one, and `too_late_rows` in `too_late_parts` written more than
            `late_horizon_h` after their window, not read, when there are any).
    """
    from kubepipe.components.data.load import load_to_artifact
    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed
    from kubepipe.components.monitoring.settings import default_sink

    with fail_fast():  # a failure a retry cannot change: say so, stop local retries
        load_to_artifact(
            dataset, source, format=format, encoding=encoding, delimiter=delimiter, decimal=decimal,
            thousands=thousands, columns=list(typed(columns)) or None, dtypes=dict(typed(dtypes)) or None,
            time_column=time_column, window=window, as_of=as_of, sample_fraction=sample_fraction,
            sample_n=sample_n, seed=seed, registry_uri=ctx_registry_uri, allow_empty=allow_empty,
            window_schedule=window_schedule, settle_s=settle_s, late_horizon_h=late_horizon_h, state_uri=state_uri,
            predictions_uri=predictions_uri or default_sink(dict(ctx_profile), ctx_state_dir),
        )


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def validate_data(
    data: Input[Dataset],
    dataset: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[HTML],
    validation: Output[Artifact],
    expectations: list = [],  # noqa: B006
    suite_path: str = "",
    unexpected_sample: int = 10,
    gate: bool = True,
    ctx_profile: dict = {},  # noqa: B006 - KFP needs literal defaults
    ctx_run_id: str = "",
    ctx_run_name: str = "",
    ctx_step: str = "",
) -> NamedTuple("ValidateOutputs", [("passed", bool), ("warnings", str)]):
    """Great Expectations 1.x gate: a failed `fail` expectation stops the run (unless gate=False).
    `warnings` names the failed `warn` expectations ("" when none).

    Args:
        data: The Dataset to check.
        expectations: GX expectations, each `- <name>: {<arguments>, severity: fail|warn}` (default
            severity `fail`); `kubepipe expectations infer DATA` drafts a list from a sample.
        suite_path: A GX suite JSON file whose expectations are checked too.
        unexpected_sample: How many unexpected values the report shows per failed expectation.
        gate: `false` turns the gate into a report: the step passes and `passed` says what happened.

    Returns:
        dataset: The data, passed through unchanged (metadata `validated`).
        metrics: Expectations evaluated and failed (fail and warn), success percent.
        report: HTML report: every expectation, its observed value and sample unexpected values.
        validation: The GX results as JSON.
        passed: Whether every `fail` expectation held (for `when:`).
        warnings: The failed `warn` expectations, named ("" when none).
    """
    from collections import namedtuple

    from kubepipe.components.data.steps import run_validate
    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed

    # a failure a retry cannot change: say so, stop local retries; a gate's no leaves its verdict (kubepipe.verdicts)
    with fail_fast(gate=dict(profile=ctx_profile, run_id=ctx_run_id, run_name=ctx_run_name, step=ctx_step)):
        passed = run_validate(data, dataset, metrics, report, validation, expectations=list(typed(expectations)),
                              suite_path=suite_path, unexpected_sample=unexpected_sample, gate=gate)
    return namedtuple("ValidateOutputs", ["passed", "warnings"])(passed, validation.metadata.get("warnings", ""))


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def detect_drift(
    data: Input[Dataset],
    reference: Input[Dataset],
    report: Output[HTML],
    metrics: Output[Metrics],
    columns: list = [],  # noqa: B006
    thresholds: dict = {},  # noqa: B006
    bins: int = 10,
    max_categories: int = 50,
    column_map: dict = {},  # noqa: B006
) -> NamedTuple("DriftOutputs", [("drift_detected", bool), ("no_traffic", str)]):
    """Per-column drift vs `reference` (PSI + KS); `drift_detected` can trigger retraining.

    Args:
        data: The new data.
        reference: What it is compared with, e.g. the champion's training data (`champion:<model>`).
        columns: Only these columns (empty: every column both have).
        thresholds: When a column drifts: `psi` (0.2) with `chi2_pvalue` (0.05), or `ks_statistic` (0.1) with
            `ks_pvalue` (0.05); per column under `columns: {<name>: {psi: 0.3}}`.
        bins: Quantile bins of the reference for numeric PSI.
        max_categories: Columns with at most this many values are compared as categories.
        column_map: Current column -> reference column of another name, e.g. `{prediction: category}`
            compares served predictions (a prediction log) with the labels the champion learned from.

    Returns:
        report: HTML report: PSI and KS per column, the drifted ones first.
        metrics: drift_detected, drifted_columns, share_drifted, max_psi.
        drift_detected: Whether any column drifted (for `when:` and trigger-retrain).
        no_traffic: "no traffic in window <from>..<to>" when `data` is load-data's window without rows
            (`allow_empty`): nothing was compared (give it to trigger-retrain's `no_traffic`); else "".
    """
    from collections import namedtuple

    from kubepipe.components.data.steps import run_drift
    from kubepipe.components.errors import fail_fast
    from kubepipe.components.kfp_values import typed

    with fail_fast():  # a failure a retry cannot change: say so, stop local retries
        drifted = run_drift(data, reference, report, metrics, columns=list(typed(columns)) or None,
                            thresholds=dict(typed(thresholds)) or None, bins=bins, max_categories=max_categories,
                            column_map=dict(typed(column_map)) or None)
    return namedtuple("DriftOutputs", ["drift_detected", "no_traffic"])(
        drifted, report.metadata.get("drift", {}).get("no_traffic", ""))
