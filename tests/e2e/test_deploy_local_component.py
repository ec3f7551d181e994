"""The `deploy` component on the local target: a real `kubepipe serve` endpoint, promote then roll back."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("kserve")

from kfp import dsl  # noqa: E402

from kubepipe.components.deploy.ops import deploy  # noqa: E402
from kubepipe.components.errors import ComponentError  # noqa: E402
from kubepipe.components.registry import Registry  # noqa: E402
from kubepipe.components.serving.demo_model import train_demo_text_model  # noqa: E402
from kubepipe.components.serving.endpoints import get_endpoint, stop_endpoint  # noqa: E402

NAME = "merchant-local"


def test_local_deploy_promotes_then_a_broken_model_rolls_back(tmp_path):
    good = train_demo_text_model(tmp_path / "good", n=200, epochs=5, buckets=4096)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in good.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")  # loads fail -> never ready
    reg = Registry(f"file://{tmp_path / 'registry'}")
    v1 = reg.register(str(good), name=NAME, run_id="r1").version
    v2 = reg.register(str(broken), name=NAME, run_id="r2").version
    state = tmp_path / ".kubepipe" / "state"

    def run(model_dir, version, run_id):
        report = dsl.Markdown(uri=str(tmp_path / f"report-{version}.md"))
        out = deploy.python_func(
            model=dsl.Model(uri=str(model_dir)), report=report, model_name=NAME, version=0,
            smoke_inputs=["STARBUCKS STORE 1234", "SHELL OIL 5744"], timeout_s=90, ctx_target="local",
            serving={"max_batch_size": 3.0},  # KFP hands dict numbers over as floats
            ctx_registry_uri=reg.uri, ctx_run_id=run_id, ctx_state_dir=str(state))
        return out, report

    try:
        (endpoint, action), report = run(good, v1, "r1")
        assert action == "promoted" and endpoint.startswith("http://127.0.0.1:")
        assert reg.alias(NAME, "champion").version == v1
        answer = httpx.post(f"{endpoint}/v1/models/{NAME}:predict", json={"instances": ["UBER TRIP"]}, timeout=10)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1
        assert "Promoted" in open(report.path).read() and report.metadata["champion_moved"] is True
        big = httpx.post(f"{endpoint}/v1/models/{NAME}:predict", json={"instances": ["UBER TRIP"] * 4}, timeout=10)
        assert big.status_code == 413 and "the limit is 3" in big.json()["error"]  # serving.max_batch_size

        (endpoint2, action2), report2 = run(broken, v2, "r2")
        assert action2 == "rolled_back" and endpoint2 == ""
        assert reg.alias(NAME, "champion").version == v1  # champion untouched
        assert "rolled back" in report2.metadata["why"]
        # The old model still answers on the same endpoint.
        again = httpx.post(f"{endpoint}/v1/models/{NAME}:predict", json={"instances": ["UBER TRIP"]}, timeout=10)
        assert again.json() == answer.json()
        record = get_endpoint(NAME, str(tmp_path / ".kubepipe"))
        assert record["model_dir"] == str(good.resolve())
        assert json.loads(open(report2.path).read().split("```json")[1].split("```")[0])["action"] == "rolled_back"
    finally:
        try:
            get_endpoint(NAME, str(tmp_path / ".kubepipe"))
        except ComponentError:  # no endpoint record: nothing was started
            pass
        else:
            stop_endpoint(NAME, str(tmp_path / ".kubepipe"))  # a failure to stop is an error, not hidden
