"""Every command with `--format json` prints one JSON document of the shape docs/cli.md documents.

The documented examples are the oracle for the shape: every key the command prints is documented and
every documented key is printed (keys written `<like-this>` stand for any key of a free-form mapping).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from cli_runner import run_cli
from kubepipe.backends.runs.record import RunResult, StepRecord

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "contract"))
FIX = ROOT / "tests" / "fixtures"
FLAGSHIP = ROOT / "pipelines" / "merchant-categorizer.yaml"
RUN_ID = "merchant-categorizer-20261129-101500-beef"


def documented() -> dict[str, dict]:
    """kind -> the example document under its `### Kind` heading in docs/cli.md."""
    text = (ROOT / "docs" / "cli.md").read_text()
    out = {}
    for kind, block in re.findall(r"^### `(\w+)`.*?```json\n(.*?)```", text, re.S | re.M):
        out[kind] = json.loads(block)
    return out


def shape(value):
    """Keys all the way down: a dict -> {key: shape}, a free-form mapping (`<key>` keys) -> "*", a list -> the
    merged shape of its items, a scalar -> "leaf"; an empty dict or list -> None (anything fits)."""
    if isinstance(value, dict):
        if not value:
            return None
        if all(str(k).startswith("<") for k in value):
            return "*"
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        merged = None
        for item in value:
            merged = _merge(merged, shape(item))
        return [merged] if merged is not None else None
    return "leaf"


def _merge(a, b):
    if a is None or a == "*":
        return b if a is None else a
    if b is None or b == "*":
        return a if b is None else b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a.get(k), b.get(k)) for k in a.keys() | b.keys()}
    if isinstance(a, list) and isinstance(b, list):
        return [_merge(a[0], b[0])]
    return a if a != "leaf" else b  # a scalar here, a structure there (e.g. null or a value): keep the structure


def same_shape(doc, example, where="") -> list[str]:
    """Differences between an actual document's keys and the documented example's."""
    return _diff(shape(doc), shape(example), where)


def _diff(a, e, where) -> list[str]:
    if a is None or e is None or "*" in (a, e) or a == e == "leaf":
        return []
    if isinstance(a, dict) and isinstance(e, dict):
        out = [f"{where}.{k}: printed but not documented" for k in sorted(a.keys() - e.keys())]
        out += [f"{where}.{k}: documented but not printed" for k in sorted(e.keys() - a.keys())]
        for k in sorted(a.keys() & e.keys()):
            out += _diff(a[k], e[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(e, list):
        return _diff(a[0], e[0], f"{where}[]")
    if "leaf" in (a, e):  # e.g. documented null, printed a structure: a scalar cannot hide keys
        return [f"{where}: printed {a!r}, documented {e!r}"] if isinstance(a, dict) or isinstance(e, dict) else []
    return [f"{where}: printed {a!r}, documented {e!r}"]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    """A home with two runs, a registry with a promoted model, a local schedule and endpoint records."""
    from kubepipe.components.registry import Registry
    from remote_fake_kfp import FakeKfp

    home = tmp_path_factory.mktemp("json") / "home"
    for run_id, state_, t in ((RUN_ID, "SUCCEEDED", 1_790_000_000.0), ("other-1", "FAILED", 1_780_000_000.0)):
        run = RunResult(run_id=run_id, pipeline="merchant-categorizer", target="local",
                        run_dir=str(home / "runs" / run_id), params={"epochs": 3}, state=state_, started_at=t,
                        finished_at=t + 30, error=None if state_ == "SUCCEEDED" else "step `train` failed",
                        steps=[StepRecord("train", state_, t, t + 29, error=None if state_ == "SUCCEEDED" else "x")],
                        profile={"file": None, "set": {}})
        Path(run.run_dir).mkdir(parents=True)
        run.save()
    model = home.parent / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    reg = Registry(f"file://{home / 'registry'}")
    for i in range(2):
        reg.register(str(model), name="clf", metrics={"f1_macro": 0.8 + i / 10}, run_id=RUN_ID, model_card="# clf")
    reg.promote("clf", 1, reason="first")
    claim = home / "registry" / "clf" / "versions" / "3" / "claim.json"  # a registration killed 2 h ago
    claim.parent.mkdir(parents=True)
    claim.write_text('{"by": "ann"}')
    for p in (claim, claim.parent):
        os.utime(p, (time.time() - 7200, time.time() - 7200))
    ep_home = home.parent / "endpoints-home"  # a corrupt endpoint record (prune rightly refuses to guess past it)
    (ep_home / "endpoints").mkdir(parents=True)
    (ep_home / "endpoints" / "broken.json").write_text("{")
    with FakeKfp() as fake:
        yield home, ep_home, fake.url


COMMANDS = {
    "validate": ("Validation", ["validate", FLAGSHIP]),
    "run": ("Run", ["run", FIX / "when-only.yaml"]),
    "submit": ("Submission", ["submit", FIX / "when-only.yaml", "--target", "kubeflow", "--set", "host={kfp}"]),
    "schedule": ("SchedulePlan", ["schedule", FLAGSHIP, "--plan"]),
    "runs list": ("RunList", ["runs", "list"]),
    "runs show": ("Run", ["runs", "show", RUN_ID]),
    "runs prune": ("RunPrune", ["runs", "prune", "--keep", "0", "--dry-run"]),
    "models list": ("ModelList", ["models", "list"]),
    "models list NAME": ("ModelVersionList", ["models", "list", "clf"]),
    "models show": ("ModelVersion", ["models", "show", "clf"]),
    "models verify": ("ModelVerify", ["models", "verify", "clf"]),
    "models history": ("ModelHistory", ["models", "history", "clf"]),
    "models promote": ("AliasMove", ["models", "promote", "clf", "2", "--reason", "better"]),
    "models rollback": ("AliasMove", ["models", "rollback", "clf"]),
    "models gc": ("ModelGc", ["models", "gc", "--dry-run", "--older-than", "60"]),
    "endpoints list": ("EndpointList", ["endpoints", "list"]),
    "endpoints repair": ("EndpointRepair", ["endpoints", "repair"]),
    "endpoints predict": ("EndpointPrediction", ["endpoints", "predict", "clf", "SHELL OIL", "NETFLIX"]),
    "components": ("ComponentList", ["components"]),
    "components NAME": ("Component", ["components", "evaluate"]),
}
HOMELESS = {"submit", "components", "components NAME"}  # commands without --home


@pytest.mark.parametrize("command", list(COMMANDS), ids=list(COMMANDS))
def test_json_output_is_one_documented_document(command, state, capsys, monkeypatch, tmp_path):
    home, ep_home, kfp_url = state
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KFP_TOKEN", "json-test-token")
    kind, argv = COMMANDS[command]
    argv = [str(a).format(kfp=kfp_url) for a in argv] + ["--format", "json"]
    if command not in HOMELESS:
        fresh = tmp_path / "home"
        argv += ["--home", str({"run": fresh, "endpoints repair": fresh, "endpoints list": ep_home}.get(command, home))]
    if command == "endpoints predict":  # a real endpoint's answer: tests/e2e/test_serve_endpoints.py
        from kubepipe.components.serving import endpoints

        monkeypatch.setattr(endpoints, "predict_endpoint", lambda name, inputs, state_dir: {
            "predictions": [{"label": "fuel", "probability": 0.9}] * len(inputs), "version": 2, "canary_version": None,
            "answered_by": [{"revision": "stable", "version": 2}] * len(inputs)})
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    doc = json.loads(out)  # exactly one document on stdout
    assert doc["apiVersion"] == "kubepipe/v1" and doc["kind"] == kind
    example = documented().get(kind)
    assert example is not None, f"docs/cli.md: document the `{kind}` shape"
    assert example["kind"] == kind
    assert not same_shape(doc, example, kind), same_shape(doc, example, kind)
    if "items" in doc and command != "endpoints repair":  # the fixture gives every list something to check
        assert doc["items"], command


def test_errors_are_documented_too(tmp_path, capsys):
    bad = tmp_path / "p.yaml"
    bad.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
                   "  a: {component: notify, retires: 2}\n")
    code, out, err = run_cli(capsys, "validate", bad, "--format", "json")
    assert code == 2 and out == ""
    doc = json.loads(err.strip().splitlines()[-1])
    assert not same_shape(doc, documented()["Error"], "Error")
    assert doc["error"]["exit_code"] == 2 and doc["error"]["type"] == "ValidationError"
    # every problem at once (229190ae): notify outside on_exit is said too, the misspelt key still at its place
    [issue] = [i for i in doc["error"]["issues"] if i["path"] == "steps.a.retires"]
    assert (issue["file"], issue["line"]) == (str(bad), 5)
    assert {i["path"] for i in doc["error"]["issues"]} == {"steps.a.retires", "steps.a.component"}
    assert "did you mean `retries`" in issue["hint"]
    code, out, err = run_cli(capsys, "runs", "list", "--format", "json", "--limit", "many")  # a usage error
    assert code == 2 and out == "" and json.loads(err)["error"]["type"].endswith("BadParameter")
    # `--format JSON` is json (click compares it case-insensitively): a usage error before it was parsed was text
    for fmt in (["--format", "JSON"], ["--format=Json"]):
        code, out, err = run_cli(capsys, "runs", "list", *fmt, "--bogus")
        assert code == 2 and out == "" and json.loads(err)["error"]["type"] == "NoSuchOption", err
    code, out, err = run_cli(capsys, "runs", "show", "nope", "--home", tmp_path, "--format", "json")
    assert code == 2 and out == ""
    doc = json.loads(err.strip().splitlines()[-1])  # not a validation error: no `issues`
    assert same_shape(doc, documented()["Error"], "Error") == ["Error.error.issues: documented but not printed"]


def _leaf_commands():
    """(path, click command) of every command, walking the CLI the way a user types it."""
    import typer

    from kubepipe.cli.app import app

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    yield from walk(typer.main.get_command(app), [])


def test_every_command_with_format_json_is_covered_here():
    with_format = {path for path, cmd in _leaf_commands() if any("--format" in p.opts for p in cmd.params)}
    covered = {c.split(" NAME")[0] for c in COMMANDS} | {"schema"}  # schema's --format: JSON Schema or Markdown
    assert with_format - covered == set(), "add these to COMMANDS and docs/cli.md"
    documented_kinds = set(documented())
    assert {k for k, _ in COMMANDS.values()} | {"Error"} == documented_kinds


def test_every_endpoint_status_is_documented():
    """`endpoints list` shows `canary` while a deploy bakes one (docs/deploy.md says so), but docs/cli.md's list of
    statuses did not have it."""
    import inspect

    from kubepipe.components.serving.endpoint_repair import endpoint_status

    source = inspect.getsource(endpoint_status)
    returned = set(re.findall(r'return \(?"(\w+)"', source)) | set(re.findall(r'else "(\w+)"\)', source))
    statuses = returned | {"orphaned", "corrupt"}  # list_endpoints' own, for what has no readable record
    assert {"up", "unready", "canary", "interrupted", "untracked", "down"} <= statuses
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text[text.index("### `EndpointList`"):]
    documented = section[section.index("`status`: "):].split("\n\n", 1)[0]
    assert [s for s in sorted(statuses) if f"`{s}`" not in documented] == []
