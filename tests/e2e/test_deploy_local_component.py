"""The `deploy` component on the local target: a real `kubepipe serve` endpoint, promote then roll back."""

from __future__ import annotations

import json
import shutil

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
    reg.register(str(broken), name=NAME, run_id="r2")  # v2: the broken model
    state = tmp_path / ".kubepipe" / "state"

    def run(model_dir, version, run_id):
        report = dsl.Markdown(uri=str(tmp_path / f"report-{version}.md"))
        out = deploy.python_func(
            model=dsl.Model(uri=str(model_dir)), report=report, model_name=NAME, version=version,
            smoke_inputs=["STARBUCKS STORE 1234", "SHELL OIL 5744"], timeout_s=90, ctx_target="local",
            # KFP hands dict numbers over as floats; gpu: --device auto on the local target (a hint, as resources
            # are locally: this machine's GPU if it has one, else the CPU, rather than a failed deploy)
            serving={"max_batch_size": 3.0, "gpu": 1.0},
            ctx_registry_uri=reg.uri, ctx_run_id=run_id, ctx_state_dir=str(state))
        return out, report

    try:
        (endpoint, action, _why), report = run(good, 0, "r1")
        assert action == "promoted" and endpoint.startswith("http://127.0.0.1:")
        assert reg.alias(NAME, "champion").version == v1
        answer = httpx.post(f"{endpoint}/v1/models/{NAME}:predict", json={"instances": ["UBER TRIP"]}, timeout=10)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1
        assert "Promoted" in open(report.path).read() and report.metadata["champion_moved"] is True
        big = httpx.post(f"{endpoint}/v1/models/{NAME}:predict", json={"instances": ["UBER TRIP"] * 4}, timeout=10)
        assert big.status_code == 413 and "the limit is 3" in big.json()["error"]  # serving.max_batch_size
        import torch

        card = httpx.get(f"{endpoint}/kubepipe/v1/models/{NAME}", timeout=10).json()
        assert card["device"].startswith("cuda") == torch.cuda.is_available()  # serving.gpu: --device auto

        (endpoint2, action2, why2), report2 = run(broken, 0, "r2")
        assert action2 == "rolled_back" and endpoint2 == endpoint  # where the old version keeps serving
        assert reg.alias(NAME, "champion").version == v1  # champion untouched
        assert "rolled back" in report2.metadata["why"] and "rolled back" in why2
        # The old model still answers on the same endpoint.
        again = httpx.post(f"{endpoint}/v1/models/{NAME}:predict", json={"instances": ["UBER TRIP"]}, timeout=10)
        assert again.json() == answer.json()
        record = get_endpoint(NAME, str(tmp_path / ".kubepipe"))
        # the endpoint serves the registry's own copy of v1, so removing the run's files breaks nothing
        assert record["model_dir"] == reg.model_path(NAME, v1) and record["version"] == v1
        shutil.rmtree(good)
        backend = record["backend"]["pid"]
        # v1 again (a run resumed after its deploy switched): it already serves, nothing is restarted
        (endpoint3, action3, why3), report3 = run(tmp_path / "run-files-pruned", v1, "r3")
        assert action3 == "promoted" and endpoint3 == endpoint
        assert report3.metadata["champion_moved"] is False  # v1 was champion already: it said "moved"
        assert "- **Champion moved:** no (v1 was already champion; nothing moved)" in open(report3.path).read()
        assert why3.startswith(f"local endpoint {NAME} already serves v1 (") and "nothing was restarted" in why3
        assert get_endpoint(NAME, str(tmp_path / ".kubepipe"))["backend"]["pid"] == backend
        third = httpx.post(f"{endpoint}/v1/models/{NAME}:predict", json={"instances": ["UBER TRIP"]}, timeout=10)
        assert third.json() == answer.json()
        assert json.loads(open(report2.path).read().split("```json")[1].split("```")[0])["action"] == "rolled_back"
    finally:
        try:
            get_endpoint(NAME, str(tmp_path / ".kubepipe"))
        except ComponentError:  # no endpoint record: nothing was started
            pass
        else:
            stop_endpoint(NAME, str(tmp_path / ".kubepipe"))  # a failure to stop is an error, not hidden


def test_two_endpoints_on_configured_ports_serve_side_by_side(tmp_path):
    import socket

    from kubepipe.components.deploy.target import deploy_model
    from kubepipe.components.serving.endpoints import PortInUse, list_endpoints
    from kubepipe.components.serving.processes import free_port

    a = train_demo_text_model(tmp_path / "a", n=120, epochs=3, buckets=1024, seed=1)
    b = train_demo_text_model(tmp_path / "b", n=120, epochs=3, buckets=1024, seed=2)
    reg = Registry(f"file://{tmp_path / 'registry'}")
    state = tmp_path / ".kubepipe"
    ports = {"shop": free_port(), "cafe": free_port()}
    for name, model in (("shop", a), ("cafe", b)):
        reg.register(str(model), name=name)
    try:
        for name, model in (("shop", a), ("cafe", b)):
            out = deploy_model(model_dir=str(model), model_uri=str(model), model_name=name, version=1,
                               target="local", registry_uri=reg.uri, state_dir=str(state / "state"), timeout_s=90,
                               serving={"port": ports[name]})
            assert out["action"] == "promoted" and out["endpoint"] == f"http://127.0.0.1:{ports[name]}"
        for name in ports:
            r = httpx.post(f"http://127.0.0.1:{ports[name]}/v1/models/{name}:predict",
                           json={"instances": ["UBER TRIP"]}, timeout=10)
            assert r.status_code == 200 and len(r.json()["predictions"]) == 1
        assert sorted((e["name"], e["port"], e["status"]) for e in list_endpoints(str(state))) == [
            ("cafe", ports["cafe"], "up"), ("shop", ports["shop"], "up")]
        # a third endpoint on shop's port, or on a port another program holds: a clear error, nothing started
        reg.register(str(a), name="third")
        with pytest.raises(PortInUse, match=f"port {ports['shop']} is the port of local endpoint `shop`"):
            deploy_model(model_dir=str(a), model_uri=str(a), model_name="third", version=1, target="local",
                         registry_uri=reg.uri, state_dir=str(state / "state"), serving={"port": ports["shop"]})
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            with pytest.raises(PortInUse, match="not a kubepipe endpoint"):
                deploy_model(model_dir=str(a), model_uri=str(a), model_name="third", version=1, target="local",
                             registry_uri=reg.uri, state_dir=str(state / "state"),
                             serving={"port": held.getsockname()[1]})
        assert sorted(e["name"] for e in list_endpoints(str(state))) == ["cafe", "shop"]
        assert reg.alias("third", "champion") is None
    finally:
        for name in ports:
            try:
                stop_endpoint(name, str(state))
            except ComponentError:
                pass
