"""`kubepipe image`: the build command, the pinned digest reference, and the
round-trip edit of a profile's runtime_image (comments kept)."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from kubepipe.backends.packaging import images, pins
from kubepipe.errors import UserError
from cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[2]
REG = "europe-west4-docker.pkg.dev/acme-ml/kubepipe"
DIGEST = "sha256:" + "0123456789abcdef" * 4



def cli(argv, capsys):
    return run_cli(capsys, *argv)


def test_build_command_for_each_kind(capsys, tmp_path, monkeypatch):
    import kubepipe

    monkeypatch.chdir(tmp_path)  # any folder: the Dockerfiles come with the package
    packaged = Path(kubepipe.__file__).parent / "templates" / "docker"
    for kind, name in (("cpu", "kubepipe-runtime"), ("cuda", "kubepipe-runtime-cuda")):
        for argv in (["image"], ["image", "build"]):  # the bare form is what CI scripts already call
            code, out, err = cli([*argv, "--kind", kind, "--registry", REG, "--tag", "abc123"], capsys)
            assert code == 0, err
            mkdir, _, build = out.partition(" && ")
            assert shlex.split(mkdir) == ["mkdir", "-p", ".kubepipe"]
            args = shlex.split(build)
            assert args[:3] == ["docker", "buildx", "build"]
            assert args[args.index("--platform") + 1] == "linux/amd64"
            assert args[args.index("-f") + 1] == str(packaged / f"Dockerfile.{kind}")
            assert Path(args[args.index("-f") + 1]).is_file()
            assert args[args.index("-t") + 1] == f"{REG}/{name}:abc123"
            assert f"KUBEPIPE_VERSION={kubepipe.__version__}" in args
            assert not any(a.startswith("KUBEPIPE_REQUIREMENT=") for a in args)  # the released package
            assert "--push" in args and args[args.index("--metadata-file") + 1] == f".kubepipe/image-{kind}.json"
            assert args[-1] == "."
            assert "--metadata" in err and "imagetools inspect" in err  # how to get the digest


def test_from_source_installs_the_checkout_in_the_context(capsys, tmp_path):
    code, out, _ = cli(["image", "build", "--registry", REG, "--from-source", "--context", str(ROOT)], capsys)
    args = shlex.split(out.partition(" && ")[2])
    assert code == 0 and "KUBEPIPE_REQUIREMENT=/src[all,gcs,s3]" in args and args[-1] == str(ROOT)
    assert (ROOT / "pyproject.toml").is_file()  # what `pip install /src[...]` reads in the bind mount
    # a project's repository: the printed build failed inside docker, after the torch install ('/src' is no kubepipe)
    code, out, err = cli(["image", "build", "--registry", REG, "--from-source", "--context", str(tmp_path)], capsys)
    assert (code, out) == (2, "") and f"--from-source: --context {tmp_path} holds no kubepipe checkout" in " ".join(
        err.split())


def test_init_writes_the_templates_and_build_then_uses_them(tmp_path, capsys):
    import kubepipe

    code, out, _ = cli(["image", "init", str(tmp_path)], capsys)
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "docker").iterdir())
    assert written == sorted(images.TEMPLATES)
    cpu = (tmp_path / "docker" / "Dockerfile.cpu").read_text()
    assert f"ARG KUBEPIPE_VERSION={kubepipe.__version__}\n" in cpu  # plain `docker build` works too
    packaged = (Path(kubepipe.__file__).parent / "templates" / "docker" / "Dockerfile.project").read_text()
    assert (tmp_path / "docker" / "Dockerfile.project").read_text() == packaged
    # Refuses to overwrite an edited file without --force.
    (tmp_path / "docker" / "Dockerfile.cpu").write_text(cpu + "# mine\n")
    code, _, err = cli(["image", "init", str(tmp_path)], capsys)
    assert code == 2 and "exists; pass --force" in err
    assert (tmp_path / "docker" / "Dockerfile.cpu").read_text().endswith("# mine\n")
    code, out, _ = cli(["image", "build", "--registry", REG, "--context", str(tmp_path)], capsys)
    args = shlex.split(out.partition(" && ")[2])
    assert args[args.index("-f") + 1] == str(tmp_path / "docker" / "Dockerfile.cpu")  # the repository's own
    assert cli(["image", "init", str(tmp_path), "--force"], capsys)[0] == 0
    assert (tmp_path / "docker" / "Dockerfile.cpu").read_text() == cpu
    assert cli(["image", "init", str(tmp_path / "nope")], capsys)[0] == 2


def test_project_image_layers_the_repository_on_a_pinned_runtime(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KUBEPIPE_IMAGE", raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "Acme_Fraud"\nversion = "1.0"\n')
    base = f"{REG}/kubepipe-runtime@{DIGEST}"
    code, out, err = cli(["image", "build", "--kind", "project", "--registry", REG, "--tag", "v1",
                          "--context", str(tmp_path), "--base", base], capsys)
    assert code == 0, err
    args = shlex.split(out.partition(" && ")[2])
    assert args[args.index("-f") + 1].endswith("templates/docker/Dockerfile.project")
    assert args[args.index("-t") + 1] == f"{REG}/acme-fraud:v1"  # named after the project
    assert f"RUNTIME_IMAGE={base}" in args and args[-1] == str(tmp_path)
    assert "--name acme-fraud" in err  # how to pin it afterwards
    code, out, _ = cli(["image", "--kind", "project", "--name", "acme-fraud", "--registry", REG,
                        "--digest", DIGEST], capsys)
    assert code == 0 and out.strip() == f"{REG}/acme-fraud@{DIGEST}"


@pytest.mark.parametrize("extra,message", [
    ([], "--base is required"),
    (["--base", f"{REG}/kubepipe-runtime@sha256:" + "0" * 64], "placeholder"),
    # was '--base runtime_image: the any profile sets no runtime image'
    (["--base", "kubepipe-runtime-image-not-set"], "--base kubepipe-runtime-image-not-set: the placeholder a "
                                                   "profile's runtime_image holds until an image is pinned"),
    # was built on it: the FROM the Dockerfile and checkov's skip call digest-pinned was a movable tag
    (["--base", f"{REG}/kubepipe-runtime:0.1.0"], f"--base {REG}/kubepipe-runtime:0.1.0: not pinned by digest"),
    (["--base", f"{REG}/kubepipe-runtime@{DIGEST}", "--from-source"], "--from-source builds the kubepipe runtime"),
    # was written into the Dockerfile's FROM: no registry resolves it (the check kserve manifest --image shares)
    (["--base", f"{REG}/kubepipe runtime@{DIGEST}"], f"--base image '{REG}/kubepipe runtime@{DIGEST}': must be a "
                                                     "container image, one word without spaces"),
])
def test_project_image_errors(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.delenv("KUBEPIPE_IMAGE", raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    code, _, err = cli(["image", "build", "--kind", "project", "--registry", REG, "--context", str(tmp_path),
                        *extra], capsys)
    assert code == 2 and message in " ".join(err.split()), err


def test_project_image_needs_an_installable_repository(tmp_path, capsys):
    code, _, err = cli(["image", "build", "--kind", "project", "--registry", REG, "--context", str(tmp_path),
                        "--base", f"{REG}/kubepipe-runtime@{DIGEST}"], capsys)
    assert code == 2 and "no pyproject.toml or setup.py" in err
    code, _, err = cli(["image", "--kind", "project", "--registry", REG, "--digest", DIGEST], capsys)
    assert code == 2 and "--name is required" in err


def test_build_run_executes_docker_and_reports_its_failure(tmp_path, capsys, monkeypatch):
    """--run with a stand-in `docker` (no engine here) that records its argv, then one that fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text('#!/bin/sh\n[ "$1 $2" = "buildx version" ] && '
                    '{ printf "$BUILDX_ERR\\n\\nRun docker --help\\n" >&2; exit "${BUILDX_EXIT:-0}"; }\n'
                    'printf "%s\\n" "$@" > "$DOCKER_ARGS"\nexit "${DOCKER_EXIT:-0}"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))  # the stand-in only, whatever docker this machine has
    monkeypatch.setenv("DOCKER_ARGS", str(tmp_path / "argv"))
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(["image", "build", "--registry", REG, "--tag", "t2", "--run"], capsys)
    assert code == 0, err
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv == images.image_build("cpu", REG, "t2").command()[1:]
    assert (tmp_path / ".kubepipe").is_dir() and "pin it" in err and out == ""
    monkeypatch.setenv("DOCKER_EXIT", "3")
    code, _, err = cli(["image", "build", "--registry", REG, "--run"], capsys)
    assert code == 2 and "failed (exit 3)" in err
    monkeypatch.setenv("BUILDX_EXIT", "1")  # a docker without the plugin: was its "unknown flag: --platform"
    monkeypatch.setenv("BUILDX_ERR", "docker: unknown command: docker buildx")
    code, _, err = cli(["image", "build", "--registry", REG, "--run"], capsys)
    assert code == 2 and " ".join(err.split()) == (
        "error: docker has no buildx (`docker buildx version`: docker: unknown command: docker buildx); install the "
        "Docker Buildx plugin, or run the command `kubepipe image build` prints (without --run) where docker with "
        "buildx is")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = cli(["image", "build", "--registry", REG, "--run"], capsys)
    assert code == 2 and "docker is not on PATH" in err


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
    # the password was said back ('--registry user:s3cret@ghcr.io/acme: expected HOST...', twice with a scheme)
    (["image", "--registry", "https://ci:s3cret@ghcr.io/acme"], "--registry: credentials (ci:<redacted>@) do not go "
                                                               "in the registry path; log in with `docker login "
                                                               "ghcr.io` and pass ghcr.io/acme"),
    (["image", "--registry", "ci:s3cret@ghcr.io/acme"], "credentials (ci:<redacted>@)"),
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
    # `ref=$(kubepipe image ... --write-profile missing.yaml)` got the pinned reference, then exit 2
    assert out == "" and "s3cret" not in err


def test_metadata_without_digest_is_explained(tmp_path):
    meta = tmp_path / "m.json"
    meta.write_text(json.dumps({"buildx.build.ref": "x"}))
    with pytest.raises(UserError, match="was the image pushed"):
        pins.digest_from_metadata(meta)
    meta.write_text("{not json")
    with pytest.raises(UserError, match="not a buildx metadata JSON"):
        pins.digest_from_metadata(meta)


@pytest.mark.parametrize("digest", ["sha256:zz", 5])
def test_a_bad_digest_in_the_metadata_file_names_the_file(tmp_path, digest):
    # were "--digest 'sha256:zz': ..." (a flag not given) and, for 5, an internal error ('int' has no 'strip')
    meta = tmp_path / "m.json"
    meta.write_text(json.dumps({"containerimage.digest": digest}))
    with pytest.raises(UserError) as exc:
        pins.digest_from_metadata(meta)
    assert str(exc.value) == (f"{meta}: containerimage.digest {digest!r}: expected sha256: followed by 64 lower-case "
                              "hex digits (docker buildx imagetools inspect REF --format '{{json .Manifest.Digest}}')")


def test_write_profile_keeps_comments_and_validates(tmp_path, capsys):
    from kubepipe.spec.profiles import load_profile

    profile = tmp_path / "vertex.yaml"
    shutil.copy(ROOT / "configs" / "vertex.yaml", profile)
    before = profile.read_text()
    # The shipped profile names no image yet, so the registry comes from --registry.
    code, out, err = cli(["image", "--digest", DIGEST, "--write-profile", str(profile)], capsys)
    assert code == 2 and "--registry is required" in err and profile.read_text() == before
    code, out, err = cli(["image", "--digest", DIGEST, "--registry", "europe-west4-docker.pkg.dev/my-project/kubepipe",
                          "--write-profile", str(profile)], capsys)
    assert code == 0, err
    after = profile.read_text()
    pinned = out.strip()
    assert pinned == f"europe-west4-docker.pkg.dev/my-project/kubepipe/kubepipe-runtime@{DIGEST}"
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(before.splitlines()) == len(after.splitlines()) and len(changed) == 1
    assert changed[0][1] == f"runtime_image: {pinned}"
    assert "was ${env.KUBEPIPE_IMAGE" in err
    assert load_profile("vertex", profile_file=profile, environ={}).runtime_image == pinned


def test_write_profile_adds_a_missing_key_after_pipeline_root(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("# mine\ntarget: local\npipeline_root: .kubepipe/runs  # runs here\nexperiment: x\n")
    assert pins.write_runtime_image(profile, f"ghcr.io/a/kubepipe-runtime@{DIGEST}") is None
    lines = profile.read_text().splitlines()
    assert lines[0] == "# mine" and lines[2].endswith("# runs here")
    assert lines[3] == f"runtime_image: ghcr.io/a/kubepipe-runtime@{DIGEST}"


def test_write_profile_refuses_a_non_mapping(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="must be a YAML mapping"):
        pins.write_runtime_image(profile, "x")
    profile.write_text("a: [\n")
    with pytest.raises(UserError, match="not valid YAML"):
        pins.write_runtime_image(profile, "x")


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


@pytest.mark.parametrize("how", ["flag", "env"])
def test_the_metadata_file_goes_into_the_state_home(tmp_path, capsys, monkeypatch, how):
    """Like every command's state, buildx's digest file lives in --home / KUBEPIPE_HOME, not in .kubepipe."""
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "state home"
    flag = ["--home", str(home)] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("KUBEPIPE_HOME", str(home))
    for argv in (["image"], ["image", "build"]):
        code, out, err = cli([*argv, "--registry", REG, *flag], capsys)
        assert code == 0, err
        mkdir, _, build = out.partition(" && ")
        assert shlex.split(mkdir) == ["mkdir", "-p", str(home)]
        args = shlex.split(build)
        assert args[args.index("--metadata-file") + 1] == f"{home}/image-cpu.json"
        pin = err.split("then pin it in a profile:", 1)[1].strip().splitlines()[0]
        assert shlex.split(pin)[-1] == f"{home}/image-cpu.json"  # the next command reads the same file
    assert not (tmp_path / ".kubepipe").exists()


def test_kubepipe_image_in_the_environment_is_a_project_base_only(tmp_path, capsys, monkeypatch):
    """$KUBEPIPE_IMAGE (the runtime image the profiles read) is the project build's default --base and
    does not stop a cpu runtime build."""
    monkeypatch.chdir(tmp_path)
    base = f"{REG}/kubepipe-runtime@{DIGEST}"
    monkeypatch.setenv("KUBEPIPE_IMAGE", base)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    code, out, err = cli(["image", "build", "--kind", "cpu", "--registry", REG], capsys)
    assert code == 0 and "RUNTIME_IMAGE=" not in out, err
    code, out, err = cli(["image", "build", "--kind", "project", "--registry", REG], capsys)
    assert code == 0 and f"RUNTIME_IMAGE={base}" in shlex.split(out.partition(" && ")[2]), err


def test_an_old_or_missing_ignore_file_beside_the_repositorys_dockerfile_is_warned(tmp_path, capsys):
    assert cli(["image", "init", str(tmp_path)], capsys)[0] == 0
    build = ["image", "build", "--registry", REG, "--context", str(tmp_path)]
    code, _, err = cli(build, capsys)
    assert code == 0 and "warning" not in err  # a fresh copy has every exclusion
    assert images.ignore_gaps("project", tmp_path) is None
    # a project ignore file written by an older kubepipe: no credential exclusions; `.git` root-only still counts
    ignore = tmp_path / "docker" / "Dockerfile.project.dockerignore"
    ignore.write_text("/.git\n.venv\n**/__pycache__\n")
    said = images.ignore_gaps("project", tmp_path)
    assert said.startswith(f"{ignore} lacks") and "**/.env" in said and "**/*.pem" in said
    assert "kubepipe image init --force" in said and "lacks 43 exclusion(s)" in said
    assert ": .git," not in said and " .git," not in said and ", .venv" not in said  # spelled differently, kept
    # the CLI says it as a warning and still prints the command; deleted, BuildKit reads no ignore file at all
    cpu_ignore = tmp_path / "docker" / "Dockerfile.cpu.dockerignore"
    cpu_ignore.write_text("!sdk\n**/__pycache__\n")  # lost its leading `*`: the whole context goes in
    code, out, err = cli(build, capsys)
    assert code == 0 and "docker buildx build" in out
    assert f"warning: {cpu_ignore} lacks 3 exclusion(s)" in " ".join(err.split())
    cpu_ignore.unlink()
    said = " ".join(cli(build, capsys)[2].split())
    assert f"{tmp_path / 'docker' / 'Dockerfile.cpu'} builds with no ignore file" in said
    (tmp_path / ".dockerignore").write_text("*\n**/*.py[co]\n**/.pytest_cache\n__pycache__\n")  # the root's
    assert images.ignore_gaps("cpu", tmp_path) is None
    assert images.ignore_gaps("cpu", tmp_path / "elsewhere") is None  # the packaged Dockerfile and its ignore file


@pytest.mark.parametrize("project, expected", [("Café ML", "cafe-ml"), ("Zahlungs-Übersicht", "zahlungs-ubersicht"),
                                               ("___", None)])
def test_the_project_image_is_named_after_pyproject_as_kubepipe_names_everything(tmp_path, capsys, monkeypatch,
                                                                                 project, expected):
    """`name = "Café ML"` gave the image `caf-ml` (init's --name rule says `cafe-ml`); `name = "___"` said
    `--name '': an image name is ...`, an option the user had not passed and a name they had not written."""
    monkeypatch.delenv("KUBEPIPE_IMAGE", raising=False)
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "{project}"\nversion = "1.0"\n', encoding="utf-8")
    code, out, err = cli(["image", "build", "--kind", "project", "--registry", REG, "--tag", "v1",
                          "--context", str(tmp_path), "--base", f"{REG}/kubepipe-runtime@{DIGEST}"], capsys)
    if expected:
        assert code == 0 and f" -t {REG}/{expected}:v1 " in out, err
    else:
        text = " ".join(err.split())
        assert code == 2 and "pyproject.toml" in text and "'___'" in text and "pass --name" in text, err


def test_a_broken_pyproject_is_named_before_the_build(tmp_path, capsys, monkeypatch):
    """A pyproject.toml that is no TOML was passed over: the image was named after the folder, and the build failed
    later, in `pip install /src` inside docker."""
    monkeypatch.delenv("KUBEPIPE_IMAGE", raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "fraud\n', encoding="utf-8")
    code, _, err = cli(["image", "build", "--kind", "project", "--registry", REG, "--context", str(tmp_path),
                        "--base", f"{REG}/kubepipe-runtime@{DIGEST}"], capsys)
    text = " ".join(err.split())
    assert code == 2 and f"{tmp_path / 'pyproject.toml'}" in text and "line 2" in text, err
