"""`runs list` orders runs the same way every time, whatever order the filesystem lists their folders in."""

from __future__ import annotations

import json

from kubepipe.backends.runs.listing import list_local_runs

IDS = [f"p-20261129-101500-{n:04x}" for n in (0xbeef, 0x1a2b, 0xf00d, 0x0c0d, 0x7e57, 0x9a9a, 0x3c3c, 0xd1d1)]


def test_runs_started_in_the_same_second_and_unreadable_ones_are_listed_by_run_id(tmp_path):
    """A tie in the recorded start (whole-second ISO times; every unreadable record) came in the order the folder
    happened to list them, so two `runs list --format json` could differ and `--limit` cut a different run."""
    for run_id in IDS:
        (tmp_path / run_id).mkdir()
        record = {"run_id": run_id, "pipeline": "p", "state": "SUCCEEDED", "started_at": "2026-11-29T10:15:00Z"}
        (tmp_path / run_id / "run.json").write_text(json.dumps(record))
        (tmp_path / f"bad-{run_id}").mkdir()
        (tmp_path / f"bad-{run_id}" / "run.json").write_text("{")
    listed = [r["run_id"] for r in list_local_runs(tmp_path, limit=100)]
    assert listed == sorted(IDS, reverse=True) + sorted((f"bad-{i}" for i in IDS), reverse=True)
