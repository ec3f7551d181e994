"""`serving.torch_compile` / `serving.workers`: the deploy step sets the model server's `--torch-compile` / `--workers`
on every target (on a GPU the server's CPU is the limit: docs/serving.md), checked at
`steps.<name>.with.serving.<key>`."""

from __future__ import annotations

import pytest

from deploy_steps import capture_server_flags, validate_issues
from kubepipe.components.deploy import target as T
from kubepipe.components.deploy.checks import check
from kubepipe.components.errors import ComponentError
from kubepipe.components.serving.server import build_parser


def _issue(w: dict, key: str):
    (issue,) = [i for i in check(w) if i.path == ("serving", key)]
    return issue


@pytest.mark.parametrize("serving", [{"torch_compile": True}, {"torch_compile": False}, {"workers": 1},
                                     {"workers": 4, "gpu": 1}, {"workers": "${params.workers}"},
                                     {"torch_compile": "${params.compile}"}])
def test_good_values_and_run_time_references_pass(serving):
    assert check({"serving": serving}) == []


@pytest.mark.parametrize("key, bad, said", [
    ("torch_compile", "yes", "must be true or false, got 'yes'"),
    ("torch_compile", 1, "must be true or false, got 1"),
    ("workers", 0, "must be a whole number, 1 or more, got 0"),
    ("workers", -2, "must be a whole number, 1 or more, got -2"),
    ("workers", 2.5, "must be a whole number, 1 or more, got 2.5"),
    ("workers", True, "must be a whole number, 1 or more, got True"),
    ("workers", "four", "must be a whole number, 1 or more, got 'four'"),
])
def test_a_bad_value_is_named_at_its_key_with_an_example(key, bad, said):
    issue = _issue({"serving": {key: bad}}, key)
    assert issue.message == said and issue.severity == "error"
    assert "torch_compile: true, workers: 4" in issue.hint


@pytest.mark.parametrize("key, value", [("torch_compile", True), ("workers", 2)])
def test_they_are_for_the_kubepipe_server_not_triton(key, value):
    issue = _issue({"runtime": "triton", "serving": {key: value}}, key)
    assert "runtime kubepipe" in issue.message and "--" + key.replace("_", "-") in issue.message


def test_torch_compile_is_refused_with_the_onnx_runtime():
    issue = _issue({"serving": {"runtime": "onnx", "torch_compile": True}}, "torch_compile")
    assert "serving.runtime torch, not 'onnx'" in issue.message


def test_validate_names_the_yaml_path(tmp_path):
    got = validate_issues(tmp_path, "ship", """\
model_name: m
version: 1
serving: {torch_compile: "on", workers: 0}
""")
    assert got == {"steps.ship.with.serving.torch_compile": "must be true or false, got 'on'",
                   "steps.ship.with.serving.workers": "must be a whole number, 1 or more, got 0"}


@pytest.fixture()
def sent(monkeypatch):
    """The `kubepipe serve` flags deploy_model hands each target's rollout (stopped there: no endpoint is made)."""
    return capture_server_flags(monkeypatch, T)


def test_they_reach_every_target_s_server_command(sent, tmp_path):
    from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
    from kubepipe.components.deploy.vertex_endpoint import serving_container

    # as KFP carries them: a `${params.x}` inside the dict arrives as text, a literal int as a float
    for serving in ({"torch_compile": True, "workers": 4}, {"torch_compile": "true", "workers": "4"},
                    {"torch_compile": True, "workers": 4.0}):
        sent.clear()
        for target in ("local", "kubeflow", "vertex"):
            T.deploy_model(model_dir=str(tmp_path), model_uri=str(tmp_path), model_name="m", version=1, target=target,
                           serving=dict(serving),
                           profile={"project": "p", "region": "r"} if target == "vertex" else {})
        kserve = inference_service_manifest(ServiceConfig(model_name="m", storage_uri="gs://b/m", image="img",
                                                          server_flags=tuple(sent["kserve"])))
        kserve_args = kserve["spec"]["predictor"]["containers"][0]["args"][1:]  # after `serve`
        vertex_args = serving_container("m", None, tuple(sent["vertex"]))["serving_container_args"]
        for args in (["/m", *sent["local"]], kserve_args, vertex_args[vertex_args.index("serve") + 1:]):
            parsed = build_parser().parse_args(args)  # the flags the server really takes
            assert (parsed.torch_compile, parsed.workers) == (True, 4), (serving, args)
    sent.clear()
    T.deploy_model(model_dir=str(tmp_path), model_uri=str(tmp_path), model_name="m", version=1, target="local",
                   serving={"torch_compile": False, "workers": 1})
    assert sent["local"] == []  # the defaults: no flag


def test_a_bad_value_is_refused_before_any_rollout(sent, tmp_path):
    with pytest.raises(ComponentError, match=r"serving\.workers.*must be a whole number, 1 or more"):
        T.deploy_model(model_dir=str(tmp_path), model_uri=str(tmp_path), model_name="m", version=1, target="local",
                       serving={"workers": "many"})
    assert sent == {}
