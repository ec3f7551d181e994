"""Step body of validate-outputs: probe, judge, write report / metrics / violations, gate.

`ops.py` is a thin KFP shim over `run_validate_outputs`; tests call it with any objects that have
`.path` and `.metadata` (KFP artifacts do).
"""

from __future__ import annotations

import sys
from typing import Any

from kubepipe.components.report_files import write_report

__all__ = ["run_validate_outputs", "MAX_LOGGED"]

MAX_LOGGED = 20  # violations printed to the log (the report and the JSON have them all)


def run_validate_outputs(model: Any, probes: Any, report: Any, metrics: Any, violations: Any, *,
                         inline_probes: list | None = None, probe_column: str = "", rules: dict | None = None,
                         top_k: int = 5, max_probes: int = 1000, gate: bool = True, endpoint: str = "",
                         state_dir: str = "") -> dict:
    """Judge the model's outputs; raise GateFailed when a rule is broken and `gate` is on. `endpoint`: the served
    endpoint whose text limit the probes are held to (served_limits; empty: kubepipe serve's default)."""
    from kubepipe.components.errors import GateFailed
    from kubepipe.components.guardrail.report import outputs_html
    from kubepipe.components.guardrail.served_limits import text_limit
    from kubepipe.components.guardrail.validate import validate_outputs
    from kubepipe.json_values import finite_json
    from kubepipe.util import atomic_write_text

    probes_path = str(getattr(probes, "path", "") or "") if probes is not None else ""
    result = validate_outputs(str(model.path), probes_path=probes_path, inline_probes=inline_probes,
                              probe_column=probe_column, rules=rules, top_k=top_k, max_probes=max_probes,
                              limit=text_limit(endpoint, state_dir))
    write_report(report, outputs_html(result))
    atomic_write_text(violations.path, finite_json(result, indent=1, sort_keys=True, default=str) + "\n")
    if hasattr(violations, "metadata"):
        violations.metadata.update({"passed": result["passed"], "decision": result["decision"],
                                    "violations": len(result["violations"])})
    for name in ("probes", "violations", "p50_ms", "p99_ms", "max_ms"):
        metrics.log_metric(name, float(result["figures"][name]))
    metrics.log_metric("passed", 1.0 if result["passed"] else 0.0)
    print(result["decision"], flush=True)
    for v in result["violations"][:MAX_LOGGED]:  # already redacted
        print(f"  probe {v['probe']}: {v['rule']} at {v['field']}: {v['value']!r} (limit {v['limit']!r})", file=sys.stderr)
    if len(result["violations"]) > MAX_LOGGED:
        print(f"  ... {len(result['violations']) - MAX_LOGGED} more in the report", file=sys.stderr)
    if gate and not result["passed"]:
        raise GateFailed(f"validate-outputs: {result['decision']}; see the report for each probe, rule and value")
    return result
