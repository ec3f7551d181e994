"""A server's log flush interval against the monitor's settle time, where one pipeline holds both."""

from __future__ import annotations

from typing import Any

__all__ = ["flush_within_settle"]


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def flush_within_settle(checks: Any) -> None:
    """A warning at a deploy step's `serving.log.flush_s` above the `settle_s` of a load-data step reading the
    prediction log: a row reaches the log up to flush_s after its time, so a window read settle_s after its end
    leaves its last rows to the next window, as late rows (`checks` is pipeline_checks' _Checks)."""
    from kubepipe.components.monitoring.predlog_read import SETTLE_S
    from kubepipe.components.serving.options import DEFAULTS

    readers = []
    for n in checks.of("load-data"):
        source = checks.with_(n, "source", "")
        settle = _number(checks.with_(n, "settle_s", SETTLE_S))
        if isinstance(source, str) and source.strip().startswith("predictions:") and settle is not None:
            readers.append((n, settle))
    for n in checks.of("deploy") if readers else []:
        serving = checks.spec.steps[n].with_.get("serving")
        log = serving.get("log") if isinstance(serving, dict) else None
        if not isinstance(log, dict):
            continue
        flush = _number(checks.value(log["flush_s"])) if "flush_s" in log else DEFAULTS["log_flush_s"]
        for reader, settle in readers:
            if flush is not None and flush > settle:
                checks.warnings.append(checks.issue(
                    ("steps", n, "with", "serving", "log", "flush_s"),
                    f"the server writes its log every {flush:g} s, later than `{reader}` reads a window "
                    f"({settle:g} s after its end, steps.{reader}.with.settle_s): a window's last rows are counted "
                    "in the next window, as late rows",
                    hint=f"set steps.{reader}.with.settle_s to {flush:g} or more (plus an upload's time), or lower "
                         "flush_s", severity="warning"))
