"""Read a window of the prediction log: `load-data` with `source: predictions:<model>`.

Only committed parts are read (`part-*.parquet`; a writer's temp files start with `.`), and only
the hour partitions that overlap the window are opened. A window ends at `as_of` (the scheduled time) and is read
no earlier than `settle_s` after it: a row stamped before the end reaches the log at the server's next flush (every
10 s by default), and the next window starts after it, so a window read at once left it out of both. A part that cannot be read (copied in by
hand, damaged at rest) is skipped with a warning and counted, never half-read. A window without `as_of` ends at
the newest request logged by now: rows stamped later (a server's clock ahead) are left out and counted. A window
ending at `as_of` also reads the late rows the window before it could not (written after it was read), and counts
them (`watermark.py`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from kubepipe.components.errors import DataError
from kubepipe.components.monitoring.predlog import PART_PREFIX, PART_SUFFIX
from kubepipe.components.monitoring.watermark import LATE_HORIZON_H
from kubepipe.times import UTC_FORMAT

__all__ = ["SETTLE_S", "PREDICTIONS_PREFIX", "is_predictions_source", "read_predictions", "model_of", "per_request"]

log = logging.getLogger(__name__)
PREDICTIONS_PREFIX = "predictions:"
# How long after a window's end its rows may still be written: the servers' flush interval (10 s) and an upload
SETTLE_S = 30.0
_PART = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/" + re.escape(PART_PREFIX) + r"[0-9a-f]+"
                   + re.escape(PART_SUFFIX) + "$")


def per_request(df):
    """One row of each logged request (its rows are its instances). The id alone is no key: a client's retry, or a
    client sending a fixed `X-Request-Id`, is logged under an id already there; a request's rows share its id, its
    time and the version that answered it."""
    return df.drop_duplicates([c for c in ("request_id", "timestamp", "model_version") if c in df.columns])


def is_predictions_source(source: str) -> bool:
    return str(source).strip().startswith(PREDICTIONS_PREFIX)


def model_of(source: str) -> str:
    name = str(source).strip()[len(PREDICTIONS_PREFIX):].strip()
    if not name:
        raise DataError(f"{source}: write predictions:<model name>, e.g. predictions:merchant-categorizer")
    return name


def _parts(fs, root: str, model: str) -> tuple[list[tuple[dt.datetime, str]], dict[str, float | None]]:
    """The log's committed parts as (hour, path), and each one's modification time on the store's clock (from the
    same listing: no request per part)."""
    from kubepipe.components.registry.fsspec_store import info_time

    out, times = [], {}
    found = fs.glob(f"{root.rstrip('/')}/model={model}/date=*/hour=*/{PART_PREFIX}*{PART_SUFFIX}", detail=True)
    for path, info in found.items():
        m = _PART.search("/" + str(path).lstrip("/"))
        if not m:
            continue
        try:
            hour = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}:00:00+00:00")
        except ValueError:  # date=2026-02-30 / hour=24, made by hand: no hour of the log (was a ValueError)
            log.warning("prediction log: skipping %s: its partition is no hour (%s, hour %s)", path, m.group(1),
                        m.group(2))
            continue
        out.append((hour, str(path)))
        times[str(path)] = info_time(info)
    return sorted(out), times


def _hour(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:00 UTC")


def read_predictions(source: str, sink: str, *, window: str = "", as_of: str = "", allow_empty: bool = False,
                     window_schedule: str = "", settle_s: float = SETTLE_S, late_horizon_h: float = LATE_HORIZON_H,
                     state_uri: str = ""):
    """The log rows of `predictions:<model>` under `sink` (all, or the hours overlapping the window). With
    `allow_empty`, a window no part overlaps is 0 rows of the log's columns (`attrs["window_range"]`). A window
    ending at `as_of` keeps its record under `state_uri` (default `<sink>/_windows`) and reads late rows written up
    to `late_horizon_h` after their time."""
    from kubepipe.util import url_to_fs
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kubepipe.components.data.load import _as_of, window_range, window_start

    model = model_of(source)
    if as_of and (window or window_schedule):
        _settle(_as_of(as_of, None), settle_s, source)
    try:
        fs, root = url_to_fs(sink)
    except (ImportError, ValueError) as exc:
        raise DataError(f"{source}: cannot open the prediction log at {sink!r} ({exc})") from None
    parts, times = _parts(fs, root, model)
    if not parts:
        raise DataError(f"{source}: no prediction log of model `{model}` under {sink}; deploy it with "
                        "`serving: {log: {sample: 0.1}}` and send it traffic (or set `predictions_uri`)")
    now, ahead, plan = pd.Timestamp.now(tz="UTC"), [], None
    windowed = bool(window or window_schedule)
    if windowed and not as_of:  # to the newest request logged by now: one pod's clock ahead ended the window
        by_now = [(h, p) for h, p in parts if pd.Timestamp(h) <= now]
        if by_now:  # all ahead: the reader's clock is behind, and the newest request ends the window as before
            parts, ahead = by_now, parts[len(by_now):]
    if windowed:
        end = _as_of(as_of, None) if as_of else pd.Timestamp(parts[-1][0] + dt.timedelta(hours=1))
        # without as_of the window ends at the newest row, in the newest hour: its start is no earlier than this
        first = window_start(window, window_schedule, end if as_of else pd.Timestamp(parts[-1][0]))
        start = first - pd.Timedelta(hours=1)  # the hour partition holding the window's first rows
        logged = parts
        if as_of:  # a scheduled window: it also reads the late rows the window before it could not
            from kubepipe.components.monitoring.watermark import plan_window

            plan = plan_window(sink, model, window=window, window_schedule=window_schedule, start=first,
                               end=end, listed=parts, rel=lambda p: str(p)[len(root.rstrip("/")) + 1:], fs=fs,
                               horizon_h=late_horizon_h, state_uri=state_uri, times=times)
            chosen = set(plan.parts)
            parts = [(h, p) for h, p in parts if p in chosen]
        else:
            parts = [(h, p) for h, p in parts if start < pd.Timestamp(h) <= end]
        if not parts and allow_empty:  # no traffic in the window: 0 rows, with the newest part's columns
            with fs.open(logged[-1][1], "rb") as fh:
                df = pq.read_schema(fh).empty_table().to_pandas()
            df.attrs["window_range"] = window_range(window_start(window, window_schedule, end), end)
            df.attrs["window_plan"] = plan
            _too_late(df, plan)
            return df
        if not parts:  # the same words as a data file's empty window (load._window)
            raise DataError(f"{source}: no requests logged in the window ({window_start(window, window_schedule, end)}"
                            f" .. {end}] under {sink}; "
                            f"the log spans {_hour(logged[0][0])} .. {_hour(logged[-1][0] + dt.timedelta(hours=1))}; "
                            "check `as_of` / `window`")
    tables, read, skipped, late = [], [], [], 0
    for _, path in parts:
        try:
            with fs.open(path, "rb") as fh:
                table = pq.read_table(fh)
            if plan is not None:  # the window's rows and its late rows: filtered here, per part
                table, n = plan.keep(table, path, first, end)
                late += n
            tables.append(table)
            read.append(path)
        except FileNotFoundError:  # listed, then deleted: the window is read without it
            log.warning("prediction log: skipping part %s: it was removed after it was listed (retention?)", path)
            skipped.append(path)
        except (OSError, pa.ArrowException) as exc:
            log.warning("prediction log: skipping unreadable part %s (%s)", path, exc)
            skipped.append(path)
    if not tables:
        raise DataError(f"{source}: no readable prediction log parts in the window under {sink}")
    try:  # permissive: a part whose timestamps are in ns or ms (written by pandas or Spark) joins the us ones
        df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        raise DataError(f"{source}: {_mismatch(tables, read)}; move that part out of {sink} or rewrite it "
                        "with the log's types") from None
    if windowed and not as_of:
        df = _by_now(df, now, source, _rows(fs, ahead))
    df = df.sort_values(["timestamp", "request_id", "instance"], kind="stable").reset_index(drop=True)
    df.attrs["parts"], df.attrs["skipped_parts"] = len(tables), len(skipped)
    if plan is not None:
        _windowed(df, plan, late, source, window_range(first, end), allow_empty)
    return df


def _windowed(df, plan, late: int, source: str, bounds: dict, allow_empty: bool) -> None:
    """Mark `df` as the window's rows (load-data filters them no more) with its late rows said."""
    if not len(df) and not allow_empty:  # the same words as a data file's empty window (load._window)
        raise DataError(f"{source}: no rows in the window ({bounds['from']} .. {bounds['to']}] of `timestamp`; "
                        "check `as_of` / `window`")
    df.attrs.update(window_range=bounds, window_plan=plan)
    _too_late(df, plan)
    if late:
        df.attrs["late_rows"] = late
        log.warning("%s: %d late row(s), stamped in %s .. %s but written after that window was read, are counted in "
                    "this window", source, late, plan.late_from.strftime(UTC_FORMAT), plan.late_to.strftime(UTC_FORMAT))


def _too_late(df, plan) -> None:
    """Say the rows `plan` found written too late to be read (`too_late_rows`, `too_late_parts`)."""
    if plan is not None and plan.too_late_rows:
        df.attrs.update(too_late_rows=plan.too_late_rows, too_late_parts=plan.too_late_parts,
                        late_horizon_h=plan.horizon_h)
        log.warning("prediction log: TOO LATE: %d row(s) in %d part(s) were written more than %g h after their "
                    "window (late_horizon_h) and are not read; raise late_horizon_h to read such rows",
                    plan.too_late_rows, plan.too_late_parts, plan.horizon_h)


def _settle(end, settle_s: float, source: str) -> None:
    """Wait until `settle_s` after the window's `end`, when the servers have written the rows stamped before it;
    a window ending later than that from now (the reader's clock behind, or `as_of` given by hand) is read as it is,
    and said."""
    import time

    import pandas as pd

    wait = (end - pd.Timestamp.now(tz="UTC")).total_seconds() + settle_s
    if wait <= 0:
        return
    if wait > settle_s:
        log.warning("%s: the window ends at %s, %.0f s from now: the rows logged after now are not in it (a clock "
                    "behind?)", source, end.strftime(UTC_FORMAT), wait - settle_s)
        return
    log.info("%s: waiting %.1f s for the servers to write the window's last rows (settle_s)", source, wait)
    time.sleep(wait)


def _by_now(df, now, source: str, later: int):
    """The rows logged by `now`, where a window ends at the newest request: a row stamped later (a server whose clock
    runs ahead; `later` rows of hours not yet come were not read) is left out, counted in `attrs["future_rows"]` and
    said. With every row read ahead, all are kept."""
    import pandas as pd

    ahead = (pd.to_datetime(df["timestamp"], utc=True) > now).to_numpy()
    if ahead.all():
        ahead[:] = False
    n = int(ahead.sum()) + later
    if not n:
        return df
    kept = df[~ahead]
    kept.attrs["future_rows"] = n
    log.warning("%s: %d logged row(s) are stamped after now (%s) and left out of the window that ends at the newest "
                "request (a server's clock ahead?); give `as_of` to choose the window's end", source, n,
                now.strftime(UTC_FORMAT))
    return kept


def _rows(fs, parts: list[tuple[dt.datetime, str]]) -> int:
    """How many rows `parts` hold (their footers; an unreadable one counts 0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    for _, path in parts:
        try:
            with fs.open(path, "rb") as fh:
                n += pq.read_metadata(fh).num_rows
        except (OSError, pa.ArrowException):
            continue
    return n


def _mismatch(tables: list, paths: list[str]) -> str:
    """Which part first gives a column a type the parts before it cannot be merged with."""
    import pyarrow as pa

    for i in range(1, len(tables)):
        try:
            pa.concat_tables(tables[:i + 1], promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            seen = {f.name: (f.type, paths[j]) for j in range(i) for f in tables[j].schema}
            for field in tables[i].schema:
                if field.name in seen and seen[field.name][0] != field.type:
                    kind, where = seen[field.name]
                    return (f"part {paths[i]}: column `{field.name}` is {field.type}, where {where} "
                            f"has {kind}; the parts cannot be read as one table")
            return f"part {paths[i]}: its columns cannot be merged with the parts before it"
    return "the parts' columns cannot be merged"
