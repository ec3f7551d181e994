"""Logging of the model server: what it says by default, per-request lines only when asked, rotated files.

Configured before kserve's ModelServer, which then leaves logging alone (kserve configures it
only when its own logger has no handler). By default no per-request line is written: uvicorn's
access log and kserve's two `kserve.trace` timing lines per request (5 MB per 10k requests) are
off. `--access-log` turns them on for a sample of requests (one in `1/sample`), `--log-file`
writes to a size-rotated file instead of stderr.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

__all__ = ["configure", "PER_REQUEST_LOGGERS", "sample_every"]

PER_REQUEST_LOGGERS = ("uvicorn.access", "kserve.trace")
_FORMAT = "%(asctime)s.%(msecs)03d %(process)d %(name)s %(levelname)s %(message)s"
_QUIET = ("kserve", "uvicorn", "uvicorn.error", "kubepipe")


def sample_every(access_log: bool, sample: float) -> int:
    """Log one request in N: 0 when per-request logs are off."""
    if not access_log or sample <= 0:
        return 0
    return max(1, round(1 / min(sample, 1.0)))


class _Formatter(logging.Formatter):
    """The server's line format; lines a worker already formatted (`raw`) pass as they are. A credential in a line is
    hidden (`redact_text`): an access line's request path holds its query (`GET /v1/models/m?api_key=...`), an
    error's traceback a client's header or a storage URI."""

    def format(self, record: logging.LogRecord) -> str:
        from kubepipe.secrets import redact_text

        return redact_text(record.getMessage() if getattr(record, "raw", False) else super().format(record))


class _Sampled(logging.Filter):
    """Passes the per-request lines of requests the RequestGuard marked."""

    def filter(self, record: logging.LogRecord) -> bool:
        from kubepipe.components.serving.guard import SAMPLED

        return SAMPLED.get()


def handler(log_file: str | None, max_mb: float, backups: int) -> logging.Handler:
    """Where the server's lines go: stderr, or `log_file` rotated at `max_mb` MiB keeping `backups` old files."""
    if log_file:
        h: logging.Handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max(1, int(max_mb * 2**20)), backupCount=max(0, backups), encoding="utf-8")
    else:
        h = logging.StreamHandler(sys.stderr)
    h.setFormatter(_Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    return h


def configure(*, access_log: bool = False, sample: float = 0.01, log_file: str | None = None,
              max_mb: float = 50.0, backups: int = 5) -> int:
    """Set up the server's loggers; returns N of "one request in N" (0: per-request lines off)."""
    out = handler(log_file, max_mb, backups)
    for name in _QUIET:
        lg = logging.getLogger(name)
        lg.handlers[:] = [out]
        lg.setLevel(logging.INFO)
        lg.propagate = False
    every = sample_every(access_log, sample)
    for name in PER_REQUEST_LOGGERS:
        lg = logging.getLogger(name)
        lg.propagate = False
        lg.filters[:] = []
        if every:
            lg.handlers[:] = [out]
            lg.setLevel(logging.INFO)
            lg.addFilter(_Sampled())
        else:  # no handler: uvicorn does not even format its access line
            lg.handlers[:] = []
            lg.setLevel(logging.WARNING)
    return every
