"""`kubepipe init`: a starter project (pipeline, target profiles, sample data) that validates and runs."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from kubepipe.errors import UserError

__all__ = ["init_project"]

_PROFILES = {
    "local.yaml": "target: local\nruntime_image: python:3.11-slim\n"
                  "# runs/, state/ and registry/ live in the kubepipe home: --home / KUBEPIPE_HOME (default .kubepipe);\n"
                  "# set pipeline_root, state_dir or registry_uri here to put one elsewhere\n",
    "kubeflow.yaml": "target: kubeflow\nhost: ${env.KFP_HOST}\nnamespace: kubeflow\n"
                     "pipeline_root: ${env.KUBEPIPE_PIPELINE_ROOT:-minio://mlpipeline/kubepipe}\n"
                     "runtime_image: ${env.KUBEPIPE_IMAGE:-kubepipe-runtime-image-not-set}  # kubepipe image build, then pin\n"
                     "registry_uri: ${env.KUBEPIPE_REGISTRY:-gs://CHANGE-ME/registry}\n"
                     "auth: {token_env: KFP_TOKEN}  # the token itself stays in the environment\n",
    "vertex.yaml": "target: vertex\nproject: ${env.GOOGLE_CLOUD_PROJECT}\nregion: ${env.GOOGLE_CLOUD_REGION:-europe-west4}\n"
                   "pipeline_root: ${env.KUBEPIPE_PIPELINE_ROOT:-gs://CHANGE-ME/pipeline-root}\n"
                   "runtime_image: ${env.KUBEPIPE_IMAGE:-kubepipe-runtime-image-not-set}  # kubepipe image build, then pin\n"
                   "registry_uri: ${env.KUBEPIPE_REGISTRY:-gs://CHANGE-ME/registry}\n"
                   "service_account: ${env.KUBEPIPE_SERVICE_ACCOUNT:-}\n",
}


def init_project(directory: str | Path = ".", name: str = "my-pipeline", *, force: bool = False,
                 rows: int = 1200) -> list[Path]:
    """Write the starter files; refuses to overwrite unless force. Returns the paths written."""
    if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name):
        raise UserError(f"--name {name}: use lowercase letters, digits and dashes, e.g. my-pipeline")
    root = Path(directory)
    template = resources.files("kubepipe.templates").joinpath("pipeline.yaml").read_text(encoding="utf-8")
    files: dict[Path, str] = {root / "pipelines" / f"{name}.yaml": template.format(name=name)}
    for fname, text in _PROFILES.items():
        files[root / "configs" / fname] = f"# Target profile written by `kubepipe init`.\n{text}"
    data = [root / "pipelines" / "data" / f"{name}_train.csv", root / "pipelines" / "data" / f"{name}_holdout.csv"]
    existing = [p for p in [*files, *data] if p.exists()]
    if existing and not force:
        raise UserError(f"{existing[0]} exists; pass --force to overwrite, or choose another --name / folder")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    from kubepipe.components.data.merchants import generate_merchants

    data[0].parent.mkdir(parents=True, exist_ok=True)
    generate_merchants(rows, seed=1).to_csv(data[0], index=False)
    generate_merchants(max(rows // 4, 100), seed=2).to_csv(data[1], index=False)
    return [*files, *data]
