"""load-data logic: read a source, keep a time window, select columns, sample; write a Dataset artifact."""

from __future__ import annotations

from typing import Any

from kubepipe.components.data.checks import (AS_OF_HINT, WINDOW, WINDOW_UNITS, as_of_problem, repeated,
                                             sampling_problem, settle_problem, window_problem)
from kubepipe.components.data.io import coerce_dtypes, require_columns, utc_timestamps, write_dataset
from kubepipe.components.data.sources import read_source
from kubepipe.components.errors import DataError
from kubepipe.components.monitoring.predlog_read import SETTLE_S
from kubepipe.components.monitoring.watermark import LATE_HORIZON_H
from kubepipe.secrets import redact_url

__all__ = ["load", "load_to_artifact", "parse_window", "window_range", "window_start", "no_traffic_text"]

# a prediction log window's attrs kept past selection and sampling; of them, what its metadata says when there is any
_CARRIED = ("window_plan", "late_rows", "too_late_rows", "too_late_parts", "late_horizon_h")
_SAID = ("window_range", "skipped_parts", "future_rows", "late_rows", "too_late_rows", "too_late_parts",
         "late_horizon_h")

def parse_window(window: str):
    """`7d` -> Timedelta(7 days); units s, m, h, d, w."""
    import pandas as pd

    problem, m = window_problem(window), WINDOW.match(str(window))
    if problem or m is None:
        raise DataError(f"window {window!r} {problem or 'is not a duration'}; write e.g. `7d`, `12h`, `2w`")
    return pd.Timedelta(**{WINDOW_UNITS[m.group(2)]: int(m.group(1))})


def window_start(window: str, window_schedule: str, end):
    """Where the window that ends at `end` starts (excluded): `end - window`, or with `window_schedule` (a cron,
    `TZ=<zone> ` first for a zone) that schedule's last fire before `end`. A window of fixed hours ending at a DST
    zone's fire times overlaps the one before by an hour in spring and leaves an hour out in autumn; a scheduled
    run's window from the fire before its own tiles time exactly."""
    import pandas as pd

    if not str(window_schedule).strip():
        return end - parse_window(window)
    from kubepipe.components.data.checks import WINDOW_SCHEDULE_HINT, window_schedule_problem
    from kubepipe.spec.fire_times import prev_fire_time

    problem = window_schedule_problem(window_schedule)
    if problem:
        raise DataError(f"window_schedule {window_schedule!r} {problem}; {WINDOW_SCHEDULE_HINT}")
    # the latest fire strictly before `end` (croniter's get_prev from `end` itself)
    return pd.Timestamp(prev_fire_time(window_schedule, None, (end - pd.Timedelta(seconds=1)).to_pydatetime()))


def load(
    source: str,
    *,
    format: str = "auto",
    encoding: str = "utf-8",
    delimiter: str = ",",
    decimal: str = ".",
    thousands: str = "",
    columns: list[str] | None = None,
    dtypes: dict[str, str] | None = None,
    time_column: str = "",
    window: str = "",
    as_of: str = "",
    sample_fraction: float = 0.0,
    sample_n: int = 0,
    seed: int = 0,
    registry_uri: str = "",
    predictions_uri: str = "",
    allow_empty: bool = False,
    window_schedule: str = "",
    settle_s: float = SETTLE_S,
    late_horizon_h: float = LATE_HORIZON_H,
    state_uri: str = "",
):
    """Read `source` and apply, in order: dtypes, time window, column selection, sampling.

    `champion:<model>` reads the training data of that model's current champion;
    `predictions:<model>` the prediction log under `predictions_uri` (time column `timestamp`).
    `window_schedule` (a cron) starts the window at that schedule's fire before `as_of` instead of `window` before it.
    A window's bounds are in `df.attrs["window_range"]` ({"from", "to"}, ISO UTC); with `allow_empty` a window
    without rows (a monitor's window without traffic) is a dataset of 0 rows, not an error.
    """
    from kubepipe.components.data.reference import champion_training_data, is_champion_source

    # a header's names are text: YAML reads `columns: [id, 2024]` as an int 2024 ('missing column `2024`')
    columns = [str(c) for c in columns] if columns else columns
    dtypes = {str(k): v for k, v in dtypes.items()} if dtypes else dtypes
    from kubepipe.components.monitoring.predlog_read import is_predictions_source, read_predictions

    if is_champion_source(source):
        df = read_source(champion_training_data(source, registry_uri), format="parquet")
    elif is_predictions_source(source):
        from kubepipe.components.monitoring.window_checks import horizon_problem

        problem = horizon_problem(late_horizon_h)
        if problem:
            raise DataError(f"late_horizon_h {problem}")
        df = read_predictions(source, predictions_uri, window=window, as_of=as_of, allow_empty=allow_empty,
                              window_schedule=window_schedule, settle_s=settle_s, late_horizon_h=late_horizon_h,
                              state_uri=state_uri)
        time_column = time_column or "timestamp"
    else:
        # a `str` column of a CSV is read as written: `02139` stays `02139`, not the number 2139 cast back
        text = tuple(c for c, kind in (dtypes or {}).items() if kind == "str")
        df = read_source(source, format=format, encoding=encoding, delimiter=delimiter, decimal=decimal,
                         thousands=thousands, text_columns=text)
    source = redact_url(source)  # only a label from here on: no signed URL's signature in a message
    kept = {k: df.attrs.pop(k) for k in _CARRIED if k in df.attrs}  # past selection, sampling
    bounds = df.attrs.get("window_range")  # a prediction log's window without a part: no rows to filter
    # a traffic export of a quiet day is a header alone: with allow_empty and the window's end given, no traffic
    if len(df) == 0 and not bounds and not (allow_empty and window and str(as_of).strip()):
        raise DataError(f"{source}: the file has a header but no data rows")
    if dtypes:
        df = coerce_dtypes(df, dtypes, source=source, decimal=decimal, thousands=thousands)
    problem = settle_problem(settle_s)
    if problem:
        raise DataError(f"settle_s {problem}")
    if window and window_schedule:
        raise DataError("load-data: set `window` (a duration) or `window_schedule` (the cron whose fires bound the "
                        "window), not both")
    if (window or window_schedule) and not bounds:  # time_column alone is a no-op: the window may arrive empty
        df = _window(df, source, time_column, window, as_of, allow_empty, window_schedule)
        bounds = df.attrs.get("window_range")
    if columns:
        twice = repeated(list(columns))
        if twice:  # df[[a, a]] is a dataset with two columns named a
            raise DataError(f"columns: lists `{twice[0]}` more than once; name each column once")
        require_columns(df, columns, source=source)
        df = df[list(columns)]
    df = _sample(df, source, sample_fraction, sample_n, seed) if len(df) else df
    if bounds:
        df.attrs["window_range"] = bounds
    df.attrs.update(kept)
    return df


def load_to_artifact(artifact: Any, source: str, **kwargs) -> dict:
    """`load`, then write the result as a Dataset artifact; returns its metadata."""
    from kubepipe.components.monitoring.watermark import commit_window
    from kubepipe.util import failpoint

    df = load(source, **kwargs)
    plan = df.attrs.pop("window_plan", None)
    meta = write_dataset(df, artifact, source=redact_url(source))  # metadata KFP stores and shows
    # recorded once the dataset every statistic of the window is computed from is written: a crash before it
    # leaves no record, and the window read again reads the same late rows again
    failpoint("load-data.dataset-written")  # chaos tests: a kill between the dataset and the window's record
    commit_window(plan, df.attrs.get("late_rows", 0))
    window = {k: kwargs[k] for k in ("time_column", "window", "as_of") if kwargs.get(k)}
    if window and hasattr(artifact, "metadata"):
        artifact.metadata["window"] = window
    # the bounds it covered (said by a monitor whose window had no traffic), and a prediction log's parts it could
    # not read (damaged, or removed by retention meanwhile) and rows stamped after now: the window is not whole
    for key in _SAID:
        if df.attrs.get(key):
            meta[key] = df.attrs[key]
            if hasattr(artifact, "metadata"):
                artifact.metadata[key] = df.attrs[key]
    return meta


def window_range(start, end) -> dict:
    """A window's bounds as load-data records them: ISO UTC, `from` excluded, `to` included."""
    return {"from": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "to": end.strftime("%Y-%m-%dT%H:%M:%SZ")}


def no_traffic_text(bounds: object) -> str:
    """What a monitor records for a window of 0 rows (`window_range` bounds); '' without bounds."""
    if not isinstance(bounds, dict):
        return ""
    return f"no traffic in window {bounds.get('from')}..{bounds.get('to')}"


def _window(df, source: str, time_column: str, window: str, as_of: str, allow_empty: bool = False,
            window_schedule: str = ""):
    if not (time_column and (window or window_schedule)):
        raise DataError(f"{source}: a time window needs both `time_column` and `window` (e.g. `7d`)")
    require_columns(df, [time_column], source=source)
    ts = utc_timestamps(df[time_column], column=time_column, source=source)
    if len(ts) and ts.isna().all():
        raise DataError(f"{source}: column `{time_column}` has no timestamps (every cell is empty); check "
                        "`time_column`")
    end = _as_of(as_of, ts)
    start = window_start(window, window_schedule, end)
    keep = (ts > start) & (ts <= end)  # (start, end]: the next window starts where this one ends
    out = df[keep.to_numpy()]
    out.attrs["window_range"] = window_range(start, end)
    if len(out) == 0 and not allow_empty:
        raise DataError(
            f"{source}: no rows in the window ({start} .. {end}] of `{time_column}`; "
            f"the data spans {ts.min()} .. {ts.max()}; check `as_of` / `window`"
        )
    return out


def _as_of(as_of: str, ts):
    """The window's end: `as_of` (e.g. the scheduled time) or, when empty, the latest timestamp in the data."""
    import pandas as pd

    if not str(as_of).strip():
        return ts.max()
    problem = as_of_problem(as_of)
    if problem:
        raise DataError(f"as_of {as_of!r} {problem}; {AS_OF_HINT}")
    try:
        end = pd.Timestamp(str(as_of).strip())
    except (ValueError, TypeError) as exc:  # as_of_problem let it pass: say what pandas said
        raise DataError(f"as_of {as_of!r} cannot be read as a time ({exc}); {AS_OF_HINT}") from None
    return end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")


def _sample(df, source: str, fraction: float, n: int, seed: int):
    if fraction and n:
        raise DataError(f"{source}: set `sample_fraction` or `sample_n`, not both")
    for key, value in (("sample_n", n), ("seed", seed)):  # a run-time param validate did not see
        problem = sampling_problem(key, value)
        if problem and (fraction or n):
            raise DataError(f"{key}: {problem}")
    rows = len(df)
    if fraction:
        if not 0 < fraction <= 1:
            raise DataError(f"sample_fraction must be in (0, 1], got {fraction}")
        kept = df.sample(frac=fraction, random_state=seed)
        if len(kept) == 0:  # an empty Dataset fails every step after this one, far from the cause
            raise DataError(f"{source}: sample_fraction {fraction} of {len(df)} row(s) keeps no row; raise it "
                            f"(at least {1 / len(df):.2g}) or set `sample_n`")
        df = kept
    elif n:
        df = df.sample(n=min(n, len(df)), random_state=seed)
    else:
        return df.reset_index(drop=True)
    df = df.sort_index().reset_index(drop=True)  # keep source order: stable, diff-friendly artifacts
    df.attrs["rows_before_sample"] = rows  # `expectations infer` says a sample's value sets are guesses
    return df
