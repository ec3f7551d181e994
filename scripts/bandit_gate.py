"""Run bandit over sdk/ and components/ and fail on any finding not justified in place.

A finding is justified when its line carries the project's inline marker:
`# nosec BNNN` (bandit's own) or `# noqa: SNNN - reason` (ruff's flake8-bandit
code for the same check, which the code owners already write). Project-wide
skips live in bandit.yaml with their reasons.

    python scripts/bandit_gate.py [PATH ...]
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess  # nosec B404 - runs the bandit executable with a fixed argv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ["sdk", "components"]


def justified(line: str, test_id: str) -> bool:
    """True when the source line names this check in a nosec or a ruff noqa marker."""
    number = test_id[1:]
    if re.search(rf"#\s*nosec\b[^#]*\bB{number}\b", line):
        return True
    return any(f"S{number}" in re.split(r"[,\s]+", m.group(1))
               for m in re.finditer(r"#\s*noqa:\s*([A-Z0-9, ]+)", line))


def run(paths: list[str]) -> tuple[list[dict], list[dict]]:
    exe = shutil.which("bandit")
    if exe is None:
        raise SystemExit("bandit not found: run `make lint` (it installs .venv-lint) or pip install bandit")
    proc = subprocess.run(  # nosec B603 - fixed argv, no shell
        [exe, "-q", "-r", "-c", str(ROOT / "bandit.yaml"), "-f", "json", *paths],
        cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise SystemExit(f"bandit failed to run (exit {proc.returncode}):\n{proc.stderr}")
    report = json.loads(proc.stdout)
    if report.get("errors"):
        raise SystemExit("bandit could not scan: " + "; ".join(f"{e['filename']}: {e['reason']}"
                                                             for e in report["errors"]))
    accepted, open_ = [], []
    for item in report.get("results", []):
        lines = Path(ROOT / item["filename"]).read_text(encoding="utf-8").splitlines()
        span = item.get("line_range") or [item["line_number"]]
        text = " ".join(lines[n - 1] for n in span if 0 < n <= len(lines))
        (accepted if justified(text, item["test_id"]) else open_).append(item)
    return accepted, open_


def main(argv: list[str]) -> int:
    accepted, open_ = run(argv or DEFAULT_PATHS)
    for item in open_:
        print(f"{item['filename']}:{item['line_number']}: {item['test_id']} [{item['issue_severity']}] "
              f"{item['issue_text']}")
    print(f"bandit: {len(open_)} open finding(s), {len(accepted)} justified inline")
    if open_:
        print("fix them, or justify one in place: `# nosec BNNN - reason` (or the ruff form `# noqa: SNNN - reason`)")
    return 1 if open_ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
