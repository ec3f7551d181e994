"""Submit refuses what a cluster cannot run (local data paths, an unset or placeholder image) before
anything is uploaded: the real CLI and kfp.Client against a fake KFP API, aiplatform against a fake Vertex."""

from __future__ import annotations

from pathlib import Path

import pytest
from remote_fake_kfp import FakeKfp
from remote_fake_vertex import FakeVertex

import kubepipe
from cli_runner import run_cli_text
from kubepipe.backends.remote import vertex
from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.errors import UserError

pytestmark = pytest.mark.contract
ROOT = Path(__file__).resolve().parents[2]
FLAGSHIP = ROOT / "pipelines" / "merchant-categorizer.yaml"
PINNED = "registry.example/acme/kubepipe-runtime@sha256:" + "0123456789abcdef" * 4
REMOTE_DATA = ["--param", "train_uri=gs://acme/train.csv", "--param", "holdout_uri=gs://acme/holdout.csv"]


@pytest.fixture
def kfp(in_tmp, monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "t")
    monkeypatch.delenv("KUBEPIPE_IMAGE", raising=False)
    with FakeKfp() as fake:
        yield fake


def submit(capsys, fake, *args):
    return run_cli_text(capsys, "submit", FLAGSHIP, "--target", "kubeflow", "--set", f"host={fake.url}", *args)


def mutations(fake):
    return [(r.method, r.path) for r in fake.requests if r.mutating]


def test_an_unset_runtime_image_is_refused_before_upload(kfp, capsys):
    code, text = submit(capsys, kfp, *REMOTE_DATA)
    assert code == 2, text
    assert "sets no runtime image" in text and "kubepipe image build" in text and "--write-profile" in text
    assert mutations(kfp) == []


def test_a_placeholder_digest_is_refused_before_upload(kfp, capsys):
    code, text = submit(capsys, kfp, *REMOTE_DATA, "--set", "runtime_image=ghcr.io/a/kubepipe-runtime@sha256:" + "0" * 64)
    assert code == 2 and "a placeholder that cannot be pulled" in text
    assert mutations(kfp) == []


def test_local_data_defaults_are_refused_naming_the_param_and_its_place(kfp, capsys):
    code, text = submit(capsys, kfp, "--set", f"runtime_image={PINNED}")
    assert code == 2, text
    squeezed = text.replace(" ", "")
    for name, line in (("train_uri", 13), ("holdout_uri", 14)):
        assert f"param `{name}` is left at its local default" in text
        assert f"{FLAGSHIP}:{line}:" in squeezed
    assert "--param train_uri=gs://" in text
    code, text = submit(capsys, kfp, "--set", f"runtime_image={PINNED}", "--param", "train_uri=data/t.csv",
                        "--param", "holdout_uri=gs://acme/h.csv")
    assert code == 2 and "--param train_uri=data/t.csv: a local path" in text
    assert mutations(kfp) == []


def test_an_unpinned_tag_is_a_warning_and_the_run_starts(kfp, capsys):
    code, text = submit(capsys, kfp, *REMOTE_DATA, "--set", "runtime_image=ghcr.io/acme/kubepipe-runtime:1.0")
    assert code == 0, text
    assert "warning: image ghcr.io/acme/kubepipe-runtime:1.0 is not pinned by digest" in text
    assert [m for m, p in mutations(kfp)].count("POST") >= 2  # upload + run
    n = len(mutations(kfp))
    code, text = submit(capsys, kfp, *REMOTE_DATA, "--set", f"runtime_image={PINNED}")
    assert code == 0 and "not pinned" not in text
    assert len(mutations(kfp)) > n


def test_vertex_submit_checks_before_any_request(monkeypatch):
    from google.auth.credentials import AnonymousCredentials

    profile = ROOT / "tests" / "golden" / "profiles" / "vertex.yaml"  # sha256:2222...: a placeholder
    compiled = kubepipe.compile(FLAGSHIP, "vertex", profile=profile)
    with FakeVertex() as fake:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.url)
        pkg = PipelinePackage.from_compiled(compiled)
        with pytest.raises(UserError) as exc:
            vertex.submit(pkg, pkg.profile, params={}, credentials=AnonymousCredentials(), api_endpoint=fake.url)
        assert "placeholder" in str(exc.value) and "train_uri" in str(exc.value) and "holdout_uri" in str(exc.value)
        assert fake.requests == []


BAD_EPOCHS = "--param epochs=-3: steps.train.with.epochs: `epochs` must be an integer >= 1, got -3"


def test_a_param_value_a_step_refuses_stops_submit_before_upload(kfp, capsys):
    code, text = submit(capsys, kfp, *REMOTE_DATA, "--param", "epochs=-3", "--set", f"runtime_image={PINNED}")
    assert code == 2 and BAD_EPOCHS in text and "Traceback" not in text
    assert mutations(kfp) == []


def test_a_param_value_a_step_refuses_stops_schedule_before_any_request(kfp, capsys):
    code, text = run_cli_text(capsys, "schedule", FLAGSHIP, "--target", "kubeflow", "--set", f"host={kfp.url}",
                              "--set", f"runtime_image={PINNED}", *REMOTE_DATA, "--param", "epochs=-3")
    assert code == 2 and BAD_EPOCHS in text and "Traceback" not in text
    assert mutations(kfp) == []


def test_vertex_submit_checks_param_values_before_any_request(monkeypatch):
    from google.auth.credentials import AnonymousCredentials

    compiled = kubepipe.compile(FLAGSHIP, "vertex", profile=ROOT / "tests" / "golden" / "profiles" / "vertex.yaml")
    with FakeVertex() as fake:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.url)
        pkg = PipelinePackage.from_compiled(compiled)
        with pytest.raises(UserError) as exc:
            vertex.submit(pkg, pkg.profile, params={"epochs": "-3"}, credentials=AnonymousCredentials(),
                          api_endpoint=fake.url)
        assert str(exc.value) == BAD_EPOCHS.replace("--param epochs=", "params['epochs']=") and fake.requests == []


def test_a_credential_given_as_a_param_is_refused_before_upload(kfp, capsys):
    """The YAML's own values are refused for this; a --param's went to KFP, kept with the run and shown in its UI."""
    token = "ghp_" + "a" * 36
    code, text = submit(capsys, kfp, *REMOTE_DATA, "--set", f"runtime_image={PINNED}",
                        "--param", f"force_reason=approved via {token}")
    assert code == 2, text
    assert ("--param force_reason=<redacted>: looks like a credential, and kubeflow keeps a run's parameters and "
            "shows them in its UI; give it to the step from a secret instead") in " ".join(text.split())
    assert token not in text and mutations(kfp) == []
