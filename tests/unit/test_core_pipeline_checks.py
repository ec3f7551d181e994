"""validate reads a local data file's header (CSV) or schema (Parquet) and checks every column the
pipeline names, at the reference's line; plus cross-step checks: labels, the champion, path-safe names."""

from __future__ import annotations

import pandas as pd
import pytest
from cli_runner import run_cli, run_cli_text

import kubepipe
from kubepipe.errors import ValidationError
from training_files import training_pipeline

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: cols}}
params:
  train_uri: {{type: str, default: {source}}}
steps:
  load:
    component: load-data
    with: {{source: "${{params.train_uri}}"{load_extra}}}
  validate:
    component: validate-data
    inputs: {{data: "${{steps.load.outputs.dataset}}"}}
    with:
      expectations:
        - expect_column_values_to_not_be_null: {{column: {exp_column}}}
        - expect_column_to_exist: {{column: not_here}}
  train:
    component: train-torch
    inputs: {{dataset: "${{steps.validate.outputs.dataset}}"}}
    with: {{text_column: description, label_column: {label}}}
  evaluate:
    component: evaluate
    inputs: {{model: "${{steps.train.outputs.model}}", holdout: "${{steps.load.outputs.dataset}}"}}
    with: {{thresholds: {{f1_macro: {{min: 0.5}}}}, baseline: none, slices: {{column: {slice}, thresholds: {{f1_macro: {{min: 0.1}}}}}}}}
"""


def _frame():
    return pd.DataFrame({"description": ["a b", "c d"], "category": ["x", "y"], "country": ["SE", "DE"]})


def _write(tmp_path, source="data.csv", exp_column="description", label="category", slice_="country", load_extra=""):
    text = PIPELINE.format(source=source, exp_column=exp_column, label=label, slice=slice_, load_extra=load_extra)
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path, text.splitlines()


def _line(lines, needle: str) -> int:
    return next(i for i, s in enumerate(lines, 1) if needle in s)


def test_wrong_label_and_typo_in_an_expectation_fail_validate_at_their_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _frame().to_csv(tmp_path / "data.csv", index=False)
    path, lines = _write(tmp_path, exp_column="descripton", label="categry", slice_="contry")
    code, out, err = run_cli(capsys, "validate", path)
    text = " ".join(err.split())
    assert code == 2, out + err
    assert f"p.yaml:{_line(lines, 'descripton')}:" in text and "column `descripton` is not in data.csv" in text
    assert "did you mean `description`?" in text
    assert f"p.yaml:{_line(lines, 'categry')}:" in text and "did you mean `category`?" in text
    assert f"p.yaml:{_line(lines, 'contry')}:" in text and "did you mean `country`?" in text
    assert "not_here" not in text  # expect_column_to_exist checks the data itself, at run time
    assert "Traceback" not in err


def test_a_parquet_schema_and_a_column_selection_are_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _frame().to_parquet(tmp_path / "data.parquet")
    path, _ = _write(tmp_path, source="data.parquet")
    assert len(kubepipe.validate(path).steps) == 4
    path, _ = _write(tmp_path, source="data.parquet", load_extra=", columns: [description, country]")
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    (issue,) = info.value.issues  # load keeps two columns: the label is gone
    assert issue.path == "steps.train.with.label_column" and "not in data.parquet" in issue.message


def test_time_column_and_dtypes_are_checked_against_the_file_before_columns_selects(tmp_path, monkeypatch):
    # load-data windows and casts before it selects `columns`: `time_column: ts` with `columns: [description,
    # category]` runs, but validate refused it ('column `ts` is not in data.csv'); a dtypes typo was never checked
    monkeypatch.chdir(tmp_path)
    _frame().assign(ts=["2026-03-01", "2026-03-02"]).to_csv(tmp_path / "data.csv", index=False)
    keep = ", columns: [description, category, country]"
    path, _ = _write(tmp_path, load_extra=f", time_column: ts, window: 7d, dtypes: {{ts: datetime}}{keep}")
    assert len(kubepipe.validate(path).steps) == 4
    path, lines = _write(tmp_path, load_extra=f", time_column: tss, window: 7d, dtypes: {{amout: float}}{keep}")
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    found = {(i.path, i.message, i.hint) for i in info.value.issues}
    assert found == {("steps.load.with.time_column", "column `tss` is not in data.csv", "did you mean `ts`?"),
                     ("steps.load.with.dtypes.amout", "column `amout` is not in data.csv",
                      "its columns: description, category, country, ts")}


def test_a_column_after_a_selection_that_keeps_nothing_says_why(tmp_path, monkeypatch):
    # every `columns` name misspelt: each later column's hint read 'its columns: ' and stopped
    monkeypatch.chdir(tmp_path)
    _frame().to_csv(tmp_path / "data.csv", index=False)
    path, _ = _write(tmp_path, load_extra=", columns: [descripton]")
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    hints = {i.path: i.hint for i in info.value.issues}
    assert hints["steps.load.with.columns[0]"] == "did you mean `description`?"
    assert hints["steps.train.with.label_column"] == "the load-data step's `columns` keeps none of the file's columns"


def test_a_selection_no_later_step_reads_is_checked_too(tmp_path, monkeypatch):
    # `columns: [tenure, spnd]` on a load-data step whose dataset no checked step reads (your own component's input,
    # or none) validated, and the run failed at that step ('missing column `spnd`')
    monkeypatch.chdir(tmp_path)
    _frame().to_csv(tmp_path / "data.csv", index=False)
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: sel}\nsteps:\n  load:\n"
                    "    component: load-data\n    with: {source: data.csv, columns: [description, contry]}\n")
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    (issue,) = info.value.issues
    assert (issue.path, issue.message, issue.hint, issue.line) == (
        "steps.load.with.columns[1]", "column `contry` is not in data.csv", "did you mean `country`?", 7)


def test_a_semicolon_separated_csv_is_read_with_its_delimiter_and_named_without_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _frame().to_csv(tmp_path / "data.csv", index=False, sep=";")
    path, _ = _write(tmp_path, load_extra=', delimiter: ";"')
    assert len(kubepipe.validate(path).steps) == 4  # every column the pipeline names is found
    path, _ = _write(tmp_path)
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    (issue,) = info.value.issues  # one problem at the source, not one per column
    assert issue.path == "steps.load.with.source"
    assert "reads as one column with delimiter ','" in issue.message
    assert "the file looks ';'-separated: set `delimiter: \";\"` on the load-data step" in issue.message


def test_a_binary_file_given_as_the_csv_is_named_at_the_source(tmp_path, monkeypatch):
    import gzip

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_bytes(gzip.compress(_frame().to_csv(index=False).encode()))
    path, _ = _write(tmp_path)
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    (issue,) = info.value.issues  # one problem at the source, not one per column
    assert issue.path == "steps.load.with.source"
    assert issue.message == (f"{tmp_path / 'data.csv'}: the file is not a text CSV (it looks like gzip-compressed "
                             "data); decompress it first and point `source` at the .csv (gunzip)")


@pytest.mark.parametrize("source", ["https://example.com/x.csv", "champion:cols", "missing.csv"])
def test_sources_only_the_run_can_read_are_not_checked(tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    path, _ = _write(tmp_path, source=source, exp_column="whatever", label="anything")
    assert len(kubepipe.validate(path).steps) == 4


CHAMPION = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: champ}}
steps:
  evaluate:
    component: evaluate
    inputs: {{model: "${{steps.train.outputs.model}}", holdout: "${{steps.train.outputs.model}}"}}
    with: {{thresholds: {{f1_macro: {{min: 0.5}}}}{evaluate_extra}}}
  train:
    component: train-torch
    inputs: {{dataset: "${{steps.train.outputs.model}}"}}
  register:
    component: register-model
    inputs: {{model: "${{steps.train.outputs.model}}", evaluation: "${{steps.evaluate.outputs.evaluation}}"}}
    with: {{model_name: {name}{register_extra}}}
"""


@pytest.mark.parametrize("name,evaluate_extra,register_extra,warned", [
    ("champ", "", "", True),                         # evaluate compares with a champion nothing sets
    ("champ", "", ", promote: true", False),         # register-model promotes it
    ("other", "", ", promote: true", False),         # ... but another model: an error (below), not this warning
    ("champ", ", baseline: none", "", False),        # no champion compared
    ("champ", ", label_column: y", "", True),        # (the label check below)
])
def test_a_champion_nothing_can_set_is_a_warning(tmp_path, name, evaluate_extra, register_extra, warned):
    from kubepipe.plan.pipeline_checks import pipeline_checks
    from kubepipe.spec.loader import load_pipeline_text

    loaded = load_pipeline_text(CHAMPION.format(name=name, evaluate_extra=evaluate_extra,
                                                register_extra=register_extra), "c.yaml")
    refs = {n: s.component for n, s in loaded.spec.steps.items()}
    errors, warnings = pipeline_checks(loaded.spec, refs, loaded.locator.issue)
    assert bool(warnings) is warned
    if warned:
        assert warnings[0].severity == "warning" and "nothing in this pipeline can set it" in warnings[0].message
        # the evaluate step's model_name (here the pipeline's name) is not the one register-model promotes: the
        # hint said 'add `promote: true` to the register-model step', which it had
        assert warnings[0].hint.startswith("set `model_name` to the model this pipeline promotes (`other`), or "
                                           "set `baseline: none`" if "promote" in register_extra
                                           else "add `promote: true` to the register-model step, or set")
    if "label_column" in evaluate_extra:  # train-torch's default label is `label`
        (err,) = errors
        assert err.path == "steps.evaluate.with.label_column" and "trains on (`label`)" in err.message
    elif name == "other":
        (err,) = errors
        assert err.path == "steps.register.with.model_name" and "without being compared with its own" in err.message
    else:
        assert errors == []


def test_path_reaching_names_are_checked(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("""\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: evil}
steps:
  load:
    component: load-data
    with: {source: x.csv}
  deploy:
    component: deploy
    inputs: {model: "${steps.load.outputs.dataset}"}
    with: {model_name: ../../evil}
""")
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    assert any(i.path == "steps.deploy.with.model_name" and "bad model name '../../evil'" in i.message
               for i in info.value.issues)



@pytest.mark.parametrize("name", ['""', "'  '"])
def test_an_empty_model_name_is_refused_where_the_step_needs_one(tmp_path, name):
    # `model_name: ''` on live-quality or monitor-report passed validate (an empty name was skipped as none)
    path = tmp_path / "mon.yaml"
    path.write_text(f"""\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: mon}}
steps:
  recent:
    component: load-data
    with: {{source: x.csv}}
  live:
    component: live-quality
    inputs: {{predictions: "${{steps.recent.outputs.dataset}}"}}
    with: {{model_name: {name}, labels: labels.csv}}
  report:
    component: monitor-report
    inputs: {{predictions: "${{steps.recent.outputs.dataset}}"}}
    with: {{model_name: {name}}}
""")
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    for step in ("live", "report"):
        (issue,) = [i for i in info.value.issues if i.path == f"steps.{step}.with.model_name"]
        assert issue.message == "model name is empty: the step needs one" and issue.line


def _issue_at(issues, path: str):
    return next((i for i in issues if i.path == path), None)


def test_a_namespace_that_would_leave_its_api_path_is_refused_at_its_line(tmp_path):
    path = tmp_path / "ns.yaml"
    path.write_text("""\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: ns}
steps:
  load: {component: load-data, with: {source: x.csv}}
  deploy:
    component: deploy
    inputs: {model: "${steps.load.outputs.dataset}"}
    with: {model_name: fine, namespace: ../kube-system}
""")
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path, "kubeflow", sets=["host=http://kfp", "pipeline_root=gs://b/r"])
    issue = _issue_at(info.value.issues, "steps.deploy.with.namespace")
    assert issue is not None and "bad Kubernetes namespace '../kube-system'" in issue.message
    assert (issue.file, issue.line) == (str(path), 9)


@pytest.mark.parametrize("url,why", [
    ("http://prom:9090 ", "it holds a space at its end"),
    ("http://prom\x01:9090", "it holds a control character (U+0001) at character 12"),
    ("prom:9090", "must be an http:// or https:// URL"),
])
def test_a_profile_prometheus_url_with_a_space_or_control_character_says_what_is_wrong(tmp_path, url, why):
    """A trailing space gave pydantic's raw 'string should match pattern '^https?://\\S+$''; a control character
    passed, and httpx refused it (InvalidURL) in the middle of the rollout."""
    import json

    from kubepipe.spec.profiles import load_profile

    prof = tmp_path / "kubeflow.yaml"
    prof.write_text(f"target: kubeflow\nhost: http://kfp\npipeline_root: gs://b/r\nprometheus_url: {json.dumps(url)}\n")
    with pytest.raises(ValidationError) as info:
        load_profile("kubeflow", profile_file=prof, environ={})
    (issue,) = info.value.issues
    assert (issue.path, issue.file, issue.line) == ("prometheus_url", str(prof), 4)
    assert why in issue.message and "pattern" not in issue.message
    assert "e.g. http://prometheus-operated.monitoring:9090" in str(issue)
    assert load_profile("kubeflow", sets={"host": "http://kfp", "pipeline_root": "gs://b/r",
                                          "prometheus_url": "http://prom:9090"}).prometheus_url == "http://prom:9090"


@pytest.mark.parametrize("key", ["namespace", "deploy_namespace"])
def test_profile_namespaces_are_kubernetes_names(key):
    from kubepipe.spec.profiles import load_profile

    with pytest.raises(ValidationError) as info:
        load_profile("kubeflow", sets={"host": "http://kfp", "pipeline_root": "gs://b/r", key: "Team/../x"})
    assert any(i.path == key for i in info.value.issues), info.value
    assert load_profile("kubeflow", sets={"host": "http://kfp", "pipeline_root": "gs://b/r", key: "team-a"})


RETRAIN = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: monitor}}
params:
  training: {{type: str, default: {default}}}
steps:
  retrain:
    component: trigger-retrain
    inputs: {{drift_detected: true}}
    with: {{pipeline: {value}}}
"""


@pytest.mark.parametrize("target,value,default,outcome", [
    ("local", "missing.yaml", "x", "error"),                      # no such file next to the pipeline
    ("local", "train.yaml", "x", None),                           # there
    ("local", '"${params.training}"', "missing.yaml", "error"),  # a param default is read the same way
    ("vertex", "train.yaml", "x", "error"),                       # a local path a Vertex job cannot start
    ("vertex", "gs://b/train.yaml", "x", None),
    ("vertex", "GS://b/train.yaml", "x", None),                   # a scheme in capitals: one too (was an error)
    ("vertex", '"${params.training}"', "train.yaml", "warning"),  # local default: --param needed to submit
])
def test_trigger_retrain_names_a_pipeline_the_target_can_start(tmp_path, target, value, default, outcome):
    (tmp_path / "train.yaml").write_text(training_pipeline("train.yaml"))
    path = tmp_path / "monitor.yaml"
    path.write_text(RETRAIN.format(value=value, default=default))
    sets = ["project=p", "region=europe-west4", "pipeline_root=gs://b/r"] if target == "vertex" else None
    where = "steps.retrain.with.pipeline"
    if outcome == "error":
        with pytest.raises(ValidationError) as info:
            kubepipe.validate(path, target, sets=sets)
        issue = _issue_at(info.value.issues, where)
        assert issue is not None and issue.line == 10, info.value
        return
    plan = kubepipe.validate(path, target, sets=sets)
    warned = _issue_at(plan.warnings, where)
    assert (warned is not None) is (outcome == "warning")
    if warned:
        assert "params={'training': 'gs://" in warned.hint


@pytest.mark.parametrize("register_name, deploy_name, refused", [
    ("merchants", "merchants-eu", True),
    (None, "merchants", True),     # register-model's default name is the pipeline's, `shop`
    ("merchants", "merchants", False),
    (None, "shop", False),
])
def test_a_deploy_of_the_registered_version_under_another_model_name_is_refused(tmp_path, capsys, register_name,
                                                                                deploy_name, refused):
    # `version: ${steps.register.outputs.version}` is a number: under another model_name the deploy step served and
    # promoted that model's version of the same number (or failed after training if it had none), never gated
    register = f"{{model_name: {register_name}}}" if register_name else "{}"
    path = tmp_path / "d.yaml"
    path.write_text(GATED_AS_ANOTHER.format(evaluate_extra=", baseline: none", name="x").split("  register:")[0] + f"""\
  register:
    component: register-model
    inputs: {{model: "${{steps.train.outputs.model}}", evaluation: "${{steps.evaluate.outputs.evaluation}}"}}
    with: {register}
  deploy:
    component: deploy
    inputs: {{model: "${{steps.train.outputs.model}}"}}
    with: {{model_name: {deploy_name}, version: "${{steps.register.outputs.version}}"}}
""")
    code, text = run_cli_text(capsys, "validate", path)
    if not refused:
        assert code == 0, text
        return
    assert code == 2, text
    line = _line(path.read_text().splitlines(), f"model_name: {deploy_name}, version")
    assert f"d.yaml:{line}:" in text and "steps.deploy.with.model_name" in text
    where = "steps.register.with.model_name" + ("" if register_name else " (not set: the pipeline's name `shop`)")
    assert f"but `register` registers that version number under `{register_name or 'shop'}` ({where})" in text
    assert "a model the gate never scored; write the same model_name in both steps" in text


RETRIEVAL_CHAMPION = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: rag}}
steps:
  load:
    component: load-data
    with: {{source: x.csv}}
  index:
    component: build-index
    inputs: {{embeddings: "${{steps.load.outputs.dataset}}"}}
  evaluate:
    component: evaluate-retrieval
    inputs: {{index: "${{steps.index.outputs.index}}", queries: "${{steps.load.outputs.dataset}}"}}
    with: {{thresholds: {{recall@5: {{min: 0.5}}}}{evaluate_extra}}}
  register:
    component: register-model
    inputs: {{model: "${{steps.index.outputs.index}}", evaluation: "${{steps.evaluate.outputs.evaluation}}"}}
    with: {{model_name: idx{register_extra}}}
"""


@pytest.mark.parametrize("evaluate_extra, register_extra, champion", [
    (", model_name: idx", "", "idx"),          # nothing promotes `idx`
    ("", ", promote: true", None),             # the champion looked up is `rag`, `idx` is promoted: an error
    (", model_name: idx", ", promote: true", None),
    (", baseline: none", "", None)])
def test_a_retrieval_champion_nothing_can_set_is_a_warning(evaluate_extra, register_extra, champion):
    from kubepipe.plan.pipeline_checks import pipeline_checks
    from kubepipe.spec.loader import load_pipeline_text

    loaded = load_pipeline_text(RETRIEVAL_CHAMPION.format(evaluate_extra=evaluate_extra,
                                                          register_extra=register_extra), "r.yaml")
    refs = {n: s.component for n, s in loaded.spec.steps.items()}
    errors, warnings = pipeline_checks(loaded.spec, refs, loaded.locator.issue)
    assert [w.message.split(",")[0] for w in warnings] == \
        ([f"`evaluate` compares with the champion of `{champion}`"] if champion else [])
    assert [e.path for e in errors] == (["steps.register.with.model_name"] if evaluate_extra == "" else [])


GATED_AS_ANOTHER = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: shop}}
steps:
  load:
    component: load-data
    with: {{source: x.csv}}
  train:
    component: train-torch
    inputs: {{dataset: "${{steps.load.outputs.dataset}}"}}
  evaluate:
    component: evaluate
    inputs: {{model: "${{steps.train.outputs.model}}", holdout: "${{steps.load.outputs.dataset}}"}}
    with: {{thresholds: {{f1_macro: {{min: 0.5}}}}{evaluate_extra}}}
  register:
    component: register-model
    inputs: {{model: "${{steps.train.outputs.model}}", evaluation: "${{steps.evaluate.outputs.evaluation}}"}}
    with: {{model_name: {name}, promote: true}}
"""


@pytest.mark.parametrize("evaluate_extra, name, refused", [
    (", model_name: merchants-v2", "merchants", True),   # gated against v2's champion, promoted as merchants
    ("", "merchants", True),                             # gated against the pipeline name's (`shop`) champion
    (", model_name: merchants", "merchants", False),
    ("", "shop", False),
    (", model_name: other, baseline: none", "merchants", False),  # no champion compared: the name is unused
])
def test_registering_a_model_under_another_name_than_its_gate_compared_is_refused(tmp_path, capsys, evaluate_extra,
                                                                                 name, refused):
    # a user's pipeline whose evaluate and register-model steps named different models promoted every candidate
    # with no champion comparison (the gate looked up a champion nothing set: a first run, every run), and
    # validate only warned that the evaluate step's champion could not be set
    path = tmp_path / "p.yaml"
    path.write_text(GATED_AS_ANOTHER.format(evaluate_extra=evaluate_extra, name=name))
    code, text = run_cli_text(capsys, "validate", path)
    if not refused:
        assert code == 0, text
        assert "without being compared" not in text
        return
    assert code == 2, text
    line = _line(path.read_text().splitlines(), f"model_name: {name}, promote")
    assert f"p.yaml:{line}:" in text and "steps.register.with.model_name" in text
    assert "without being compared with its own champion" in text
    assert ("steps.evaluate.with.model_name" + ("" if "model_name" in evaluate_extra else
                                                " (not set: the pipeline's name `shop`)")) in text
    assert "write the same model_name in both steps" in text and "baseline: none" in text


RAG_COLUMNS = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: rag}
steps:
  docs:
    component: load-data
    with: {source: docs.csv}
  queries:
    component: load-data
    with: {source: queries.csv}
  chunk:
    component: chunk-documents
    inputs: {documents: "${steps.docs.outputs.dataset}"}
    with: {text_column: txt, keep_columns: [city, cty]}
  embed:
    component: embed
    inputs: {passages: "${steps.chunk.outputs.passages}"}
  index:
    component: build-index
    inputs: {embeddings: "${steps.embed.outputs.embeddings}"}
  evaluate:
    component: evaluate-retrieval
    inputs: {index: "${steps.index.outputs.index}", queries: "${steps.queries.outputs.dataset}"}
    with: {relevant_column: merchant, thresholds: {recall@5: {min: 0.5}}, baseline: none}
"""


def test_retrieval_columns_are_checked_against_the_files_defaults_included(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"merchant_id": ["m1"], "text": ["coffee"], "city": ["Oakland"]}).to_csv("docs.csv", index=False)
    pd.DataFrame({"descriptor": ["COFFEE"], "merchant_id": ["m1"]}).to_csv("queries.csv", index=False)
    (tmp_path / "p.yaml").write_text(RAG_COLUMNS)
    code, _out, err = run_cli(capsys, "validate", tmp_path / "p.yaml")
    assert code == 2
    for path, message in (("steps.chunk.with.text_column", "column `txt` is not in docs.csv; did you mean `text`?"),
                          ("steps.chunk.with.id_column", "column `id` is not in docs.csv"),  # the default
                          ("steps.chunk.with.keep_columns[1]", "column `cty` is not in docs.csv; did you mean `city`?"),
                          ("steps.evaluate.with.query_column", "column `query` is not in queries.csv"),
                          ("steps.evaluate.with.relevant_column", "column `merchant` is not in queries.csv")):
        assert f"{path}: {message}" in err, err


TOKENS = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: rag}}
steps:
  docs:
    component: load-data
    with: {{source: x.csv}}
  chunk:
    component: chunk-documents
    inputs: {{documents: "${{steps.docs.outputs.dataset}}"}}
    with: {{{chunk}}}
  embed:
    component: embed
    inputs: {{passages: "${{steps.chunk.outputs.passages}}"}}
    with: {{{embed}}}
"""


CUT = "`chunk` makes passages of {} tokens, but `embed` reads 128 of each"
WORDS = ("`chunk` makes passages of up to {} words, about {} WordPiece tokens at a typical 1.3 a word (codes and "
         "numbers make more), but `embed` reads {}")
CAPPED = "`chunk` makes passages of up to {} tokens (max_tokens), but `embed` reads {} of each"


@pytest.mark.parametrize("chunk, embed, warned", [
    ("unit: tokens", "batch_size: 8", CUT.format(128)),  # the defaults
    ("unit: tokens, size: 126", "batch_size: 8", None),
    ("unit: tokens, size: 200", "max_length: 128", CUT.format(200)),
    ("unit: tokens, size: 200", "max_length: 202", None),
    # words: at a typical 1.3 WordPiece tokens a word (d9f11064 said none for words: how many tokens is
    # data-dependent, but 64 words into max_length 64, the flagship's, cut every full passage)
    ("unit: words, size: 200", "max_length: 64", WORDS.format(200, 260, 64) + " of each"),
    ("unit: words, size: 64", "max_length: 64", WORDS.format(64, 84, 64) + " of each"),
    ("unit: words", "batch_size: 8", WORDS.format(128, 167, 128) + " of each"),  # the defaults
    ("unit: words, size: 96", "max_length: 128", None),  # about 125 tokens + 2 fit
    # words capped by the tokenizer's count: checked by the cap, not estimated
    ("unit: words, size: 200, max_tokens: 62", "max_length: 64", None),
    ("unit: words, size: 20, max_tokens: 100", "max_length: 64", CAPPED.format(100, 64))])
def test_token_passages_longer_than_the_encoder_reads_are_a_warning(chunk, embed, warned):
    from kubepipe.plan.pipeline_checks import pipeline_checks
    from kubepipe.spec.loader import load_pipeline_text

    loaded = load_pipeline_text(TOKENS.format(chunk=chunk, embed=embed), "t.yaml")
    refs = {n: s.component for n, s in loaded.spec.steps.items()}
    _errors, warnings = pipeline_checks(loaded.spec, refs, loaded.locator.issue)
    assert [w.message.split(" ([CLS]")[0] for w in warnings] == ([warned] if warned else [])


def test_word_passages_that_may_not_fit_are_told_to_cap_their_tokens():
    # before: the hint was to lower size to 49 words (at 1.3 tokens a word), which codes and numbers pass
    from kubepipe.plan.pipeline_checks import pipeline_checks
    from kubepipe.spec.loader import load_pipeline_text

    loaded = load_pipeline_text(TOKENS.format(chunk="unit: words, size: 64", embed="max_length: 64"), "t.yaml")
    refs = {n: s.component for n, s in loaded.spec.steps.items()}
    (warning,) = pipeline_checks(loaded.spec, refs, loaded.locator.issue)[1]
    assert warning.hint == ("cap their tokens (`max_tokens: 62`: counted by base_model's tokenizer), chunk by tokens "
                            "(`unit: tokens, size: 62`), or raise max_length to 86 (the packaged MiniLM reads up to "
                            "512)")


DEPLOY_WITHOUT_VERSION = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: shop}}
steps:
  load: {{component: load-data, with: {{source: "gs://b/train.csv"}}}}
  train:
    component: train-torch
    inputs: {{dataset: "${{steps.load.outputs.dataset}}"}}
    with: {{text_column: description, label_column: category}}
{register}  deploy:
    component: deploy
    inputs: {{model: "${{steps.train.outputs.model}}"}}
    with: {{model_name: {name}{version}}}
"""


def test_a_deploy_of_the_version_this_run_registers_needs_a_register_step(tmp_path):
    """A deploy step without `version` serves the version this run registered; with no register-model step
    for its model (README's example pipeline) validate passed and the run failed after training: 'version:
    not given, and run ... registered no version of 'shop''."""
    path = tmp_path / "p.yaml"
    register = ("  register:\n    component: register-model\n    inputs: {model: \"${steps.train.outputs.model}\", "
                "evaluation: \"${steps.train.outputs.metrics}\"}\n    with: {model_name: REG}\n")
    path.write_text(DEPLOY_WITHOUT_VERSION.format(register="", name="shop", version=""))
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    issue = _issue_at(info.value.issues, "steps.deploy")
    assert issue is not None and (issue.line, issue.severity) == (10, "error")
    assert "no register-model step here registers it" in issue.message
    assert "version: ${steps.<register step>.outputs.version}" in issue.hint
    path.write_text(DEPLOY_WITHOUT_VERSION.format(register=register.replace("REG", "other"), name="shop", version=""))
    with pytest.raises(ValidationError, match="deploys the version of `shop` this run registers"):
        kubepipe.validate(path)
    for reg, version in [(register.replace("REG", "shop"), ""), (register.replace("with: {model_name: REG}", "with: {}"),
                                                               ""), ("", ", version: 3")]:
        path.write_text(DEPLOY_WITHOUT_VERSION.format(register=reg, name="shop", version=version))
        kubepipe.validate(path)  # registered here (the pipeline's name is the default), or a version given


def test_distillation_settings_without_a_teacher_are_named(tmp_path, monkeypatch):
    # `distill_alpha: 0.9` with no teacher input trained on the hard labels alone, as if it were not set
    monkeypatch.chdir(tmp_path)
    _frame().to_csv(tmp_path / "data.csv", index=False)
    path, _ = _write(tmp_path)
    text = path.read_text().replace("label_column: category}", "label_column: category, distill_alpha: 0.9}")
    path.write_text(text)
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(path)
    (issue,) = exc.value.issues
    assert issue.path == "steps.train.with.distill_alpha" and "has no `teacher` input" in issue.message
    path.write_text(text.replace('inputs: {dataset: "${steps.validate.outputs.dataset}"}',
                                 'inputs: {dataset: "${steps.validate.outputs.dataset}", '
                                 'teacher: "${steps.train0.outputs.model}"}').replace(
        "  train:\n", "  train0:\n    component: train-torch\n    inputs: {dataset: \"${steps.validate.outputs."
                      "dataset}\"}\n    with: {text_column: description, label_column: category}\n  train:\n"))
    kubepipe.validate(path)
    # a teacher weighed 0 is run over every row and ignored: said as a warning
    path.write_text(path.read_text().replace("distill_alpha: 0.9", "distill_alpha: 0"))
    (warned,) = [w for w in kubepipe.validate(path).warnings if w.path.startswith("steps.train.")]
    assert (warned.path, warned.severity) == ("steps.train.with.distill_alpha", "warning")
    assert warned.message.startswith("`distill_alpha: 0` gives the teacher's soft labels no weight: `train` trains")


def test_trigger_retrain_params_are_checked_against_the_training_pipeline_s_params(tmp_path):
    # `params: {epoch: 3}` validated, and the retrain failed in `kubepipe scheduler` when drift first fired
    import kubepipe

    (tmp_path / "train.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: train}\n"
        "params: {epochs: {type: int, default: 1}, note: {type: str, default: ''}}\n"
        "steps:\n  load: {component: load-data, with: {source: d.csv}}\n")
    (tmp_path / "monitor.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: monitor}\nsteps:\n  retrain:\n"
        "    component: trigger-retrain\n    inputs: {drift_detected: true}\n"
        "    with: {pipeline: train.yaml, params: {epoch: 3, note: 7}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "monitor.yaml")
    [issue] = exc.value.issues  # `note: 7` reaches its run as --param note=7: text
    assert (issue.path, issue.message, issue.hint) == (
        "steps.retrain.with.params.epoch", "train.yaml has no param `epoch`", "did you mean `epochs`?")
    (tmp_path / "monitor.yaml").write_text((tmp_path / "monitor.yaml").read_text().replace("epoch: 3", "epochs: 2.5"))
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "monitor.yaml")
    [issue] = exc.value.issues
    assert issue.path == "steps.retrain.with.params.epochs"
    assert issue.message.startswith("param `epochs` of train.yaml: expected int")


def test_trigger_retrain_without_a_param_the_training_pipeline_needs_is_located(tmp_path):
    # a training param without a default, left out of `params`: 'missing value for param' in `kubepipe scheduler`
    import kubepipe

    (tmp_path / "train.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: train}\nparams: {train_uri: {type: str}}\n"
        "steps:\n  load: {component: load-data, with: {source: '${params.train_uri}'}}\n")
    (tmp_path / "monitor.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: monitor}\nsteps:\n  retrain:\n"
        "    component: trigger-retrain\n    inputs: {drift_detected: true}\n    with: {pipeline: train.yaml}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "monitor.yaml")
    [issue] = exc.value.issues
    assert issue.path == "steps.retrain.with.pipeline"
    assert issue.message == ("train.yaml needs param(s) `train_uri` (no default), and its retrain would be started "
                             "without them")
    (tmp_path / "data.csv").write_text("a\n1\n")
    (tmp_path / "monitor.yaml").write_text((tmp_path / "monitor.yaml").read_text().replace(
        "{pipeline: train.yaml}", "{pipeline: train.yaml, params: {train_uri: data.csv}}"))
    kubepipe.validate(tmp_path / "monitor.yaml")


@pytest.mark.parametrize("target, sets", [("kubeflow", {"host": "http://127.0.0.1:1", "pipeline_root": "gs://b/r"}),
                                          ("vertex", {"project": "p", "region": "europe-west4",
                                                      "pipeline_root": "gs://b/r"})])
def test_a_local_path_in_retrain_params_is_refused_on_a_remote_target(tmp_path, target, sets):
    # validated, and the retrain's pods failed on a file only this machine has
    import kubepipe

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fresh").mkdir()
    template = "kfp-train" if target == "kubeflow" else "gs://b/train.yaml"
    (tmp_path / "monitor.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: monitor}\n"
        "params: {fresh: {type: str, default: data/new.csv}}\nsteps:\n  retrain:\n"
        "    component: trigger-retrain\n    inputs: {drift_detected: true}\n"
        f"    with: {{pipeline: {template}, params: {{train_uri: data/new.csv, folder: data/fresh, "
        "model: sentence-transformers/all-MiniLM-L6-v2, epochs: 3, base: gs://b/d.csv, other: '${params.fresh}'}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "monitor.yaml", target, sets=sets)
    assert [(i.path, i.line) for i in exc.value.issues] == [("steps.retrain.with.params.train_uri", 9),
                                                            ("steps.retrain.with.params.folder", 9)]
    issue = exc.value.issues[0]
    assert issue.message == (f"`train_uri` is a local path on this machine; the retrain trigger-retrain starts runs "
                             f"on {target}, whose pods cannot read it")
    assert "use a gs:// or s3:// URI" in issue.hint
    (tmp_path / "monitor.yaml").write_text((tmp_path / "monitor.yaml").read_text().replace(
        "train_uri: data/new.csv, folder: data/fresh", "train_uri: gs://b/new.csv"))
    compiled = kubepipe.compile(tmp_path / "monitor.yaml", target, sets=sets)
    # a param: submitting needs a gs:// value; and the profile sets no runtime image (load-data's)
    assert [w.path for w in compiled.warnings] == ["runtime_image", "params.fresh.default"]


INDEX_DEPLOY = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: rag}}
steps:
  emb: {{component: load-data, with: {{source: x.parquet}}}}
  index:
    component: build-index
    inputs: {{embeddings: "${{steps.emb.outputs.dataset}}"}}
  deploy:
    component: deploy
    inputs: {{model: "${{steps.index.outputs.index}}"}}
    with: {{model_name: rag, version: 1{extra}}}
"""


@pytest.mark.parametrize("extra, paths", [
    ("", []),
    (", serving: {runtime: torch, precision: auto, gpu: 1}", []),
    (", serving: {runtime: onnx, precision: int8}", ["steps.deploy.with.serving.runtime",
                                                     "steps.deploy.with.serving.precision"]),
    (", serving: {precision: '${params.p}'}", []),  # known at run time only: serve says so then
    (", serving: {log: {sink: 'file:///tmp/s', sample: 1.0}}", ["steps.deploy.with.serving.log"]),
    (", runtime: triton", ["steps.deploy.with.runtime"])])
def test_an_index_deployed_with_a_classifier_s_serving_options_is_an_error(extra, paths):
    """`kubepipe serve` refuses ONNX, Triton, a chosen precision and the prediction log for a retrieval index, so a
    deploy of one with them validated and failed at the deploy step, after the whole build."""
    from kubepipe.plan.pipeline_checks import pipeline_checks
    from kubepipe.spec.loader import load_pipeline_text

    loaded = load_pipeline_text(INDEX_DEPLOY.format(extra=extra), "r.yaml")
    refs = {n: s.component for n, s in loaded.spec.steps.items()}
    errors, _warnings = pipeline_checks(loaded.spec, refs, loaded.locator.issue)
    assert [e.path for e in errors] == paths
    for e in errors:
        assert "`deploy` deploys `index`'s retrieval index, which is served as it is" in e.message


INDEX_COLUMNS = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: rag}}
steps:
  docs: {{component: load-data, with: {{source: catalogue.csv}}}}
  chunk:
    component: chunk-documents
    inputs: {{documents: "${{steps.docs.outputs.dataset}}"}}
    with: {{text_column: text, id_column: merchant_id{keep}}}
"""


@pytest.mark.parametrize("header, keep, warned", [
    ("merchant_id,text,name,ownerEmail,api_key,city", "", "`ownerEmail`, `api_key`"),
    ("merchant_id,text,name,owner_phone,city", ", keep_columns: []", "`owner_phone`"),  # [] keeps every column
    ("merchant_id,text,name,owner_phone,city", ", keep_columns: [name, city]", None),
    ("merchant_id,text,name,city,country", "", None)])
def test_an_index_copying_sensitive_catalogue_columns_by_default_is_a_warning(tmp_path, header, keep, warned):
    from kubepipe.plan.pipeline_checks import pipeline_checks
    from kubepipe.spec.loader import load_pipeline_text

    (tmp_path / "catalogue.csv").write_text(header + "\n" + ",".join(["x"] * len(header.split(","))) + "\n")
    loaded = load_pipeline_text(INDEX_COLUMNS.format(keep=keep), str(tmp_path / "t.yaml"))
    refs = {n: s.component for n, s in loaded.spec.steps.items()}
    errors, warnings = pipeline_checks(loaded.spec, refs, loaded.locator.issue, base_dir=tmp_path)
    assert errors == []
    if warned is None:
        assert warnings == []
        return
    (w,) = warnings
    assert f"so {warned} would be stored in the index and returned in every hit" in w.message
    assert "keep_columns: [name, city]" in (w.hint or "")


TABULAR_GATE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: tab}}
params:
  arch: {{type: str, default: tabular-mlp}}
steps:
  train:
    component: train-torch
    inputs: {{dataset: "gs://b/train.parquet"}}
    with: {{architecture: {arch}, feature_columns: [x0, x1]}}
  evaluate:
    component: evaluate
    inputs: {{model: "${{steps.train.outputs.model}}", holdout: "gs://b/holdout.parquet"}}
    with:
      baseline: none
      thresholds: {{p99_ms: {{max: 10}}, tokens_per_s: {{min: 100}}}}
"""


@pytest.mark.parametrize("arch, refused", [("tabular-mlp", True), ('"${params.arch}"', True),
                                           ("text-classifier", False), ("my_pkg.models:Net", False)])
def test_tokens_per_s_of_a_tabular_model_is_refused_at_validate(arch, refused):
    """A tabular row counted as a token: `tokens_per_s: {min: N}` validated for a tabular-mlp and gated on rows/s."""
    from kubepipe.plan.pipeline_checks import pipeline_checks
    from kubepipe.spec.loader import load_pipeline_text

    loaded = load_pipeline_text(TABULAR_GATE.format(arch=arch), "t.yaml")
    refs = {n: s.component for n, s in loaded.spec.steps.items()}
    errors, _warnings = pipeline_checks(loaded.spec, refs, loaded.locator.issue)
    if not refused:
        assert errors == []
        return
    (err,) = errors
    assert err.path == "steps.evaluate.with.thresholds.tokens_per_s"
    assert "a tabular model's rows of numbers have none" in err.message
    assert "`train` trains `architecture: tabular-mlp`" in err.message and "p50_ms / p99_ms" in err.hint


GUARDRAIL = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: guard}}
steps:
  data: {{component: load-data, with: {{source: "gs://b/train.csv"}}}}
  train:
    component: train-torch
    inputs: {{dataset: "${{steps.data.outputs.dataset}}"}}
    with: {{text_column: description, label_column: category}}
  guardrail:
    component: validate-outputs
    inputs: {{model: "${{steps.train.outputs.model}}"{probes}}}
    with: {{rules: {{pii: [pan]}}{inline}}}
"""


@pytest.mark.parametrize("probes, inline, path", [
    ("", "", "steps.guardrail"), ("", ", inline_probes: []", "steps.guardrail.with.inline_probes"),
    (', probes: "${steps.data.outputs.dataset}"', "", None), ("", ", inline_probes: [SHELL OIL]", None)])
def test_a_guardrail_without_probes_is_refused_before_the_run(tmp_path, probes, inline, path):
    # before: validate passed, and the step failed when it ran ('validate-outputs has no probes'), after training
    f = tmp_path / "p.yaml"
    f.write_text(GUARDRAIL.format(probes=probes, inline=inline))
    if path is None:
        kubepipe.validate(f)
        return
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(f)
    (issue,) = exc.value.issues
    assert issue.path == path and issue.message == ("`guardrail` has no probes (no `probes` input and no "
                                                    "inline_probes): it would fail when it runs, after the steps "
                                                    "before it")
    assert issue.hint.startswith('wire a dataset: `inputs: {probes: "${steps.<step>.outputs.dataset}"}`')


def test_a_quoted_whole_number_for_a_float_input_is_written_as_the_user_would(tmp_path):
    # `cooldown_hours: '24'` was told to `write 24.0`; a float input takes 24 as written
    import kubepipe

    (tmp_path / "train.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: train}\n"
        "steps:\n  load: {component: load-data, with: {source: d.csv}}\n")
    (tmp_path / "monitor.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: monitor}\nsteps:\n  retrain:\n"
        "    component: trigger-retrain\n    inputs: {drift_detected: true}\n"
        "    with: {pipeline: train.yaml, cooldown_hours: '24'}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "monitor.yaml")
    [issue] = exc.value.issues
    assert issue.path == "steps.retrain.with.cooldown_hours"
    assert issue.hint == "unquote it: in quotes, YAML reads '24' as text; write 24", issue
