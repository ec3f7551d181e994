"""kubepipe kserve manifest | validate — render and check KServe InferenceServices from the shell."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from kubepipe.cli import console
from kubepipe.cli.options import SET, given_path, out_option
from kubepipe.components.serving.options import DEFAULTS as SERVE
from kubepipe.components.serving.options import HELP as SERVE_HELP

__all__ = ["register"]

# the deploy check's paths (the step's `with:` keys) -> this command's flags: an error names what to change
_FLAGS = {("model_name",): "MODEL_NAME", ("namespace",): "--namespace", ("runtime",): "--runtime",
          ("canary_percent",): "--canary", ("autoscaling", "min_replicas"): "--min-replicas",
          ("autoscaling", "max_replicas"): "--max-replicas", ("autoscaling", "metric"): "--metric",
          ("autoscaling", "target"): "--target", ("serving", "cpu"): "--cpu", ("serving", "memory"): "--memory",
          ("serving", "gpu"): "--gpu", ("serving", "gpu_type"): "--gpu-type",
          ("serving", "service_account"): "--service-account",
          ("serving", "runtime"): "--serving-runtime", ("serving", "precision"): "--precision"}

kserve = typer.Typer(name="kserve", no_args_is_help=True,
                     help="KServe InferenceServices: render what `deploy` applies; validate against the CRD.")


@kserve.command("manifest")
def manifest(
    model_name: str = typer.Argument(..., help="Model name (registry name; the InferenceService name derives from it)."),
    storage_uri: str = typer.Option(..., "--storage-uri", "-s", help="Model artifact URI (gs://, s3://, pvc://...)."),
    image: Optional[str] = typer.Option(
        None, "--image", show_default="the profile's runtime_image",
        help="Runtime image, pinned by digest: REG/kubepipe-runtime@sha256:... (`kubepipe image build` makes one)."),
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", show_default="the profile's deploy_namespace",
                                           help="Namespace of the InferenceService."),
    version: str = typer.Option("", "--version", help="The model's registry version, written as the "
                                                      "kubepipe.dev/version label."),
    runtime: str = typer.Option("kubepipe", "--runtime", help="kubepipe | triton"),
    canary: Optional[int] = typer.Option(None, "--canary", help="canaryTrafficPercent (serverless mode)."),
    mode: Optional[str] = typer.Option(None, "--mode", show_default="the profile's deployment_mode",
                                       help="serverless | raw"),
    cpu: str = typer.Option("1", "--cpu", help="serving.cpu: the model server's CPU, as resources.cpu (2, 500m)."),
    memory: str = typer.Option("2Gi", "--memory", help="serving.memory: its memory, as resources.memory (4Gi)."),
    gpu: int = typer.Option(0, "--gpu", help="GPUs for the model server (it then runs `--device cuda`)."),
    gpu_type: Optional[str] = typer.Option(
        None, "--gpu-type", help="serving.gpu_type: the GPU's normalised type (nvidia-l4, nvidia-tesla-t4, ...) or "
                                 "one of the profile's gpu_types, a GKE accelerator node selector; needs --gpu."),
    service_account: Optional[str] = typer.Option(
        None, "--service-account",
        help="serving.service_account: the pods' Kubernetes service account (the storage initializer downloads "
             "the model as it; the deploy step's default is the profile's deploy_service_account)."),
    # None when not given, as a deploy step without these keys: runtime triton refuses any value of them
    serving_runtime: Optional[str] = typer.Option(
        None, "--serving-runtime", show_default=SERVE["runtime"],
        help=f"serving.runtime: `kubepipe serve --runtime`, {SERVE_HELP['runtime']}."),
    precision: Optional[str] = typer.Option(
        None, "--precision", show_default=SERVE["precision"],
        help=f"serving.precision: `kubepipe serve --precision`, {SERVE_HELP['precision']}."),
    min_replicas: Optional[int] = typer.Option(None, "--min-replicas", help="autoscaling.min_replicas."),
    max_replicas: Optional[int] = typer.Option(None, "--max-replicas", help="autoscaling.max_replicas."),
    metric: Optional[str] = typer.Option(None, "--metric", help="concurrency | rps | cpu | memory"),
    target: Optional[int] = typer.Option(None, "--target", help="Scale target for --metric."),
    output: Optional[Path] = out_option("Write here instead of stdout (`-o -`: stdout).", "--output", "-o"),
    profile: Optional[Path] = typer.Option(
        None, "--profile", parser=given_path,
        help="kubeflow target profile (default: the nearest configs/kubeflow.yaml above the working directory)."),
    sets: Optional[List[str]] = SET,
) -> None:
    """Print the InferenceService YAML that `deploy` would apply, checked against the shipped KServe schema.

    As the deploy step, it reads the kubeflow target profile (--profile, else configs/kubeflow.yaml):
    runtime_image, deploy_namespace, deployment_mode, deploy_service_account and gpu_types; a flag
    overrides the profile's value. It says on stderr which profile it read.
    """
    from kubepipe.extras import require

    require("serve", feature="`kubepipe kserve manifest`")
    import yaml

    from kubepipe.backends.packaging.pins import NOT_ONE_WORD, image_problem, image_problems
    from kubepipe.components.checks import issues_text
    from kubepipe.components.deploy import crd
    from kubepipe.components.deploy.autoscaling import DEPLOYMENT_MODES
    from kubepipe.components.deploy.checks import check
    from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest, storage_problem
    from kubepipe.components.deploy.target import storage_uri as target_storage_uri
    from kubepipe.errors import UserError
    from kubepipe.resources import gke_accelerator
    from kubepipe.util import atomic_write_text, did_you_mean

    prof, source = _kubeflow_profile(profile, sets)
    given_image, image = image, image or prof.runtime_image
    namespace = namespace or prof.deploy_namespace or "default"  # as the deploy step (deploy/target.py)
    mode = mode or prof.deployment_mode
    if runtime != "triton":  # Triton's pod runs KServe's Triton image, not --image
        found = image_problem(image)  # (is_error, why): the rule image_problems words for a pipeline's images
        if found and found[0]:
            shown = repr(image) if found[1] == NOT_ONE_WORD else image
            what = f"--image {shown}" if given_image else f"no --image, and runtime_image in {source} is {shown}"
            raise UserError(f"{what}: {found[1]}; pass the runtime image pinned by digest, --image "
                            "REG/kubepipe-runtime@sha256:... (`kubepipe image build` makes one), or pin it in the "
                            "profile")
        for note in image_problems([image], "kubeflow")[1]:  # a tag without a digest
            console.warn(note)
    storage_uri = target_storage_uri(storage_uri)  # as the deploy step gives it to KServe: KFP's minio:// is s3://
    if storage_problem(storage_uri):
        raise UserError(f"--storage-uri: {storage_problem(storage_uri)}")
    if mode not in DEPLOYMENT_MODES:
        raise UserError(f"--mode: unknown mode {mode!r}; "
                        + (did_you_mean(mode, DEPLOYMENT_MODES) or f"use one of: {', '.join(DEPLOYMENT_MODES)}"))
    # the deploy step's own check: the model name and namespace it accepts, the runtime/precision/gpu pairs
    given = {k: v for k, v in (("runtime", serving_runtime), ("precision", precision), ("gpu_type", gpu_type),
                               ("service_account", service_account)) if v is not None}
    scaling = {k: v for k, v in dict(min_replicas=min_replicas, max_replicas=max_replicas, metric=metric,
                                     target=target).items() if v is not None}
    issues = check({"model_name": model_name, "namespace": namespace, "runtime": runtime, "canary_percent": canary,
                    "autoscaling": scaling, "serving": {"cpu": cpu, "memory": memory, "gpu": gpu, **given}},
                   deployment_mode=mode, target="kubeflow", gpu_types=prof.gpu_types)
    if issues:  # named by flag, then by the step's key (the hints speak YAML)
        raise UserError(issues_text("", [i._replace(path=(f"{_FLAGS[i.path]} ({'.'.join(i.path)})",))
                                         if i.path in _FLAGS else i for i in issues]))
    doc = inference_service_manifest(ServiceConfig(
        model_name=model_name, storage_uri=storage_uri, image=image, namespace=namespace, version=version,
        runtime=runtime, canary_percent=canary, deployment_mode=mode, autoscaling=scaling, cpu=cpu,
        memory=memory, gpu=gpu, gpu_type=gpu_type and gke_accelerator(gpu_type, prof.gpu_types),
        service_account=service_account or prof.deploy_service_account,
        serve_runtime=serving_runtime or SERVE["runtime"], precision=precision or SERVE["precision"]))
    crd.validate_manifest(doc)
    text = yaml.safe_dump(doc, sort_keys=False)
    if output:
        atomic_write_text(output, text)  # as every --out: the old file or the new one, never half
        console.err.print(f"wrote {console.escape(str(output))}")
    else:
        console.out.print(text, markup=False, end="")


def _kubeflow_profile(profile: Optional[Path], sets: Optional[List[str]]):
    """The kubeflow profile the deploy step would get, found as validate and submit find it, and where it is from
    (said on stderr)."""
    from kubepipe.api import load_target
    from kubepipe.spec.profiles import profile_source

    prof = load_target("kubeflow", profile=profile, sets=sets, deploy_only=True)  # no run: host may be unset
    path = profile_source("kubeflow", profile)
    source = str(path) if path else "the kubeflow defaults"
    console.err.print(f"profile: {console.escape(source)}" + (" (no configs/kubeflow.yaml found)" if not path else "")
                      + (f", with --set {', '.join(i.partition('=')[0] for i in sets)}" if sets else ""))
    return prof, source


@kserve.command("validate")
def validate(files: List[Path] = typer.Argument(
                 ..., parser=given_path, help="YAML files; their InferenceServices are checked, also the items of a List "
                           "(`kubectl get inferenceservices -o yaml`)."),
             crd_file: Optional[Path] = typer.Option(
                 None, "--crd", parser=given_path, help="A CRD YAML, e.g. from `kubectl get crd inferenceservices.serving.kserve.io -o yaml` "
                                     "(default: $KUBEPIPE_KSERVE_CRD, else the KServe schema shipped with kubepipe).")
             ) -> None:
    """Check every InferenceService in FILES against KServe's CRD schema (strict: unknown fields fail).

    Works offline: without --crd it uses the schema snapshot shipped with kubepipe
    and prints which KServe source that snapshot came from.
    """
    from kubepipe.extras import require

    require("serve", feature="`kubepipe kserve validate`")
    import yaml

    from kubepipe.components.deploy import crd
    from kubepipe.errors import UserError

    bad = checked = 0
    for f in files:
        try:
            docs = list(yaml.safe_load_all(f.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            raise UserError(f"{f}: not a UTF-8 text file (byte {exc.start}: {exc.reason}); "
                            "pass a YAML manifest") from None
        except IsADirectoryError:
            raise UserError(f"{f}: is a folder; pass YAML files (e.g. {f}/*.yaml)") from None
        except OSError as exc:
            raise UserError(f"{f}: cannot read it: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise UserError(f"{f}: not valid YAML: {' '.join(str(exc).split())[:400]}") from None
        for where, doc in _inference_services(f, docs):
            checked += 1
            errors = crd.manifest_errors(doc, crd=crd_file)
            meta = doc.get("metadata")
            where = f"{where} ({meta.get('name', '?') if isinstance(meta, dict) else '?'})"
            if errors:
                bad += 1
                console.err.print(f"[red]invalid[/red] {console.escape(where)}")
                for e in errors:
                    console.err.print(f"  - {console.escape(e)}")
            else:
                console.out.print(f"ok {console.escape(where)}")
    if crd_file is None and not os.environ.get("KUBEPIPE_KSERVE_CRD"):
        console.err.print(f"schema: {console.escape(crd.snapshot()['source'])} (shipped with kubepipe)")
    if not checked:
        raise UserError(f"no InferenceService documents in {', '.join(map(str, files))}")
    if bad:
        raise UserError(f"{bad} of {checked} InferenceService(s) do not match the KServe CRD")


def _inference_services(f: Path, docs: list):
    """(where, document) of each InferenceService in a file's YAML documents, inside a `kind: List` too:
    `kubectl get inferenceservices -o yaml` writes one (kind List, or InferenceServiceList), the items in it."""
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "InferenceService":
            yield f"{f}#{i}", doc
        elif doc.get("kind") in ("List", "InferenceServiceList") and isinstance(doc.get("items"), list):
            typed = doc["kind"] == "InferenceServiceList"  # the API's own list: its items name no kind
            for j, item in enumerate(doc["items"]):
                if isinstance(item, dict) and (typed or item.get("kind") == "InferenceService"):
                    head = {"apiVersion": doc.get("apiVersion"), "kind": "InferenceService"} if typed else {}
                    yield f"{f}#{i}.items[{j}]", {**head, **item}


def register(app: typer.Typer) -> None:
    app.add_typer(kserve)
