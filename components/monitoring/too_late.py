"""Parts written too late to be read: counted once, by the first recorded window that lists them, and said.

A window's record names the parts of the last `horizon` hours before its end (the band), and keeps, for each older
hour since the series began, how many parts it held, how many rows stamped after the series' floor, and how many
parts held such rows (`old`). The next window then knows every part it has not seen: one in the band not named (its
rows stamped after `late_from` are read as late rows, the rest are too late), and one in an older hour that has more
parts than the summary says (its rows are too late). The summary is three numbers per hour with parts, not a name per
part: a record grows by a short entry per hour of the series' history the log still holds. Parts removed from an
hour (retention) lower its count: the summary is set to what is there, and a part added in the same hour as one
removed goes uncounted (said in the log).
"""

from __future__ import annotations

import logging

__all__ = ["TooLate", "hour_key", "rows_stamped"]

log = logging.getLogger(__name__)


def hour_key(h) -> str:
    """An hour partition's key in a record's summary (`2026-03-16T05:00Z`)."""
    return h.strftime("%Y-%m-%dT%H:00Z")


def rows_stamped(fs, path: str, after, upto=None, *, whole: bool = False) -> int:
    """How many rows of part `path` are stamped in `(after, upto]` (no `upto`: after `after`); only the `timestamp`
    column is read, or with `whole` (a part of an hour after `after`) only the footer's row count. An unreadable part
    counts 0: the window that reads it says so."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from kubepipe.components.monitoring.watermark import stamp

    try:
        with fs.open(path, "rb") as fh:
            if whole:
                return int(pq.read_metadata(fh).num_rows)
            ts = pq.read_table(fh, columns=["timestamp"]).column("timestamp")
    except (OSError, pa.ArrowException, KeyError) as exc:
        log.warning("prediction log: cannot count the rows of part %s (%s)", path, exc)
        return 0
    keep = pc.greater(ts, stamp(after, ts))
    if upto is not None:
        keep = pc.and_(keep, pc.less_equal(ts, stamp(upto, ts)))
    return int(pc.sum(keep).as_py() or 0)


class TooLate:
    """The parts and rows a window finds written too late, and the summary of older hours its record keeps."""

    def __init__(self, fs, listed: list, floor):
        import pandas as pd

        self.fs, self.floor, self.rows, self.parts = fs, floor, 0, 0
        self.by_hour: dict[str, list] = {}
        for h, p in listed:
            self.by_hour.setdefault(hour_key(pd.Timestamp(h)), []).append(p)

    def band(self, new: list[str], late_from) -> None:
        """Parts of the band the record before did not name: their rows stamped up to `late_from` are too late."""
        for path in new:
            n = rows_stamped(self.fs, path, self.floor, late_from)
            if n:
                self.rows, self.parts = self.rows + n, self.parts + 1

    def _hour(self, key: str) -> list:
        """[parts, rows stamped after the floor, parts holding such rows] of an hour as listed now (an hour after the
        floor: the parts' footers alone)."""
        import pandas as pd

        whole = pd.Timestamp(key) > self.floor  # a row stamped on the floor itself is before monitoring
        rows = [rows_stamped(self.fs, p, self.floor, whole=whole) for p in self.by_hour.get(key, [])]
        return [len(rows), sum(rows), sum(1 for n in rows if n)]

    def older(self, old: dict, lo, hi) -> dict:
        """Hours in `(lo, hi]`, summarised by the record before as `old`: what they hold now, with the parts added
        since counted as too late."""
        import pandas as pd

        now = {}
        keys = {k for k in (*old, *self.by_hour) if lo < pd.Timestamp(k) <= hi}
        for key in sorted(keys):
            was = old.get(key, [0, 0, 0])
            count = len(self.by_hour.get(key, []))
            if count == was[0]:
                now[key] = was
                continue
            now[key] = self._hour(key)
            if count > was[0]:  # parts of rows before the floor (before monitoring began) are no part of it
                self.parts += max(now[key][2] - was[2], 0)
                self.rows += max(now[key][1] - was[1], 0)
            elif count:  # an hour removed whole (retention) leaves the summary without a word
                log.warning("prediction log: hour %s holds %d part(s), %d when last read (some removed); a part "
                            "written too late into it meanwhile is not counted", key, count, was[0])
        return now

    def summary(self, old: dict, lo, hi, known) -> dict:
        """The summary of hours in `(lo, hi]` for this window's record: those up to `known` from `old` (as `older`
        left them), the rest (just out of the band) from what is listed now."""
        import pandas as pd

        out = {}
        keys = {k for k in (*old, *self.by_hour) if lo < pd.Timestamp(k) <= hi}
        for key in sorted(keys):
            entry = old.get(key, [0, 0, 0]) if pd.Timestamp(key) <= known else self._hour(key)
            if entry[0]:
                out[key] = entry
        return out
