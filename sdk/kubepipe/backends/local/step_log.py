"""A step's WARNING / ERROR log lines, passed on live while it runs (`kubepipe run` shows them on stderr): they were
only in run.log, so a warning such as train-torch's `compile: true is ignored` went unseen. At most `cap` lines a
step; its end then says how many more run.log holds. Credentials in a line are redacted, as run.log's are."""

from __future__ import annotations

import re
from typing import Callable

from kubepipe.secrets import redact_text

__all__ = ["LiveStepLog", "is_warning_line", "shown"]

# a logging record's level (`[KFP Executor 2026-12-02 10:00:00,123 WARNING]: ...` as kfp's executor formats the
# step's records, `WARNING:root:...`), a Python warning (`file.py:3: UserWarning: ...`), or a line a step prints
# beginning `warning:` / `error:` in any case (`print("warning: few rows")`, as command-line tools write them)
_LEVEL = re.compile(r"(?:^|[\s:\[])(?:WARNING|WARN|ERROR|CRITICAL)(?=[\s:\]])|\b\w*Warning: "
                    r"|^\s*(?i:warning|warn|error)\s*:")
# ... but not a metric a step prints: a measurement alone after it (`error: 0.05`, `error: 1e-3`, `error: 5%`,
# `error: nan`, `error: 0`), or a number followed by `name: number` pairs (`error: 0.05, accuracy: 0.93`). A whole
# number alone other than 0 (`error: 404`, `error: 2`, `warning: 3`) is a code or a count, which a step reports as
# an error or warning: shown
_NUMBER = r"[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?%?|[-+]?(?i:nan|inf)"
_METRIC = re.compile(rf"^\s*(?i:warning|warn|error)\s*:\s*(?P<value>{_NUMBER})"
                     rf"(?P<pairs>(?:\s*[,;]?\s*[\w.\-/]+\s*[:=]\s*(?:{_NUMBER}))*)\s*$")
_CODE = re.compile(r"[-+]?0*[1-9][\d_]*")  # a whole number other than 0
_EXECUTOR = re.compile(r"^\[KFP Executor [^\]]*? (\w+)\]: ")  # its time is the run's, said once in run.log


def is_warning_line(line: str) -> bool:
    return _LEVEL.search(line) is not None and not _is_metric(line)


def _is_metric(line: str) -> bool:
    m = _METRIC.match(line)
    return m is not None and (bool(m["pairs"]) or _CODE.fullmatch(m["value"]) is None)


def shown(line: str) -> str:
    """The line as the terminal shows it: kfp's executor prefix is the level only (`WARNING: ...`)."""
    return _EXECUTOR.sub(lambda m: f"{m.group(1)}: ", line, count=1)


class LiveStepLog:
    """Calls `on_log(step, line)` for each of a step's first `cap` warning lines, and once at its end with how many
    more were left out (then in run.log only)."""

    def __init__(self, on_log: Callable[[str, str], None] | None, log_path: str, cap: int = 5):
        self.on_log, self.log_path, self.cap = on_log, log_path, cap
        self.seen: dict[str, int] = {}
        self.error: Exception | None = None  # raised by the caller's on_log: re-raised after the run, as on_event's

    def line(self, step: str, line: str) -> None:
        if self.on_log is None or not is_warning_line(line):
            return
        n = self.seen[step] = self.seen.get(step, 0) + 1
        if n <= self.cap:
            self._say(step, redact_text(shown(line)))

    def finished(self, step: str) -> None:
        more = self.seen.pop(step, 0) - self.cap
        if self.on_log is not None and more > 0:
            self._say(step, f"... {more} more warning/error line{'s' if more > 1 else ''} in {self.log_path}")

    def _say(self, step: str, line: str) -> None:
        try:
            self.on_log(step, line)  # type: ignore[misc]  # not None: the callers check
        except Exception as exc:  # noqa: BLE001 - the caller's code, called from inside kfp's logging
            exc.add_note(f"kubepipe: raised by on_log(`{step}`, ...); the run went on without further lines")
            self.error, self.on_log = exc, None
