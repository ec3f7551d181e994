"""Third-party KFP files run locally: nested failures, artifact lists, a component's own packages."""

import base64
import functools
import hashlib
import http.server
import importlib.util
import threading
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # test fixtures beside the checkout
from kfp import compiler, dsl

import kubepipe

DATA = SHARED / "kfp-testdata"
pytestmark = pytest.mark.slow


def _pipeline(tmp_path: Path, steps: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": "p"},
                                    "steps": steps}))
    return path


def test_nested_pipeline_failure_names_the_inner_task_and_its_output(in_tmp):
    run = kubepipe.run(_pipeline(in_tmp, {"nested": {"component": str(DATA / "pipeline_with_exit_handler.yaml")}}))
    assert not run.ok
    step = run.step("nested")
    assert step.state == "FAILED"
    assert step.error == "inner task `fail-op` (inside exit-handler-1): exited with an error; last output: Task failed."
    assert "fail-op" in run.error and "Task failed." in run.error


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def _make(n: int, out: dsl.Output[dsl.Dataset]):
    with open(out.path, "w") as fh:
        fh.write(str(n))


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def _total(items: dsl.Input[list[dsl.Dataset]]) -> int:
    total = 0
    for item in items:
        with open(item.path) as fh:
            total += int(fh.read())
    return total


@dsl.pipeline(name="collected")
def _collected() -> int:
    with dsl.ParallelFor([1, 2, 3]) as n:
        t = _make(n=n)
    return _total(items=dsl.Collected(t.outputs["out"])).output


def test_artifact_lists_of_python_components_run_locally_without_a_note(in_tmp):
    comp = in_tmp / "collected.yaml"
    compiler.Compiler().compile(_collected, str(comp))
    assert "isArtifactList: true" in comp.read_text()
    path = _pipeline(in_tmp, {"fan": {"component": str(comp)}})
    assert not any("kfp.local" in n for n in kubepipe.validate(path, "local").notes)
    run = kubepipe.run(path)
    assert run.ok, run.error
    assert run.step("fan").state == "SUCCEEDED"


def _wheel(folder: Path) -> Path:
    """A tiny pure-Python wheel: kp_probe_pkg 1.0 with VALUE = 41."""
    files = {"kp_probe_pkg/__init__.py": b"VALUE = 41\n",
             "kp_probe_pkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: kp-probe-pkg\nVersion: 1.0\n",
             "kp_probe_pkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                  b"Tag: py3-none-any\n"}
    record = [f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()},{len(b)}"
              for n, b in files.items()] + ["kp_probe_pkg-1.0.dist-info/RECORD,,"]
    files["kp_probe_pkg-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    whl = folder / "kp_probe_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return whl


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_own_packages_install_per_run_with_consent_and_never_touch_kfp(in_tmp):
    root = in_tmp / "index"
    (root / "simple" / "kp-probe-pkg").mkdir(parents=True)
    whl = _wheel(root / "simple" / "kp-probe-pkg")
    (root / "simple" / "kp-probe-pkg" / "index.html").write_text(f'<a href="{whl.name}">{whl.name}</a>')
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        index = f"http://127.0.0.1:{server.server_address[1]}/simple"

        @dsl.component(base_image="python:3.11", packages_to_install=["kp-probe-pkg==1.0"], pip_index_urls=[index])
        def probe(x: int) -> int:
            import kp_probe_pkg

            return kp_probe_pkg.VALUE + x

        comp = in_tmp / "probe.yaml"
        compiler.Compiler().compile(probe, str(comp))
        path = _pipeline(in_tmp, {"probe": {"component": str(comp), "with": {"x": 1}}})
        before = version("kfp")
        with pytest.raises(kubepipe.UserError, match=r"step `probe` .* needs `kp-probe-pkg==1.0`"):
            kubepipe.run(path)
        run = kubepipe.run(path, sets={"install_packages": True})
        assert run.ok, run.error
        assert run.step("probe").outputs["Output"] == 42
        assert version("kfp") == before
        assert (Path(run.run_dir) / "site-packages" / "kp_probe_pkg" / "__init__.py").is_file()
        assert importlib.util.find_spec("kp_probe_pkg") is None  # nothing went into this environment
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
