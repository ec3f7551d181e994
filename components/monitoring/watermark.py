"""Late rows of the prediction log: each scheduled window records the parts it read; the next one reads the rest.

A window `(start, end]` with `as_of` is read `settle_s` after its end. A part written later than that (a stalled
server, `serving.log.flush_s` above `settle_s`, an upload that came late) held rows stamped in a window already read:
read by none. Now each window of a series (one `window` or `window_schedule`) creates a record,
`<state>/model=<m>/<series>/<end>.json` (`state`: load-data's `state_uri`, by default `<sink>/_windows`), naming the
parts it saw (those of the last `horizon_h` hours before its end, `late_horizon_h`, default `LATE_HORIZON_H`) and the
late parts it read. The next window also reads the rows of parts that record does not name, stamped after
`record.to - horizon_h` and up to the record's end (and its own start): late rows, counted in the window that reads
them and said (`late_rows`). Rows written later than that are too late: not read, but counted once and said
(`too_late_rows`, `too_late_parts`; too_late.py). A window read again (a retry, a re-run by hand) reads exactly the
parts its record names: the same rows. The record is created exclusively after load-data wrote the window's dataset,
from which every statistic of the window is computed: a crash before it leaves no record, and the window read again
reads its late rows again; nothing read by a recorded window is read by another.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import logging
from contextlib import contextmanager

from kubepipe.components.errors import DataError

__all__ = ["LATE_HORIZON_H", "WINDOWS_DIR", "WindowPlan", "plan_window", "commit_window", "state_location", "stamp"]

log = logging.getLogger(__name__)
LATE_HORIZON_H = 72  # rows written more than this after their time are not read (counted): bounds each record's part list
WINDOWS_DIR = "_windows"
_NAME = "%Y%m%dT%H%M%S.%fZ.json"  # sorts as time does


def _iso(t) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def state_location(sink: str, state_uri: str = "") -> str:
    """Where a log's window records are kept: `state_uri`, else `_windows` inside the log (`sink`)."""
    return str(state_uri).strip() or f"{str(sink).rstrip('/')}/{WINDOWS_DIR}"


class WindowPlan:
    """What one window reads: `parts` (paths), of which `late` also give their rows in `(late_from, late_to]`;
    `record` is what to create once the window's dataset is written (None: read again, or read out of order);
    `too_late`: (rows, parts) written too late to be read, found by this window."""

    def __init__(self, parts: list[str], late: set[str], late_from, late_to, record: dict | None, store, rel: str,
                 where: tuple = ("", ""), too_late: tuple = (0, 0), horizon_h: float = LATE_HORIZON_H):
        self.parts, self.late, self.late_from, self.late_to = parts, late, late_from, late_to
        self.record, self.store, self.rel, self.where = record, store, rel, where
        self.too_late_rows, self.too_late_parts = int(too_late[0]), int(too_late[1])
        self.horizon_h = float(horizon_h)

    def __deepcopy__(self, memo):  # pandas copies attrs on every operation: this one is shared, not copied
        return self

    def keep(self, table, path: str, start, end):
        """`table`'s rows of this window: stamped in `(start, end]`, or late (`path` a late part)."""
        import pyarrow.compute as pc

        ts = table.column("timestamp")
        inside = pc.and_(pc.greater(ts, stamp(start, ts)), pc.less_equal(ts, stamp(end, ts)))
        if path not in self.late:
            return table.filter(inside), 0
        late = pc.and_(pc.greater(ts, stamp(self.late_from, ts)), pc.less_equal(ts, stamp(self.late_to, ts)))
        late = pc.and_(late, pc.invert(inside))
        return table.filter(pc.or_(inside, late)), int(pc.sum(late).as_py() or 0)


def stamp(t, column):
    """`t` as a scalar comparable with the timestamp `column`."""
    import pyarrow as pa

    typ = column.type if pa.types.is_timestamp(column.type) else pa.timestamp("us", tz="UTC")
    return pa.scalar(t.to_pydatetime(), pa.timestamp("us", tz="UTC")).cast(typ)


@contextmanager
def _records(where: tuple, rel: str, doing: str):
    """A store failure, or a record that is no record, as a DataError naming the place and what to do; `where`:
    (the records' location, the state_uri given or '')."""
    from kubepipe.components.registry import RegistryError
    from kubepipe.secrets import redact_text, redact_url

    location, given = where
    place = f"{redact_url(location.rstrip('/'))}/{rel}"
    try:
        yield
    except (RegistryError, OSError) as exc:
        fix = ("give the monitor read and write access there (load-data's state_uri)" if given else
               "give the monitor write access there, or set load-data's `state_uri` to a location it may write "
               "(the prediction log can then stay read-only)")
        raise DataError(f"window records at {place}: cannot {doing} ({redact_text(str(exc))}); the monitor keeps "
                        f"there which parts of the prediction log each window read: {fix}") from None
    except (ValueError, KeyError, TypeError, IndexError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(f"window records at {place}: cannot {doing}: the record is damaged ({redact_text(str(exc))});"
                        " move a damaged record away (the window after it then reads no late rows)") from None


def _series(window: str, window_schedule: str) -> str:
    text = f"window={window}" if str(window).strip() else f"window_schedule={window_schedule}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_window(sink: str, model: str, *, window: str, window_schedule: str, start, end,
                listed: list[tuple[dt.datetime, str]], rel, fs, horizon_h: float = LATE_HORIZON_H,
                state_uri: str = "", times: dict | None = None) -> WindowPlan:
    """The parts window `(start, end]` reads, from the log's `listed` (hour, path) parts; `rel(path)` names a part
    relative to the sink; `fs` reads parts to count rows written too late; `times`: each part's modification time
    on the store's clock, which finds parts written into older hours (too_late.py)."""
    import pandas as pd

    from kubepipe.components.monitoring.too_late import TooLate, hour_key
    from kubepipe.components.registry.store import open_store

    where = (state_location(sink, state_uri), str(state_uri).strip())
    folder = f"model={model}/{_series(window, window_schedule)}"
    name = end.strftime(_NAME)
    with _records(where, folder, "list the records"):
        store = open_store(where[0], "state_uri" if where[1] else "predictions_uri")
        names = [n for n in store.listdir(folder) if n.endswith(".json") and not n.startswith(".")]
    hour, horizon = pd.Timedelta(hours=1), pd.Timedelta(hours=float(horizon_h))
    in_window = [p for h, p in listed if start - hour < pd.Timestamp(h) <= end]
    if name in names:  # read again: exactly the parts the window read the first time
        with _records(where, f"{folder}/{name}", "read the window's record"):
            own = json.loads(store.read(f"{folder}/{name}"))
            read, read_late = set(own["parts"]), set(own["late"])
            bounds = pd.Timestamp(own["late_from"]), pd.Timestamp(own["late_to"])
            too_late = int(own.get("too_late_rows", 0)), int(own.get("too_late_parts", 0))
        parts = [p for p in in_window if rel(p) in read] + [p for _, p in listed if rel(p) in read_late]
        return WindowPlan(sorted(set(parts)), {p for p in parts if rel(p) in read_late}, *bounds, None, store, "",
                          too_late=too_late, horizon_h=float(own.get("horizon_h", LATE_HORIZON_H)))
    before = [n for n in names if n < name]
    if len(before) < len(names):  # a window older than one recorded, read by hand: as it was, no late rows
        log.info("prediction log: the window ending %s precedes one already recorded under %s: read without late "
                 "rows, and not recorded", end, folder)
        return WindowPlan(in_window, set(), end, end, None, store, "")
    if end > pd.Timestamp.now(tz="UTC"):  # not over yet (as_of by hand, a clock behind): recorded, it hid the rest
        log.warning("prediction log: the window ending %s is not over: read without late rows, and not recorded "
                    "(the windows after it read them)", end)
        return WindowPlan(in_window, set(), end, end, None, store, "")
    late: list[str] = []
    late_from = late_to = floor = start  # the series' first window: rows before it are before monitoring began
    lo = floor - hour  # older hours than the band are known from here (before it: before monitoring began)
    kept_after = end - horizon - hour  # this record names the parts of later hours
    if before:
        with _records(where, f"{folder}/{before[-1]}", "read the record of the window before"):
            prev = json.loads(store.read(f"{folder}/{before[-1]}"))
            seen, prev_to, floor = set(prev["parts"]), pd.Timestamp(prev["to"]), pd.Timestamp(prev["floor"])
            prev_h = pd.Timedelta(hours=float(prev.get("horizon_h", LATE_HORIZON_H)))
            named_after = pd.Timestamp(prev.get("kept_after") or prev_to - prev_h - hour)
            # a record of an older version keeps no summary: hours before its band are not known
            lo = max(pd.Timestamp(prev.get("old_from") or named_after), floor - hour)
            # a damaged summary is a damaged record, said as one; an older version's keeps no digest, and no cut
            prev_old = {hour_key(pd.Timestamp(k)): [int(v[0]), int(v[1]), int(v[2]), *(str(d) for d in v[3:4])]
                        for k, v in dict(prev.get("old") or {}).items()}
            since = None if prev.get("cut") is None else (float(prev["cut"]), set(map(str, prev["recent"])))
        found = TooLate(fs, listed, floor, rel, times, since)
        late_from, late_to = max(prev_to - min(horizon, prev_h), floor), min(start, prev_to)
        new = [(pd.Timestamp(h), p) for h, p in listed if named_after < pd.Timestamp(h) <= prev_to
               and rel(p) not in seen]
        late = [p for h, p in new if late_from - hour < h <= late_to]
        found.band([p for h, p in new if h <= late_from], late_from)
        old = found.older(prev_old, lo, named_after)
        old = found.summary(old, min(lo, kept_after), kept_after, named_after)
    else:
        found = TooLate(fs, listed, floor, rel, times)
        old = found.summary({}, min(lo, kept_after), kept_after, lo)
    cut, recent = found.cut(min(lo, kept_after), kept_after)
    kept = [p for h, p in listed if kept_after < pd.Timestamp(h) <= end]
    record = {"from": _iso(start), "to": _iso(end), "floor": _iso(floor), "late_from": _iso(late_from),
              "late_to": _iso(late_to), "late": sorted(rel(p) for p in late), "parts": sorted(rel(p) for p in kept),
              "horizon_h": float(horizon_h), "kept_after": _iso(kept_after), "old_from": _iso(min(lo, kept_after)),
              "old": old, "cut": cut, "recent": recent, "too_late_rows": found.rows, "too_late_parts": found.parts}
    return WindowPlan(sorted(set(in_window) | set(late)), set(late), late_from, late_to, record, store,
                      f"{folder}/{name}", where, (found.rows, found.parts), horizon_h)


def commit_window(plan: WindowPlan | None, late_rows: int = 0) -> None:
    """Create the window's record (after its dataset was written); a record another run created first stands."""
    if plan is None or plan.record is None:
        return
    record = copy.copy(plan.record)
    record["late_rows"] = int(late_rows)
    with _records(plan.where, plan.rel, "record the window"):
        created = plan.store.create(plan.rel, json.dumps(record, sort_keys=True).encode())
    if not created:
        log.warning("prediction log: the window ending %s was recorded by another run meanwhile; the next window "
                    "reads from that record", record["to"])
