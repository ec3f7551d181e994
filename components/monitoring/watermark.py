"""Late rows of the prediction log: each scheduled window records the parts it read; the next one reads the rest.

A window `(start, end]` with `as_of` is read `settle_s` after its end. A part written later than that (a stalled
server, `serving.log.flush_s` above `settle_s`, an upload that came late) held rows stamped in a window already read:
read by none. Now each window of a series (one `window` or `window_schedule`) creates a record,
`<sink>/_windows/model=<m>/<series>/<end>.json`, naming the parts it saw (those of the last `LATE_HORIZON_H` hours
before its end) and the late parts it read. The next window also reads the rows of parts that record does not name,
stamped after `record.to - LATE_HORIZON_H` and up to the record's end (and its own start): late rows, counted in
the window that reads them and said (`late_rows`). A window read again (a retry, a re-run by hand) reads exactly the
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

__all__ = ["LATE_HORIZON_H", "WINDOWS_DIR", "WindowPlan", "plan_window", "commit_window"]

log = logging.getLogger(__name__)
LATE_HORIZON_H = 72  # rows written more than this after their time are not read: bounds each record's part list
WINDOWS_DIR = "_windows"
_NAME = "%Y%m%dT%H%M%S.%fZ.json"  # sorts as time does


def _iso(t) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WindowPlan:
    """What one window reads: `parts` (paths), of which `late` also give their rows in `(late_from, late_to]`;
    `record` is what to create once the window's dataset is written (None: read again, or read out of order)."""

    def __init__(self, parts: list[str], late: set[str], late_from, late_to, record: dict | None, store, rel: str,
                 sink: str = ""):
        self.parts, self.late, self.late_from, self.late_to = parts, late, late_from, late_to
        self.record, self.store, self.rel, self.sink = record, store, rel, sink

    def __deepcopy__(self, memo):  # pandas copies attrs on every operation: this one is shared, not copied
        return self

    def keep(self, table, path: str, start, end):
        """`table`'s rows of this window: stamped in `(start, end]`, or late (`path` a late part)."""
        import pyarrow.compute as pc

        ts = table.column("timestamp")
        inside = pc.and_(pc.greater(ts, _scalar(start, ts)), pc.less_equal(ts, _scalar(end, ts)))
        if path not in self.late:
            return table.filter(inside), 0
        late = pc.and_(pc.greater(ts, _scalar(self.late_from, ts)), pc.less_equal(ts, _scalar(self.late_to, ts)))
        late = pc.and_(late, pc.invert(inside))
        return table.filter(pc.or_(inside, late)), int(pc.sum(late).as_py() or 0)


def _scalar(t, column):
    import pyarrow as pa

    typ = column.type if pa.types.is_timestamp(column.type) else pa.timestamp("us", tz="UTC")
    return pa.scalar(t.to_pydatetime(), pa.timestamp("us", tz="UTC")).cast(typ)


@contextmanager
def _records(sink: str, where: str, doing: str):
    """A store failure, or a record that is no record, as a DataError naming the place and what to do."""
    from kubepipe.components.registry import RegistryError
    from kubepipe.secrets import redact_text, redact_url

    try:
        yield
    except (RegistryError, OSError, ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(f"prediction log {redact_url(sink)}: cannot {doing} {where} ({redact_text(str(exc))}); the "
                        "monitor keeps which parts each window read there, beside the log (predictions_uri): give "
                        "it write access, or move a damaged record away (the window after it then reads no late "
                        "rows)") from None


def _series(window: str, window_schedule: str) -> str:
    text = f"window={window}" if str(window).strip() else f"window_schedule={window_schedule}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_window(sink: str, model: str, *, window: str, window_schedule: str, start, end,
                listed: list[tuple[dt.datetime, str]], rel) -> WindowPlan:
    """The parts window `(start, end]` reads, from the log's `listed` (hour, path) parts; `rel(path)` names a part
    relative to the sink."""
    import pandas as pd

    from kubepipe.components.registry.store import open_store

    folder = f"{WINDOWS_DIR}/model={model}/{_series(window, window_schedule)}"
    name = end.strftime(_NAME)
    with _records(sink, folder, "list the windows' records in"):
        store = open_store(sink, "predictions_uri")
        names = [n for n in store.listdir(folder) if n.endswith(".json") and not n.startswith(".")]
    horizon = pd.Timedelta(hours=LATE_HORIZON_H)
    in_window = [p for h, p in listed if start - pd.Timedelta(hours=1) < pd.Timestamp(h) <= end]
    if name in names:  # read again: exactly the parts the window read the first time
        with _records(sink, f"{folder}/{name}", "read the window's record"):
            own = json.loads(store.read(f"{folder}/{name}"))
            read, read_late = set(own["parts"]), set(own["late"])
            bounds = pd.Timestamp(own["late_from"]), pd.Timestamp(own["late_to"])
        parts = [p for p in in_window if rel(p) in read] + [p for _, p in listed if rel(p) in read_late]
        return WindowPlan(sorted(set(parts)), {p for p in parts if rel(p) in read_late}, *bounds, None, store, "")
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
    if before:
        with _records(sink, f"{folder}/{before[-1]}", "read the record of the window before in"):
            prev = json.loads(store.read(f"{folder}/{before[-1]}"))
            seen, prev_to, floor = set(prev["parts"]), pd.Timestamp(prev["to"]), pd.Timestamp(prev["floor"])
        late_from, late_to = max(prev_to - horizon, floor), min(start, prev_to)
        late = [p for h, p in listed if late_from - pd.Timedelta(hours=1) < pd.Timestamp(h) <= late_to
                and rel(p) not in seen]
    kept = [p for h, p in listed if end - horizon - pd.Timedelta(hours=1) < pd.Timestamp(h) <= end]
    record = {"from": _iso(start), "to": _iso(end), "floor": _iso(floor), "late_from": _iso(late_from),
              "late_to": _iso(late_to), "late": sorted(rel(p) for p in late), "parts": sorted(rel(p) for p in kept)}
    return WindowPlan(sorted(set(in_window) | set(late)), set(late), late_from, late_to, record, store,
                      f"{folder}/{name}", sink)


def commit_window(plan: WindowPlan | None, late_rows: int = 0) -> None:
    """Create the window's record (after its dataset was written); a record another run created first stands."""
    if plan is None or plan.record is None:
        return
    record = copy.copy(plan.record)
    record["late_rows"] = int(late_rows)
    with _records(plan.sink, plan.rel, "record the window in"):
        created = plan.store.create(plan.rel, json.dumps(record, sort_keys=True).encode())
    if not created:
        log.warning("prediction log: the window ending %s was recorded by another run meanwhile; the next window "
                    "reads from that record", record["to"])
