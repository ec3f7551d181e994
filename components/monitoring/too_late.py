"""Parts written too late to be read: counted once, by the first recorded window that lists them, and said.

A window's record names the parts of the last `horizon` hours before its end (the band), and keeps, for each older
hour since the series began, how many parts it held, how many rows stamped after the series' floor, how many parts
held such rows, and a digest of its part names (`old`). The next window then knows every part it has not seen: one
in the band not named (its rows stamped after `late_from` are read as late rows, the rest are too late), and one in
an older hour whose digest changed and that is new by the store's clock (its rows are too late).

New by the store's clock: each record also keeps a cut, `SLACK_S` before the newest modification time the store
reports for any part of its listing (S3's LastModified, GCS's updated, a file's mtime: the store's own clock, never
the monitor's), and names the parts of older hours modified at or after it (`recent`). A part of an older hour
modified at or after the record's cut and not named there was not listed by that window: it is new. A part modified
before the cut was listed then (a part becomes visible less than `SLACK_S` after its modification time: a flush's
rename or upload), so it is known. Equal times (S3 keeps whole seconds) are settled by the names. Parts removed
meanwhile (retention, compaction) change nothing of this: the new parts are found by their own times, not by the
hour's count, and their rows alone are read (footers; the timestamps in the floor's hour).

Why this design: the summary stays a short entry per hour of the series' history (a 16-hex digest added), and
`recent` names only the parts written into older hours in the `SLACK_S` before the listing (none in steady state
with a horizon of an hour or more; with `late_horizon_h: 0`, about `SLACK_S` of one server's flushes). Keeping every
part name of every old hour, or a filter of them, would grow the record by the log's whole history.

What the times cannot show is said, not hidden: a part moved into an older hour keeping an older modification time
(`mv` of a file written long ago) leaves the hour's digest changed with no new part by the times. With no part
removed from that hour it is counted from the hour's totals (said in the log); with parts also removed it goes
uncounted (said in the log). A record of an older version (three numbers per hour, no digest, no cut) is upgraded by
the next window, which compares counts as that version did: a part written into an hour that also lost one before
that window goes uncounted, once.
"""

from __future__ import annotations

import hashlib
import logging
import math

__all__ = ["SLACK_S", "TooLate", "hour_key", "rows_stamped"]

log = logging.getLogger(__name__)
# Longest a part takes from its modification time (as the store reports it) to appearing in a listing: a flush's
# write before its rename, an upload (S3 and GCS stamp an object when its upload starts or ends): far above both
SLACK_S = 900


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


def _digest(names) -> str:
    """An order-independent digest of part names: the sum of their hashes, 64 bits."""
    total = sum(int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "big") for n in names)
    return f"{total % 2 ** 64:016x}"


class TooLate:
    """The parts and rows a window finds written too late, and the summary of older hours its record keeps.
    `times`: each listed part's modification time on the store's clock (None: not given); `since`: the record
    before's (cut, names of older hours' parts modified from it on), None when it keeps none."""

    def __init__(self, fs, listed: list, floor, rel, times: dict | None = None, since: tuple | None = None):
        import pandas as pd

        self.fs, self.floor, self.rel, self.rows, self.parts = fs, floor, rel, 0, 0
        self.times, self.since = dict(times or {}), since
        self.by_hour: dict[str, list] = {}
        self._counted: dict[str, int] = {}
        for h, p in listed:
            self.by_hour.setdefault(hour_key(pd.Timestamp(h)), []).append(p)

    def band(self, new: list[str], late_from) -> None:
        """Parts of the band the record before did not name: their rows stamped up to `late_from` are too late."""
        for path in new:
            n = rows_stamped(self.fs, path, self.floor, late_from)
            if n:
                self.rows, self.parts = self.rows + n, self.parts + 1

    def _rows(self, key: str, path: str) -> int:
        """Rows of `path` (of hour `key`) stamped after the floor; an hour after the floor: its footer alone."""
        import pandas as pd

        if path not in self._counted:  # a row stamped on the floor itself is before monitoring
            self._counted[path] = rows_stamped(self.fs, path, self.floor, whole=pd.Timestamp(key) > self.floor)
        return self._counted[path]

    def _hour(self, key: str, paths: list | None = None) -> list:
        """[parts, rows stamped after the floor, parts holding such rows, digest] of an hour as listed now (or of
        its `paths`)."""
        paths = self.by_hour.get(key, []) if paths is None else paths
        rows = [self._rows(key, p) for p in paths]
        return [len(rows), sum(rows), sum(1 for n in rows if n), _digest(self.rel(p) for p in paths)]

    def _new(self, path: str) -> bool:
        """Whether `path` was written after the record before listed the log (its time from the cut on, unnamed)."""
        t = self.times.get(path)
        return self.since is not None and t is not None and t >= self.since[0] and self.rel(path) not in self.since[1]

    def older(self, old: dict, lo, hi) -> dict:
        """Hours in `(lo, hi]`, summarised by the record before as `old`: what they hold now, with the parts added
        since counted as too late."""
        import pandas as pd

        now = {}
        keys = {k for k in (*old, *self.by_hour) if lo < pd.Timestamp(k) <= hi}
        for key in sorted(keys):
            was, paths = old.get(key, [0, 0, 0, _digest(())]), self.by_hour.get(key, [])
            digest = _digest(self.rel(p) for p in paths)
            if (digest == was[3]) if len(was) > 3 else len(paths) == was[0]:  # as it was (an older record: counts)
                now[key] = [*was[:3], digest]
                continue
            new = [p for p in paths if self._new(p)]
            added = self._hour(key, new)
            self.rows, self.parts = self.rows + added[1], self.parts + added[2]
            fresh = set(new)
            known = [p for p in paths if p not in fresh]
            if len(was) > 3 and _digest(self.rel(p) for p in known) == was[3]:  # only parts added
                now[key] = [was[0] + added[0], was[1] + added[1], was[2] + added[2], digest]
                continue
            now[key] = self._hour(key)
            if len(known) >= was[0]:  # parts came that the times do not show: counted from the hour's totals
                kept = self._hour(key, known)  # parts of rows before the floor (before monitoring) are no part of it
                self.parts += max(kept[2] - was[2], 0)
                self.rows += max(kept[1] - was[1], 0)
                if self.since is not None:
                    log.warning("prediction log: hour %s holds part(s) with an older modification time than the "
                                "window before read (moved in keeping their times?): counted from the hour's totals",
                                key)
            elif known:  # parts removed (retention, compaction); an hour removed whole says nothing
                log.log(logging.INFO if self.since is not None else logging.WARNING, "prediction log: hour %s holds %d part(s) of the %d it held when last read (some removed); "
                         "a part moved into it keeping an older modification time meanwhile is not counted", key,
                         len(known), was[0])
        return now

    def summary(self, old: dict, lo, hi, known) -> dict:
        """The summary of hours in `(lo, hi]` for this window's record: those up to `known` from `old` (as `older`
        left them), the rest (just out of the band) from what is listed now."""
        import pandas as pd

        out = {}
        keys = {k for k in (*old, *self.by_hour) if lo < pd.Timestamp(k) <= hi}
        for key in sorted(keys):
            entry = old.get(key, [0, 0, 0, _digest(())]) if pd.Timestamp(key) <= known else self._hour(key)
            if entry[0]:
                out[key] = entry
        return out

    def cut(self, lo, hi) -> tuple[float | None, list[str]]:
        """This window's cut (`SLACK_S` before the newest time of any part listed, whole seconds), and the names of
        the parts of hours in `(lo, hi]` modified from it on; (None, []) where the store gives no times."""
        import pandas as pd

        times = [t for t in self.times.values() if t is not None]
        if not times:
            return None, []
        cut = float(math.floor(max(times)) - SLACK_S)
        named = [self.rel(p) for key, paths in self.by_hour.items() if lo < pd.Timestamp(key) <= hi for p in paths
                 if (self.times.get(p) or -math.inf) >= cut]
        return cut, sorted(named)
