"""Spec layer: located loading, includes, env interpolation, profiles and their precedence."""

from __future__ import annotations

import re
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubepipe.errors import ValidationError
from kubepipe.spec import load_pipeline, load_pipeline_text, load_profile
from kubepipe.spec.profiles import parse_set

BASE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: demo}
steps:
  a:
    component: ops:say
    with: {message: hi}
"""


def issues_of(text: str, **kw):
    with pytest.raises(ValidationError) as exc:
        load_pipeline_text(text, "p.yaml", **kw)
    return exc.value.issues


def test_valid_pipeline_loads_with_defaults():
    loaded = load_pipeline_text(BASE, "p.yaml")
    assert loaded.spec.metadata.name == "demo"
    assert loaded.spec.steps["a"].with_ == {"message": "hi"}
    assert loaded.source_hash.startswith("sha256:")


def test_errors_carry_path_line_col_and_hint():
    text = BASE.replace("    with: {message: hi}", "    with: {message: hi}\n    retires: 2")
    (issue,) = issues_of(text)
    assert issue.path == "steps.a.retires"
    assert (issue.file, issue.line, issue.col) == ("p.yaml", 8, 5)
    assert issue.hint == "did you mean `retries`?"
    assert "p.yaml:8:5: steps.a.retires: unknown key `retires`" in issue.format()


def test_all_errors_reported_at_once():
    text = BASE.replace("name: demo", "name: Demo_X").replace("kind: Pipeline", "kind: Pipe")
    paths = {i.path for i in issues_of(text)}
    assert paths == {"kind", "metadata.name"}


def test_env_interpolation_and_default():
    text = BASE.replace("message: hi", "message: '${env.KP_MSG:-fallback}'")
    assert load_pipeline_text(text, environ={}).spec.steps["a"].with_["message"] == "fallback"
    assert load_pipeline_text(text, environ={"KP_MSG": "yo"}).spec.steps["a"].with_["message"] == "yo"
    (issue,) = issues_of(BASE.replace("message: hi", "message: '${env.KP_NOPE}'"), environ={})
    assert issue.path == "steps.a.with.message" and "KP_NOPE" in issue.message


def test_an_unset_env_var_is_said_once_not_also_checked_as_its_value(tmp_path):
    """`kubepipe init`'s kubeflow profile without KFP_HOST said, besides the variable, 'host: a KFP host is a URL
    with its scheme ... (got '${env.KFP_HOST}')'; a param default `${env.N}` said 'default ... is not of type int'."""
    prof = tmp_path / "kubeflow.yaml"
    prof.write_text("target: kubeflow\nhost: ${env.KFP_HOST}\npipeline_root: minio://b/r\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("kubeflow", profile_file=prof, environ={})
    assert [(i.path, i.message) for i in exc.value.issues] == [("host", "environment variable `KFP_HOST` is not set")]
    text = BASE.replace("metadata: {name: demo}", "metadata: {name: demo}\nparams:\n  n: {type: int, default: "
                                                  "'${env.KP_N}'}\n  m: {type: integer}")
    assert [(i.path, i.message) for i in issues_of(text, environ={})] == [
        ("params.n.default", "environment variable `KP_N` is not set"),
        ("params.m.type", "must be one of 'str', 'int', 'float', 'bool', 'list' or 'dict'")]


def test_include_merges_defaults_pipeline_wins(tmp_path):
    (tmp_path / "shared.yaml").write_text("defaults:\n  retries: 3\n  cache: false\n  env: {A: '1', B: '2'}\n")
    (tmp_path / "p.yaml").write_text(BASE.replace("steps:", "include: [shared.yaml]\ndefaults:\n  cache: true\n"
                                                           "  env: {B: '3'}\nsteps:"))
    spec = load_pipeline(tmp_path / "p.yaml").spec
    assert spec.defaults.retries == 3
    assert spec.defaults.cache is True
    assert spec.defaults.env == {"A": "1", "B": "3"}


def test_include_errors_point_into_the_included_file(tmp_path):
    (tmp_path / "shared.yaml").write_text("defaults:\n  retries: 3\n  cahce: false\n")
    (tmp_path / "p.yaml").write_text(BASE.replace("steps:", "include: [shared.yaml, missing.yaml]\nsteps:"))
    with pytest.raises(ValidationError) as exc:
        load_pipeline(tmp_path / "p.yaml")
    by_path = {i.path: i for i in exc.value.issues}
    assert by_path["defaults.cahce"].file.endswith("shared.yaml") and by_path["defaults.cahce"].line == 3
    assert by_path["include[1]"].line == 4 and "not found" in by_path["include[1]"].message


def test_a_section_an_include_cannot_hold_is_named_where_it_is(tmp_path):
    """Was 'shared.yaml:1:1: an included file holds `defaults:` only', naming neither the section nor its line."""
    (tmp_path / "shared.yaml").write_text("defaults: {retries: 3}\ninclude: [more.yaml]\n")
    (tmp_path / "p.yaml").write_text(BASE.replace("steps:", "include: [shared.yaml]\nsteps:"))
    (issue,) = issues_of((tmp_path / "p.yaml").read_text(), base_dir=tmp_path)
    assert (issue.file, issue.line, issue.path) == (str(tmp_path / "shared.yaml"), 2, "include")
    assert issue.message == "an included file holds `defaults:` only; `include:` is not read from it"
    assert issue.hint == "move other sections into the pipeline (an included file includes nothing)"


def test_a_run_time_ref_in_an_include_points_into_it(tmp_path):
    (tmp_path / "shared.yaml").write_text("defaults:\n  env: {N: '${params.n}'}\n")  # was: p.yaml:1:1
    (tmp_path / "p.yaml").write_text(BASE.replace("steps:", "include: [shared.yaml]\nsteps:"))
    (issue,) = issues_of((tmp_path / "p.yaml").read_text(), base_dir=tmp_path)
    assert (issue.file, issue.line, issue.col, issue.path) == (str(tmp_path / "shared.yaml"), 2, 9, "defaults.env.N")
    assert issue.message.startswith("`${params.n}` is not resolved here")


def test_an_include_value_refused_after_the_merge_points_into_it(tmp_path):
    """Missing ${env} and literal credentials were found after merging, and located at p.yaml:1:1."""
    (tmp_path / "shared.yaml").write_text("defaults:\n  env: {A: '${env.KP_NOPE}', API_TOKEN: abc123xyz}\n")
    (tmp_path / "p.yaml").write_text(BASE.replace("steps:", "defaults: {retries: 1}\ninclude: [shared.yaml]\nsteps:"))
    issues = issues_of((tmp_path / "p.yaml").read_text(), base_dir=tmp_path, environ={})
    assert sorted((i.path, i.file, i.line, i.col) for i in issues) == [
        ("defaults.env.A", str(tmp_path / "shared.yaml"), 2, 9),
        ("defaults.env.API_TOKEN", str(tmp_path / "shared.yaml"), 2, 30)]


def test_yaml_tags_build_no_python_objects():
    text = BASE.replace("message: hi", "message: !!python/object/apply:os.system ['echo pwned']")
    (issue,) = issues_of(text)  # safe loading: the tag is refused, nothing is called
    assert "python/object/apply" in issue.message and issue.line == 7


def test_yaml_11_octal_and_base_60_numbers_stay_text():
    """PyYAML read `010` as 8 and `12:30` as 750: a step got `A=8`, `T=750` and `timeout: 1:30` ran as 90s."""
    loaded = load_pipeline_text(BASE.replace("with: {message: hi}", "with: {message: 0123}\n    env: {A: 010, "
                                             "T: 12:30, H: 0x1F, N: 1_000, F: -1.5e+3, Z: 0}"), "p.yaml")
    step = loaded.spec.steps["a"]
    assert step.with_ == {"message": "0123"}
    assert step.env == {"A": "010", "T": "12:30", "H": 31, "N": 1000, "F": -1500.0, "Z": 0}
    (issue,) = issues_of(BASE + "    timeout: 1:30\n")
    assert issue.format() == ("p.yaml:8:5: steps.a.timeout: expected a duration like 30s, 5m, 2h or a number of "
                              "seconds (got '1:30')")


def test_the_yaml_loader_is_shared_only_once_it_keeps_those_numbers_text(monkeypatch):
    """The loader class was made and shared, then its resolvers narrowed: a thread that parsed meanwhile (two
    kubepipe.validate at once, the first in the process) read `010` as 8. A parse at every line of the making (as
    another thread's could run) reads it as text."""
    import sys

    from kubepipe.spec import source

    monkeypatch.setattr(source, "_LOADER", None)
    seen, making = [], source._loader_class.__code__

    def trace(frame, event, arg):
        if frame.f_code is making and event == "line" and "base" in frame.f_locals and len(seen) < 50 \
                and not getattr(trace, "inside", False):  # once it is making one
            trace.inside = True  # type: ignore[attr-defined]
            try:
                seen.append(source.parse_yaml("a: 010\nd: 2026-01-31\n").data)
            finally:
                trace.inside = False  # type: ignore[attr-defined]
        return trace

    before = sys.gettrace()  # a coverage tool's
    sys.settrace(trace)
    try:
        source._loader_class()
    finally:
        sys.settrace(before)
    assert seen and all(data == {"a": "010", "d": "2026-01-31"} for data in seen), seen


def test_a_number_of_seconds_given_as_text_is_a_duration_as_the_number_is():
    """`timeout: ${env.T:-90}` gives the text '90': it was refused ('expected a duration') while `timeout: 90` ran."""
    from kubepipe.spec.values import parse_duration

    assert parse_duration("90") == parse_duration(90) == parse_duration(" 90 ") == 90.0
    assert parse_duration("1.5") == 1.5 and parse_duration("90s") == 90.0
    text = BASE.replace("steps:", "defaults: {timeout: '${env.T:-90}'}\nsteps:") + "    timeout: '120'\n"
    spec = load_pipeline_text(text, "p.yaml", environ={}).spec
    assert spec.defaults.timeout == "90" and spec.steps["a"].timeout == "120"
    (issue,) = issues_of(text, environ={"T": "0"})
    assert issue.path == "defaults.timeout" and "at least 1s" in issue.message
    (issue,) = issues_of(text, environ={"T": "90x"})
    assert "expected a duration like 30s, 5m, 2h or a number of seconds" in issue.message


def test_a_label_yaml_read_as_a_number_or_bool_says_to_quote_it():
    # `labels: {version: 1.10}` said 'input should be a valid string (got 1.1)', not why nor what to do
    (issue,) = issues_of(BASE.replace("{name: demo}", "{name: demo, labels: {version: 1.10}}"))
    assert issue.format() == ("p.yaml:3:33: metadata.labels.version: input should be a valid string (got 1.1); quote "
                              "it to pass text: unquoted, YAML reads it as the number 1.1")
    (issue,) = issues_of(BASE.replace("{name: demo}", "{name: demo, owner: 42}"))
    assert issue.hint == "quote it to pass text: unquoted, YAML reads it as the number 42"


def test_a_null_or_a_list_where_text_goes_says_what_was_given():
    """`labels: {team: null}` said 'input should be a valid string' and nothing of the null it got."""
    text = BASE.replace("{name: demo}", "{name: demo, labels: {team: null, tags: [a]}}")
    team, tags = issues_of(text)
    assert team.format() == ("p.yaml:3:33: metadata.labels.team: input should be a valid string (got null); give it "
                             "a value (`''` for empty text), or leave the key out")
    # `tags: [a]` said only that (no hint): a label's value is one text
    assert tags.format().endswith("metadata.labels.tags: a label's value is one text, not a list; write one text, "
                                  "quoted if it holds brackets or braces: `tags: \"...\"`; a label per value needs "
                                  "a key each")
    (owner,) = issues_of(BASE.replace("{name: demo}", "{name: demo, owner: [a]}"))  # no label: as before
    assert owner.format().endswith("metadata.owner: input should be a valid string (got a list)")
    (issue,) = issues_of(BASE + "schedule: {cron: 0 3 * * *, max_concurrency: null}\n")
    assert issue.format().endswith("(got null); give it a value, or leave the key out")


@pytest.mark.parametrize("foreach, got", [("5", " (got 5)"), ("2.5", " (got 2.5)"), ("{a: 1}", " (got a mapping)")])
def test_a_foreach_of_a_number_or_mapping_says_what_foreach_takes(foreach, got):
    """`foreach: 5` said 'input should be a valid string' and 'quote it to pass text', and `foreach: "5"` is then
    refused too: it says what foreach takes, as the quoted one does."""
    (issue,) = issues_of(BASE.replace("    with: {message: hi}", f"    with: {{message: hi}}\n    foreach: {foreach}"))
    assert issue.format() == f"p.yaml:8:5: steps.a.foreach: `foreach` takes a list, ${{params.x}} or a step output{got}"
    assert issue.hint is None


def test_one_item_where_a_list_goes_says_to_write_a_list():
    """`after: b` and `include: x.yaml` said only 'input should be a valid list (got 'b')'."""
    text = BASE + "  b:\n    component: ops:say\n    after: a\n"
    (issue,) = issues_of(text)
    assert issue.format() == ("p.yaml:10:5: steps.b.after: input should be a valid list (got 'a'); write a list, "
                              "even of one item: `after: [a]`, or `- item` lines under it")
    (issue,) = issues_of(BASE + "include: base.yaml\n")
    assert issue.hint == "write a list, even of one item: `include: [base.yaml]`, or `- item` lines under it"


@pytest.mark.parametrize("image, said", [
    ('"my image"', "must be a container image, one word without spaces (got 'my image')"),
    ('""', "is empty: a container image is needed here")])
def test_an_image_with_a_space_or_empty_says_what_an_image_is(tmp_path, image, said):
    """A step's `image` (and a profile's runtime_image) with a space or empty said only "string should match
    pattern '^\\S+$'": a regex, not what is wrong nor what to write."""
    (issue,) = issues_of(BASE.replace("    with: {message: hi}", f"    with: {{message: hi}}\n    image: {image}"))
    assert issue.format() == (f"p.yaml:8:5: steps.a.image: {said}; e.g. REG/kubepipe-runtime@sha256:... (`kubepipe "
                              "image build` makes one), or leave it out for the default")
    with pytest.raises(ValidationError) as exc:
        load_profile("local", sets={"runtime_image": "a b"}, start=tmp_path, environ={})
    assert "runtime_image: must be a container image, one word without spaces (got 'a b')" in str(exc.value)


@pytest.mark.parametrize("setting, path, plain", [
    ("    timeout: 1e3\n", "steps.a.timeout", "1000"), ("    retries: 1E1\n", "steps.a.retries", "10"),
    ("    parallelism: 2.5e1\n", "steps.a.parallelism", "25")])
def test_a_number_in_exponent_notation_yaml_reads_as_text_says_how_to_write_it(setting, path, plain):
    """`timeout: 1e3` is a number to JSON and editors, text to YAML 1.1: 'expected a duration ... (got '1e3')'."""
    (issue,) = issues_of(BASE + setting)
    value = setting.split(": ")[1].strip()
    assert issue.path == path and f"(got '{value}')" in issue.format()
    assert issue.hint == f"YAML reads {value} as text, not a number; write {plain}"


def test_a_param_default_in_exponent_notation_says_how_to_write_it():
    """`lr: {type: float, default: 1e-3}` said only "default '1e-3' is not of type float": YAML 1.1 reads it as text."""
    (n, lr) = issues_of(BASE.replace("steps:", "params:\n  n: {type: int, default: 1e3}\n"
                                                "  lr: {type: float, default: 1e-3}\nsteps:"))
    assert n.message == "default '1e3' is not of type int; YAML reads 1e3 as text, not a number; write 1000"
    assert lr.message.endswith("YAML reads 1e-3 as text, not a number; write 0.001")
    assert load_pipeline_text(BASE.replace("steps:", "params:\n  s: {type: str, default: 1e3}\nsteps:"),
                              "p.yaml").spec.params["s"].default == "1e3"


@pytest.mark.parametrize("param, written", [("{type: float, default: 1.0e400}", "1.0e400"),
                                            ("{type: float, default: '-1e400'}", "-1e400"),
                                            ("{type: int, default: 1e999}", "1e999")])
def test_a_param_default_too_large_for_a_number_says_it_overflows(param, written):
    """`default: 1.0e400` on a float param said only "default '1.0e400' is not of type float"."""
    (issue,) = issues_of(BASE.replace("steps:", f"params:\n  n: {param}\nsteps:"))
    assert issue.path == "params.n" and issue.message.endswith(
        f"; {written} overflows: it would read as infinity (the largest number is about 1.8e308); values must be "
        "finite"), issue.message


@pytest.mark.parametrize("param, hint", [
    ("{type: int, default: 2.0}", "default 2.0 is not of type int; write 2: an int has no decimal point"),
    ("{type: int, default: 2.5}", "default 2.5 is not of type int; an int is a whole number; for 2.5 the param is "
                                  "`type: float`"),
    ("{type: int, default: '3'}", "default '3' is not of type int; unquote it: in quotes, YAML reads '3' as text; "
                                  "write 3"),
    ("{type: float, default: '0.5'}", "default '0.5' is not of type float; unquote it: in quotes, YAML reads '0.5' "
                                      "as text; write 0.5"),
    ("{type: float, default: '24'}", "default '24' is not of type float; unquote it: in quotes, YAML reads '24' "
                                     "as text; write 24"),  # not 24.0: a float takes 24 as written
    ("{type: float, default: 'inf'}", "default 'inf' is not of type float; inf is not a finite number: values must "
                                      "be finite (NaN and infinity cannot be stored in a pipeline spec)"),
    ("{type: float, default: '-.NaN'}", "default '-.NaN' is not of type float; -.NaN is not a finite number: values "
                                        "must be finite (NaN and infinity cannot be stored in a pipeline spec)"),
])
def test_a_param_default_of_a_number_s_other_form_says_how_to_write_it(param, hint):
    """`n: {type: int, default: 2.0}` said only 'default 2.0 is not of type int'."""
    (issue,) = issues_of(BASE.replace("steps:", f"params:\n  n: {param}\nsteps:"))
    assert issue.path == "params.n" and issue.message == hint


def test_a_timeout_of_a_fractional_number_of_seconds_is_a_duration():
    """`timeout: 90.5` was refused ('input should be a valid string') while `timeout: '90.5'` and 90 were read."""
    spec = load_pipeline_text(BASE + "    timeout: 90.5\n", "p.yaml").spec
    assert spec.steps["a"].timeout == 90.5
    (issue,) = issues_of(BASE + "    timeout: 0.5\n")
    assert issue.message == "a step timeout must be at least 1s; leave it out for no timeout"


def test_a_retry_backoff_in_seconds_is_a_number_as_a_timeout_is():
    """`retries: {backoff: 30}` was refused ('input should be a valid string') while `timeout: 30` ran as 30s."""
    from kubepipe.spec.values import parse_duration

    text = BASE + "    retries: {count: 2, backoff: 30, max_backoff: 600.5}\n"
    retries = load_pipeline_text(text, "p.yaml").spec.steps["a"].retries
    assert parse_duration(retries.backoff) == 30 and parse_duration(retries.max_backoff) == 600.5
    (issue,) = issues_of(text.replace("600.5", "-1"))
    assert issue.path == "steps.a.retries.max_backoff" and issue.message == "a duration must be between 0 and 366d"


@pytest.mark.parametrize("written", ["-5s", "'-5'", "' -2h'"])
def test_a_negative_duration_with_its_unit_says_it_is_below_0_as_a_negative_number_does(written):
    """`timeout: -5s` said 'expected a duration like 30s, 5m, 2h ...' (it is one, but negative) while `timeout: -5`
    said it must be between 0 and 366d."""
    (issue,) = issues_of(BASE + f"    timeout: {written}\n")
    assert issue.path == "steps.a.timeout" and issue.message.startswith("a duration must be between 0 and 366d"), issue


def test_a_retry_cap_under_its_first_wait_is_refused_where_it_is_written():
    """`{backoff: 10m, max_backoff: 1m}` validated, and KFP capped every wait at 1m."""
    text = BASE.replace("steps:", "defaults: {retries: {count: 2, backoff: 10m, max_backoff: 1m}}\nsteps:")
    (defaults,) = issues_of(text)
    assert defaults.path == "defaults.retries.max_backoff" and defaults.line == 4, defaults.format()
    assert defaults.message.startswith("less than backoff '10m': max_backoff caps each wait between tries")
    (step,) = issues_of(BASE + "    retries: {count: 1, backoff: 1h, max_backoff: 30m}\n")
    assert step.path == "steps.a.retries.max_backoff" and "less than backoff '1h'" in step.message
    retries = load_pipeline_text(BASE + "    retries: {count: 1, backoff: 1h, max_backoff: 3600}\n", "p.yaml")
    assert retries.spec.steps["a"].retries.max_backoff == 3600


@pytest.mark.parametrize("retries, where", [("{count: 1, backoff: 2h}", "backoff"),
                                            ("{count: 1, max_backoff: 90m}", "max_backoff")])
def test_a_wait_between_tries_over_kfps_hour_is_refused_not_cut(retries, where):
    """`max_backoff: 90m` (or `backoff: 2h`) validated, and KFP waited 1h: it caps a wait between tries at 1 hour."""
    (issue,) = issues_of(BASE + f"    retries: {retries}\n")
    assert issue.path == f"steps.a.retries.{where}", issue.format()
    assert issue.message.startswith("more than 1h: KFP waits at most 1h between tries (a longer wait is cut to 1h)")


def test_a_bad_pipeline_name_says_how_long_it_is_and_how_it_may_start():
    """'string should have at most 63 characters' did not say the name's length; `-abc` was told it may hold
    dashes, not that it may not start with one."""
    (issue,) = issues_of(BASE.replace("{name: demo}", "{name: " + "a" * 70 + "}"))
    assert issue.message == "is 70 characters long, at most 63 are allowed" and issue.hint == "shorten it"
    (issue,) = issues_of(BASE.replace("{name: demo}", "{name: '-abc'}"))
    assert issue.message.startswith("must be lowercase letters, digits and dashes, starting and ending with a letter")


@pytest.mark.parametrize("name, suggested", [("My Pipe", "my-pipe"), ("Café_Model 2", "cafe-model-2"),
                                             ("--x--", "x"), ("!!!", "my-pipeline")])
def test_init_with_a_name_that_is_no_kubernetes_name_suggests_the_one_it_could_be(tmp_path, name, suggested):
    """`kubepipe init --name "My Pipe"` said `e.g. my-pipeline`, whatever the name."""
    from kubepipe.errors import UserError
    from kubepipe.scaffold import init_project

    with pytest.raises(UserError, match=f"--name {re.escape(name)}: .*, e.g. {suggested}$"):
        init_project(tmp_path, name)
    assert not list(tmp_path.iterdir())


def test_a_pipeline_name_that_is_no_kubernetes_name_suggests_the_one_it_could_be():
    (issue,) = issues_of(BASE.replace("{name: demo}", "{name: 'Merchant Model'}"))
    assert issue.hint == "e.g. merchant-model", issue.format()


def test_a_text_param_default_yaml_read_as_a_number_says_to_quote_it():
    (issue,) = issues_of(BASE.replace("steps:", "params:\n  version: {type: str, default: 1.10}\nsteps:"))
    assert issue.message == ("default 1.1 is not of type str; quote it to pass text: unquoted, YAML reads it as the "
                             "number 1.1")


def test_profile_precedence_file_env_set(tmp_path):
    prof = tmp_path / "vertex.yaml"
    prof.write_text("target: vertex\nproject: '${env.GCP:-from-default}'\nregion: europe-west4\n"
                    "pipeline_root: gs://b/root\n")
    assert load_profile("vertex", profile_file=prof, environ={}).project == "from-default"
    assert load_profile("vertex", profile_file=prof, environ={"GCP": "from-env"}).project == "from-env"
    p = load_profile("vertex", profile_file=prof, environ={"GCP": "from-env"}, sets=parse_set(["project=from-set"]))
    assert p.project == "from-set"
    assert p.runtime_image  # built-in default fills what the file leaves out


def test_a_profile_s_kubernetes_names_are_refused_in_words_not_as_a_regex(tmp_path):
    # was "string should match pattern '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'"
    prof = tmp_path / "kf.yaml"
    prof.write_text("target: kubeflow\nhost: http://x\npipeline_root: gs://b/r\ndeploy_namespace: Serving_NS\n"
                    "deploy_service_account: Model SA\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("kubeflow", profile_file=prof, environ={})
    got = {i.path: i.message for i in exc.value.issues}
    for key in ("deploy_namespace", "deploy_service_account"):
        assert got[key] == ("must be a Kubernetes name: lowercase letters, digits and '-', starting and ending "
                            "with a letter or digit, at most 63"), got


@pytest.mark.parametrize("labels, message", [
    ("{kubepipe-hash: x}", "label `kubepipe-hash`: labels starting with `kubepipe-` are kubepipe's own"),
    ("{Team: a, team: b}", "labels `Team` and `team` are the same label `team` on Vertex"),
    ('{"${env.TEAM}": a}', "label key `${env.TEAM}`: `${...}` is read in a label's value, never in its key"),
])
def test_a_profile_s_labels_a_job_would_lose_are_refused_as_the_pipeline_s(tmp_path, labels, message):
    """A profile's `kubepipe-hash` label was replaced by kubepipe's, and one of `Team` and `team` dropped, unsaid."""
    prof = tmp_path / "vertex.yaml"
    prof.write_text(f"target: vertex\nproject: p\nregion: europe-west4\npipeline_root: gs://b/r\nlabels: {labels}\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("vertex", profile_file=prof)
    (issue,) = exc.value.issues
    assert issue.path == "labels" and issue.line == 5 and issue.message.startswith(message), issue.format()


def test_a_label_key_holding_an_env_reference_is_refused_not_sent_literally():
    """Only values are interpolated: `labels: {"${env.TEAM}": x}` validated and Vertex got the key `k----env-team-`."""
    text = BASE.replace("{name: demo}", '{name: demo, labels: {"${env.TEAM}": x}}')
    (issue,) = issues_of(text, environ={"TEAM": "r"})
    assert issue.path == "metadata.labels" and issue.line == 3, issue.format()
    assert issue.message == ("label key `${env.TEAM}`: `${...}` is read in a label's value, never in its key; write "
                             "the key itself, e.g. `team: ${env.TEAM}`")


def test_profile_refuses_credentials_and_unknown_target(tmp_path):
    prof = tmp_path / "kf.yaml"
    prof.write_text("target: kubeflow\nhost: http://x\npipeline_root: minio://b\nauth:\n  token: abc\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("kubeflow", profile_file=prof)
    assert any("credentials in YAML are refused" in i.message and i.line == 5 for i in exc.value.issues)
    with pytest.raises(ValidationError) as exc:
        load_profile("vertx")
    assert exc.value.issues[0].hint == "did you mean `vertex`?"


def test_vertex_profile_needs_project_and_gs_root(tmp_path):
    prof = tmp_path / "v.yaml"
    prof.write_text("target: vertex\nregion: r\npipeline_root: /tmp/x\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("vertex", profile_file=prof)
    assert "needs project" in str(exc.value)


_NEEDS = ("target kubeflow needs host, pipeline_root: set them in configs/kubeflow.yaml (found beside the pipeline or "
          "above it) or profile=<path of a profile YAML>, or pass sets={'host': ...}")  # the API's words


@pytest.mark.parametrize("text, sets, said", [
    ("kind: Profile\ntarget: kubeflow\nhost: ''\n", None, f"FILE:3:1: host: {_NEEDS}"),  # written empty
    ("kind: Profile\n# the cluster\n  # of team a\ntarget: kubeflow\n", None, f"FILE:4:1: target: {_NEEDS}"),
    ("kind: Profile\n", None, f"FILE:1:1: {_NEEDS}"),  # nothing to point at: the file
    ("kind: Profile\ntarget: kubeflow\n", {"host": ""}, f"sets=: host: {_NEEDS}"),
    ("kind: Profile\ntarget: kubeflow\nhost: http://h\npipeline_root: minio://b/r\n"
     "registry_uri: minio://b/reg\nvertex_model_registry: true\n", None,
     "FILE:6:1: vertex_model_registry: vertex_model_registry needs target vertex and a gs:// registry_uri (Vertex "
     "reads the model files from there)"),
])
def test_a_profile_s_whole_check_is_said_at_its_key_not_the_first_line(tmp_path, text, sets, said):
    """'target kubeflow needs host' (and vertex_model_registry's check) was said at the profile's 1:1, whatever it
    held: it is said at the key written empty, else at `target:` that asks for it, or at sets= (--set) that gave it."""
    prof = tmp_path / "kf.yaml"
    prof.write_text(text)
    with pytest.raises(ValidationError) as exc:
        load_profile("kubeflow", profile_file=prof, sets=sets)
    assert str(exc.value).splitlines()[1:] == ["  " + said.replace("FILE", str(prof), 1)]


def test_a_vertex_region_typo_is_refused_where_it_was_given(tmp_path):
    """`--set region=europe-wst4` (or the profile's `region:`) passed validate; aiplatform refused it at submit."""
    pytest.importorskip("google.cloud.aiplatform")
    prof = tmp_path / "v.yaml"
    prof.write_text("target: vertex\nproject: p\nregion: us-centrl1\npipeline_root: gs://b/r\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("vertex", profile_file=prof)
    (issue,) = exc.value.issues
    assert (issue.file, issue.line, issue.path) == (str(prof), 3, "region"), issue.format()
    assert issue.message == "not a Vertex AI region; did you mean `us-central1`?"
    with pytest.raises(ValidationError) as exc:
        load_profile("vertex", profile_file=prof, sets={"region": "europe-wst4"})
    (issue,) = exc.value.issues
    assert (issue.file, issue.path, issue.message) == (
        "sets=", "region", "not a Vertex AI region; did you mean `europe-west4`?"), issue.format()
    assert load_profile("vertex", profile_file=prof, sets={"region": "europe-west4"}).region == "europe-west4"
    kubeflow = tmp_path / "k.yaml"  # another target's region is not Vertex's to check
    kubeflow.write_text("target: kubeflow\nhost: http://x\npipeline_root: minio://b/r\nregion: anywhere\n")
    assert load_profile("kubeflow", profile_file=kubeflow).region == "anywhere"


@pytest.mark.parametrize("project, ok", [("My Project", False), ("my_proj", False), ("-bad", False),
                                         ("proj-", False), ("my-proj", True), ("example.com:my-proj", True)])
def test_a_vertex_project_that_is_no_project_id_is_refused_where_it_was_given(tmp_path, project, ok):
    """`project: My Project` (the display name) passed validate and went into every request's path."""
    prof = tmp_path / "v.yaml"
    prof.write_text(f"target: vertex\nproject: '{project}'\nregion: us-central1\npipeline_root: gs://b/r\n")
    if ok:
        assert load_profile("vertex", profile_file=prof).project == project
        return
    with pytest.raises(ValidationError) as exc:
        load_profile("vertex", profile_file=prof)
    (issue,) = exc.value.issues
    assert (issue.file, issue.line, issue.path) == (str(prof), 2, "project"), issue.format()
    assert issue.message.startswith("not a Google Cloud project id: lowercase letters, digits and dashes")


@pytest.mark.parametrize("root", ["gs://", "gs:///pipelines", "gs://My_Bucket/x"])
def test_a_vertex_pipeline_root_names_a_bucket(tmp_path, root):
    prof = tmp_path / "v.yaml"  # `gs://` was submitted (aiplatform logged an IndexError and sent it on)
    prof.write_text(f"target: vertex\nproject: p\nregion: us-central1\npipeline_root: '{root}'\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("vertex", profile_file=prof)
    issue, = exc.value.issues  # at the key that gave it: it was `<vertex defaults>:`, no line, no key
    assert (issue.file, issue.line, issue.path) == (str(prof), 4, "pipeline_root"), issue
    assert issue.format().endswith("pipeline_root: vertex pipeline_root must be a gs:// URI with a bucket, e.g. "
                                   f"gs://my-bucket/pipelines (got {root!r})")
    with pytest.raises(ValidationError) as exc:  # given with --set: said there
        load_profile("vertex", sets={"project": "p", "region": "europe-west4", "pipeline_root": root})
    assert exc.value.issues[0].path == "pipeline_root" and "defaults" not in (exc.value.issues[0].file or "")
    prof.write_text("target: vertex\nproject: p\nregion: us-central1\npipeline_root: gs://my.bucket-1\n")
    assert load_profile("vertex", profile_file=prof).pipeline_root == "gs://my.bucket-1"


@pytest.mark.parametrize("root", ["x", "/data/runs", "file:///data/runs"])
def test_a_kubeflow_pipeline_root_is_an_object_store_uri(tmp_path, root):
    """`--set pipeline_root=x` on kubeflow passed validate; the cluster's pods cannot reach a folder of this machine.
    The local target takes a path (kfp.local writes there)."""
    with pytest.raises(ValidationError) as exc:
        load_profile("kubeflow", start=tmp_path, sets={"host": "http://kfp", "pipeline_root": root})
    (issue,) = exc.value.issues
    assert (issue.file, issue.path) == ("sets=", "pipeline_root"), issue.format()
    assert issue.message.startswith("kubeflow pipeline_root must be an object store URI the cluster's pods can reach "
                                    "(minio://, s3://, gs://)"), issue.message
    for kept in ("minio://b/r", "s3://b/r", "gs://b/r"):
        assert load_profile("kubeflow", start=tmp_path, sets={"host": "http://kfp", "pipeline_root": kept})
    assert load_profile("local", start=tmp_path, sets={"pipeline_root": root}).pipeline_root == root


@pytest.mark.parametrize("host", ["localhost:8080", "htp://kfp:8888", "http://"])
def test_a_kfp_host_is_a_url_with_its_scheme(tmp_path, host):
    with pytest.raises(ValidationError) as exc:  # kfp read localhost:8080 as https: 'SSL: WRONG_VERSION_NUMBER'
        load_profile("kubeflow", start=tmp_path, sets={"host": host, "pipeline_root": "minio://b/r"})
    [issue] = exc.value.issues
    assert (issue.file, issue.path, issue.value) == ("sets=", "host", host)
    assert issue.message == ("a KFP host is a URL with its scheme, e.g. http://localhost:8080 (after kubectl "
                             "port-forward) or https://kubeflow.example.com/pipeline")
    assert load_profile("kubeflow", start=tmp_path, sets={"host": "https://kfp.example.com/pipeline",
                                                          "pipeline_root": "minio://b/r"}).host


def test_a_remote_target_without_a_profile_says_where_its_settings_go(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here or above
    with pytest.raises(ValidationError) as exc:  # was only '<kubeflow defaults>: target kubeflow needs pipeline_root'
        load_profile("kubeflow", start=tmp_path, sets={"host": "http://h"})
    assert exc.value.issues[0].message == (
        "target kubeflow needs pipeline_root: set it in configs/kubeflow.yaml (found beside the pipeline or above "
        "it) or profile=<path of a profile YAML>, or pass sets={'pipeline_root': ...}")


def test_a_pipeline_without_steps_says_to_add_one():
    (issue,) = issues_of(BASE.split("steps:")[0] + "steps: {}\n")
    assert issue.format() == ("p.yaml:4:1: steps: a pipeline needs at least one step; add one under `steps:` "
                              "(`kubepipe components` lists them)")


@pytest.mark.parametrize("extra, path, says", [
    ("timeout: 0", "steps.a.timeout", "at least 1s"),
    ("timeout: 500ms", "steps.a.timeout", "at least 1s"),
    ("resources: {memory: '0Gi'}", "steps.a.resources.memory", "more than 0"),
    ("resources: {cpu: '0m'}", "steps.a.resources.cpu", "positive"),
    # '512' was read as 512 bytes, not the 512Mi meant (no container runtime starts a container with that)
    ("resources: {memory: '512'}", "steps.a.resources.memory", "512 would be 512 bytes; write its unit, e.g. "
                                                               "512Mi or 512Gi"),
])
def test_zero_timeouts_and_limits_are_refused_not_dropped(extra, path, says):
    # the compiler dropped timeout 0 as "no timeout"; a zero memory limit is a container killed at once
    (issue,) = issues_of(BASE.replace("    with: {message: hi}", f"    with: {{message: hi}}\n    {extra}"))
    assert issue.path == path and says in issue.message


@pytest.mark.parametrize("memory", ["8", "1.5"])
def test_a_memory_limit_yaml_reads_as_a_number_says_its_unit_not_to_quote_it(memory):
    """`memory: 8` said 'input should be a valid string (got 8); quote it to pass text', and the quoted '8' is then
    refused as 8 bytes: it says that at once."""
    (issue,) = issues_of(BASE.replace("    with: {message: hi}", f"    with: {{message: hi}}\n    resources: {{memory: "
                                                                  f"{memory}}}"))
    assert issue.format() == (f"p.yaml:8:17: steps.a.resources.memory: {memory} would be {memory} bytes; write its "
                              f"unit, e.g. {memory}Mi or {memory}Gi (got {memory})")


def test_a_whole_second_timeout_and_small_limits_load():
    text = BASE.replace("    with: {message: hi}", "    with: {message: hi}\n    timeout: 1s\n"
                                                      "    resources: {memory: 0.5Gi, cpu: 100m}")
    step = load_pipeline_text(text, "p.yaml").spec.steps["a"]
    assert step.timeout == "1s" and step.resources.memory == "0.5Gi"


@pytest.mark.parametrize("name", ["é", "_x", "ctx_a", "class", "a-b"])
def test_a_param_name_kfp_cannot_take_is_refused_at_validate(name):
    """`é` and `_x` passed validate, then compile stopped with 'internal error: ValueError: Only letters, numbers,
    spaces, "_", and "-" are allowed in the name. Must begin with a letter' (kfp's PipelineChannel)."""
    text = BASE.replace("steps:", f"params:\n  '{name}': {{default: x}}\nsteps:")
    (issue,) = issues_of(text)
    assert (issue.path, issue.line) == (f"params.{name}", 5)
    assert issue.message == f"param name `{name}` is not allowed" and "starting with a letter" in issue.hint


@pytest.mark.parametrize("name", ["X", "a1_", "data__uri"])
def test_ascii_param_names_starting_with_a_letter_load(name):
    text = BASE.replace("steps:", f"params:\n  {name}: {{default: x}}\nsteps:")
    assert list(load_pipeline_text(text, "p.yaml").spec.params) == [name]


def test_an_empty_param_step_or_with_says_a_mapping_is_expected_and_what_goes_in_it():
    """Was pydantic's 'input should be a valid dictionary or instance of Param' (a Python class name)."""
    text = BASE.replace("steps:", "params:\n  x:\nsteps:\n  b: 5").replace("    with: {message: hi}", "    with:")
    got = {i.path: (i.line, i.message, i.hint) for i in issues_of(text)}
    assert got == {
        "params.x": (5, "expected a mapping, got nothing (an empty key)", "its keys: default, description, type"),
        "steps.b": (7, "expected a mapping, got int 5", "it needs `component:`"),
        "steps.a.with": (10, "expected a mapping, got nothing (an empty key)",
                         "write `name: value` lines under it, or leave the key out")}


@pytest.mark.parametrize("extra, path", [
    ("timeout: yes", "steps.a.timeout"), ("retries: true", "steps.a.retries"),
    ("resources: {cpu: true}", "steps.a.resources.cpu"), ("parallelism: on", "steps.a.parallelism"),
])
def test_a_bool_is_refused_where_a_number_goes_not_read_as_1(extra, path):
    """`timeout: yes` gave the step a 1-second timeout and `cpu: true` one CPU: pydantic read the bool as 1."""
    (issue,) = issues_of(BASE.replace("    with: {message: hi}", f"    with: {{message: hi}}\n    {extra}"))
    assert issue.path == path and issue.message.startswith("a number is expected here, not a bool")


@pytest.mark.parametrize("where, extra, path, want", [
    ("meta", "owner: yes", "metadata.owner", "text is expected here, not a bool"),
    ("meta", "labels: on", "metadata.labels", "a mapping is expected here, not a bool"),
    ("step", "resources: true", "steps.a.resources", "a mapping is expected here, not a bool"),
    ("step", "after: no", "steps.a.after", "a list is expected here, not a bool"),
    ("step", "foreach: yes", "steps.a.foreach", "text or a list is expected here, not a bool"),
])
def test_a_bool_where_no_number_goes_says_what_does(where, extra, path, want):
    """`owner: yes` (or `labels: on`, `resources: true`) said 'a number is expected here, not a bool'."""
    text = (BASE.replace("{name: demo}", f"{{name: demo, {extra}}}") if where == "meta" else
            BASE.replace("    with: {message: hi}", f"    with: {{message: hi}}\n    {extra}"))
    (issue,) = issues_of(text)
    assert issue.path == path and issue.message.startswith(want), issue.format()
    assert issue.message.endswith("; quote it to pass text") == (want.startswith("text is"))


@pytest.mark.parametrize("extra, path, message", [
    ('cache: "yes"', "steps.a.cache", "true or false is expected here; write true or false"),
    ("cache: 'on'", "steps.a.cache", "true or false is expected here; write true or false"),
    ("env: {X: .nan}", "steps.a.env.X", 'nan is no value for an environment variable (YAML reads .nan and .inf as '
     'numbers); quote it to pass that text, e.g. "nan"'),
    ("env: {X: -.inf}", "steps.a.env.X", "-inf is no value for an environment variable"),
])
def test_a_bool_as_text_or_a_nan_env_value_is_refused_not_misread(extra, path, message):
    """`cache: "yes"` was read as true and `env: {X: .nan}` became the text "nan" in the step; both validated."""
    (issue,) = issues_of(BASE.replace("    with: {message: hi}", f"    with: {{message: hi}}\n    {extra}"))
    assert issue.path == path and issue.message.startswith(message), issue.format()


def test_true_or_false_as_text_is_a_bool_as_env_gives_it():
    """`cache: ${env.CACHE:-false}` is text after interpolation: true and false still read as the bools."""
    text = BASE.replace("    with: {message: hi}", "    with: {message: hi}\n    cache: ${env.KP_NO_SUCH:-False}\n"
                        "    env: {X: 'nan', Y: 1.5}")
    step = load_pipeline_text(text, "p.yaml").spec.steps["a"]
    assert step.cache is False and step.env == {"X": "nan", "Y": 1.5}


@pytest.mark.parametrize("meta, path, message", [
    ("labels: {Team: a, team: b}", "metadata.labels",
     "labels `Team` and `team` are the same label `team` on Vertex (lowercase, `-` for other characters); keep one"),
    ("labels: {kubepipe-hash: x}", "metadata.labels", "label `kubepipe-hash`: labels starting with `kubepipe-` are"),
    ("labels: {owner: x}, owner: y", "metadata", "`owner` is given twice, as metadata.owner and as a label"),
    ("labels: {'': x}", "metadata.labels", "a label key is empty: a label is named, e.g. `team: payments`"),
    ("labels: {' ': x}", "metadata.labels", "a label key is blank"),
    ("labels: {Owner: x}, owner: y", "metadata", "`owner` is given twice, as metadata.owner and as the label "
     "`Owner` (the label `owner` on Vertex); keep metadata.owner"),
])
def test_labels_a_run_would_lose_are_refused(meta, path, message):
    """Vertex keeps one of `Team` and `team`, kubepipe's own `kubepipe-hash` replaced the user's, metadata.owner
    replaced the label `owner`: each silently, the run carrying fewer labels than the pipeline says."""
    (issue,) = issues_of(BASE.replace("{name: demo}", f"{{name: demo, {meta}}}"))
    assert issue.path == path and issue.message.startswith(message), issue.format()


def test_a_number_from_the_environment_still_sets_a_number():
    text = BASE.replace("    with: {message: hi}", "    with: {message: hi}\n    retries: '${env.KP_R:-2}'")
    assert load_pipeline_text(text, "p.yaml", environ={"KP_R": "3"}).spec.steps["a"].retries == 3


@pytest.mark.parametrize("name", ["exit-handler-1", "for-loop-2", "condition-3", "condition_branches_1"])
def test_a_step_named_like_a_kfp_group_is_refused(name):
    """`exit-handler-1` with an `on_exit:` and a step reading it passed validate, then compile stopped with
    'internal error: ValueError: Ambiguous dependency name "exit-handler-1". It matches both a task and a group'."""
    (issue,) = issues_of(BASE.replace("  a:", f"  {name}:"))
    assert issue.path == f"steps.{name}" and "is a name KFP gives its own groups" in issue.message
    assert "Ambiguous dependency name" in issue.hint


@pytest.mark.parametrize("name", ["_", "__", "_-_"])
def test_a_step_name_without_a_letter_or_digit_is_refused(name):
    # KFP renames `__` to an empty task name: the duplicate-name check missed its clash with a step named `task`
    (issue,) = issues_of(BASE.replace("  a:", f"  {name}:"))
    assert issue.message == f"step name `{name}` is not allowed" and "at least one letter or digit" in issue.hint
    assert load_pipeline_text(BASE.replace("  a:", "  _a:"), "p.yaml").spec.steps["_a"]


def test_a_sub_second_duration_is_rounded_up_to_whole_seconds_not_down(tmp_path):
    """`backoff: 500ms` compiled to `backoffDuration: 0s` (no wait at all), `timeout: 1500ms` to 1s: KFP takes
    whole seconds and int() dropped the rest; they round up."""
    import kubepipe
    from kubepipe.spec.values import whole_seconds

    assert [whole_seconds(v) for v in ("500ms", "2.5", 30, "1h")] == [1, 3, 30, 3600]
    p = tmp_path / "p.yaml"
    p.write_text(HEAD_C + "    retries: {count: 2, backoff: 500ms, max_backoff: 2.5}\n")
    ir = kubepipe.compile(p).ir_yaml
    assert "backoffDuration: 1s" in ir and "backoffMaxDuration: 3s" in ir


HEAD_C = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: c}
steps:
  load:
    component: load-data
    with: {source: gs://b/d.csv}
"""


def test_a_registry_uri_with_a_query_string_is_refused_at_validate(tmp_path):
    """`registry_uri: s3://b/reg?endpoint_url=...` validated and compiled, and the run failed at its register step,
    after training, where the registry refuses it (s3fs / gcsfs read a query string as part of the key)."""
    prof = tmp_path / "local.yaml"
    prof.write_text("target: local\nregistry_uri: s3://b/reg?endpoint_url=http://minio:9000\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("local", profile_file=prof, environ={})
    [issue] = exc.value.issues
    assert (issue.path, issue.line) == ("registry_uri", 2)
    assert issue.message.startswith("a registry URI cannot carry a query string: fsspec's stores read it as part of "
                                    "the bucket or path")
    assert "AWS_ENDPOINT_URL_S3" in issue.message
    assert issue.value == "s3://b/reg?endpoint_url=http://minio:9000"  # no credential: shown as it is
    prof.write_text("target: local\nregistry_uri: s3://b/reg?X-Amz-Signature=s3cr3t\n")
    with pytest.raises(ValidationError) as exc:
        load_profile("local", profile_file=prof, environ={})
    assert "s3cr3t" not in str(exc.value)  # a signed URL's signature was echoed whole
    prof.write_text("target: local\nregistry_uri: s3://b/reg\n")
    assert load_profile("local", profile_file=prof, environ={}).registry_uri == "s3://b/reg"


@pytest.mark.parametrize("name", ["train.csv", "holdout.PARQUET"])
def test_a_data_file_given_for_the_pipeline_is_named_as_one(tmp_path, name):
    """`kubepipe validate pipelines/data/train.csv` (tab-completed one folder too far) said 'invalid YAML: did not
    find expected <document start>' at some line of the CSV (or, for a CSV of one column, that a pipeline is a
    mapping)."""
    data = tmp_path / name
    data.write_text("text,label\nSTARBUCKS 1234,restaurants\n: not yaml\n")
    with pytest.raises(ValidationError) as exc:
        load_pipeline(data)
    (issue,) = exc.value.issues
    assert issue.message == f"a data file ({data.suffix}), not a YAML file" and issue.file == str(data)
    assert issue.hint.startswith("pass the .yaml file; a pipeline's data is read by its steps")


@given(st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32)))
def test_a_quoted_number_unquoted_is_the_number_yaml_reads(number):
    """validate re-checks a quoted number unquoted (`bake_s: '0'`) to say whether unquoting helps: the number it
    checks is the one YAML reads from the text unquoted (PyYAML as the oracle), an int where one is written."""
    import yaml

    from kubepipe.spec.values import unquoted_number

    text = yaml.safe_dump(number).splitlines()[0]
    assert unquoted_number(f" {text} ", float if isinstance(number, float) else int) == yaml.safe_load(text)
    assert type(unquoted_number(text, float)) is type(yaml.safe_load(text))


def _numeric_text_fields():
    """(model, field) of every pipeline section's field that takes a number and no text: the fields the rule for a
    number in quotes (Spec's: `${env.NAME}` gives text, `retries: ${env.RETRIES:-2}`) applies to."""
    from kubepipe.spec import models

    out = []
    for model in (models.StepDefaults, models.Step, models.RetryPolicy, models.Gpu, models.Schedule, models.Param):
        for name, f in model.model_fields.items():
            kinds = models._kinds(f.annotation)
            if kinds & {int, float} and not kinds & {str, typing.Any} and bool not in kinds:
                out.append((model, f.alias or name))
    return out


def test_a_number_in_quotes_is_read_alike_by_every_number_field_of_a_pipeline():
    """`retries: '3'` was accepted where `bake_s: '3'` (a component's `with:`) is refused: one rule holds for every
    run setting of a pipeline, found here by type so that a new field cannot take another: a number in quotes is
    the number (`${env.NAME}` gives text), its range checked as the number's, with the same message."""
    fields = _numeric_text_fields()
    assert {f"{m.__name__}.{n}" for m, n in fields} >= {
        "StepDefaults.retries", "Step.retries", "Step.parallelism", "RetryPolicy.count", "RetryPolicy.factor",
        "Gpu.count", "Schedule.max_concurrency", "Schedule.max_runs"}, fields
    need = {"Step": {"component": "c"}, "Gpu": {"type": "nvidia-l4"}, "Schedule": {"cron": "0 3 * * *"},
            "RetryPolicy": {"count": 1}}
    for model, name in fields:
        base = need.get(model.__name__, {})
        assert getattr(model.model_validate({**base, name: "2"}), name) == getattr(
            model.model_validate({**base, name: 2}), name), (model, name)
        said = _refusals(model, {**base, name: "-5"}), _refusals(model, {**base, name: -5})
        assert said[0] == said[1] != [], (model, name)  # below every one's range, said alike


def _refusals(model, data):
    from pydantic import ValidationError as PydanticError

    try:
        model.model_validate(data)
    except PydanticError as exc:
        return [(e["loc"], e["msg"]) for e in exc.errors()]
    return []
