"""The chaos suite: kill kubepipe at named points, fill its disks, flood its server, and check it recovers truthfully.

Fast cases run in `make test`; cases marked `chaos_long` run only in `make chaos`
(KUBEPIPE_CHAOS=1). Every case adds its figures (kills survived, requests, 5xx, drops) to
one table printed at the end of the session and written to $KUBEPIPE_CHAOS_FIGURES (default
build/chaos-figures.json).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

_FIGURES: Counter = Counter()


def pytest_collection_modifyitems(config, items):
    if os.environ.get("KUBEPIPE_CHAOS") == "1":
        return
    long = [i for i in items if i.get_closest_marker("chaos_long")]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [i for i in items if not i.get_closest_marker("chaos_long")]


@pytest.fixture(scope="session")
def chaos_figures() -> Counter:
    """Add to it: kills, kills_survived, requests, responses_5xx, drops (and anything else worth printing)."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter):
    if not _FIGURES:
        return
    terminalreporter.section("chaos figures")
    for key in sorted(_FIGURES):
        terminalreporter.write_line(f"{key:>24}: {_FIGURES[key]}")
    out = Path(os.environ.get("KUBEPIPE_CHAOS_FIGURES", "build/chaos-figures.json"))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(dict(sorted(_FIGURES.items())), indent=2) + "\n")
        terminalreporter.write_line(f"written to {out}")
    except OSError as exc:
        terminalreporter.write_line(f"could not write {out}: {exc}")
