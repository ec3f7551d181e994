"""`<state_dir>/retrain/queue/done/`: the retrain requests `kubepipe scheduler` took, each with how its run ended.

The monitor's next decision reads the newest one of its pipeline (a failed retrain is said, and counted toward the
failure limit), so every request that ended is kept only as long as it can matter: the newest `keep` of each training
pipeline (`retrain-<pipeline>-<key>.json`), by when its file was last written (its outcome). One whose run has not ended (no `outcome`, or
`running`) is never removed.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["KEEP_DONE", "prune_done"]

KEEP_DONE = 100  # per training pipeline


def prune_done(done: Path, keep: int = KEEP_DONE) -> list[Path]:
    """Remove the ended requests of each pipeline in `done` past the newest `keep`; returns what it removed."""
    groups: dict[str, list[tuple[float, Path]]] = {}
    try:
        files = list(done.glob("retrain-*.json"))
    except OSError:
        return []
    for path in files:
        try:
            groups.setdefault(path.stem.rsplit("-", 1)[0], []).append((path.stat().st_mtime, path))
        except OSError:  # removed meanwhile
            continue
    removed = []
    for entries in groups.values():
        for _mtime, path in sorted(entries, reverse=True)[keep:]:
            if _ended(path):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _ended(path: Path) -> bool:
    try:
        outcome = json.loads(path.read_text(encoding="utf-8")).get("outcome")
    except (OSError, ValueError, AttributeError):
        return False  # unreadable: left for a person to look at
    return isinstance(outcome, dict) and outcome.get("state") not in (None, "running")
