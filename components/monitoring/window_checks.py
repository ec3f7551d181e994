"""load-data's settings of a monitor's window records: `late_horizon_h` and `state_uri` (watermark.py).

    with: {source: "predictions:m", window: 24h, as_of: ..., late_horizon_h: 168, state_uri: gs://monitor/windows}
"""

from __future__ import annotations

import math
from typing import Any

from kubepipe.components.checks import bound_at_run, CheckIssue

__all__ = ["MAX_HORIZON_H", "horizon_problem", "window_record_issues"]

MAX_HORIZON_H = 8760  # a year: a record names every part of its horizon, and each window lists them
_HORIZON_HINT = ("hours after its window a prediction log row may still be written and read (default 72); a bigger "
                 "horizon makes each window's record longer and its listing slower")
_STATE_HINT = ("a folder or URI the monitor may write, e.g. gs://monitor-state/windows; empty keeps the records "
               "beside the log (<predictions_uri>/_windows)")


def horizon_problem(value: Any) -> str | None:
    """What is wrong with `late_horizon_h` (hours from 0 to a year), else None: validate and the step."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_HORIZON_H \
            or math.isnan(value):
        return f"must be a number of hours from 0 to {MAX_HORIZON_H}, got {value!r}"
    return None


def window_record_issues(with_values: dict) -> list[CheckIssue]:
    """Issues of `late_horizon_h` and `state_uri` in load-data's `with:`."""
    issues = []
    horizon = with_values.get("late_horizon_h", 72)
    problem = horizon_problem(horizon) if not bound_at_run(horizon) else None
    if problem:
        issues.append(CheckIssue(("late_horizon_h",), problem, _HORIZON_HINT, number=float))
    state = with_values.get("state_uri", "")
    if state is not None and not bound_at_run(state) and not isinstance(state, str):
        issues.append(CheckIssue(("state_uri",), f"must be a folder path or URI, got {state!r}", _STATE_HINT))
    elif isinstance(state, str) and state.strip() and not bound_at_run(state):
        from kubepipe.secrets import registry_uri_problem

        problem = registry_uri_problem(state)
        if problem:
            issues.append(CheckIssue(("state_uri",), problem.replace("a registry URI", "a URI"), _STATE_HINT))
    source = str(with_values.get("source", ""))
    if not source.startswith("predictions:") and not bound_at_run(source):
        for key in ("late_horizon_h", "state_uri"):
            if key in with_values:
                issues.append(CheckIssue((key,), f"applies to a prediction log's windows only (source "
                                         f"predictions:<model>), not to {source!r}", f"drop `{key}`", "warning"))
    return issues
