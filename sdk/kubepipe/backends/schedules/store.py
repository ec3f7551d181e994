"""SQLite store of the local scheduler: `.kubepipe/scheduler.db` (WAL; one scheduler process writes runs).

Tables: `schedules` (what `kubepipe schedule --target local` declared, plus the next fire time)
and `runs` (one row per fired slot, UNIQUE(schedule, slot) so a slot can never start twice,
even across restarts). Short transactions with a busy timeout let the CLI edit schedules
while the scheduler runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from kubepipe.errors import UserError
from kubepipe.util import utc_iso

__all__ = ["ScheduleRow", "SchedulerStore", "DB_NAME", "utcnow", "parse_iso"]

DB_NAME = "scheduler.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
  name TEXT PRIMARY KEY, pipeline TEXT NOT NULL, path TEXT NOT NULL, cron TEXT NOT NULL,
  timezone TEXT NOT NULL DEFAULT 'UTC', template TEXT NOT NULL DEFAULT '',
  max_concurrency INTEGER NOT NULL DEFAULT 1, catchup INTEGER NOT NULL DEFAULT 0,
  start_time TEXT, end_time TEXT, max_runs INTEGER, enabled INTEGER NOT NULL DEFAULT 1,
  params TEXT NOT NULL DEFAULT '{}', scheduled_time_param INTEGER NOT NULL DEFAULT 0,
  next_fire TEXT, fired INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,
  profile TEXT NOT NULL DEFAULT '', sets TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, schedule TEXT NOT NULL, slot TEXT NOT NULL,
  state TEXT NOT NULL, run_id TEXT, started_at TEXT, finished_at TEXT, error TEXT,
  pid INTEGER, pid_started REAL,
  UNIQUE(schedule, slot)
);
"""
# columns added after the first release: a scheduler.db written before them gets them at open
_ADDED = {"runs": {"pid": "INTEGER", "pid_started": "REAL"},
          "schedules": {"profile": "TEXT NOT NULL DEFAULT ''", "sets": "TEXT NOT NULL DEFAULT '[]'"}}


_MOVE_ASIDE = ("move it aside and apply each schedule again with `kubepipe schedule PIPELINE` (the record of fired "
               "slots is lost)")
_COLUMNS = {"pipeline", "path", "cron", "timezone", "template", "max_concurrency", "catchup", "start_time", "end_time",
            "max_runs", "enabled", "params", "scheduled_time_param", "next_fire", "fired", "profile", "sets"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def parse_iso(s: str | None) -> dt.datetime | None:
    if not s:
        return None
    t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


@dataclass
class ScheduleRow:
    name: str
    pipeline: str
    path: str
    cron: str
    timezone: str = "UTC"
    template: str = ""
    max_concurrency: int = 1
    catchup: bool = False
    start_time: str | None = None
    end_time: str | None = None
    max_runs: int | None = None
    enabled: bool = True
    params: dict = field(default_factory=dict)
    scheduled_time_param: bool = False
    next_fire: str | None = None
    fired: int = 0
    # the --profile (absolute) and --set values `kubepipe schedule` was given: its runs get them
    profile: str = ""
    sets: list = field(default_factory=list)


class SchedulerStore:
    def __init__(self, home: str | Path = ".kubepipe") -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.path = self.home / DB_NAME
        with self._named_errors():
            db = sqlite3.connect(self.path, timeout=30)
            try:
                db.execute("PRAGMA journal_mode=WAL")  # readers (CLI) never block the scheduler's writes
                db.executescript(_SCHEMA)
                for table, columns in _ADDED.items():
                    have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}  # nosec B608 - fixed names
                    for col, typ in columns.items():
                        if col not in have:
                            db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {typ}")  # nosec B608 - fixed names
            finally:
                db.close()

    @contextlib.contextmanager
    def _named_errors(self) -> Iterator[None]:
        """sqlite3 names no file ('file is not a database'); say which one, and what to do when it is broken."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
                raise UserError(f"scheduler: {self.path} is not a readable scheduler database ({exc}); "
                                f"{_MOVE_ASIDE}") from None
            raise UserError(f"scheduler: {self.path}: {exc}") from None

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._named_errors():
            with self._connection() as db:
                yield db

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            db.row_factory = sqlite3.Row
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        finally:
            db.close()

    # --- schedules ---------------------------------------------------------------------------
    def schedules(self, name: str | None = None) -> list[ScheduleRow]:
        with self._db() as db:
            if name:
                rows = db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchall()
            else:
                rows = db.execute("SELECT * FROM schedules ORDER BY name").fetchall()
        return [_row(r, self.path) for r in rows]

    def upsert(self, s: ScheduleRow) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO schedules (name, pipeline, path, cron, timezone, template, max_concurrency, catchup,"
                " start_time, end_time, max_runs, enabled, params, scheduled_time_param, next_fire, fired, updated_at,"
                " profile, sets) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET pipeline=excluded.pipeline,"
                " path=excluded.path, cron=excluded.cron, timezone=excluded.timezone, template=excluded.template,"
                " max_concurrency=excluded.max_concurrency, catchup=excluded.catchup, start_time=excluded.start_time,"
                " end_time=excluded.end_time, max_runs=excluded.max_runs, enabled=excluded.enabled,"
                " params=excluded.params, scheduled_time_param=excluded.scheduled_time_param,"
                " next_fire=excluded.next_fire, updated_at=excluded.updated_at, profile=excluded.profile,"
                " sets=excluded.sets",
                (s.name, s.pipeline, s.path, s.cron, s.timezone, s.template, s.max_concurrency, int(s.catchup),
                 s.start_time, s.end_time, s.max_runs, int(s.enabled), json.dumps(s.params, sort_keys=True),
                 int(s.scheduled_time_param), s.next_fire, s.fired, utc_iso(utcnow()), s.profile,
                 json.dumps(list(s.sets))),
            )

    def set_fields(self, name: str, **fields) -> None:
        if not fields:
            return
        unknown = set(fields) - _COLUMNS
        if unknown:
            raise ValueError(f"scheduler store: no column {sorted(unknown)[0]!r}")
        cols = ", ".join(f"{k} = ?" for k in fields)  # names checked against _COLUMNS; values bound
        vals = [int(v) if isinstance(v, bool) else json.dumps(v) if isinstance(v, dict) else v
                for v in fields.values()]
        with self._db() as db:
            db.execute(f"UPDATE schedules SET {cols}, updated_at = ? WHERE name = ?",  # nosec B608 - column names whitelisted
                       (*vals, utc_iso(utcnow()), name))

    def delete(self, name: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM schedules WHERE name = ?", (name,))

    # --- runs ----------------------------------------------------------------------------------
    def claim(self, schedule: str, slot: str, state: str = "running", error: str | None = None) -> int | None:
        """Record a slot; None when it was already recorded (never fire a slot twice)."""
        with self._db() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO runs (schedule, slot, state, started_at, error) VALUES (?,?,?,?,?)",
                (schedule, slot, state, utc_iso(utcnow()), error))
            if cur.rowcount == 0:
                return None
            if state == "running":
                db.execute("UPDATE schedules SET fired = fired + 1 WHERE name = ?", (schedule,))
            return cur.lastrowid

    def finish(self, row_id: int, state: str, run_id: str | None = None, error: str | None = None) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET state = ?, run_id = COALESCE(?, run_id), finished_at = ?, error = ?"
                       " WHERE id = ?", (state, run_id, utc_iso(utcnow()), error, row_id))

    def set_run_id(self, row_id: int, run_id: str) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET run_id = ? WHERE id = ?", (run_id, row_id))

    def runs(self, schedule: str | None = None, state: str | None = None) -> list[dict]:
        q = "SELECT * FROM runs WHERE 1=1"
        args: list[str] = []
        if schedule:
            q, args = q + " AND schedule = ?", args + [schedule]
        if state:
            q, args = q + " AND state = ?", args + [state]
        with self._db() as db:
            rows = [dict(r) for r in db.execute(q + " ORDER BY id", args).fetchall()]
        for r in rows:  # a damaged pid ('x', 1.5) was 'internal error: TypeError' when `scheduler` followed it
            for key, kinds, want in (("pid", (int,), "a whole number or NULL"),
                                     ("pid_started", (int, float), "a number or NULL"), ("schedule", (str,), "text")):
                value = r.get(key)
                if (value is None and key != "schedule") or (isinstance(value, kinds) and not isinstance(value, bool)):
                    continue
                raise UserError(f"scheduler: {self.path}: run {r.get('id')} of schedule {r.get('schedule')!r} has a "
                                f"damaged `{key}` column ({value!r}, not {want}); {_MOVE_ASIDE}")
        return rows

    def set_process(self, row_id: int, pid: int, started: float | None) -> None:
        """The run's process (pid and its start time), so a scheduler restarted after a crash can find it."""
        with self._db() as db:
            db.execute("UPDATE runs SET pid = ?, pid_started = ? WHERE id = ?", (pid, started, row_id))

    def abandon_running(self, keep: Iterable[int] = ()) -> int:
        """At start-up: runs left 'running' by a scheduler that died, other than `keep` (the ones whose process
        still runs, which the new scheduler follows), cannot be followed any more."""
        kept = list(keep)
        with self._db() as db:
            cur = db.execute("UPDATE runs SET state = 'abandoned', finished_at = ?, error = 'scheduler stopped"
                             " before the run finished' WHERE state = 'running'"
                             f" AND id NOT IN ({', '.join('?' * len(kept))})",  # nosec B608 - placeholders only
                             (utc_iso(utcnow()), *kept))
            return cur.rowcount


def _row(r: sqlite3.Row, db_path: Path) -> ScheduleRow:
    d = dict(r)
    d.pop("updated_at", None)
    # a damaged column (`params` 1, `next_fire` 'x', `max_runs` '') was 'internal error' in `schedule` (`--delete`
    # too, so no command could get past it) or in `scheduler`: named here, with what to do
    for key, want in _WANT.items():
        try:
            d[key] = _column(key, d.get(key))
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"scheduler: {db_path}: schedule {d.get('name')!r} has a damaged `{key}` column "
                            f"({r[key]!r}, not {want}); {_MOVE_ASIDE}") from None
    return ScheduleRow(**d)


_TIMES = ("start_time", "end_time", "next_fire")
_FLAGS = ("catchup", "enabled", "scheduled_time_param")
_WANT = {**dict.fromkeys(("pipeline", "path", "cron", "timezone", "template", "profile"), "text"),
         **dict.fromkeys(("max_concurrency", "fired", *_FLAGS), "a whole number"),
         "max_runs": "a whole number or NULL", **dict.fromkeys(_TIMES, "an ISO time or NULL"),
         "params": "a JSON object", "sets": "a JSON list of texts"}


def _column(key: str, raw: object) -> object:
    """A schedules column's value as ScheduleRow holds it; TypeError or ValueError when it is not of its kind."""
    if key in ("params", "sets"):
        value = json.loads(raw or ("{}" if key == "params" else "[]"))  # type: ignore[arg-type]
        if not (isinstance(value, dict) if key == "params" else
                isinstance(value, list) and all(isinstance(x, str) for x in value)):
            raise TypeError(key)
        return value
    if raw is None and key in (*_TIMES, "max_runs", "profile"):
        return "" if key == "profile" else None
    if key in _TIMES:
        if not isinstance(raw, str):
            raise TypeError(key)
        parse_iso(raw)  # ValueError on a bad one ('' reads as none, as the scheduler reads it)
        return raw
    if _WANT[key] == "text":
        if not isinstance(raw, str):
            raise TypeError(key)
        return raw
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise TypeError(key)
    return bool(raw) if key in _FLAGS else raw
