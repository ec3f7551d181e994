"""GCP labels and ids: one sanitiser, property-tested against the documented label rules.

Rules (cloud.google.com resource-manager labels overview; Vertex PipelineJob.labels): keys and
values of lowercase letters, digits, `_` and `-`, at most 63 characters; a key starts with a
letter. kubepipe writes ASCII only (decision in kubepipe/labels.py).
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubepipe.clients import eq_filter
from kubepipe.labels import gcp_id, gcp_label, gcp_labels

KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
VALUE = re.compile(r"[a-z0-9_-]{0,63}")


@given(st.text())
def test_any_text_becomes_a_valid_key_and_value(text):
    key, value = gcp_label(text, key=True), gcp_label(text)
    assert KEY.fullmatch(key), key
    assert VALUE.fullmatch(value), value
    assert gcp_label(key, key=True) == key and gcp_label(value) == value  # idempotent


@given(st.from_regex(KEY, fullmatch=True), st.from_regex(VALUE, fullmatch=True))
def test_valid_labels_pass_unchanged(key, value):
    assert gcp_labels({key: value}) == {key: value}


@given(st.text(), st.integers(5, 128))
def test_ids_start_with_a_letter_and_fit(text, n):
    out = gcp_id(text, n)
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", out) and len(out) <= n


def test_unicode_does_not_pass_through():
    # the deploy copy used str.isalnum(), which let `ü` and `東` into a Vertex label
    assert gcp_labels({"Team": "Zürich", "東京": "Ω"}) == {"team": "zurich", "k---": "-"}


def test_vertex_job_labels_use_it():
    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.backends.remote.vertex import job_labels

    pkg = PipelinePackage.__new__(PipelinePackage)
    object.__setattr__(pkg, "name", "Mérchant")
    object.__setattr__(pkg, "content_hash", "sha256:" + "ab" * 32)
    object.__setattr__(pkg, "labels", {})
    labels = job_labels(pkg, {"labels": {"Cost Center": "R&D ü"}, "experiment": "Exp 1"}, {"9lives": "x"})
    assert all(KEY.fullmatch(k) and VALUE.fullmatch(v) for k, v in labels.items()), labels
    assert labels["cost-center"] == "r-d-u" and labels["kubepipe-pipeline"] == "merchant"


def test_kfp_filter_is_the_v2beta1_predicate():
    assert json.loads(eq_filter("display_name", 'a "b"')) == {
        "predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": 'a "b"'}]}


def test_metadata_labels_and_owner_reach_the_vertex_job(tmp_path):
    # metadata.labels and owner were validated, then dropped: no job label, nothing in the run record
    import kubepipe
    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.backends.remote.vertex import job_labels

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\n"
                 "metadata: {name: p, labels: {Team: Payments, team2: x}, owner: ana@example.com}\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    compiled = kubepipe.compile(p)
    assert compiled.plan.labels == {"Team": "Payments", "team2": "x", "owner": "ana@example.com"}
    labels = job_labels(PipelinePackage.from_compiled(compiled), {"labels": {"team": "profile", "cc": "1"}})
    assert labels["team"] == "payments" and labels["owner"] == "ana-example-com" and labels["cc"] == "1"
    assert labels["kubepipe-pipeline"] == "p"
    compiled.write(tmp_path / "p.ir.yaml")  # the IR kept no labels: a compiled file submitted lost them
    assert PipelinePackage.from_ir((tmp_path / "p.ir.yaml").read_text()).labels == compiled.plan.labels


class _Meta:
    def __init__(self, labels, owner=""):
        self.labels, self.owner = labels, owner

    def run_labels(self):
        return {**self.labels, **({"owner": self.owner} if self.owner else {})}


def _issue(path, message, hint=None, severity="error"):
    from kubepipe.errors import Issue

    return Issue(message, ".".join(path), hint=hint, severity=severity)


@given(st.dictionaries(st.text(max_size=70), st.text(max_size=70), max_size=5))
def test_validate_warns_at_each_label_a_vertex_job_would_carry_otherwise(labels):
    """A label Vertex cannot take (`Team: Payments`, `équipe`, 70 characters) was rewritten at submit, unsaid."""
    from kubepipe.plan.label_checks import label_issues

    errors, warnings = label_issues(_Meta(labels), {}, "vertex", _issue)
    assert errors == []
    assert {w.path for w in warnings} == {f"metadata.labels.{k}" for k, v in labels.items()
                                          if not (KEY.fullmatch(k) and VALUE.fullmatch(v))}
    assert label_issues(_Meta(labels), {}, "local", _issue) == ([], [])  # local runs record them as written


def test_a_label_vertex_rewrites_is_a_located_warning_and_too_many_an_error(tmp_path):
    import pytest

    import kubepipe
    from kubepipe.errors import ValidationError

    p = tmp_path / "p.yaml"
    head = "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata:\n  name: p\n  labels: {Team: Payments, ok: x}\n"
    p.write_text(head + "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    prof = {"project": "p", "region": "europe-west4", "pipeline_root": "gs://b/r",
            "runtime_image": "i@sha256:" + "a" * 64}
    (w,) = kubepipe.validate(p, "vertex", sets=prof).warnings
    assert w.format() == (f"{p}:5:12: metadata.labels.Team: a Vertex job carries this label as `team: payments`; "
                          "Vertex labels are lowercase letters, digits, `_` and `-` (kubepipe writes ASCII), at most "
                          "63 characters, a key starting with a letter; write `team: payments` here so every target "
                          "keeps the same label")
    many = ", ".join(f"l{i}: v" for i in range(56))
    p.write_text(head.replace("ok: x", many) + "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(p, "vertex", sets={**prof, "labels": {"cc": "1", "dd": "2"}})
    (issue,) = exc.value.issues
    assert issue.path == "metadata.labels" and issue.message == (
        "59 labels (with the profile's 2): a Vertex job takes at most 64, and kubepipe and Vertex use 6 of them")
    assert issue.hint == "keep at most 58: drop 1"


@given(st.dictionaries(st.text(), st.text(), max_size=4))
def test_the_ir_header_gives_back_any_labels_on_one_comment_line(labels):
    from hypothesis import assume

    from kubepipe.labels import ir_labels, labels_header
    from kubepipe.secrets import label_secrets

    assume(not list(label_secrets(labels, ())))  # those are refused (next test)
    line = labels_header(labels)
    assert line == "" if not labels else (line.startswith("# labels: ") and line.count("\n") == 1)
    assert len(line.splitlines()) == (1 if labels else 0)  # no character of a label ends the comment
    assert ir_labels("# Compiled by kubepipe\n" + line + "pipelineInfo: {name: p}\n") == labels


def test_a_compiled_files_header_label_holding_a_credential_is_refused_naming_the_file_and_key():
    """ir_labels read a hand-edited `# labels:` header without the label credential rule: submitting the file
    (PipelinePackage.from_ir) sent `password: hunter2hunter2` to the Vertex job's labels."""
    from kubepipe.backends.packaging.pipeline import PipelinePackage
    from kubepipe.errors import UserError
    from kubepipe.labels import ir_labels, labels_header

    text = labels_header({"team": "ml", "password": "hunter2hunter2"}) + "pipelineInfo: {name: p}\n"
    with pytest.raises(UserError) as exc:
        ir_labels(text, source="p.ir.yaml")
    message = str(exc.value)
    assert message.startswith("p.ir.yaml: its `# labels:` header line: label `password`: a label holds a credential")
    assert "drop it from that line" in message and "hunter2" not in message
    with pytest.raises(UserError, match="compiled pipeline: .* label `password`"):
        PipelinePackage.from_ir(text)
    assert ir_labels(labels_header({"team": "ml", "token_budget": "high"})) == {"team": "ml", "token_budget": "high"}


def test_a_compiled_files_header_line_that_is_no_json_object_is_refused_not_dropped():
    """A hand-edited `# labels:` line that was no JSON (or a list) gave the job none of its labels, unsaid."""
    from kubepipe.errors import UserError
    from kubepipe.labels import ir_labels

    with pytest.raises(UserError) as exc:
        ir_labels("# kubepipe\n# labels: {team: ml}\npipelineInfo: {name: p}\n", source="t.yaml")
    assert str(exc.value).startswith("t.yaml:2: its `# labels:` line is not JSON (")
    assert str(exc.value).endswith('regenerate the file with `kubepipe compile`, or write the line as '
                                   '# labels: {"team": "ml"}')
    with pytest.raises(UserError, match=r"^t.yaml:1: its `# labels:` line holds an array, not an object of labels"):
        ir_labels('# labels: ["team"]\n', source="t.yaml")
    assert ir_labels("# a comment\npipelineInfo: {name: p}\n# labels: {bad\n") == {}  # past the header: no IR's


@pytest.mark.parametrize("value, what", [("null", "null"), ("true", "true or false"), ("1", "a number"),
                                         ('{"password": "hunter2hunter2"}', "an object")])
def test_a_compiled_files_header_label_that_is_no_text_is_refused_not_misread(value, what):
    """`# labels: {"team": null}` gave the Vertex job `team: none` (read as the text `None`), `true` `True`."""
    from kubepipe.errors import UserError
    from kubepipe.labels import ir_labels

    with pytest.raises(UserError) as exc:
        ir_labels(f'# kubepipe\n# labels: {{"ok": "x", "team": {value}}}\n', source="t.yaml")
    assert str(exc.value) == (f"t.yaml:2: its `# labels:` line gives label `team` {what}, not text; regenerate the "
                              'file with `kubepipe compile`, or write the value in quotes: "team": "..."')


def test_validate_for_kubeflow_notes_that_its_runs_get_no_labels(tmp_path):
    """metadata.labels were dropped on kubeflow unsaid: only a schema description mentioned it."""
    import kubepipe

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p, owner: ana}\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    sets = {"host": "http://127.0.0.1:9", "pipeline_root": "minio://b/r"}
    assert "kubeflow target: Kubeflow Pipelines runs have no labels; metadata.labels, owner and the profile's " \
        "labels label local runs, Vertex jobs and a deploy step's KServe InferenceService only" \
        in kubepipe.validate(p, "kubeflow", sets=sets).notes
    p.write_text(p.read_text().replace(", owner: ana", ""))
    assert not [n for n in kubepipe.validate(p, "kubeflow", sets=sets).notes if "labels" in n]


def test_the_labels_description_counts_from_the_limits_not_a_copy_of_them():
    """metadata.labels' description said 'at most 58' in its own words while labels.py counts MAX_LABELS - OWN_LABELS:
    a new kubepipe label would leave the schema and docs/yaml-reference.md wrong."""
    import subprocess
    import sys

    code = ("import kubepipe.labels as l; l.OWN_LABELS = 9\n"
            "from kubepipe.spec.models import Metadata; print(Metadata.model_fields['labels'].description)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "at most 55 with the profile's" in out, out


def test_an_owner_vertex_rewrites_is_a_located_warning(tmp_path):
    """metadata.owner `ana@example.com` was sent to Vertex as `ana-example-com` unsaid (metadata.labels warned)."""
    import kubepipe

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata:\n  name: p\n  owner: ana@example.com\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    prof = {"project": "p", "region": "europe-west4", "pipeline_root": "gs://b/r",
            "runtime_image": "i@sha256:" + "a" * 64}
    (w,) = kubepipe.validate(p, "vertex", sets=prof).warnings
    assert w.format().startswith(f"{p}:5:3: metadata.owner: a Vertex job carries this label as "
                                 "`owner: ana-example-com`; Vertex labels are lowercase")
    p.write_text(p.read_text().replace("ana@example.com", "ana-example-com"))
    assert kubepipe.validate(p, "vertex", sets=prof).warnings == []
    assert kubepipe.validate(p, "local").warnings == []


def test_a_profile_label_vertex_rewrites_is_a_warning_in_the_profile_or_at_set(tmp_path):
    """The profile's labels (`Cost-Center: CC 42`) were rewritten for Vertex unsaid: only metadata.labels warned."""
    import kubepipe

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p, labels: {team: pay}}\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    prof = tmp_path / "vertex.yaml"
    prof.write_text("apiVersion: kubepipe/v1\nkind: Profile\ntarget: vertex\nproject: p\nregion: europe-west4\n"
                    "pipeline_root: gs://b/r\nruntime_image: i@sha256:" + "a" * 64 + "\n"
                    "labels:\n  Cost-Center: CC 42\n  Team: ML\n  ok: x\n")
    ws = kubepipe.validate(p, "vertex", profile=prof, sets=["labels.Zone=Zürich"]).warnings
    assert [w.format().split(";")[0] for w in ws] == [
        f"{prof}:9:3: labels.Cost-Center: a Vertex job carries this label as `cost-center: cc-42`",
        "sets=: labels.Zone: a Vertex job carries this label as `zone: zurich`"]  # `Team` is the pipeline's `team`


def test_a_number_given_to_a_label_by_set_says_how_to_quote_it_on_a_command_line(tmp_path):
    """`--set labels.cc=4200` said 'quote it', and `--set labels.cc="4200"` (the shell drops those quotes) was the
    same number again."""
    import pytest

    import kubepipe
    from kubepipe.errors import ValidationError

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    from kubepipe.arguments import cli_arguments

    with pytest.raises(ValidationError) as exc, cli_arguments():  # `kubepipe validate --set labels.cc=4200`
        kubepipe.validate(p, "local", sets=["labels.cc=4200"])
    (issue,) = exc.value.issues
    assert (issue.file, issue.path) == ("--set", "labels.cc")
    assert issue.hint.endswith("YAML reads it as the number 4200; on a command line, inside the shell's quotes: "
                               "--set 'labels.cc=\"4200\"'")
    with pytest.raises(ValidationError) as exc:  # the API's: no shell
        kubepipe.validate(p, "local", sets=["labels.cc=4200"])
    (issue,) = exc.value.issues
    assert (issue.file, issue.path) == ("sets=", "labels.cc") and issue.hint.endswith("as the number 4200")
    assert kubepipe.validate(p, "local", sets=['labels.cc="4200"']).name == "p"


def test_labels_given_whole_by_set_say_how_to_set_one_label_on_the_command_line(tmp_path):
    """`--set labels=[team=ml]` said "write `name: value` lines under it" (a YAML file's advice) on a command line."""
    import pytest

    import kubepipe
    from kubepipe.arguments import cli_arguments
    from kubepipe.errors import ValidationError

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    with pytest.raises(ValidationError) as exc, cli_arguments():
        kubepipe.validate(p, "local", sets=["labels=[team=ml]"])
    (issue,) = exc.value.issues
    assert (issue.file, issue.path) == ("--set", "labels")
    assert issue.hint == "give each entry its own dotted key: --set labels.team=ml"
    with pytest.raises(ValidationError) as exc:  # the API's sets=
        kubepipe.validate(p, "local", sets=["labels=ml"])
    assert exc.value.issues[0].hint == "give each entry its own dotted key: sets={'labels.team': 'ml'}"
    assert kubepipe.validate(p, "local", sets=["labels.team=ml"]).name == "p"


def test_a_label_given_a_list_by_set_says_how_to_quote_it_on_the_command_line(tmp_path):
    """`--set labels.team=[a]` was told YAML's `team: "..."`, which is no command line."""
    import pytest

    import kubepipe
    from kubepipe.arguments import cli_arguments
    from kubepipe.errors import ValidationError

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    with pytest.raises(ValidationError) as exc, cli_arguments():
        kubepipe.validate(p, "local", sets=["labels.team=[a]"])
    (issue,) = exc.value.issues
    assert (issue.file, issue.path) == ("--set", "labels.team")
    assert issue.message == "a label's value is one text, not a list"
    assert issue.hint == ("write one text, inside the shell's quotes if it holds brackets or braces: "
                          "--set 'labels.team=\"...\"'; a label per value needs a key each")
    with pytest.raises(ValidationError) as exc:  # the API's sets=
        kubepipe.validate(p, "local", sets={"labels": {"team": ["a"]}})
    assert exc.value.issues[0].hint == ("write one text, a str: sets={'labels.team': '...'}; a label per value "
                                        "needs a key each")
    assert kubepipe.validate(p, "local", sets=['labels.team="[a]"']).name == "p"


def test_a_set_label_spelt_otherwise_than_the_profiles_says_how_to_replace_it(tmp_path):
    """`--set labels.team=payments` over a profile's `Team: ML` said only 'labels `Team` and `team` are the same
    label ...; keep one', which a command line cannot do; it names the profile's key to set."""
    import pytest

    import kubepipe
    from kubepipe.arguments import cli_arguments
    from kubepipe.errors import ValidationError

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    prof = tmp_path / "local.yaml"
    prof.write_text("target: local\nlabels:\n  Team: ML\n")
    with pytest.raises(ValidationError) as exc, cli_arguments():
        kubepipe.validate(p, "local", profile=prof, sets=["labels.team=payments"])
    (issue,) = exc.value.issues
    assert (issue.file, issue.path) == ("--set", "labels.team")
    assert issue.message.startswith("`team` is the profile's label `Team` on Vertex")
    assert issue.hint == "to replace the profile's, name it as the profile does: --set labels.Team=payments"
    assert kubepipe.validate(p, "local", profile=prof, sets=["labels.Team=payments"]).name == "p"


def test_too_many_labels_in_the_profile_alone_are_an_error_in_the_profile(tmp_path):
    """A profile with 60 labels was an error at the pipeline's metadata.labels (line 3, where it had none)."""
    import pytest

    import kubepipe
    from kubepipe.errors import ValidationError

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p, owner: ana}\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    prof = tmp_path / "vertex.yaml"
    prof.write_text("apiVersion: kubepipe/v1\nkind: Profile\ntarget: vertex\nproject: p\nregion: europe-west4\n"
                    "pipeline_root: gs://b/r\nruntime_image: i@sha256:" + "a" * 64 + "\nlabels:\n"
                    + "".join(f"  l{i}: v\n" for i in range(60)))
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(p, "vertex", profile=prof)
    (issue,) = exc.value.issues
    assert issue.format() == (f"{prof}:8:1: labels: the profile's 60 labels (61 with the pipeline's): a Vertex job "
                              "takes at most 64, and kubepipe and Vertex use 6 of them; keep at most 58: drop 3")


def test_a_vertex_endpoint_the_deploy_step_makes_carries_the_runs_labels(tmp_path, monkeypatch):
    """The deploy step labelled a Vertex endpoint (what serving costs) with the profile's labels only: not
    metadata.labels' team nor owner, which its pipeline job carried."""
    import kubepipe
    from kubepipe.components.deploy import ops, target

    from pathlib import Path

    p = Path(__file__).resolve().parents[2] / "pipelines" / "merchant-categorizer.yaml"  # owner: ml-payments
    prof = tmp_path / "vertex.yaml"  # the profile file's labels: under the pipeline's (--set's are over them)
    prof.write_text("target: vertex\nproject: p\nregion: europe-west4\npipeline_root: gs://b/r\n"
                    "runtime_image: i@sha256:" + "a" * 64 + "\nlabels: {team: ml, cc: '1'}\n")
    (step,) = [s for s in kubepipe.validate(p, "vertex", profile=prof).steps if s.name == "deploy"]
    labels = step.args["ctx_labels"].value
    assert labels == {"cc": "1", "team": "ml-payments", "model": "merchant-categorizer", "owner": "ml-payments"}
    seen = {}
    monkeypatch.setattr(target, "deploy_model", lambda **kw: seen.update(kw) or {"action": "promoted"})

    class _Artifact:
        path, uri, metadata = str(tmp_path), "gs://b/m", {}

    ops.deploy.python_func(model=_Artifact(), report=_Artifact(), model_name="m", ctx_target="vertex",
                           ctx_profile={"project": "p", "labels": {"team": "ml", "cc": "1"}}, ctx_labels=labels)
    assert seen["profile"] == {"project": "p", "labels": labels}


def test_a_managed_by_label_a_vertex_deploy_replaces_is_a_located_warning(tmp_path):
    """`managed-by: terraform` became `managed-by: kubepipe` on the Vertex model and endpoint, unsaid."""
    import kubepipe

    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "pipelines" / "merchant-categorizer.yaml"  # has a deploy step
    p = tmp_path / "merchant-categorizer.yaml"
    p.write_text(src.read_text().replace("labels: {team: ml-payments,", "labels: {Managed-By: terraform, team: x,"))
    prof = {"project": "p", "region": "europe-west4", "pipeline_root": "gs://b/r",
            "runtime_image": "i@sha256:" + "a" * 64, "labels": {"managed-by": "tf"}}
    prof_file = tmp_path / "vertex.yaml"  # the profile file's label, under the pipeline's (--set's would be over it)
    prof_file.write_text("target: vertex\nproject: p\nregion: europe-west4\npipeline_root: gs://b/r\n"
                         "runtime_image: i@sha256:" + "a" * 64 + "\nlabels: {managed-by: tf}\n")
    ws = [w for w in kubepipe.validate(p, "vertex", profile=prof_file).warnings if "own label" in w.message]
    assert [(w.path, w.line) for w in ws] == [("metadata.labels.Managed-By", 11)]  # the profile's is not sent
    assert ws[0].message.startswith("the deploy step's Vertex model and endpoint carry `managed-by: kubepipe`, not "
                                    "`managed-by: terraform`: managed-by is kubepipe's own label there")
    assert "`provisioned-by: terraform`" in ws[0].hint
    ws = [w for w in kubepipe.validate(p, "vertex", sets=prof).warnings if "own label" in w.message]
    assert [(w.path, w.file) for w in ws] == [("labels.managed-by", "sets=")]  # --set's wins: the pipeline's is not
    p.write_text(src.read_text())
    (w,) = [w for w in kubepipe.validate(p, "vertex", sets=prof).warnings if "own label" in w.message]
    assert (w.file, w.path) == ("sets=", "labels.managed-by") and "not `managed-by: tf`" in w.message
    no_deploy = tmp_path / "p.yaml"  # nothing is deployed: the job keeps the label, no warning
    no_deploy.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p, labels: {managed-by: tf}}\n"
                         "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    assert kubepipe.validate(no_deploy, "vertex", sets={**prof, "labels": {}}).warnings == []


def test_a_label_key_yaml_1_1_reads_as_a_bool_null_or_number_is_the_key_as_written(tmp_path):
    """`on: x` was the label `True: x` (`null:` `None`, `1.10:` `1.1`, `010:` `8`): YAML 1.1 read the key, and the
    text kubepipe made of it was no key the file had."""
    import kubepipe

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\n"
                 "metadata: {name: p, labels: {on: x, null: y, 1.10: z, 010: w, 7: v}}\n"
                 "steps:\n  load: {component: load-data, with: {source: gs://b/d.csv}}\n")
    import pytest

    from kubepipe.errors import ValidationError

    assert kubepipe.validate(p).labels == {"on": "x", "null": "y", "1.10": "z", "010": "w", "7": "v"}
    p.write_text(p.read_text().replace("source: gs://b/d.csv", "source: gs://b/d.csv, yes: 1"))
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(p)
    (issue,) = exc.value.issues
    assert (issue.path, issue.line) == ("steps.load.with.yes", 5), issue.format()  # was `True`, unlocated
