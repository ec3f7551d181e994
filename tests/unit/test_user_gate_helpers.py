"""A user's gate raised from a helper the step calls is still judged as a gate on Kubeflow / Vertex (decision 0010):
the compiler follows what the step's function imports and calls into the user's own modules (transitively, by the
objects themselves), so the step gets the run's id and the boundary leaves its verdict; `gate: true` / `gate: false`
say it where the analysis cannot see (a library the step wraps) or should not (keep the cache key). Run as a pod runs
it: the compiled IR through kfp.local's real SubprocessRunner; the oracle is the client's own reader
(`read_verdicts`) and the files on disk."""

from __future__ import annotations

import re
import textwrap

import pytest
import yaml
from test_user_gate_verdict import PIPELINE, ROOT, _run_ir, _runs
from test_user_gate_verdict import _compile as compile_ir

import kubepipe
from kubepipe.errors import ValidationError
from kubepipe.verdicts import read_verdicts

CHECKS = textwrap.dedent('''
    from kubepipe.components.errors import GateFailed


    class Stale(GateFailed):
        """A user's gate error in a module of its own."""


    def _days_old(n):
        return _too_old(n) if n > 0 else 0  # mutual recursion: the walk must end


    def _too_old(n):
        if n > 2:
            raise Stale(f"data {n} days old", numbers={"days": float(n)})
        return _days_old(n - 1)


    def assert_fresh(n):
        return _days_old(n)


    def harmless(n):
        return n * 2


    def check_rows(n):
        if n < 100:
            raise GateFailed(f"only {n} rows, need 100", numbers={"rows": float(n)})


    def count(n):
        check_rows(n)  # a helper calling the helper that says no
        return n
''')
STEPS = textwrap.dedent('''
    from kfp import dsl

    from kubepipe.components.errors import GateFailed


    def rows_or_no(n):
        if n < 100:
            raise GateFailed(f"only {n} rows")
        return n


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def helper(n: int) -> int:
        from checks import count

        return count(n)


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def same_module(n: int) -> int:
        return rows_or_no(n)  # no task can import this module (kfp's runtime has no dsl.component): compiled only


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def other_module(n: int) -> int:
        import checks

        return checks.assert_fresh(n)


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def quiet(n: int) -> int:
        from checks import harmless

        return harmless(n)


    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def unseen(n: int) -> int:
        import importlib

        return getattr(importlib.import_module("checks"), "assert" + "_fresh")(n)  # no analysis sees this one
''')
def _compile(tmp_path, component: str, target: str = "kubeflow", extra: str = "") -> str:
    (tmp_path / "checks.py").write_text(CHECKS, encoding="utf-8")
    return compile_ir(tmp_path, component, target, extra, steps=STEPS)


def _gets_run_inputs(body: str) -> bool:
    [task] = next(yaml.safe_load_all(body))["root"]["dag"]["tasks"].values()
    return "ctx_run_id" in task.get("inputs", {}).get("parameters", {})


@pytest.mark.parametrize("component, gate, reason", [
    ("helper", "GateFailed", "only 3 rows, need 100"),  # same module, through a helper's helper
    ("other_module", "Stale", "data 3 days old")])  # a subclass, raised by a helper of another module of the user's
def test_a_gate_raised_by_a_helper_leaves_its_verdict(tmp_path, monkeypatch, capfd, component, gate, reason):
    body = _compile(tmp_path, component)
    assert _gets_run_inputs(body)
    said = _run_ir(tmp_path, monkeypatch, capfd, body)
    assert f"kubepipe: gate rejected {gate}: {reason}" in said, said
    [run_dir] = _runs(tmp_path)
    [verdict] = read_verdicts(f"file://{tmp_path}/store", run_dir.name)
    assert (verdict["step"], verdict["gate"], verdict["reason"]) == ("check_rows", gate, reason)


def test_a_step_whose_helpers_cannot_say_no_keeps_its_cache_key(tmp_path):
    assert not _gets_run_inputs(_compile(tmp_path, "quiet"))


def test_a_helper_of_the_step_s_own_module_is_followed_too(tmp_path):
    assert _gets_run_inputs(_compile(tmp_path, "same_module", "vertex"))


@pytest.mark.parametrize("component, extra, said", [
    ("helper", "", "checks.check_rows names GateFailed"),  # found through the helpers: the note names the one
    ("quiet", "", None),  # cannot say no: nothing to say
    ("helper", "    gate: false\n", None),  # the pipeline said it
    ("unseen", "    gate: true\n", None)])
def test_compile_notes_a_gate_its_code_made_and_its_lost_cache(tmp_path, component, extra, said):
    """A step the analysis made a gate is compiled uncacheable (the run's id is an input): compile says so, naming
    where GateFailed was found and `gate: false`; not where the pipeline chose with `gate:`, nor for other steps."""
    (tmp_path / "checks.py").write_text(CHECKS, encoding="utf-8")
    (tmp_path / "steps.py").write_text(STEPS, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(PIPELINE % (component, extra), encoding="utf-8")
    for target in ("kubeflow", "vertex"):
        notes = kubepipe.compile(tmp_path / "p.yaml", target,
                                 profile=ROOT / "tests/golden/profiles" / f"{target}.yaml").notes
        gates = [n for n in notes if "compiled as a gate" in n]
        if said is None:
            assert gates == []
        else:
            assert gates == [f"{target}: step `check_rows` is compiled as a gate ({said}): a rejection is reported "
                             f"as one, and its task gets the run's id, so {target} never caches it; `gate: false` on "
                             "the step keeps it cacheable (a rejection then reports as a failure)"]


def test_gate_true_judges_a_step_no_analysis_sees_as_a_gate(tmp_path, monkeypatch, capfd):
    assert not _gets_run_inputs(_compile(tmp_path, "unseen"))
    body = _compile(tmp_path, "unseen", extra="    gate: true\n")
    assert _gets_run_inputs(body)
    said = _run_ir(tmp_path, monkeypatch, capfd, body)
    [run_dir] = _runs(tmp_path)
    [verdict] = read_verdicts(f"file://{tmp_path}/store", run_dir.name)
    assert verdict["gate"] == "Stale" and "kubepipe: gate rejected Stale: data 3 days old" in said


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_gate_false_compiles_the_step_as_one_that_cannot_say_no(tmp_path, monkeypatch, capfd, target):
    """Opted out, the step's task is the one of a step that cannot say no (its cache key kept); when it says no
    anyway, the pod log says in one line why the run will read failed, and what to set."""
    plain = next(yaml.safe_load_all(_compile(tmp_path, "quiet", target)))
    body = _compile(tmp_path, "helper", target, extra="    gate: false\n")
    opted = next(yaml.safe_load_all(body))
    assert not _gets_run_inputs(body) and "pipeline_job_uuid" not in body

    def command(spec):  # the boot and executor, without the function's own source and its line in steps.py
        [executor] = spec["deploymentSpec"]["executors"].values()
        return re.sub(r'"steps.py", \d+', '"steps.py", N', "\n".join(executor["container"]["command"][:-1]))

    assert command(opted) == command(plain) and "gate=" not in command(opted)
    said = _run_ir(tmp_path, monkeypatch, capfd, body)
    assert "kubepipe: gate rejected GateFailed: only 3 rows, need 100" in said and _runs(tmp_path) == []
    [line] = [ln for ln in said.splitlines() if "gate: true" in ln]
    assert "compiled without the run's id" in line and "failed (exit 1), not rejected" in line, line


def test_a_step_that_fails_otherwise_says_nothing_about_gate_true(monkeypatch, capsys):
    from kubepipe.components import boundary

    for exc in (ValueError("the table is gone"),):
        try:
            raise exc
        except Exception as caught:
            boundary.user_excepthook("steps.py", 0)(type(caught), caught, caught.__traceback__)
    assert "gate: true" not in capsys.readouterr().err


BUILTIN = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: user-gate}
steps:
  rows:
    component: validate-data
    inputs: {data: data.csv}
    gate: %s
"""


@pytest.mark.parametrize("value, said", [
    ("true", "steps.rows.gate: `gate` is for your own python component"),
    ("false", "steps.rows.gate: `gate` is for your own python component"),
    ("maybe", "steps.rows.gate: true or false is expected here")])
def test_gate_where_it_means_nothing_is_an_error_naming_its_path(tmp_path, value, said):
    (tmp_path / "data.csv").write_text("a\n1\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(BUILTIN % value, encoding="utf-8")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "p.yaml", "local")
    assert said in str(exc.value), str(exc.value)


def test_gate_on_a_user_step_validates_on_every_target(tmp_path):
    (tmp_path / "steps.py").write_text(STEPS, encoding="utf-8")
    (tmp_path / "checks.py").write_text(CHECKS, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(PIPELINE % ("quiet", "    gate: true\n"), encoding="utf-8")
    for target in ("local", "kubeflow"):
        plan = kubepipe.validate(tmp_path / "p.yaml", target,
                                 profile=ROOT / "tests/golden/profiles" / f"{target}.yaml")
        assert plan.step("check_rows").gate is True


PACKAGE = {
    "__init__.py": "",
    "rules.py": "from kubepipe.components.errors import GateFailed\n\n\nclass Late(GateFailed):\n    pass\n",
    "helpers.py": textwrap.dedent('''
        import functools
        import json


        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return fn(*args)  # the helper itself is only in the wrapper's closure
            return wrapper


        @logged
        def on_time(n):
            from .rules import Late  # a relative import inside the helper

            if n:
                raise Late("late")


        class Checker:
            def run(self, n):
                return on_time(n)


        CHECKER = Checker()


        def dump(n):
            return json.dumps(n)
    '''),
}


@pytest.fixture
def ugatepkg(tmp_path, monkeypatch):
    import sys

    (tmp_path / "ugatepkg").mkdir()
    for name, text in PACKAGE.items():
        (tmp_path / "ugatepkg" / name).write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [n for n in sys.modules if n == "ugatepkg" or n.startswith("ugatepkg.")]:
        del sys.modules[name]


def test_the_walk_follows_instances_methods_decorators_and_relative_imports(ugatepkg):
    """By the objects: an instance's method, a decorated helper (its closure), a relative import in a package; never
    into a library (json), and a module is imported only when it is the user's."""
    from kubepipe.catalog.gate_reach import gate_raised_in

    def via_instance(n: int) -> int:
        from ugatepkg.helpers import CHECKER

        return CHECKER.run(n)

    def via_library(n: int) -> str:
        from ugatepkg import helpers

        return helpers.dump(n)

    assert gate_raised_in(via_instance) == "ugatepkg.helpers.on_time names Late"
    assert gate_raised_in(via_library) is None


def test_a_walk_cut_short_takes_the_step_as_a_gate_and_says_why(ugatepkg, monkeypatch):
    """Past LIMIT code objects with helpers still to follow, a gate may be among them: the step is taken as one (it
    loses its cache, a missed gate would exit 1 remotely), and the reason names the limit; a walk that ends within
    it finds nothing."""
    from kubepipe.catalog import gate_reach

    def via_library(n: int) -> str:
        from ugatepkg import helpers

        return helpers.dump(n)

    assert gate_reach.gate_raised_in(via_library) is None
    monkeypatch.setattr(gate_reach, "LIMIT", 1)
    assert gate_reach.gate_raised_in(via_library) == (
        "test_user_gate_helpers.test_a_walk_cut_short_takes_the_step_as_a_gate_and_says_why.<locals>.via_library "
        "reaches more than 1 functions of yours, not all followed")
