"""`kubepipe image`: the build command, the pinned digest reference, and the
round-trip edit of a profile's runtime_image (comments kept)."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from kubepipe.backends import images
from kubepipe.errors import UserError
from cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[2]
REG = "europe-west4-docker.pkg.dev/acme-ml/kubepipe"
DIGEST = "sha256:" + "0123456789abcdef" * 4



def cli(argv, capsys):
    return run_cli(capsys, *argv)


def test_build_command_for_each_kind(capsys):
    for kind, name, dockerfile in (("cpu", "kubepipe-runtime", "docker/Dockerfile.cpu"),
                                   ("cuda", "kubepipe-runtime-cuda", "docker/Dockerfile.cuda")):
        code, out, err = cli(["image", "--kind", kind, "--registry", REG, "--tag", "abc123"], capsys)
        assert code == 0, err
        mkdir, _, build = out.partition(" && ")
        assert shlex.split(mkdir) == ["mkdir", "-p", ".kubepipe"]
        argv = shlex.split(build)
        assert argv[:3] == ["docker", "buildx", "build"]
        assert argv[argv.index("--platform") + 1] == "linux/amd64"
        assert argv[argv.index("-f") + 1] == dockerfile and (ROOT / dockerfile).is_file()
        assert argv[argv.index("-t") + 1] == f"{REG}/{name}:abc123"
        assert "--push" in argv and argv[argv.index("--metadata-file") + 1] == f".kubepipe/image-{kind}.json"
        assert argv[-1] == "."
        assert "--metadata" in err and "imagetools inspect" in err  # how to get the digest


def test_default_tag_is_the_kubepipe_version_and_registry_comes_from_env(capsys, monkeypatch):
    import kubepipe

    monkeypatch.setenv("KUBEPIPE_IMAGE_REGISTRY", "ghcr.io/acme")
    code, out, _ = cli(["image"], capsys)
    assert code == 0
    assert f"ghcr.io/acme/kubepipe-runtime:{kubepipe.__version__}" in out


def test_digest_prints_the_pinned_reference(capsys):
    code, out, _ = cli(["image", "--registry", REG + "/", "--digest", DIGEST], capsys)
    assert code == 0
    assert out.strip() == f"{REG}/kubepipe-runtime@{DIGEST}"
    # A full reference is accepted as the digest, too.
    code, out, _ = cli(["image", "--kind", "cuda", "--registry", REG, "--digest", f"x/y@{DIGEST}"], capsys)
    assert out.strip() == f"{REG}/kubepipe-runtime-cuda@{DIGEST}"


def test_metadata_file_from_buildx(tmp_path, capsys):
    meta = tmp_path / "image-cpu.json"
    meta.write_text(json.dumps({"containerimage.digest": DIGEST, "image.name": f"{REG}/kubepipe-runtime:t"}))
    code, out, _ = cli(["image", "--registry", REG, "--metadata", str(meta)], capsys)
    assert code == 0 and out.strip() == f"{REG}/kubepipe-runtime@{DIGEST}"


@pytest.mark.parametrize("argv,needle", [
    (["image", "--kind", "gpu", "--registry", REG], "did you mean `cuda`"),
    (["image", "--registry", "https://ghcr.io/acme"], "leave out the scheme"),
    (["image", "--registry", "ghcr.io/acme/kubepipe-runtime:1.0"], "no tag or digest"),
    (["image", "--registry", "GHCR.io/Acme"], "lower case"),
    (["image", "--registry", REG, "--tag", "-bad"], "--tag -bad"),
    (["image", "--registry", REG, "--digest", "sha256:abc"], "64 lower-case hex"),
    (["image", "--registry", REG, "--digest", DIGEST, "--metadata", "x.json"], "either --digest or --metadata"),
    (["image", "--registry", REG, "--metadata", "/nonexistent/meta.json"], "run the build command first"),
    (["image"], "--registry is required"),
    (["image", "--registry", REG, "--digest", DIGEST, "--write-profile", "/nonexistent/p.yaml"], "no such file"),
])
def test_bad_input_exits_2_naming_the_option(argv, needle, capsys, monkeypatch):
    monkeypatch.delenv("KUBEPIPE_IMAGE_REGISTRY", raising=False)
    code, out, err = cli(argv, capsys)
    assert code == 2, (out, err)
    assert needle in " ".join(err.split())
    assert "Traceback" not in err


def test_metadata_without_digest_is_explained(tmp_path):
    meta = tmp_path / "m.json"
    meta.write_text(json.dumps({"buildx.build.ref": "x"}))
    with pytest.raises(UserError, match="was the image pushed"):
        images.digest_from_metadata(meta)
    meta.write_text("{not json")
    with pytest.raises(UserError, match="not a buildx metadata JSON"):
        images.digest_from_metadata(meta)


def test_write_profile_keeps_comments_and_validates(tmp_path, capsys):
    from kubepipe.spec.profiles import load_profile

    profile = tmp_path / "vertex.yaml"
    shutil.copy(ROOT / "configs" / "vertex.yaml", profile)
    before = profile.read_text()
    code, out, err = cli(["image", "--digest", DIGEST, "--write-profile", str(profile)], capsys)
    assert code == 0, err
    after = profile.read_text()
    pinned = out.strip()
    assert pinned.endswith(f"/kubepipe-runtime@{DIGEST}")
    # The registry came from the profile's current runtime_image (its ${env...:-default}).
    assert pinned.startswith("europe-west4-docker.pkg.dev/my-project/kubepipe/")
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(before.splitlines()) == len(after.splitlines()) and len(changed) == 1
    assert changed[0][1] == f"runtime_image: {pinned}"
    assert "was ${env.KUBEPIPE_IMAGE" in err
    assert load_profile("vertex", profile_file=profile, environ={}).runtime_image == pinned


def test_write_profile_adds_a_missing_key_after_pipeline_root(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("# mine\ntarget: local\npipeline_root: .kubepipe/runs  # runs here\nexperiment: x\n")
    assert images.write_runtime_image(profile, f"ghcr.io/a/kubepipe-runtime@{DIGEST}") is None
    lines = profile.read_text().splitlines()
    assert lines[0] == "# mine" and lines[2].endswith("# runs here")
    assert lines[3] == f"runtime_image: ghcr.io/a/kubepipe-runtime@{DIGEST}"


def test_write_profile_refuses_a_non_mapping(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="must be a YAML mapping"):
        images.write_runtime_image(profile, "x")
    profile.write_text("a: [\n")
    with pytest.raises(UserError, match="not valid YAML"):
        images.write_runtime_image(profile, "x")


@pytest.mark.parametrize("ref,kind,expected", [
    (f"{REG}/kubepipe-runtime@{DIGEST}", "cpu", REG),
    ("ghcr.io/acme/kubepipe-runtime:0.1.0", "cpu", "ghcr.io/acme"),
    ("localhost:5000/kubepipe-runtime", "cpu", "localhost:5000"),
    ("${env.KUBEPIPE_IMAGE:-ghcr.io/acme/kubepipe-runtime-cuda:1}", "cuda", "ghcr.io/acme"),
    ("python:3.11-slim", "cpu", None),
    ("ghcr.io/acme/other:1", "cpu", None),
    ("${env.KUBEPIPE_IMAGE}", "cpu", None),
    (None, "cpu", None),
])
def test_registry_of(ref, kind, expected):
    assert images.registry_of(ref, kind) == expected


def test_printed_command_runs_in_a_shell_and_its_metadata_pins_the_digest(tmp_path, capsys):
    """eval "$(kubepipe image ...)" as CI does, with a stand-in `docker` (no engine here) that writes
    the metadata file like buildx; then --metadata turns it into the pinned reference."""
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text('#!/bin/sh\nwhile [ "$#" -gt 0 ]; do\n  if [ "$1" = "--metadata-file" ]; then\n'
                    f'    printf \'{{"containerimage.digest": "{DIGEST}"}}\' > "$2"\n  fi\n  shift\ndone\n')
    fake.chmod(0o755)
    code, out, _ = cli(["image", "--registry", REG, "--tag", "t1"], capsys)
    assert code == 0
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["bash", "-ec", f"eval {shlex.quote(out.strip())}"], cwd=tmp_path, env=env, check=True, timeout=30)
    meta = tmp_path / ".kubepipe" / "image-cpu.json"
    assert meta.is_file()
    code, out, _ = cli(["image", "--registry", REG, "--metadata", str(meta)], capsys)
    assert code == 0 and out.strip() == f"{REG}/kubepipe-runtime@{DIGEST}"
