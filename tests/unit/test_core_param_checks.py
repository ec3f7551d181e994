"""A `${params.x}` in `with:` is checked like a literal once its value is known: the default at
validate, `--param` before a local run starts (both used to fail inside the step, after the steps
before it had run)."""

from __future__ import annotations

import json

import pytest

import kubepipe
from kubepipe.errors import UserError, ValidationError

PIPELINE = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: p}
params:
  data: {type: str, default: data.csv}
  epochs: {type: int, default: EPOCHS}
  name: {type: str, default: NAME}
steps:
  load:
    component: load-data
    with: {source: "${params.data}"}
  train:
    component: train-torch
    inputs: {dataset: "${steps.load.outputs.dataset}"}
    with: {architecture: text-classifier, text_column: t, label_column: l, epochs: "${params.epochs}"}
  evaluate:
    component: evaluate
    inputs: {model: "${steps.train.outputs.model}", holdout: "${steps.load.outputs.dataset}"}
    with: {model_name: "${params.name}", label_column: l, thresholds: {f1_macro: {min: 0.5}}}
"""


def _write(tmp_path, epochs="4", name="good-name"):
    (tmp_path / "data.csv").write_text("t,l\na,b\n")
    p = tmp_path / "p.yaml"
    p.write_text(PIPELINE.replace("EPOCHS", epochs).replace("NAME", name))
    return p


def test_a_param_default_the_step_refuses_is_named_at_the_default(tmp_path):
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(_write(tmp_path, epochs="-3", name="'a/b'"))
    by_path = {i.path: i for i in exc.value.issues}
    assert set(by_path) == {"params.epochs.default", "params.name.default"}  # the path param is left alone
    epochs = by_path["params.epochs.default"]
    assert "`epochs` must be an integer >= 1, got -3" in epochs.message
    assert "steps.train.with.epochs reads this param" in epochs.message and epochs.line == 6
    assert "bad model name 'a/b'" in by_path["params.name.default"].message


def test_good_defaults_still_validate(tmp_path):
    assert kubepipe.validate(_write(tmp_path)).step("train").checked_with["epochs"] == "${params.epochs}"


def test_a_param_value_the_step_refuses_stops_the_run_before_any_step(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(UserError) as exc:
        kubepipe.run(_write(tmp_path), params={"epochs": "-3"}, runs_dir=runs, home=tmp_path / "home")
    assert str(exc.value) == ("params['epochs']=-3: steps.train.with.epochs: `epochs` must be an integer >= 1, "
                              "got -3")
    assert not runs.exists()  # nothing ran, nothing was written



def test_a_credential_given_with_param_is_refused_as_a_credential_default_is(tmp_path):
    """`--param data=postgres://u:pw@h/db` ran, and run.json kept the password in plain text, while the same
    value as the param's default is refused by validate."""
    runs = tmp_path / "runs"
    with pytest.raises(UserError) as exc:
        kubepipe.run(_write(tmp_path), params={"data": "postgres://u:pw@h/db"}, runs_dir=runs, home=tmp_path / "home")
    assert str(exc.value).startswith("params['data']: a param value holds a credential (a URL with a password); "
                                     "params are recorded with every run (run.json, `kubepipe runs show`); "
                                     "give the step `env: {VAR: {secret: ")
    assert "pw" not in str(exc.value) and not runs.exists()


@pytest.mark.parametrize("value, kind", [
    ("--db-password=Hunter2Hunter2x", "a credential in its text: a `password=<value>` pair or a credential flag's value"),
    ("Hunter2Hunter2!", "the value of a credential-named environment variable"),
])
def test_a_param_holding_what_runs_show_hides_is_refused(tmp_path, monkeypatch, value, kind):
    # run.json kept `--param data=--db-password=...` and `--param data=$DB_PASSWORD` as given (only `runs show`
    # hid them): a later `cat run.json`, a copied run folder, a CI artifact held the password
    monkeypatch.setenv("DB_PASSWORD", "Hunter2Hunter2!")
    runs = tmp_path / "runs"
    with pytest.raises(UserError) as exc:
        kubepipe.run(_write(tmp_path), params={"data": value}, runs_dir=runs, home=tmp_path / "home")
    assert str(exc.value).startswith(f"params['data']: a param value holds a credential ({kind}); ")
    assert "Hunter2" not in str(exc.value) and not runs.exists()

def test_a_reference_nested_in_with_is_checked_and_blamed_on_its_param():
    from types import SimpleNamespace

    from kubepipe.components.checks import CheckIssue
    from kubepipe.plan.param_checks import param_value_issues

    def check(values):  # refuses a min above 1 and, unrelated to any param, a missing metric
        found = [CheckIssue(("metric",), "no metric")]
        if values["thresholds"]["f1"]["min"] > 1:
            found.append(CheckIssue(("thresholds", "f1"), "min above 1"))
        return found

    info = SimpleNamespace(check=check, paths=(), local_paths=())
    issues = param_value_issues(info, {"thresholds": {"f1": {"min": "${params.m}"}}}, {"m": 1.5})
    assert [(i.param, i.path, i.message) for i in issues] == [("m", ("thresholds", "f1"), "min above 1")]
    assert param_value_issues(info, {"thresholds": {"f1": {"min": "${params.m}"}}}, {"m": 0.5}) == []


LOOP = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: loop}
params:
  regions: {type: list, default: [{name: eu}, {name: us}]}
steps:
  show:
    component: ops:say
    foreach: "${params.regions}"
    with: {message: "${item.name}"}
"""


@pytest.mark.parametrize("value, reason", [
    ('[{"name": "eu"}, {"code": "us"}]',
     "steps.show.foreach: `${item.name}`: item 1 of the value has no field `name` (it has: code)"),
    ('[{"name": "eu"}, "us"]',
     "steps.show.foreach: `${item.name}`: item 1 of the value is 'us', not a mapping with a `name` field; "
     "use `${item}` for the item itself"),
])
def test_a_loop_param_value_whose_items_lack_the_field_stops_the_run_before_any_step(tmp_path, value, reason):
    p = tmp_path / "loop.yaml"
    p.write_text(LOOP)
    runs = tmp_path / "runs"
    with pytest.raises(UserError) as exc:
        kubepipe.run(p, params={"regions": value}, runs_dir=runs, home=tmp_path / "home")
    assert str(exc.value) == f"params['regions']={json.loads(value)!r}: {reason}"  # the value as read
    assert not runs.exists()


def test_a_loop_param_value_whose_items_do_not_fit_a_whole_item_input_stops_the_run(tmp_path):
    # KFP hands a 3 to a str input as the float 3.0: the step failed, or worse, used "3.0"
    p = tmp_path / "loop.yaml"
    p.write_text(LOOP.replace("[{name: eu}, {name: us}]", "[eu, us]").replace("${item.name}", "${item}"))
    runs = tmp_path / "runs"
    with pytest.raises(UserError) as exc:
        kubepipe.run(p, params={"regions": '["eu", 3]'}, runs_dir=runs, home=tmp_path / "home")
    assert str(exc.value) == ("params['regions']=['eu', 3]: steps.show.foreach: `${item}`: item 1 of the value is 3, "
                              "but `message` expects str")
    assert not runs.exists()


def test_a_loop_param_value_is_checked_before_a_submit(tmp_path):
    from kubepipe.backends.packaging.pipeline import PipelinePackage

    p = tmp_path / "loop.yaml"
    p.write_text(LOOP)
    compiled = kubepipe.compile(p, "kubeflow", sets=["host=http://127.0.0.1:1", "pipeline_root=minio://b/r"])
    package = PipelinePackage.from_compiled(compiled)
    with pytest.raises(UserError, match=r"^params\['regions'\]=\[\{'code': 'us'\}\]: steps\.show\.foreach: "
                                        r"`\$\{item\.name\}`: item 0 of the value has no field `name`"):
        package.coerce_params({"regions": '[{"code": "us"}]'})
    assert package.coerce_params({"regions": '[{"name": "us"}]'}) == {"regions": [{"name": "us"}]}


WHOLE = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: whole}
params:
  hnsw: {type: dict, default: HNSW}
steps:
  load:
    component: load-data
    with: {source: gs://b/passages.csv}
  embed:
    component: embed
    inputs: {passages: "${steps.load.outputs.dataset}"}
  index:
    component: build-index
    inputs: {embeddings: "${steps.embed.outputs.embeddings}"}
    with: {hnsw: "${params.hnsw}"}
"""


def test_a_whole_dict_param_feeds_a_builtins_mapping_and_its_values_are_checked(tmp_path):
    """`hnsw: ${params.hnsw}` was refused as "must be a mapping" (the check saw the reference's text)."""
    from kubepipe.backends.packaging.pipeline import PipelinePackage

    p = tmp_path / "p.yaml"
    p.write_text(WHOLE.replace("HNSW", "{connectivity: 16}"))
    sets = ["host=http://127.0.0.1:1", "pipeline_root=minio://b/r"]
    package = PipelinePackage.from_compiled(kubepipe.compile(p, "kubeflow", sets=sets))
    with pytest.raises(UserError) as exc:
        package.coerce_params({"hnsw": '{"connectivity": 16.5}'})
    assert str(exc.value) == ("params['hnsw']={'connectivity': 16.5}: steps.index.with.hnsw.connectivity: "
                              "must be a whole number from 2 to 256, got 16.5")
    p.write_text(WHOLE.replace("HNSW", "{connectivity: 1}"))
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(p, "kubeflow", sets=sets)
    [issue] = exc.value.issues
    assert issue.path == "params.hnsw.default"
    assert issue.message == ("must be a whole number from 2 to 256, got 1 (steps.index.with.hnsw.connectivity reads "
                             "this param)")


def test_a_credential_in_a_resumed_run_s_record_is_not_blamed_on_a_param_flag(tmp_path, monkeypatch):
    """`--resume OLD` of a run recorded before credentials in params were refused said '--param data: ...', a flag
    the user never passed; it names the resumed run's recorded value, and a value given now replaces it."""
    from kubepipe.backends.local.resume import run_params

    compiled = kubepipe.compile(_write(tmp_path))
    earlier = {"data": "postgres://u:pw@h/db", "epochs": 2}
    with pytest.raises(UserError) as exc:
        run_params(compiled, {}, earlier, "p-20260101-old")
    assert str(exc.value).startswith(
        "param data: the value run p-20260101-old recorded (taken by resume=) holds a credential (a URL with a "
        "password), which params may no longer hold; pass `params={'data': ...}` without it (a value given now "
        "replaces the recorded one), or start a fresh run without resume=; give the step `env: {VAR: {secret: ")
    assert "pw" not in str(exc.value)
    monkeypatch.chdir(tmp_path)  # a file that is there: one that is not is refused (test_local_param_files.py)
    assert run_params(compiled, {"data": "data.csv"}, earlier, "p-20260101-old")["data"] == str(tmp_path / "data.csv")
    with pytest.raises(UserError, match=r"^params\['data'\]: a param value holds a credential"):
        run_params(compiled, {"data": "postgres://u:pw2@h/db"}, earlier, "p-20260101-old")


def test_a_scheduled_time_that_is_no_time_names_the_param_not_the_step_s_as_of(tmp_path):
    """`--param scheduled_time=yesterday` ran the steps before load and failed there with 'as_of 'yesterday' is not
    a timestamp', an input the user never wrote; a KFP schedule's own placeholder is still taken."""
    from kubepipe.backends.schedules.kubeflow import KFP_SCHEDULED_TIME_MACRO
    from kubepipe.components.data.checks import check_load

    (tmp_path / "data.csv").write_text("t,ts\na,2026-03-01T00:00:00Z\n")
    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
                 "params: {scheduled_time: {type: str, default: ''}}\nsteps:\n  load:\n    component: load-data\n"
                 "    with: {source: data.csv, time_column: ts, window: 7d, as_of: '${params.scheduled_time}'}\n")
    runs = tmp_path / "runs"
    with pytest.raises(UserError) as exc:
        kubepipe.run(p, params={"scheduled_time": "yesterday"}, runs_dir=runs, home=tmp_path / "home")
    assert str(exc.value) == ("params['scheduled_time']='yesterday': steps.load.with.as_of: 'yesterday' is not a "
                              "timestamp; use ISO 8601, e.g. 2026-03-02T03:00:00Z (UTC unless it has an offset)")
    assert not runs.exists()
    # `date -u '+%F %T UTC'`'s form ran before the one rule (d034a76) refused it: pandas reads it, the step too
    for fine in ("2026-03-02T03:00:00Z", "2026-03-02", KFP_SCHEDULED_TIME_MACRO, "", "2026-03-02 03:00:00 UTC",
                 "2026-03-02 03:00:00 utc", "2026-03-02T03:00 GMT"):
        assert check_load({"source": "x.csv", "time_column": "ts", "window": "7d", "as_of": fine}) == []


def test_an_as_of_pandas_cannot_read_is_refused_by_the_one_rule_not_misnamed_by_the_step():
    # `as_of: 2026-W10-1` (an ISO week date) passed the check, and the step said 'not a time pandas can hold
    # (years 1677 to 2262)'; `9999-01-01` was 'OutOfBoundsDatetime' there
    from kubepipe.components.data.checks import check_load
    from kubepipe.components.data.load import _as_of
    from kubepipe.components.errors import DataError

    for bad, why in (("2026-W10-1", "is not a calendar date and time"), ("9999-01-01", "is outside the years 1678 "
                                                                                      "to 2261")):
        [issue] = check_load({"source": "x.csv", "time_column": "ts", "window": "7d", "as_of": bad})
        assert issue.message == f"{bad!r} {why}"
        with pytest.raises(DataError, match=f"as_of '{bad}' {why}; use ISO 8601"):
            _as_of(bad, None)


def test_a_run_value_meets_the_checks_across_steps_before_the_run_starts(tmp_path, monkeypatch):
    """`--param cols='["a", "spnd"]'` for `columns: ${params.cols}` started the run, which failed at the load step
    ('missing column `spnd`'), while the same list as the default was a validate error; so was a `--param src=` file
    without the column a later step names."""
    from kubepipe.backends.local.resume import run_params

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("text,label\na,x\n")
    (tmp_path / "other.csv").write_text("text,kind\na,x\n")
    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
        "params:\n  src: {type: str, default: data.csv}\n  cols: {type: list, default: [text, label]}\n"
        "steps:\n  load:\n    component: load-data\n    with: {source: '${params.src}', columns: '${params.cols}'}\n"
        "  train:\n    component: train-torch\n    inputs: {dataset: '${steps.load.outputs.dataset}'}\n"
        "    with: {text_column: text, label_column: label}\n")
    compiled = kubepipe.compile(tmp_path / "p.yaml")
    with pytest.raises(UserError) as exc:
        run_params(compiled, {"cols": ["text", "lable"]})
    assert str(exc.value).splitlines() == [  # kubepipe.run's form of the value (the CLI's: --param cols=...)
        "params['cols']=['text', 'lable']: steps.load.with.columns[1]: column `lable` is not in data.csv; did you "
        "mean `label`?",
        "steps.train.with.label_column: column `label` is not in data.csv; its columns: text (with the params given: "
        "cols)"]
    with pytest.raises(UserError) as exc:
        run_params(compiled, {"src": "other.csv", "cols": ["text", "kind"]})
    assert str(exc.value) == (f"steps.train.with.label_column: column `label` is not in {tmp_path / 'other.csv'}; "
                              "its columns: text, kind (with the params given: cols, src)")
    assert run_params(compiled, {"cols": ["label", "text"]}) == {"cols": ["label", "text"]}


def test_an_expectation_on_a_column_the_run_s_data_lacks_is_left_to_the_data_gate(tmp_path, monkeypatch):
    """The flagship's demo runs with merchants_bad.csv (`amt` for `amount`) to show the data gate failing the run at
    its validate step, with a report; the run-time check across steps refused that run before it started (no report,
    no run record). A validate-data expectation is the gate's to judge; the other steps' columns are still asked."""
    from kubepipe.backends.local.resume import run_params

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("text,label,amount\na,x,1\n")
    (tmp_path / "bad.csv").write_text("text,label,amt\na,x,1\n")
    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
        "params:\n  src: {type: str, default: data.csv}\n"
        "steps:\n  load:\n    component: load-data\n    with: {source: '${params.src}'}\n"
        "  check:\n    component: validate-data\n    inputs: {data: '${steps.load.outputs.dataset}'}\n"
        "    with: {expectations: [{expect_column_values_to_be_between: {column: amount, min_value: 0}}]}\n"
        "  train:\n    component: train-torch\n    inputs: {dataset: '${steps.load.outputs.dataset}'}\n"
        "    with: {text_column: text, label_column: label}\n")
    compiled = kubepipe.compile(tmp_path / "p.yaml")
    assert run_params(compiled, {"src": "bad.csv"}) == {"src": str(tmp_path / "bad.csv")}
    (tmp_path / "worse.csv").write_text("text,kind,amt\na,x,1\n")
    with pytest.raises(UserError, match=r"steps.train.with.label_column: column `label` is not in"):
        run_params(compiled, {"src": "worse.csv"})


def test_an_empty_load_source_is_refused_at_validate_and_before_a_run(tmp_path):
    """`source: ""` (or a param whose default or run value is empty) validated, and the load step failed at run time
    with 'no data source given', after the steps before it had run."""
    literal = _write(tmp_path)
    literal.write_text(literal.read_text().replace('source: "${params.data}"', 'source: "  "'))
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(literal)
    (issue,) = exc.value.issues
    assert (issue.path, issue.message) == ("steps.load.with.source", "`source` is empty: load-data has no file to read")
    assert issue.line == 11 and "a URI (gs://, s3://, https://)" in issue.hint

    default = _write(tmp_path)
    default.write_text(default.read_text().replace("default: data.csv", 'default: ""'))
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(default)
    (issue,) = exc.value.issues
    assert issue.message == "param `data` is empty: load-data has no file to read"
    assert "or pass params={'data': 'data/train.csv'}" in issue.hint

    runs = tmp_path / "runs"
    with pytest.raises(UserError) as exc:
        kubepipe.run(_write(tmp_path), params={"data": ""}, runs_dir=runs, home=tmp_path / "home")
    assert str(exc.value).startswith("params['data']='': steps.load.with.source: param `data` is empty: load-data has "
                                     "no file to read")
    assert not runs.exists()  # nothing ran, nothing was written


@pytest.mark.parametrize("written, meant", [("gs:/bucket/d.csv", "gs://bucket/d.csv"), ("file:/abs/d.csv",
                                                                                         "file:///abs/d.csv")])
def test_a_uri_with_one_slash_given_with_param_is_refused_before_a_run_or_a_submit(tmp_path, capsys, written, meant):
    """`--param data=gs:/bucket/d.csv` ran and load failed with 'no such file gs:/bucket/d.csv' (read as a relative
    path), while the same value as a default or written in `with:` is refused at validate (9737008a)."""
    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.cli.app import main

    p, runs = _write(tmp_path), tmp_path / "runs"
    said = f"steps.load: its `source` is neither a URI (a scheme is followed by `//`) nor a path: no step would " \
           f"find it; write {meant}"
    with pytest.raises(UserError) as exc:
        kubepipe.run(p, params={"data": written}, runs_dir=runs, home=tmp_path / "home")
    assert str(exc.value) == f"params['data']={written!r}: {said}" and not runs.exists()
    home = tmp_path / "cli-home"
    with pytest.raises(SystemExit) as code:
        main(["run", str(p), "--param", f"data={written}", "--home", str(home)])
    assert code.value.code == 2 and f"--param data={written}: {said}" in " ".join(capsys.readouterr().err.split())
    assert not (home / "runs").exists()
    sets = ["host=http://127.0.0.1:1", "pipeline_root=minio://b/r"]
    package = PipelinePackage.from_compiled(kubepipe.compile(p, "kubeflow", sets=sets))
    with pytest.raises(UserError, match="neither a URI"):
        package.coerce_params({"data": written})
