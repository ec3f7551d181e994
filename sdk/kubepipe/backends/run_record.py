"""The record of a local run: `.kubepipe/runs/<run-id>/run.json`."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubepipe.util import atomic_write_text

__all__ = ["StepRecord", "RunResult", "new_run_id", "RUNS_DIR"]

RUNS_DIR = Path(".kubepipe/runs")


def new_run_id(pipeline: str) -> str:
    return f"{pipeline}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass
class StepRecord:
    name: str
    state: str = "PENDING"  # PENDING | RUNNING | SUCCEEDED | FAILED | SKIPPED
    started_at: float | None = None
    finished_at: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)  # parameter outputs
    artifacts: dict[str, str] = field(default_factory=dict)  # artifact name -> path
    error: str | None = None
    note: str | None = None  # why it ended so: a skip's condition, a rollback's reason, warn-level failures

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at, 3)


@dataclass
class RunResult:
    run_id: str
    pipeline: str
    target: str
    run_dir: str
    params: dict[str, Any]
    state: str = "RUNNING"  # RUNNING | SUCCEEDED | FAILED
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    steps: list[StepRecord] = field(default_factory=list)
    error: str | None = None
    source: str = ""
    log: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == "SUCCEEDED"

    @property
    def failed_step(self) -> StepRecord | None:
        return next((s for s in self.steps if s.state == "FAILED"), None)

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)

    def reports(self, suffixes: tuple[str, ...] = (".html", ".md")) -> list[tuple[str, str, str]]:
        """(step, artifact, path) of every report file the run wrote, in step order."""
        return [(rec.name, name, path) for rec in self.steps for name, path in sorted(rec.artifacts.items())
                if str(path).endswith(suffixes) and Path(path).is_file()]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for s, rec in zip(d["steps"], self.steps):
            s["duration_s"] = rec.duration_s
        return d

    def save(self) -> Path:
        path = Path(self.run_dir) / "run.json"
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str))
        return path
