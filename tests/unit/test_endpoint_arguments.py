"""`deploy_local` called as a library checks its arguments by the deploy step's own rules (deploy/checks.py), each
error naming the argument, before anything is recorded or started."""

from __future__ import annotations

import pytest

from kubepipe.components.deploy.checks import check
from kubepipe.components.errors import ComponentError
from kubepipe.components.serving.endpoints import deploy_local, list_endpoints


@pytest.mark.parametrize("kwargs, argument, step_path", [
    ({"port": 70000}, "port=", ("serving", "port")),  # was OverflowError: bind(): port must be 0-65535
    ({"port": "8601"}, "port=", ("serving", "port")),  # was TypeError from bind
    ({"port": 80}, "port=", ("serving", "port")),  # was taken (as root), and listed as a kubepipe endpoint
    ({"canary_percent": 150}, "canary_percent=", ("canary_percent",)),
    ({"canary_percent": "10"}, "canary_percent=", ("canary_percent",)),
    ({"canary_analysis": {"bake_s": -1}}, "canary_analysis['bake_s']", ("canary_analysis", "bake_s")),
    ({"canary_analysis": "yes"}, "canary_analysis=", ("canary_analysis",)),  # was a TypeError
    ({"max_batch_size": 0}, "max_batch_size=", ("serving", "max_batch_size")),
])
def test_an_argument_the_deploy_step_refuses_is_refused_by_name_before_anything_starts(tmp_path, kwargs, argument,
                                                                                        step_path):
    state = tmp_path / ".kubepipe"
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(ComponentError) as exc:
        deploy_local("shop", str(model), state_dir=str(state), timeout_s=5, **kwargs)
    said = str(exc.value)
    assert said.startswith(f"deploy_local: {argument}: ")
    # one rule: what the pipeline's deploy step says of the same value, at its YAML path
    key = step_path[1] if step_path[0] == "serving" else step_path[0]
    value = kwargs[key]
    settings = {"serving": {key: value}} if step_path[0] == "serving" else {key: value}
    (issue,) = [i for i in check(settings, target="local") if i.path == step_path]
    assert issue.message in said
    assert list_endpoints(str(state)) == [] and not list((state / "endpoints").glob("*/backend-*.log"))
