"""Every client example in docs/serving.md ("Clients") runs against a real server and gets the model's answers.

The examples name http://127.0.0.1:8080; the test serves the text model as `merchant` on a free
port and runs each example with that port put in. Oracle: the model itself (load_model().predict).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("kserve")
pytest.importorskip("tritonclient.http")

from serve_procs import start_server, stop, wait_ready  # noqa: E402  (tests/fixtures)

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["STARBUCKS STORE 1234", "SHELL OIL 5744"]


def client_examples() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "serving.md").read_text()
    section = text.split("### Clients", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```(bash|python)\n(.*?)```", section, re.S)


EXAMPLES = client_examples()


def test_the_docs_show_curl_tritonclient_json_and_binary_and_the_kserve_client():
    kinds = [kind for kind, _ in EXAMPLES]
    code = "\n".join(body for _, body in EXAMPLES)
    assert kinds == ["bash", "python", "python"]
    assert "curl" in code and "tritonclient.http" in code and "binary_data=binary" in code
    assert "InferenceRESTClient" in code and "/v1/models/merchant:predict" in code and "/v2/models/merchant/infer" in code


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from kubepipe.components.serving.demo_model import train_demo_text_model
    from kubepipe.components.training.artifact import load_model

    tmp = tmp_path_factory.mktemp("clients")
    model = train_demo_text_model(tmp / "text", n=200, epochs=10, buckets=4096)
    proc, log = start_server(model, "merchant", tmp)
    try:
        base = wait_ready(proc, log, "merchant")
        yield base.split("//", 1)[1], load_model(model).predict(TEXTS)
    finally:
        stop(proc)


def _run(kind: str, code: str, hostport: str) -> str:
    code = code.replace("127.0.0.1:8080", hostport)
    cmd = ["bash", "-euo", "pipefail", "-c", code] if kind == "bash" else [sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_curl_v1_and_v2(served):
    hostport, labels = served
    kind, code = EXAMPLES[0]
    out, docs, dec = _run(kind, code, hostport).strip(), [], json.JSONDecoder()
    while out:  # curl prints the two answers back to back
        doc, end = dec.raw_decode(out)
        docs.append(doc)
        out = out[end:].strip()
    v1, v2 = docs
    assert [p["label"] for p in v1["predictions"]] == labels
    outputs = {o["name"]: o for o in v2["outputs"]}
    assert outputs["label"]["data"] == labels and outputs["probabilities"]["shape"][0] == 2


def test_tritonclient_json_and_binary(served):
    hostport, labels = served
    kind, code = EXAMPLES[1]
    lines = _run(kind, code, hostport).splitlines()
    assert len(lines) == 2  # JSON mode (no Content-Type at all), then the binary extension
    for line in lines:
        assert [w.strip("[]'b") for w in line.split("]")[0].split()] == labels and line.endswith("(2, 5)")


def test_kserve_rest_client(served):
    hostport, labels = served
    kind, code = EXAMPLES[2]
    out = _run(kind, code, hostport).strip()
    assert out.startswith(str(labels)) and out.endswith("[2, 5]")
