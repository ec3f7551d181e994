"""`make demo`: the flagship retraining story on one laptop, no cluster.

validate -> train -> gate -> deploy -> serve -> retrain on new data -> a bad batch stopped.
Everything lands under .kubepipe/demo/ (its own registry, state and endpoint).
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["run_demo", "DemoResult", "EXAMPLES", "main"]

PIPELINE = "pipelines/merchant-categorizer.yaml"
MODEL = "merchant-categorizer"
DEMO_DIR = Path(".kubepipe/demo")
EXAMPLES = [
    "SQ *BLUE BOTTLE COFFEE OAKLAND CA",
    "SHELL OIL 57442 HOUSTON TX",
    "AMZN Mktp US*2K4RT1 AMZN.COM/BILL WA",
    "UBER *TRIP HELP.UBER.COM",
    "WALGREENS #1234 CHICAGO IL",
    "NETFLIX.COM 866-579-7172 CA",
]


@dataclass
class DemoResult:
    runs: list[Any] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    predictions: list[tuple[str, str, float]] = field(default_factory=list)
    champion_versions: list[int | None] = field(default_factory=list)
    bad_batch_error: str = ""
    reports: dict[str, str] = field(default_factory=dict)
    endpoint_url: str = ""


def _sets() -> list[str]:
    return [f"registry_uri=file://{DEMO_DIR}/registry", f"state_dir={DEMO_DIR}/state"]


def _champion() -> int | None:
    from kubepipe.components.registry import Registry

    champ = Registry(f"file://{DEMO_DIR}/registry").alias(MODEL, "champion")
    return champ.version if champ else None


def _champion_text(version: int | None) -> str:
    """`champion v3`; `no champion` when the alias points nowhere (a first deploy rolled back: was `champion vNone`)."""
    from kubepipe.components.registry.version import version_text

    return "no champion" if version is None else f"champion {version_text(version)}"


def _reset() -> None:
    from kubepipe.components.serving.endpoints import list_endpoints, stop_endpoint

    if DEMO_DIR.exists():
        for ep in list_endpoints(str(DEMO_DIR)):
            stop_endpoint(ep["name"], str(DEMO_DIR))
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)


def _run(out: Any, title: str, params: dict[str, Any]) -> Any:
    import kubepipe
    from kubepipe.cli.progress import Progress, summary_table

    out.rule(f"[bold]{title}")
    with Progress(out.file) as progress:
        result = kubepipe.run(PIPELINE, params, sets=_sets(), on_event=progress)
    out.print(summary_table(result))
    return result


def run_demo(out: Any, params: dict[str, Any] | None = None) -> DemoResult:
    """The four acts; `params` go to every run (e.g. {"log_flush_s": 1}: the endpoint writes its
    prediction log every second instead of every 10)."""
    from kubepipe.components.serving.endpoints import get_endpoint, predict_endpoint

    extra = dict(params or {})
    res = DemoResult()
    _reset()
    t0 = time.time()

    first = _run(out, "1. first run: no champion yet", extra)
    res.runs.append(first)
    if not first.ok:
        raise SystemExit(f"demo: the first run failed: {first.error}")
    res.decisions.append(first.step("evaluate").outputs.get("decision", ""))
    res.champion_versions.append(_champion())
    out.print(f"[bold]gate:[/bold] {res.decisions[-1]}")
    out.print(f"[bold]deploy:[/bold] {first.step('deploy').outputs.get('action')} -> "
              f"{_champion_text(res.champion_versions[-1])}")

    out.rule("[bold]2. the local endpoint answers")
    ep = get_endpoint(MODEL, str(DEMO_DIR))
    res.endpoint_url = ep["url"]
    body = predict_endpoint(MODEL, EXAMPLES, str(DEMO_DIR))
    for text, pred in zip(EXAMPLES, body["predictions"]):
        res.predictions.append((text, pred["label"], float(pred.get("probability", 0.0))))
        out.print(f"  {text:<40} -> [cyan]{pred['label']}[/cyan] ({pred.get('probability', 0):.2f})")
    out.print(f"  endpoint: {res.endpoint_url}/v1/models/{MODEL}:predict")

    second = _run(out, "3. a week later: retrain on new data, gate against the champion",
                  {**extra, "train_uri": "pipelines/data/merchants_new.csv"})
    res.runs.append(second)
    res.decisions.append(second.step("evaluate").outputs.get("decision", ""))
    res.champion_versions.append(_champion())
    out.print(f"[bold]gate:[/bold] {res.decisions[-1]}")
    out.print(f"[bold]now:[/bold] {_champion_text(res.champion_versions[-1])}")

    bad = _run(out, "4. a bad batch: the validation gate stops the run",
               {**extra, "train_uri": "pipelines/data/merchants_bad.csv"})
    res.runs.append(bad)
    res.bad_batch_error = bad.error or ""
    res.champion_versions.append(_champion())
    out.print(f"[bold red]stopped:[/bold red] {bad.error}")
    deployed = bad.step("deploy").state
    out.print(f"deploy step: {deployed.lower()}; still {_champion_text(res.champion_versions[-1])}")

    ran = second if second.ok else first
    res.reports = {
        "validation report": str(ran.step("validate").artifacts.get("report", "")),
        "evaluation report": str(ran.step("evaluate").artifacts.get("report", "")),
        "training curve": str(ran.step("train").artifacts.get("curve", "")),
        "bad batch validation report": _bad_report(bad),
    }
    res.reports = _collect_reports(res.reports)
    out.rule("[bold]reports (open in a browser)")
    for name, path in res.reports.items():
        out.print(f"  {name:<28} {path}")
    out.rule("[bold]next")
    out.print(f"  schedule it:   kubepipe schedule {PIPELINE} --target vertex --plan")
    out.print("  run schedules locally:  kubepipe scheduler")
    out.print(f"  the endpoint keeps serving: kubepipe endpoints list --home {DEMO_DIR}")
    out.print(f"  stop it:       kubepipe endpoints stop {MODEL} --home {DEMO_DIR}")
    out.print(f"demo finished in {time.time() - t0:.0f}s")
    return res


def _collect_reports(found: dict[str, str]) -> dict[str, str]:
    """Copy each HTML artifact to .kubepipe/demo/reports/<name>.html, a path a browser opens."""
    folder = DEMO_DIR / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, path in found.items():
        if path and Path(path).is_file():
            target = folder / (name.replace(" ", "-") + ".html")
            shutil.copyfile(path, target)
            out[name] = str(target)
        else:
            out[name] = "(not written)"
    return out


def _bad_report(run: Any) -> str:
    """Where the failed validate step wrote its HTML report (kfp.local keeps the files)."""
    root = Path(run.run_dir) / "artifacts"
    found = sorted(p for pattern in ("*/validate/report.html", "*/validate/report") for p in root.glob(pattern))
    return str(found[0]) if found else "(not written)"


def main() -> None:
    from rich.console import Console

    from kubepipe.cli.console import report_error

    out = Console(file=sys.stdout, highlight=False)
    try:
        run_demo(out)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - one place turns errors into an exit code
        sys.exit(report_error(exc))


if __name__ == "__main__":
    main()
