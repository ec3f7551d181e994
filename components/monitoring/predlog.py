"""The prediction log: sampled request/response pairs of `kubepipe serve`, as partitioned Parquet.

Layout (hive-style, any fsspec URI):

    <sink>/model=<name>/date=YYYY-MM-DD/hour=HH/part-<uuid>.parquet

One row per instance: request_id, instance, timestamp (UTC), model_name, model_version, protocol,
latency_ms, the model's inputs (the text column, or one column per feature, named as in
training), prediction (the label) and probability (of that label).

Writes never block or fail a request: `offer` appends the request to a bounded queue and returns
at once; a full queue drops the record and counts it (`on_drop`). A writer thread flushes when
`flush_rows` rows (or half the queue's records) are waiting, every `flush_s` seconds, and on
`close` (the server's SIGTERM drain). The request path does as little as it can: it appends one
tuple of objects it already has (the parsed inputs, the label and probability arrays), takes no
lock and wakes the writer only at the flush size (a thread woken per request competed with the
event loop for the GIL). The writer builds each column in bulk (numpy and Arrow, a few Python
steps per record, none per row) and writes the Parquet with the GIL released. Each part is
written whole or not at all: on a local disk through kubepipe's atomic writer (temp file, fsync,
rename), on an object store as one PUT (an object appears only when its upload completed). Part
names carry a uuid, so many workers share one sink. A process killed loses only what it had not
flushed; readers (`predlog_read`) take `part-*.parquet` only.

Text inputs are logged with every card number (PAN), IBAN and e-mail address masked (`pii.redact`, the guardrail's
rule: `4111 1111 1111 1111` -> `**** **** **** 1111`, its shape and length kept), unless `redact=False` (`kubepipe
serve --log-raw-inputs`); a credential in one (`api_key=...`, a bearer token, a URL's password) is hidden always
(`redact_text`). The writer does both while it builds the column (`text_columns.redact_strings`), never the request
path. Feature rows (numbers), labels and probabilities are written as they are. Nothing of the request's headers
is logged but its id (`X-Request-Id`; an id holding PII never gets here: serving.guard.client_id_ok): no
Authorization, no cookie.
"""

from __future__ import annotations

import collections
import itertools
import logging
import random
import threading
import time
import uuid
from typing import Any, Callable, NamedTuple, Sequence

__all__ = ["PredictionLog", "Record", "part_dir", "PART_PREFIX", "PART_SUFFIX", "BASE_COLUMNS", "MIN_FLUSH_S"]

log = logging.getLogger("kubepipe.serve")
PART_PREFIX, PART_SUFFIX = "part-", ".parquet"
# The shortest flush interval a server or a deploy step's serving.log.flush_s takes: the writer thread wakes each
# interval, and 1e-6 s kept it spinning a core without a row to write
MIN_FLUSH_S = 0.05
_CHUNK_ROWS = 4096  # a string column is converted this many rows at a time: the GIL is never held long
BASE_COLUMNS = ("request_id", "instance", "timestamp", "model_name", "model_version", "protocol", "latency_ms",
                "prediction", "probability")


def part_dir(sink: str, model: str, ts: float) -> str:
    """The partition folder of a record logged at `ts` (seconds since the epoch, UTC)."""
    t = time.gmtime(ts)
    return f"{sink.rstrip('/')}/model={model}/date={t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}/hour={t.tm_hour:02d}"


class Record(NamedTuple):
    """One served request: its instances' inputs, and the answer (a tuple: cheap to build per request)."""

    request_id: str
    timestamp: float  # seconds since the epoch, when the request reached the model
    protocol: str
    latency_ms: float
    items: Sequence  # texts, or feature rows
    labels: Sequence[str] | Any  # or the numpy array of labels the server answered with
    probabilities: Sequence[float] | Any  # or a numpy array


class PredictionLog:
    """A bounded queue and one writer thread; `offer` is what the request path calls."""

    def __init__(self, sink: str, *, model: str, version: str = "", sample: float = 1.0,
                 input_columns: Sequence[str] = ("text",), tabular: bool = False, redact: bool = True,
                 max_queue: int = 10_000,
                 flush_rows: int = 50_000, flush_s: float = 10.0,
                 on_drop: Callable[[str, int], None] | None = None,
                 on_write: Callable[[int], None] | None = None):
        if not 0 <= sample <= 1:
            raise ValueError(f"sample must be a fraction from 0 to 1, got {sample}")
        self.sink, self.model, self.version, self.sample = sink.rstrip("/"), model, str(version or ""), sample
        self.input_columns, self.tabular, self.redact = tuple(input_columns), tabular, redact
        self.flush_rows, self.flush_s = flush_rows, flush_s
        self._on_drop = on_drop or (lambda reason, n: None)
        self._on_write = on_write or (lambda n: None)
        self.max_queue = max_queue
        self._wake_records = max(1, max_queue // 2)  # one-row requests fill the queue before flush_rows
        self._queue: collections.deque[Record] = collections.deque()  # append/popleft are atomic
        self._rows = 0  # rows appended since the writer last took the queue (a hint: it only wakes the writer)
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._random = random.Random()  # nosec B311 - sampling, not crypto
        self.parts_written: list[str] = []

    # ---- the request side (event loop): never blocks, never raises ----------------------
    def sampled(self) -> bool:
        return self.sample >= 1 or (self.sample > 0 and self._random.random() < self.sample)

    def offer(self, record: Record) -> bool:
        """Queue `record` for the writer; False (and counted) when the queue is full."""
        if len(self._queue) >= self.max_queue or self._closing:
            self._on_drop("queue_full", len(record.items))
            return False
        self._queue.append(record)
        self._rows += len(record.items)
        if (self._rows >= self.flush_rows or len(self._queue) >= self._wake_records) and not self._wake.is_set():
            self._wake.set()
        return True

    # ---- life cycle ---------------------------------------------------------------------
    def start(self) -> PredictionLog:
        from fsspec.implementations.local import LocalFileSystem

        from kubepipe.util import url_to_fs

        self._fs, self._root = url_to_fs(self.sink)  # a bad sink fails the start, not every flush
        self._local = isinstance(self._fs, LocalFileSystem)
        self._thread = threading.Thread(target=self._run, name="kubepipe-prediction-log", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 20.0) -> None:
        """Flush what is queued and stop the writer (the server calls this while it drains)."""
        if self._thread is None:
            return
        self._closing = True
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("prediction log: the writer is stuck; %d records still queued are lost", len(self._queue))
        self._thread = None

    # ---- the writer thread ---------------------------------------------------------------
    def _take(self) -> list[Record]:
        """Everything queued now (the request side keeps appending meanwhile)."""
        self._rows = 0
        out = []
        try:
            for _ in range(len(self._queue)):
                out.append(self._queue.popleft())
        except IndexError:  # pragma: no cover - only this thread pops
            pass
        return out

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_s)  # flush_rows waiting, close, or the time is up
            self._wake.clear()
            closing = self._closing
            self._flush(self._take())
            if closing:
                self._flush(self._take())  # what was appended while the last flush ran
                return

    def _flush(self, batch: list[Record]) -> None:
        if not batch:
            return
        groups: dict[str, list[Record]] = {}
        for rec in batch:
            groups.setdefault(part_dir(self._root, self.model, rec.timestamp), []).append(rec)
        for folder, recs in groups.items():
            n = sum(len(r.items) for r in recs)
            try:
                self._write(folder, recs)
                self._on_write(n)
            except Exception as exc:  # noqa: BLE001 - a sink that fails must never take the server down
                log.error("prediction log: writing %d rows to %s failed (%s); they are dropped", n, folder, exc)
                self._on_drop("write_error", n)

    def table(self, recs: list[Record]):
        """The Arrow table of `recs`, one row per instance, built column by column in bulk."""
        import numpy as np
        import pyarrow as pa

        counts = np.fromiter((len(r.items) for r in recs), np.int64, len(recs))
        n = int(counts.sum())
        owner = pa.array(np.repeat(np.arange(len(recs), dtype=np.int32), counts))  # each row's record
        starts = np.repeat(np.cumsum(counts) - counts, counts)

        def per_record(values, typ):  # one value per record, repeated over its rows
            return pa.array(values, typ).take(owner)

        arrays = {
            "request_id": per_record([r.request_id for r in recs], pa.string()),
            "instance": pa.array((np.arange(n) - starts).astype(np.int32)),
            "timestamp": pa.array(np.repeat(np.fromiter((r.timestamp for r in recs), np.float64, len(recs)) * 1e6,
                                            counts).astype(np.int64), pa.timestamp("us", tz="UTC")),
            "model_name": pa.repeat(pa.scalar(self.model, pa.string()), n),
            "model_version": pa.repeat(pa.scalar(self.version, pa.string()), n),
            "protocol": per_record([r.protocol for r in recs], pa.string()),
            "latency_ms": pa.array(np.repeat(np.fromiter((r.latency_ms for r in recs), np.float64, len(recs)),
                                             counts)),
        }
        items = list(itertools.chain.from_iterable(r.items for r in recs))
        if self.tabular:
            grid = np.asarray(items, dtype=np.float64).reshape(n, len(self.input_columns))
            for j, name in enumerate(self.input_columns):
                arrays[name] = pa.array(grid[:, j])
        else:
            texts = _strings(pa, items)
            # PCI DSS: no PAN leaves the server in clear (nor an IBAN, nor an e-mail address) unless raw inputs
            # are asked for; a credential a client put in a text (`api_key=...`, a signed URL) never does
            from kubepipe.components.text_columns import redact_strings

            texts = redact_strings(texts, pii=self.redact, credentials=True)
            arrays[self.input_columns[0]] = texts
        arrays["prediction"] = _strings(pa, np.concatenate([np.asarray(r.labels, dtype=object) for r in recs]))
        arrays["probability"] = pa.array(np.concatenate([np.asarray(r.probabilities, dtype=np.float64)
                                                         for r in recs]))
        return pa.table(arrays)

    def _write(self, folder: str, recs: list[Record]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = pa.BufferOutputStream()
        pq.write_table(self.table(recs), buf, compression="zstd")
        data = buf.getvalue().to_pybytes()
        path = f"{folder}/{PART_PREFIX}{uuid.uuid4().hex}{PART_SUFFIX}"
        if self._local:
            from kubepipe.util import atomic_write_bytes

            atomic_write_bytes(path, data, fresh_name=True)  # a new uuid: no killed writer's temp to sweep
        else:  # one PUT: the object exists whole, or not at all
            self._fs.pipe_file(path, data)
        self.parts_written.append(path)


def _strings(pa, values):
    """A string column in chunks: one conversion call holds the GIL, so each is kept short (~0.3 ms)."""
    if len(values) <= _CHUNK_ROWS:
        return pa.array(values, pa.string())
    return pa.chunked_array([pa.array(values[i:i + _CHUNK_ROWS], pa.string())
                             for i in range(0, len(values), _CHUNK_ROWS)], pa.string())
