"""`serving.body_timeout_s` / `serving.request_timeout_s`: the deploy step sets the model server's `--body-timeout` /
`--request-timeout` on every target, checked as the server checks its flags (at `steps.<name>.with.serving.<key>`)."""

from __future__ import annotations

import math

import pytest

from deploy_steps import capture_server_flags, validate_issues
from kubepipe.components.deploy import target as T
from kubepipe.components.deploy.checks import check
from kubepipe.components.errors import ComponentError
from kubepipe.components.serving.server import build_parser

KEYS = ("body_timeout_s", "request_timeout_s")


def _issue(w: dict, key: str):
    (issue,) = [i for i in check(w) if i.path == ("serving", key)]
    return issue


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", [0, 30, 2.5, "${params.timeout}"])
def test_seconds_and_run_time_references_pass(key, value):
    assert check({"serving": {key: value}}) == []


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("bad, said", [
    (-1, "must be 0 or more (got -1.0)"),
    (-0.5, "must be 0 or more (got -0.5)"),
    (math.inf, "must be a finite number (got inf)"),
    (math.nan, "must be a finite number (got nan)"),
    ("30s", "must be a number of seconds, got '30s'"),
    (True, "must be a number of seconds, got True"),
    ([30], "must be a number of seconds, got [30]"),
])
def test_a_bad_timeout_is_named_at_its_key_with_what_to_give(key, bad, said):
    issue = _issue({"serving": {key: bad}}, key)
    assert said in issue.message and issue.severity == "error"
    assert "0 = no limit" in issue.hint and "seconds" in issue.hint


def test_a_timeout_is_for_the_kubepipe_server_not_triton():
    issue = _issue({"runtime": "triton", "serving": {"request_timeout_s": 5}}, "request_timeout_s")
    assert "runtime kubepipe" in issue.message and "--request-timeout" in issue.message


def test_validate_names_the_yaml_path(tmp_path):
    got = validate_issues(tmp_path, "ship", """\
model_name: m
version: 1
serving: {body_timeout_s: -5, request_timeout_s: 30s}
""")
    assert got == {"steps.ship.with.serving.body_timeout_s": "--body-timeout must be 0 or more (got -5.0)",
                   "steps.ship.with.serving.request_timeout_s": "must be a number of seconds, got '30s'"}


@pytest.fixture()
def sent(monkeypatch):
    """The `kubepipe serve` flags deploy_model hands each target's rollout (stopped there: no endpoint is made)."""
    return capture_server_flags(monkeypatch, T)


def test_the_timeouts_reach_every_target_s_server_command(sent, tmp_path):
    from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
    from kubepipe.components.deploy.vertex_endpoint import serving_container
    from kubepipe.components.serving.guard import body_timeout_s

    # request_timeout_s as a `${params.x}` inside the dict arrives: text
    serving = {"body_timeout_s": 12.5, "request_timeout_s": "3"}
    for target in ("local", "kubeflow", "vertex"):
        T.deploy_model(model_dir=str(tmp_path), model_uri=str(tmp_path), model_name="m", version=1, target=target,
                       serving=dict(serving), profile={"project": "p", "region": "r"} if target == "vertex" else {})
    assert set(sent) == {"local", "kserve", "vertex"}
    kserve = inference_service_manifest(ServiceConfig(model_name="m", storage_uri="gs://b/m", image="img",
                                                      server_flags=tuple(sent["kserve"])))
    kserve_args = kserve["spec"]["predictor"]["containers"][0]["args"][1:]  # after `serve`
    vertex_args = serving_container("m", None, tuple(sent["vertex"]))["serving_container_args"]
    for args in (["/m", *sent["local"]], kserve_args, vertex_args[vertex_args.index("serve") + 1:]):
        parsed = build_parser().parse_args(args)  # the flags the server really takes
        assert (parsed.body_timeout, parsed.request_timeout) == (12.5, 3.0)
    assert body_timeout_s(sent["local"]) == 12.5  # the local endpoint's proxy reads its backend's, too
    sent.clear()
    T.deploy_model(model_dir=str(tmp_path), model_uri=str(tmp_path), model_name="m", version=1, target="local")
    assert sent["local"] == []  # unset: the server's defaults, no flag


@pytest.mark.parametrize("bad, said", [(-1, "must be 0 or more"), ("soon", "must be a number of seconds"),
                                       ("nan", "must be a finite number")])
def test_a_bad_timeout_is_refused_before_any_rollout(sent, tmp_path, bad, said):
    with pytest.raises(ComponentError, match=rf"serving\.body_timeout_s.*{said}"):
        T.deploy_model(model_dir=str(tmp_path), model_uri=str(tmp_path), model_name="m", version=1, target="local",
                       serving={"body_timeout_s": bad})
    assert sent == {}
