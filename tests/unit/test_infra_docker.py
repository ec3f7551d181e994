"""Runtime and project images, checked by reading the packaged Dockerfiles (no Docker engine
here), and the container healthcheck, run for real against loopback servers."""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "sdk" / "kubepipe" / "templates" / "docker"
RUNTIME = {"cpu": TEMPLATES / "Dockerfile.cpu", "cuda": TEMPLATES / "Dockerfile.cuda"}
DOCKERFILES = {**RUNTIME, "project": TEMPLATES / "Dockerfile.project"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, buf = [], ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") and not buf:
            continue
        buf += raw.rstrip("\\").strip() + " " if raw.rstrip().endswith("\\") else raw.strip()
        if not raw.rstrip().endswith("\\"):
            if buf.strip():
                op, _, rest = buf.strip().partition(" ")
                lines.append((op.upper(), rest.strip()))
            buf = ""
    return lines


def final_stage(path: Path) -> list[tuple[str, str]]:
    ins = instructions(path)
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    return ins[last_from:]


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_runs_as_numeric_non_root_user(kind):
    users = [arg for op, arg in final_stage(DOCKERFILES[kind]) if op == "USER"]
    assert users, f"{kind}: the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) == 1000, f"{kind}: USER must be the numeric uid 1000, got {users[-1]}"
    assert not gid or (gid.isdigit() and int(gid) != 0)


@pytest.mark.parametrize("kind", RUNTIME)
def test_offline_runtime_environment(kind):
    env = " ".join(arg for op, arg in final_stage(DOCKERFILES[kind]) if op == "ENV")
    assert re.search(r"\bGX_ANALYTICS_ENABLED=false\b", env)
    assert re.search(r"\bPIP_NO_INDEX=1\b", env), "a stray pip install at run time must fail fast, not download"
    assert re.search(r"\bPATH=/opt/venv/bin:", env), "the venv's python3 must come first for KFP's executor"


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_no_entrypoint_a_packaged_healthcheck_and_pinned_bases(kind):
    ins = instructions(DOCKERFILES[kind])
    ops = [op for op, _ in ins]
    assert "ENTRYPOINT" not in ops, "KFP and KServe supply the command"
    assert '["python", "-m", "kubepipe.healthcheck"]' in dict(ins)["HEALTHCHECK"]
    for op, arg in ins:
        if op == "FROM" and kind != "project":
            image = arg.split()[0]
            assert ":" in image and not image.endswith(":latest"), f"{kind}: unpinned base {image}"
    assert not [a for op, a in ins if op in ("COPY", "ADD") and not a.startswith("--from")], \
        "nothing is copied from the context: the Dockerfile works from any folder"


@pytest.mark.parametrize("kind,index", [("cpu", "/whl/cpu"), ("cuda", "/whl/${TORCH_CUDA}")])
def test_torch_is_installed_before_kubepipe_from_the_right_index(kind, index):
    ins = instructions(DOCKERFILES[kind])
    runs = [arg for op, arg in ins if op == "RUN"]
    torch_at = next(i for i, r in enumerate(runs) if "torch==${TORCH_VERSION}" in r)
    project_at = next(i for i, r in enumerate(runs) if 'pip install --no-cache-dir "${KUBEPIPE_REQUIREMENT}"' in r)
    assert torch_at < project_at
    assert index in runs[torch_at]
    assert runs[project_at].startswith("--mount=type=bind,target=/src"), "--from-source installs the context"
    assert all("--no-cache-dir" in r for r in runs if "pip install" in r)
    args = dict((a.split("=", 1)[0], a.split("=", 1)[1].strip('"')) for op, a in ins if op == "ARG" and "=" in a)
    assert args["TORCH_VERSION"] == "2.13.0"
    # The released package by default, at the version `kubepipe image build` passes; gs:// needs gcsfs.
    assert args["KUBEPIPE_REQUIREMENT"] == "kubepipe[all,gcs,s3]==${KUBEPIPE_VERSION}"


def test_project_image_installs_the_repository_on_the_runtime_as_non_root():
    ins = instructions(DOCKERFILES["project"])
    assert ins[0] == ("ARG", "RUNTIME_IMAGE") and ins[1] == ("FROM", "${RUNTIME_IMAGE}")
    users = [a for op, a in ins if op == "USER"]
    assert users[0] == "0" and users[-1] == "1000:1000"  # root only to write /opt/venv
    [run] = [a for op, a in ins if op == "RUN"]
    assert "--mount=type=bind,target=/src" in run and "pip install --no-cache-dir /src" in run
    assert "PIP_NO_INDEX=0" in run, "the runtime refuses indexes at run time; the build needs one for deps"
    assert "-e " not in run, "not editable: the context does not stay in the image"


def _docker_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as moby's patternmatcher reads it: anchored at the context root, `*` and `?`
    stop at `/`, `**` crosses directories (`**/` also matches none)."""
    pat, out, i = pattern.strip("/"), "", 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
            continue
        if pat.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pat.index("]", i)
            out, i = out + pat[i:end + 1], end + 1
            continue
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + "$")


def _ignored(kind: str, path: str) -> bool:
    """Docker's rule for `<Dockerfile>.dockerignore`: a pattern excludes a path it or a parent matches; the last
    matching pattern wins; `!` re-includes."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for line in (TEMPLATES / f"Dockerfile.{kind}.dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        rx = _docker_regex(line[1:] if neg else line)
        if any(rx.match(p) for p in prefixes):
            ignored = not neg
    return ignored


def test_docker_matcher_anchors_at_the_root_like_docker():
    assert _docker_regex("*.pem").match("a.pem") and not _docker_regex("*.pem").match("sub/a.pem")
    assert _docker_regex("**/*.pem").match("a.pem") and _docker_regex("**/*.pem").match("x/y/a.pem")


@pytest.mark.parametrize("kind", RUNTIME)
def test_from_source_context_holds_the_package_sources_only(kind):
    for src in ("pyproject.toml", "setup.py", "README.md", "sdk/kubepipe/api.py", "components/builtins.py"):
        assert (ROOT / src).exists() and not _ignored(kind, src), src
    for junk in (".venv/bin/python", "tests/unit/x.py", ".kubepipe/runs/a", ".git/HEAD", "sdk/kubepipe/__pycache__/a.pyc"):
        assert _ignored(kind, junk), junk


def test_project_context_leaves_out_environments_runs_and_history():
    for junk in (".git/HEAD", ".venv/bin/python", ".kubepipe/registry/x", "src/pkg/__pycache__/m.pyc", ".env"):
        assert _ignored("project", junk), junk
    for src in ("pyproject.toml", "src/pkg/model.py", "pipelines/p.yaml"):
        assert not _ignored("project", src), src


def test_project_context_leaves_out_credentials_anywhere_in_the_repository(tmp_path):
    """The file list `docker build` sends for a user's repository: code and pipelines go, no secret does."""
    secrets = [".env", "app/.env", "prod.env", ".env.local", "certs/tls.pem", "deploy/server.key", "keys/gcp.p12",
               "credentials.json", "config/gcp-credentials.json", "application_default_credentials.json",
               "ops/my-project-sa.json", "sa-key.json", "svc/trainer-sa-key.json", "service-account.json",
               "infra/service_account_prod.json", "keyfile.json", ".netrc", ".pypirc", ".npmrc", ".git-credentials",
               ".kube/config", "home/.kube/config", ".aws/credentials", "x/.aws/config", ".docker/config.json",
               "ci/.docker/config.json", ".ssh/id_rsa", "id_ed25519", ".config/gcloud/credentials.db",
               "terraform/terraform.tfstate", "terraform/prod.auto.tfvars"]
    kept = ["pyproject.toml", "setup.py", "README.md", "src/pkg/__init__.py", "src/pkg/model.py",
            "src/pkg/keys.py", "pipelines/train.yaml", "configs/kubeflow.yaml", "configs/schema.json",
            "data/sample.csv", "src/pkg/environment.py"]
    for rel in secrets + kept:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    context = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    sent = {rel for rel in context if not _ignored("project", rel)}
    assert not sent & set(secrets), sorted(sent & set(secrets))
    assert sent == set(kept)


# --- the healthcheck script, for real -----------------------------------------------------------

def _run_healthcheck(port: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBEPIPE_HEALTH_PORT": str(port)}
    return subprocess.run([sys.executable, "-m", "kubepipe.healthcheck"], env=env, capture_output=True, text=True,
                          timeout=30)


class _Server:
    """A loopback HTTP server answering /v2/health/live with a fixed status."""

    def __init__(self, status: int):
        code = status

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(code if self.path == "/v2/health/live" else 404)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def test_healthcheck_without_a_server_checks_that_kubepipe_imports():
    # a port this test holds bound but not listening: nothing can take it, and connecting is refused
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert _run_healthcheck(port).returncode == 0


def test_healthcheck_follows_the_servers_liveness():
    with _Server(200) as live:
        assert _run_healthcheck(live.port).returncode == 0
    with _Server(503) as dead:
        assert _run_healthcheck(dead.port).returncode == 1
