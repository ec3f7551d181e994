"""Plan and compiler layers: ordering, conditions, context binding, graph, lowering notes."""

from __future__ import annotations

from pathlib import Path

import pytest

import kubepipe
from kubepipe.plan.graph import to_mermaid
from kubepipe.plan.model import ContextRef, Literal, Nested, OutputRef, ParamRef

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
FLAGSHIP = ROOT / "pipelines" / "merchant-categorizer.yaml"


def test_branching_plan_orders_and_groups_conditions():
    plan = kubepipe.validate(FIX / "branching.yaml")
    names = [s.name for s in plan.steps]
    assert names.index("numbers") < names.index("sum") < names.index("big") < names.index("small")
    big, small = plan.step("big"), plan.step("small")
    assert big.condition.negation_key() == small.condition.key  # compiled as If / Else
    assert plan.step("sum").args["data"] == OutputRef("numbers", "out")
    assert plan.step("sum").args["threshold"] == ParamRef("threshold")
    assert plan.step("fan").foreach == Literal([1, 2])
    assert plan.exit_step.info.ref == "ops:report_status"


def test_context_params_are_bound_from_the_target_profile():
    plan = kubepipe.validate(FLAGSHIP, "kubeflow", profile=ROOT / "tests/golden/profiles/kubeflow.yaml")
    deploy = plan.step("deploy").args
    assert deploy["ctx_target"] == ContextRef("ctx_target", "kubeflow")
    assert deploy["ctx_registry_uri"].value == "gs://golden-models/registry"
    assert deploy["ctx_run_id"].value == "{{$.pipeline_job_uuid}}"
    assert "auth" not in deploy["ctx_profile"].value  # components never see auth settings
    thresholds = plan.step("evaluate").args["thresholds"]
    assert isinstance(thresholds, Nested) and thresholds.template["f1_macro"]["min"] == ParamRef("min_f1")


def test_flagship_gpu_request_lowers_per_target():
    kf = kubepipe.validate(FLAGSHIP, "kubeflow", profile=ROOT / "tests/golden/profiles/kubeflow.yaml")
    vx = kubepipe.validate(FLAGSHIP, "vertex", profile=ROOT / "tests/golden/profiles/vertex.yaml")
    assert kf.step("train").gpu.accelerator == "nvidia.com/gpu"
    assert kf.step("train").gpu.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert vx.step("train").gpu.accelerator == "NVIDIA_L4"
    local = kubepipe.validate(FLAGSHIP, "local")
    assert any("resources, node selectors and tolerations are ignored" in n for n in local.notes)


def test_unknown_gpu_type_lists_the_known_ones(tmp_path):
    text = (FIX / "gpu.yaml").read_text().replace("nvidia-h100-80gb", "nvidia-h100")
    (tmp_path / "g.yaml").write_text(text)
    with pytest.raises(kubepipe.ValidationError) as exc:
        kubepipe.validate(tmp_path / "g.yaml", "vertex", profile=ROOT / "tests/golden/profiles/vertex.yaml")
    (issue,) = exc.value.issues
    assert issue.path == "steps.big.resources.gpu.type"
    assert "nvidia-h100-80gb" in issue.hint and "nvidia-l4" in issue.hint


def test_profile_gpu_types_extend_the_table(tmp_path):
    text = (FIX / "gpu.yaml").read_text().replace("nvidia-h100-80gb", "nvidia-rtx-pro-6000")
    (tmp_path / "g.yaml").write_text(text)
    plan = kubepipe.validate(tmp_path / "g.yaml", "vertex", profile=ROOT / "tests/golden/profiles/vertex.yaml",
                             sets=["gpu_types={nvidia-rtx-pro-6000: NVIDIA_RTX_PRO_6000}"])
    assert plan.step("big").gpu.accelerator == "NVIDIA_RTX_PRO_6000"


def test_mermaid_graph_shows_wiring_conditions_and_exit():
    text = to_mermaid(kubepipe.validate(FIX / "branching.yaml"))
    assert text.startswith("flowchart TD")
    assert 's_numbers -- "out→data" --> s_sum' in text
    assert "when ${steps.sum.outputs.big} == true" in text
    assert "-. finally .-> s_on_exit" in text


def test_compiled_if_else_and_loop_structure():
    import yaml

    body = kubepipe.compile(FIX / "branching.yaml", "kubeflow",
                            profile=ROOT / "tests/golden/profiles/kubeflow.yaml").body
    ir = next(yaml.safe_load_all(body))
    comps = ir["components"]
    branches = [k for k in comps if k.startswith("comp-condition-branches")]
    assert len(branches) == 1
    conds = [t["triggerPolicy"]["condition"] for t in comps[branches[0]]["dag"]["tasks"].values()]
    assert any(c.startswith("!(") for c in conds)  # the Else branch
    assert any(k.startswith("comp-for-loop") for k in comps)
    assert "exit-handler-1" in str(ir["root"]["dag"]["tasks"])


def test_a_lone_when_is_a_plain_if_on_every_target():
    import yaml

    for target in ("local", "vertex"):
        prof = None if target == "local" else ROOT / "tests/golden/profiles/vertex.yaml"
        body = kubepipe.compile(FIX / "when-only.yaml", target, profile=prof).body
        assert "condition-branches" not in body  # no Else: local runs see the IR remote runs see
        assert next(yaml.safe_load_all(body))["pipelineInfo"]["name"] == "when-only"



def test_mermaid_labels_escape_double_quotes(tmp_path):
    from kubepipe.scaffold import init_project

    init_project(tmp_path, "p")
    f = tmp_path / "pipelines" / "p.yaml"
    f.write_text(f.read_text().replace('when: "${steps.evaluate.outputs.passed} == true"',
                                       """when: '${steps.evaluate.outputs.decision} == "ok"'"""))
    chart = to_mermaid(kubepipe.validate(f))
    # was `== "ok"` inside the edge's "...": the quoted label ended early and the chart did not render
    assert 's_evaluate -- "evaluation→evaluation | when ${steps.evaluate.outputs.decision} == #quot;ok#quot;" -->' \
        ' s_register' in chart


def test_mermaid_labels_show_the_condition_as_written_on_one_line(tmp_path):
    from kubepipe.scaffold import init_project

    init_project(tmp_path, "p")
    f = tmp_path / "pipelines" / "p.yaml"
    f.write_text(f.read_text().replace('when: "${steps.evaluate.outputs.passed} == true"',
                                       "when: |-\n      ${steps.evaluate.outputs.decision}\n      == '<b>#1</b>'"))
    chart = to_mermaid(kubepipe.validate(f))
    # was a line break inside the label, `<b>` rendered as bold and `#1` left for Mermaid's entity codes
    assert ('s_evaluate -- "evaluation→evaluation | when ${steps.evaluate.outputs.decision} == '
            "'#lt;b#gt;#35;1#lt;/b#gt;'\" --> s_register") in chart


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_decimal_memory_and_small_cpu_amounts_compile_as_kfp_takes_them(tmp_path, target):
    """`memory: 1.5Gi` (and 0.5Gi, which the spec's own tests load) passed validate, then compile stopped with
    'internal error: ValueError: Invalid memory string' (kfp takes whole numbers only); `cpu: 0.00001` was
    written 1e-05, and failed the same way."""
    import yaml

    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: res}\nsteps:\n"
        "  a: {component: ops:say, with: {message: x}, resources: {cpu: 0.00001, memory: 1.5Gi}}\n"
        "  b: {component: ops:say, with: {message: x}, resources: {cpu: 2, memory: 1.5G}}\n"
        "  c: {component: ops:say, with: {message: x}, resources: {cpu: 250m, memory: 0.1Gi}}\n")
    body = kubepipe.compile(tmp_path / "p.yaml", target, profile=ROOT / f"tests/golden/profiles/{target}.yaml").body
    res = {name: ex["container"]["resources"] for name, ex in
           next(yaml.safe_load_all(body))["deploymentSpec"]["executors"].items()}
    got = {name: (r["resourceCpuLimit"], r["resourceMemoryLimit"]) for name, r in res.items()}
    assert got == {"exec-a": ("0.00001", "1536Mi"), "exec-b": ("2.0", "1500M"),
                   "exec-c": ("250m", "107374183")}  # 0.1Gi, rounded up to whole bytes as Kubernetes does


def test_a_quote_or_backslash_in_a_when_text_is_escaped_in_the_cel_condition(tmp_path):
    """`when: ${params.mode} == "it's"` compiled to `== 'it's'`, which CEL cannot parse (the condition failed on
    Kubeflow; locally the step was skipped), and `'a\\b'` to `'a\\b'`, CEL's backspace escape."""
    import yaml

    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: q}\nparams:\n  mode: {default: x}\nsteps:\n"
        "  a: {component: ops:say, with: {message: x}, when: '${params.mode} == \"it''s\"'}\n"
        "  b: {component: ops:say, with: {message: x}, when: \"'a\\\\b' != ${params.mode}\"}\n")
    body = kubepipe.compile(tmp_path / "p.yaml", "kubeflow", profile=ROOT / "tests/golden/profiles/kubeflow.yaml").body
    tasks = next(yaml.safe_load_all(body))["root"]["dag"]["tasks"]
    conds = sorted(t["triggerPolicy"]["condition"] for t in tasks.values())
    mode = "inputs.parameter_values['pipelinechannel--mode']"
    assert conds == [f"{mode} != 'a\\\\b'", f"{mode} == 'it\\'s'"]


def test_an_int_literal_or_loop_item_for_a_float_input_compiles_as_a_float(tmp_path):
    """`learning_rate: 0` (validate takes an int for a float) stopped compile and run with 'internal error:
    InconsistentTypeException: ... Argument type 'NUMBER_INTEGER' is incompatible with the input type
    'NUMBER_DOUBLE''; so did `foreach: [1, 2]` into a float input."""
    import yaml

    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: f}\nsteps:\n"
        "  a: {component: ops:nap, with: {seconds: 1}}\n"
        "  b: {component: ops:nap, foreach: [1, 2.5], with: {seconds: '${item}'}}\n")
    ir = next(yaml.safe_load_all(kubepipe.compile(tmp_path / "p.yaml").body))
    assert ir["root"]["dag"]["tasks"]["a"]["inputs"]["parameters"]["seconds"]["runtimeValue"]["constant"] == 1.0
    loop = next(t for t in ir["root"]["dag"]["tasks"].values() if "parameterIterator" in t)
    assert loop["parameterIterator"]["items"]["raw"] == "[1.0, 2.5]"


def test_a_condition_on_no_edge_is_drawn_in_its_step(tmp_path):
    """A `when:` on a param, in a step that reads no other step, appeared nowhere in the chart."""
    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: w}\nparams:\n  n: {type: int, default: 3}\n"
        "steps:\n  a: {component: ops:say, with: {message: x}, when: '${params.n} > 2'}\n")
    chart = to_mermaid(kubepipe.validate(tmp_path / "p.yaml"))
    assert '    s_a["a<br/><small>ops:say</small><br/><small>when ${params.n} #gt; 2</small>"]' in chart


def test_a_required_param_after_one_with_a_default_compiles(tmp_path):
    """`params: {n: {type: int, default: 3}, need: {type: str}}` validated, and compile / run stopped with
    'internal error: ValueError: non-default argument follows default argument' (the pipeline function's
    signature)."""
    import yaml

    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: order}\n"
                 "params:\n  n: {type: int, default: 3}\n  need: {type: str}\n"
                 "steps:\n  say:\n    component: ops:say\n    with: {message: '${params.need}', value: '${params.n}'}\n")
    ir = yaml.safe_load(kubepipe.compile(p).ir_yaml)
    inputs = ir["root"]["inputDefinitions"]["parameters"]
    assert inputs["n"]["defaultValue"] == 3 and inputs["n"]["isOptional"] is True
    assert inputs["need"]["parameterType"] == "STRING" and "isOptional" not in inputs["need"]


def test_a_plan_prints_as_one_line_a_notebook_can_read():
    """`kubepipe.validate(...)` as a notebook cell's value printed the dataclass: every step's component, bindings and
    settings, ~50 kB for the flagship."""
    plan = kubepipe.validate(FIX / "branching.yaml")
    text = repr(plan)
    assert text.startswith("Plan(name='branching', target='local', steps=['numbers', ") and "\n" not in text
    assert "exit_step='on-exit'" in text and text.endswith(f"warnings={len(plan.warnings)}, notes={len(plan.notes)})")
    assert len(repr(kubepipe.validate(FLAGSHIP))) < 1000


def test_a_step_the_plan_has_not_is_a_user_error_naming_its_steps():
    """plan.step('evaluat') raised a bare StopIteration (which ends a generator silently)."""
    from kubepipe.errors import UserError

    plan = kubepipe.validate(FLAGSHIP)
    with pytest.raises(UserError) as exc:
        plan.step("evaluat")
    assert str(exc.value) == ("pipeline merchant-categorizer has no step 'evaluat'; did you mean `evaluate`? (its "
                              "steps: load, load_holdout, validate, train, guardrail, evaluate, register, deploy, "
                              "on-exit)")
    assert plan.step("on-exit") is plan.exit_step


def test_a_plan_and_its_run_name_a_missing_step_alike():
    """Plan.step and RunResult.step spelled the lookup twice, and the plan's list left out the exit handler it
    finds (`on-exit`), so a typo of it got no `did you mean` from a plan and one from its run."""
    from kubepipe.backends.runs.record import RunResult, StepRecord
    from kubepipe.errors import UserError

    plan = kubepipe.validate(FLAGSHIP)
    run = RunResult(run_id="r", pipeline=plan.name, target="local", run_dir="/nonexistent", params={},
                    steps=[StepRecord(s.name, "SUCCEEDED") for s in [*plan.steps, plan.exit_step]])
    said = []
    for owner, find in ((f"pipeline {plan.name}", plan.step), ("run r", run.step)):
        with pytest.raises(UserError) as exc:
            find("on-exi")
        assert str(exc.value).startswith(f"{owner} has no step 'on-exi'; did you mean `on-exit`? (its steps: load, ")
        said.append(str(exc.value).removeprefix(owner))
    assert said[0] == said[1] and said[0].endswith(", deploy, on-exit)")


def test_threads_compiling_at_once_each_get_their_pipeline(monkeypatch):
    """kfp builds a pipeline inside one process-wide context: two threads of a service compiling at once failed with
    'Exception: Nested pipelines are not allowed.'"""
    import threading
    import time

    from kubepipe.compiler import pipeline_fn

    paths = [FIX / "branching.yaml", FIX / "branching.yaml"]
    want = kubepipe.compile(paths[0]).content_hash
    groups = pipeline_fn._groups

    def slow_groups(steps):  # inside kfp's pipeline context: long enough for the other thread to come in
        time.sleep(0.3)
        return groups(steps)

    monkeypatch.setattr(pipeline_fn, "_groups", slow_groups)
    failed, got = [], []

    def compile_one(path: Path) -> None:
        try:
            got.append(kubepipe.compile(path).content_hash)
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            failed.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=compile_one, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == [] and got == [want, want]
