"""kubepipe.list_runs / list_models / list_model_versions: the records `kubepipe runs list` and `kubepipe models list`
print with --format json, from Python. There was no API for them: a script had to run the CLI and parse its JSON.
The API's result is the CLI's document less apiVersion and kind, built by the same code (kubepipe.listings)."""

from __future__ import annotations

import json
import typing

import pytest

import kubepipe
from cli_runner import run_cli

SAYS = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: {name}, labels: {{team: {team}}}}}
steps:
  hello: {{component: ops:say, with: {{message: hi}}}}
"""
FAILS = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: fails}
defaults: {retries: 0}
steps:
  boom: {component: ops:fail, with: {message: bad data}}
"""


def _document(capsys, *argv) -> dict:
    code, out, err = run_cli(capsys, *argv, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc.pop("apiVersion") == "kubepipe/v1"
    doc.pop("kind")
    return doc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three real local runs in a home of their own: two pipelines, one run failed."""
    home = tmp_path_factory.mktemp("api-runs")
    (home / "a.yaml").write_text(SAYS.format(name="greet", team="ml"))
    (home / "b.yaml").write_text(SAYS.format(name="greet-too", team="ops"))
    (home / "c.yaml").write_text(FAILS)
    for name in ("a", "b", "c"):
        kubepipe.run(home / f"{name}.yaml", home=home / ".kubepipe")
    return home


def test_list_runs_gives_what_runs_list_prints(runs, capsys, monkeypatch):
    monkeypatch.chdir(runs)
    got = kubepipe.list_runs(home=runs / ".kubepipe")
    assert got == _document(capsys, "runs", "list", "--home", runs / ".kubepipe")
    assert [r["pipeline"] for r in got["items"]] == ["fails", "greet-too", "greet"]  # newest first
    assert {r["pipeline"]: r["state"] for r in got["items"]}["fails"] == "FAILED"
    # the filters, as the CLI's flags
    assert kubepipe.list_runs(home=runs / ".kubepipe", pipeline="greet", limit=5) == _document(
        capsys, "runs", "list", "--home", runs / ".kubepipe", "--pipeline", "greet", "--limit", "5")
    by_file = kubepipe.list_runs(home=runs / ".kubepipe", pipeline="b.yaml")
    assert [r["pipeline"] for r in by_file["items"]] == ["greet-too"]
    labelled = kubepipe.list_runs(home=runs / ".kubepipe", labels={"team": "ml"})
    assert labelled == _document(capsys, "runs", "list", "--home", runs / ".kubepipe", "--label", "team=ml")
    assert [r["pipeline"] for r in labelled["items"]] == ["greet"]
    assert len(kubepipe.list_runs(home=runs / ".kubepipe", limit=1)["items"]) == 1


def test_the_records_are_typed_with_the_keys_they_hold(runs):
    from kubepipe.listings import ModelList, ModelVersionList, RunList, RunRecord, StepItem

    types = {"RunList": RunList, "ModelList": ModelList, "ModelVersionList": ModelVersionList}
    hints = {f: typing.get_type_hints(getattr(kubepipe, f), localns=types).get("return")
             for f in ("list_runs", "list_models", "list_model_versions")}
    assert hints == {"list_runs": RunList, "list_models": ModelList, "list_model_versions": ModelVersionList}
    record = kubepipe.list_runs(home=runs / ".kubepipe")["items"][0]
    assert set(record) == RunRecord.__required_keys__  # a local run: no optional key
    assert set(record["steps"][0]) == StepItem.__required_keys__


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 0}, "limit=: expected a whole number of runs, at least 1; got 0"),
    ({"limit": True}, "limit=: expected a whole number of runs, at least 1; got True"),
    ({"labels": "team=ml"}, "labels=: expected a mapping of label to value (str)"),
    ({"pipeline": 3}, "pipeline=: expected"),
])
def test_list_runs_refuses_arguments_of_the_wrong_kind_by_name(tmp_path, kwargs, message):
    with pytest.raises(kubepipe.UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kubepipe.list_runs(home=tmp_path, **kwargs)


@pytest.fixture()
def registry(tmp_path):
    from kubepipe.components.registry import Registry

    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    reg = Registry(f"file://{tmp_path / 'home' / 'registry'}")
    for i in range(2):
        reg.register(str(model), name="clf", metrics={"accuracy": 0.8 + i / 100, "log_loss": float("nan")},
                     run_id=f"run-{i}", model_card="# card")
    reg.register(str(model), name="other", metrics={}, run_id="run-x")
    reg.promote("clf", 2, reason="better")
    return tmp_path / "home"


def test_list_models_and_versions_give_what_models_list_prints(registry, capsys):
    models = kubepipe.list_models(home=registry)
    assert models == _document(capsys, "models", "list", "--home", registry)
    assert [(m["name"], m["versions"], m["champion"]) for m in models["items"]] == [("clf", 2, 2), ("other", 1, None)]
    versions = kubepipe.list_model_versions("clf", home=registry)
    assert versions == _document(capsys, "models", "list", "clf", "--home", registry)
    assert [v["run_id"] for v in versions["items"]] == ["run-0", "run-1"]
    assert versions["items"][0]["metrics"] == {"accuracy": 0.8, "log_loss": None}  # undefined: None, as JSON's null
    assert "model_card" not in versions["items"][0]
    uri = f"file://{registry / 'registry'}"  # a registry named, as --registry
    assert kubepipe.list_models(registry=uri) == _document(capsys, "models", "list", "--registry", uri)


def test_a_model_the_registry_does_not_hold_is_refused_naming_the_close_one(registry):
    from kubepipe.components.registry.version import RegistryError

    with pytest.raises(RegistryError, match="no model `clff` in .*did you mean `clf`"):
        kubepipe.list_model_versions("clff", home=registry)
