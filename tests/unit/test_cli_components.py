"""The component reference: `kubepipe components [NAME]` and docs/components.md, from one source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import kubepipe
from cli_runner import run_cli
from kubepipe.catalog.reference import catalog_reference, component_reference, reference_markdown
from kubepipe.components.builtins import BUILTINS
from training_files import training_pipeline

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "pipelines" / "data"
PROMETHEUS = "http://prometheus-operated.monitoring:9090"  # deploy's canary_analysis reads it on kubeflow
HEAVY = ("kfp", "torch", "great_expectations", "pandas", "numpy", "kserve", "google.cloud.aiplatform",
         "transformers", "sklearn")


def test_docs_components_md_is_generated_from_the_catalog():
    assert (ROOT / "docs" / "components.md").read_text() == reference_markdown(), \
        "regenerate: kubepipe components --format markdown -o docs/components.md"


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_input_and_output_says_what_it_is(name):
    c = component_reference(name)
    assert c["description"] and c["example"]
    undocumented = [p["name"] for p in c["inputs"] + c["outputs"] if not p["description"].strip()]
    assert not undocumented, f"{name}: describe {undocumented} in the Args/Returns of its ops docstring"
    inputs = {i["name"] for i in c["inputs"]}
    extra = BUILTINS[name].reference
    from kubepipe.catalog.resolve import load_builtin_reference

    assert extra and set(load_builtin_reference(name).allowed) <= inputs  # allowed values only for real inputs


SKELETON = {
    "apiVersion": "kubepipe/v1", "kind": "Pipeline", "metadata": {"name": "merchant-categorizer"},
    "params": {"data_uri": {"type": "str", "default": str(DATA / "merchants_train.csv")},
               "holdout_uri": {"type": "str", "default": str(DATA / "merchants_holdout.csv")}},
    "steps": {
        "load": {"component": "load-data", "with": {"source": "${params.data_uri}"}},
        "holdout": {"component": "load-data", "with": {"source": "${params.holdout_uri}"}},
        "validate": {"component": "validate-data", "inputs": {"data": "${steps.load.outputs.dataset}"},
                     "with": {"expectations": [{"expect_column_values_to_not_be_null": {"column": "description"}}]}},
        "train": {"component": "train-torch", "inputs": {"dataset": "${steps.validate.outputs.dataset}"},
                  "with": {"text_column": "description", "label_column": "category"}},
        "evaluate": {"component": "evaluate", "inputs": {"model": "${steps.train.outputs.model}",
                                                         "holdout": "${steps.holdout.outputs.dataset}"},
                     "with": {"label_column": "category", "thresholds": {"f1_macro": {"min": 0.5}}}},
        "register": {"component": "register-model", "inputs": {"model": "${steps.train.outputs.model}",
                                                               "evaluation": "${steps.evaluate.outputs.evaluation}"}},
        "drift": {"component": "detect-drift", "inputs": {"data": "${steps.load.outputs.dataset}",
                                                          "reference": "${steps.holdout.outputs.dataset}"}},
        # what the retrieval examples read (components/retrieval/checks.py)
        "catalogue": {"component": "load-data", "with": {"source": "${params.catalogue_uri}"}},
        "queries": {"component": "load-data", "with": {"source": "${params.queries_uri}"}},
        "chunk": {"component": "chunk-documents", "inputs": {"documents": "${steps.catalogue.outputs.dataset}"},
                  "with": {"text_column": "text", "id_column": "merchant_id"}},
        "embed": {"component": "embed", "inputs": {"passages": "${steps.chunk.outputs.passages}"}},
        "index": {"component": "build-index", "inputs": {"embeddings": "${steps.embed.outputs.embeddings}"}},
        "live": {"component": "live-quality", "inputs": {"predictions": "${steps.load.outputs.dataset}"},
                 "with": {"model_name": "merchant-categorizer"}},
    },
}


@pytest.mark.parametrize("name", sorted(BUILTINS))
@pytest.mark.parametrize("target", ["local", "kubeflow"])
def test_every_example_validates_inside_a_pipeline(name, target, tmp_path):
    example = yaml.safe_load(component_reference(name)["example"])
    doc = json.loads(json.dumps(SKELETON))
    for key, step in example.items():
        assert step["component"] == name
        if key == "on_exit":
            doc["on_exit"] = step
        else:
            doc["steps"][key] = step
    # validate reads a local file's header for the columns the retrieval examples name
    (tmp_path / "catalogue.csv").write_text("merchant_id,text\nm1,STARBUCKS coffee\n")
    (tmp_path / "queries.csv").write_text("descriptor,merchant_id\nSTARBUCKS 1234,m1\n")
    doc["params"].update(catalogue_uri={"type": "str", "default": str(tmp_path / "catalogue.csv")},
                         queries_uri={"type": "str", "default": str(tmp_path / "queries.csv")})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (tmp_path / "merchant-categorizer.yaml").write_text(  # the pipeline trigger-retrain's example starts
        training_pipeline("merchant-categorizer.yaml"))
    plan = kubepipe.validate(path, target, profile=ROOT / "tests" / "golden" / "profiles" / f"{target}.yaml",
                             sets=[f"prometheus_url={PROMETHEUS}"] if target == "kubeflow" else None)
    assert any(s.info.ref == name for s in [*plan.steps, *([plan.exit_step] if plan.exit_step else [])])


def _issues(name: str, with_values: dict) -> list:
    from kubepipe.catalog.resolve import load_builtin_check

    return load_builtin_check(name)(with_values)


def _allowed(name: str, inp: str) -> dict:
    return next(i["allowed"] for i in component_reference(name)["inputs"] if i["name"] == inp)


# (component, input, with-values for one listed value) -> the check accepts each listed value, refuses others
CASES = [
    ("train-torch", "architecture", lambda v: {"architecture": v}),
    ("train-torch", "lr_schedule", lambda v: {"lr_schedule": v}),
    ("train-torch", "early_stopping_metric", lambda v: {"early_stopping_metric": v}),
    ("evaluate", "thresholds", lambda v: {"thresholds": {v: {"min": 0.1}}}),
    ("evaluate", "relative", lambda v: {"relative": {v: {"max_regression": 0.1}}}),
    ("evaluate", "baseline", lambda v: {"baseline": v, "thresholds": {"accuracy": {"min": 0.1}}}),
    ("load-data", "format", lambda v: {"format": v}),
    ("load-data", "dtypes", lambda v: {"dtypes": {"amount": v}}),
    ("deploy", "runtime", lambda v: {"runtime": v}),
    ("deploy", "serving", lambda v: {"serving": {v: {"port": 8601, "log": {"sample": 0.5}, "runtime": "onnx",
                                                     "precision": "fp32", "accelerator_type": "NVIDIA_L4",
                                                     "memory": "2Gi", "gpu_type": "nvidia-l4", "torch_compile": True}.get(v, 1),
                                                 **({"gpu": 1} if v in ("accelerator_type", "gpu_type") else {})}}),
    ("detect-drift", "thresholds", lambda v: {"thresholds": {v: {}} if v == "columns" else {v: 0.1}}),
]


@pytest.mark.parametrize("name,inp,make", CASES, ids=[f"{c[0]}.{c[1]}" for c in CASES])
def test_listed_values_are_exactly_what_the_check_accepts(name, inp, make):
    values = _allowed(name, inp)["values"]
    assert values
    for v in values:
        assert not _issues(name, make(v)), (name, inp, v)
    assert _issues(name, make("bogus_value")), f"{name}.{inp}: a value off the list must be refused"


def test_hyperparameters_per_architecture_are_what_the_check_accepts():
    by = _allowed("train-torch", "hyperparameters")["by"]
    from kubepipe.components.training.models import BUILTIN_MODELS

    assert set(by) == set(BUILTIN_MODELS)
    for arch, keys in by.items():
        for key in keys.split(", "):
            # max_length in [3, 512] (pretrained-encoder), buckets >= 2, char_ngrams [shortest, longest], a bool,
            # dropout and label_smoothing in [0, 1), early_stopping_metric a listed metric, d_model a multiple of the
            # default heads
            value = {"max_length": 32, "buckets": 1024, "char_ngrams": [3, 5], "lowercase": True,
                     "dropout": 0.1, "label_smoothing": 0.1, "early_stopping_metric": "val_loss",
                     "d_model": 64}.get(key, 1)
            assert not _issues("train-torch", {"architecture": arch, "hyperparameters": {key: value}}
                               if key != "precision" else {"architecture": arch}), (arch, key)
        assert _issues("train-torch", {"architecture": arch, "hyperparameters": {"bogus_knob": 1}})


def test_expectations_listed_with_their_arguments():
    a = _allowed("validate-data", "expectations")
    table = json.loads((ROOT / "components" / "data" / "expectations_table.json").read_text())["expectations"]
    assert a["values"] == sorted(table) and set(a["by"]) == set(table)
    between = a["by"]["expect_column_values_to_be_between"]
    assert between.startswith("column (optional: ") and "min_value" in between and "max_value" in between
    for name, entry in table.items():  # the listed required arguments are enough to pass the check
        kwargs = {k: ([1] if "list" in entry["kinds"][k] else "x" if "str" in entry["kinds"][k] else
                      1 if "number" in entry["kinds"][k] else {"a": 1} if "dict" in entry["kinds"][k] else True)
                  for k in entry["required"]}
        assert not _issues("validate-data", {"expectations": [{name: kwargs}]}), (name, kwargs)


def test_components_name_shows_meaning_allowed_values_and_example(capsys):
    code, out, _ = run_cli(capsys, "components", "train-torch")
    assert code == 0
    rows: dict = {}
    for ln in out.splitlines():
        rows.setdefault(ln.split("\t")[0], ln.split("\t"))
    assert rows["architecture"][3].startswith("The model") and "tabular-mlp" in rows["architecture"][4]
    assert rows["tabular-mlp"][1].startswith("hidden, layers, dropout")
    assert "example:" in out and "component: train-torch" in out
    code, out, _ = run_cli(capsys, "components", "evaluate", "--format", "json")
    doc = json.loads(out)
    assert doc["kind"] == "Component" and doc["name"] == "evaluate"
    thresholds = next(i for i in doc["inputs"] if i["name"] == "thresholds")
    from kubepipe.components.evaluation.metric_names import METRICS

    assert thresholds["allowed"]["values"] == list(METRICS)


def test_an_unknown_component_name_says_what_was_meant(capsys):
    code, _, err = run_cli(capsys, "components", "trian-torch")
    assert code == 2 and "unknown component `trian-torch`; did you mean `train-torch`?" in err


def test_a_user_component_shows_its_signature(capsys):
    code, out, _ = run_cli(capsys, "components", "ops:total", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["origin"] == "python" and doc["example"] is None
    assert [(i["name"], i["required"], i["default"]) for i in doc["inputs"]] == [("data", True, None),
                                                                                ("threshold", False, 10)]
    assert {o["name"] for o in doc["outputs"]} == {"total", "big"}


def test_listing_the_catalog_imports_nothing_heavy():
    probe = ("import json, sys\nfrom kubepipe.cli.app import main\n"
             "main(['components', 'train-torch', '--format', 'json'])\nmain(['components'])\n"
             "print('\\nLOADED ' + json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.rsplit("LOADED ", 1)[1])
    assert "kubepipe.components.training.checks" in loaded  # the probe did read the reference
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert not heavy, heavy


def test_catalog_json_lists_every_builtin(capsys):
    code, out, _ = run_cli(capsys, "components", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "ComponentList"
    assert [c["name"] for c in doc["items"]] == sorted(BUILTINS) == [c["name"] for c in catalog_reference()]


@pytest.mark.parametrize("ref, hint", [
    ("ops:totl", "did you mean `total`?"),  # a component's name before any other name of the module
    ("ops:nope", "its KFP components: `blob`, `fail`, `flaky`,"),  # nothing close: what it does hold
])
def test_a_missing_function_of_a_user_module_names_its_components(capsys, ref, hint):
    code, _, err = run_cli(capsys, "components", ref)
    assert code == 2 and f"`{ref}`: module `ops` has no `{ref[4:]}`; {hint}" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [("evaluate",), ("evaluate", "--format", "json"), ()])
def test_out_writes_the_reference_to_the_file_in_every_format(capsys, tmp_path, args):
    # was ignored outside --format markdown: the reference went to stdout and no file was written
    _, printed, _ = run_cli(capsys, "components", *args)
    code, out, err = run_cli(capsys, "components", *args, "-o", str(tmp_path / "ref"))
    assert code == 0 and out == "" and f"wrote {tmp_path / 'ref'}" in err
    assert (tmp_path / "ref").read_text() == printed


def test_text_with_colons_is_printed_as_it_is_not_as_emoji(capsys):
    code, _, err = run_cli(capsys, "components", "a:b:c")
    assert code == 2 and err.startswith("error: `a:b:c`: cannot import module `a`")  # was `a🅱c`


def test_a_component_files_int_default_is_an_int(capsys, tmp_path):
    # was `x  int  2.0` (`"default": 2.0` in JSON): kfp writes an int default as a number, `defaultValue: 2.0`
    import importlib.util

    from kfp import compiler

    (tmp_path / "twice.py").write_text("from kfp import dsl\n\n\n@dsl.component(base_image='python:3.11')\n"
                                       "def twice(x: int = 2, f: float = 2.0) -> int:\n    return 2 * x\n")
    spec = importlib.util.spec_from_file_location("twice_component", tmp_path / "twice.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    compiler.Compiler().compile(module.twice, str(tmp_path / "twice.yaml"))
    code, out, _ = run_cli(capsys, "components", str(tmp_path / "twice.yaml"), "--format", "json")
    assert code == 0, out
    defaults = {i["name"]: i["default"] for i in json.loads(out)["inputs"]}
    assert defaults == {"x": 2, "f": 2.0} and type(defaults["x"]) is int and type(defaults["f"]) is float
    code, out, _ = run_cli(capsys, "components", str(tmp_path / "twice.yaml"))
    assert "x\tint\t2\t" in out, out


def test_trigger_retrain_s_pipeline_note_says_what_validate_checks_of_the_training_pipeline():
    """The note said only that validate checks the training pipeline's file is there, while validate also refuses a
    file whose spec is not valid (what `${env.X}` gives aside) and checks `params` against its params."""
    note = _allowed("trigger-retrain", "pipeline")["note"]
    assert ("(local; validate checks it is there and a valid pipeline, what `${env.X}` gives left to the run, and "
            "that `params` are its params)") in note, note
    assert note in (ROOT / "docs" / "components.md").read_text()


def test_a_long_list_of_allowed_values_said_to_be_below_is_listed_below(capsys):
    """`thresholds` of evaluate allows 13 metric names: the cell says "listed below", and they are (the CLI and
    docs/components.md said so and listed none: a user could not find which metrics a gate takes)."""
    from kubepipe.components.evaluation.metric_names import METRICS

    code, out, _ = run_cli(capsys, "components", "evaluate")
    assert code == 0 and f"{len(METRICS)} names, listed below" in out
    below = out[out.index("listed below"):]
    listed = [ln for ln in below.splitlines() if ln.startswith("thresholds\t")]
    assert listed and listed[-1].split("\t")[1] == ", ".join(METRICS), out
    section = reference_markdown().split("## `evaluate`")[1].split("\n## ")[0]
    assert f"`thresholds`: the {len(METRICS)} names: " + ", ".join(f"`{m}`" for m in METRICS) in section, section
