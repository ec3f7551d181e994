"""A local run's progress, read from kfp.local's log lines: each line teed to run.log (credentials redacted), task
lines turned into step records and `StepEvent`s, a failed task's exception line kept as the step's error."""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path
from typing import Callable

from kubepipe.backends.local.outputs import collect_outputs
from kubepipe.backends.local.reuse import step_reused
from kubepipe.backends.local.step_log import LiveStepLog
from kubepipe.backends.local.task_main import COMPONENT_ERROR, GATE_REJECTED
from kubepipe.backends.local.user_frames import SourceMap, user_frame
from kubepipe.backends.runs.record import RunResult, StepRecord
from kubepipe.errors import terminal_text
from kubepipe.redaction import StreamRedactor
from kubepipe.secrets import redact_text

__all__ = ["StepEvent", "StepWatcher"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"Executing task '([^']+)'")
_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
_RETRY = re.compile(r"Task '?([^' ]+?)'? failed \(attempt \d+/\d+\)\. Retrying")
_INSIDE = re.compile(r"Inner task failed: '([^']+)'((?: inside '[^']+')*)")
# the line task_main writes for a ComponentError, whatever its name (the user's PaymentDeclined); else an exception's
# last traceback line: a name ending Error, Exception, ... or any class of kubepipe's components (SourceMissing)
_ERROR = re.compile(rf"^(?:(?P<said>{re.escape(COMPONENT_ERROR)}|{re.escape(GATE_REJECTED)})(?P<component>\w+)"
                    r"|(?:[\w.]+\.)?(?P<name>\w*(?:Error|Exception|Failed|Interrupt))"
                    r"|kubepipe\.components\.(?:\w+\.)+(?P<own>[A-Z]\w*)): (?P<message>.+)$")


class StepEvent:
    def __init__(self, kind: str, step: StepRecord, run: RunResult):
        self.kind, self.step, self.run = kind, step, run  # kind: started | finished
        # the step's state and error when this happened: `step` is the run's live record, which later events change
        self.state, self.error = step.state, step.error

    def __repr__(self) -> str:  # `on_event=print` printed `<...StepEvent object at 0x7f...>`
        error = f", error={self.error!r}" if self.error else ""
        return (f"StepEvent(kind={self.kind!r}, step={self.step.name!r}, state={self.state!r}{error}, "
                f"run_id={self.run.run_id!r})")


class StepWatcher(io.TextIOBase):
    """Tees kfp.local output to the log and turns its task lines into step events."""

    def __init__(self, run: RunResult, log: io.TextIOBase, names: dict[str, str],
                 on_event: Callable[[StepEvent], None] | None, metric_outputs: dict[str, set[str]] | None = None,
                 frames: dict[str, SourceMap] | None = None, foreach: set[str] | frozenset[str] = frozenset(),
                 on_log: Callable[[str, str], None] | None = None):
        self.run, self.log, self.names, self.on_event = run, log, names, on_event
        self.live_log = LiveStepLog(on_log, str(run.log))  # a step's warning lines, as it runs
        self.foreach = foreach  # steps whose task runs once per item: one iteration's end is not the step's
        self.metric_outputs = metric_outputs or {}
        self.frames = frames or {}  # step -> where its python component's source is (user_frames)
        self.buffer_ = ""
        self.redact = StreamRedactor()  # run.log is written a line at a time: a PEM key's lines after its first too
        self.current: StepRecord | None = None
        self.tail: dict[str, list[str]] = {}
        self.inner: dict[str, StepRecord] = {}
        self.failed_inside: str | None = None
        self.failed_inner: str | None = None  # "task `x` (inside a > b)": the inner task that failed
        self.failed_inner_rejected = False  # its gate said no (a GateFailed): so did the nested pipeline's step
        self.tasks_read = False  # a task's start or end line was read (kfp.local's log text is undocumented: runner)
        self.log_error: OSError | None = None  # run.log could not be written (full disk): the run goes on
        self.save_error: OSError | None = None  # nor run.json at a step event: saved again at the end
        self.event_error: Exception | None = None  # raised by the caller's on_event: re-raised after the run

    def write(self, text: str) -> int:
        if self.log.closed:  # a logging handler made during the run outlived it: to the terminal, as run.log has it
            if sys.__stderr__ is not None:  # a step's `ESC[2J` must not clear the user's screen
                sys.__stderr__.write(terminal_text(redact_text(text)))
            return len(text)
        if self.log_error is None:
            try:  # a failed step's traceback can say a credential (a DSN in a connect error): not kept on disk
                self.log.write(self.redact(text))
            except OSError as exc:
                self.log_error = exc
        self.buffer_ += text
        while "\n" in self.buffer_:
            line, self.buffer_ = self.buffer_.split("\n", 1)
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        if not self.log.closed and self.log_error is None:
            try:
                self.log.flush()
            except OSError as exc:
                self.log_error = exc

    def _line(self, line: str) -> None:
        m = _INSIDE.search(line)
        if m and m.group(2):
            # the outermost pipeline named is the step (a nested pipeline component)
            chain = re.findall(r"'([^']+)'", m.group(2))
            self.failed_inside = chain[-1]
            inner = self.inner.get(m.group(1))
            where = f" (inside {' > '.join(reversed(chain[:-1]))})" if chain[:-1] else ""
            reason = inner.error if inner and inner.error else "failed"
            self.failed_inner = f"inner task `{m.group(1)}`{where}: {reason}"
            self.failed_inner_rejected = inner is not None and inner.rejected is True
        m = _START.search(line)
        if m:
            rec = self._record(m.group(1))
            if rec.state == "PENDING":
                rec.state, rec.started_at = "RUNNING", time.time()
                self._emit("started", rec)
            elif rec.state == "SUCCEEDED" and rec.name in self.foreach:  # its next item
                rec.state, rec.finished_at = "RUNNING", None
            self.current, self.tasks_read = rec, True
            return
        m = _RETRY.search(line)
        if m:  # a failed attempt that will be retried: the step runs again
            rec = self._record(m.group(1))
            rec.state, rec.error, rec.finished_at, rec.rejected = "RUNNING", None, None, False
            return
        m = _END.search(line)
        if m:
            rec, self.tasks_read = self._record(m.group(1)), True
            ok = m.group(2).upper() == "SUCCESS"
            self.live_log.finished(rec.name)
            rec.finished_at = time.time()
            if not ok:
                rec.state = "FAILED"
                rec.error = self._error(m.group(1)) or rec.error
                rec.rejected = self._rejected(m.group(1))
            elif rec.state != "FAILED":
                rec.state = "SUCCEEDED"
                try:  # its outputs into run.json now: a run killed later still shows what its finished steps made
                    collect_outputs(self.run, Path(self.run.run_dir) / "artifacts", self.metric_outputs)
                except OSError:  # collected again when the run ends
                    pass
                if rec.name in self.foreach:  # an item done, maybe not the last: `loops_finished` says it
                    self._save()
                    return
            self._emit("finished", rec)
            return
        if self.current is not None and line.strip():
            if self.current.state == "RUNNING":  # not kfp.local's own lines after its end (the pipeline's outcome)
                self.live_log.line(self.current.name, line.strip())
            buf = self.tail.setdefault(self.current.name, [])
            buf.append(line.strip())
            del buf[:-50]

    def _record(self, task: str) -> StepRecord:
        name = self.names.get(task)
        if name is None:  # a task inside a nested pipeline: tracked, not shown as a step
            return self.inner.setdefault(task, StepRecord(task))
        return next(rec for rec in self.run.steps if rec.name == name)

    def _error(self, task: str) -> str | None:
        """The exception line of the failed task, with the lines that continue its message; credentials in it
        redacted (a DSN with its password): it goes to the terminal, run.json and `runs show`."""
        text = self._error_text(task)
        return redact_text(text) if text else text

    def _error_line(self, task: str) -> tuple[list[str], int, re.Match] | None:
        """(the task's last lines, the index of its exception line, its match); None: it ended in no exception."""
        lines = self.tail.get(self.names.get(task, task), [])
        for i in range(len(lines) - 1, -1, -1):
            m = _ERROR.match(lines[i])
            if m:
                return lines, i, m
        return None

    def _rejected(self, task: str) -> bool:
        """Whether the failed task's gate said no: it ended in a GateFailed (task_main's GATE_REJECTED line)."""
        found = self._error_line(task)
        return found is not None and found[2]["said"] == GATE_REJECTED

    def _error_text(self, task: str) -> str | None:
        step = self.names.get(task, task)
        lines = self.tail.get(step, [])
        found = self._error_line(task)
        if found is not None:
            lines, i, m = found
            rest = [ln for ln in lines[i + 1:i + 30] if not ln.startswith(("Traceback", "File "))]
            where = user_frame(lines[:i], self.frames.get(step))  # the user's file, not kfp's copy of it
            return "\n".join([f"{m['component'] or m['name'] or m['own']}: {m['message']}" + (f" (at {where})" if where else ""), *rest])
        # no exception (e.g. sys.exit(1)): the task's last line of its own output, cut once redacted (cut first, a
        # URL's password across the cut lost its `@` and was shown up to it)
        own = [ln for ln in lines if not ln.startswith(("[KFP Executor", "{", "}", '"', "]", "Traceback"))]
        return f"exited with an error; last output: {redact_text(own[-1])[:500]}" if own else None

    def loops_finished(self) -> None:
        """Once the run is over, the `finished` event of each foreach step whose items all succeeded (an item's
        end said `✓ step succeeded` while later items were still to run, or failed)."""
        for rec in self.run.steps:
            if rec.name in self.foreach and rec.state == "SUCCEEDED":
                self._emit("finished", rec)

    def _save(self) -> None:
        try:  # the record names the running step, so a killed run can say where it died
            self.run.save()
        except OSError as exc:
            self.save_error = self.save_error or exc

    def _emit(self, kind: str, rec: StepRecord) -> None:
        if kind == "finished":  # a resumed run's step that did not run: the record and the progress say so
            step_reused(self.run, rec)
        self._save()
        if self.on_event:
            try:
                self.on_event(StepEvent(kind, rec, self.run))
            except Exception as exc:  # noqa: BLE001 - the caller's code, called from inside kfp's logging
                exc.add_note(f"kubepipe: raised by on_event({kind} `{rec.name}`) of run {self.run.run_id}; "
                             "the run went on without further events")
                self.event_error, self.on_event = exc, None
