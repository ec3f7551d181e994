"""Your `package.module:function` components in your own repository (catalog.user_modules)."""

from __future__ import annotations

import json
import os
import sys

import pytest

import kubepipe

COMPONENT = '''from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def {name}(x: int) -> int:
    """Doubles x."""
    return 2 * x
'''
PIPELINE = ("apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {{name: p}}\n"
            "steps:\n  a:\n    component: {ref}\n    with: {{x: 2}}\n")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A user repository: modules at its root, the pipeline in pipelines/; no PYTHONPATH names it."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    (tmp_path / "pipelines").mkdir()
    yield tmp_path
    for name in set(sys.modules) - before:  # the user's modules, gone for the next test
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.mark.parametrize("module, files", [
    ("jv_root_steps", {"jv_root_steps.py": "double"}),  # a module at the repository root
    ("jv_pkg.sub.steps", {"jv_pkg/__init__.py": "", "jv_pkg/sub/__init__.py": "", "jv_pkg/sub/steps.py": "double"}),
    ("jv_ns.steps", {"jv_ns/steps.py": "double"}),  # a namespace package (no __init__.py)
])
def test_a_module_of_the_repository_is_found_from_the_pipeline_without_pythonpath(repo, monkeypatch, module, files):
    for rel, fn in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(COMPONENT.format(name=fn) if fn else "")
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref=f"{module}:double"))
    monkeypatch.chdir("/")  # the folder kubepipe is started from plays no part
    compiled = kubepipe.compile(repo / "pipelines" / "p.yaml")
    assert compiled.plan.steps[0].info.import_root == str(repo.resolve())
    assert sys.path[-1] == str(repo.resolve())  # after the installed packages: none of them is shadowed

    from kubepipe.backends.local.environ import user_module_path

    monkeypatch.setenv("PYTHONPATH", "/mine")
    env = user_module_path(compiled, {})  # a local run's steps import the repository's modules too
    assert env["PYTHONPATH"] == os.pathsep.join(["/mine", str(repo.resolve())])


def test_an_installed_module_of_the_same_name_is_not_shadowed(repo):
    (repo / "json.py").write_text(COMPONENT.format(name="double"))
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="json:double"))
    with pytest.raises(kubepipe.ValidationError) as exc:
        kubepipe.validate(repo / "pipelines" / "p.yaml")
    assert str(repo.resolve()) not in sys.path
    issue = exc.value.issues[0]
    assert "module `json` has no `double`" in issue.message
    import json

    # the hint says which `json` Python took, and what to do (was: none)
    assert issue.hint.startswith(f"Python imports `json` from {json.__file__}, not your {repo.resolve() / 'json.py'}: "
                                 "rename your module (e.g. `json_steps`)")


def test_a_missing_module_of_a_repository_package_is_named_not_its_package(repo):
    (repo / "jv_pkg2").mkdir()
    (repo / "jv_pkg2" / "__init__.py").write_text("")
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_pkg2.nosuch:double"))
    with pytest.raises(kubepipe.ValidationError) as exc:
        kubepipe.validate(repo / "pipelines" / "p.yaml")
    assert "No module named 'jv_pkg2.nosuch'" in str(exc.value)  # was 'jv_pkg2', which is there


@pytest.mark.parametrize("source, expected", [
    # a library the module imports is missing: that library is named, at the module's import line
    ("import os\nimport jv_not_installed_lib\n", "importing `jv_broken` failed at {f}:2: ModuleNotFoundError: "
     "No module named 'jv_not_installed_lib'; install `jv_not_installed_lib` in this environment"),
    ("x = 1\ndef f(:\n", "importing `jv_broken` failed at {f}:2: SyntaxError: invalid syntax"),
    ("import json\n\nCONFIG = json.loads('{{bad')\n", "importing `jv_broken` failed at {f}:3: JSONDecodeError"),
    # kfp refuses a function without type hints while the module imports: the line of the user's decorator
    ("from kfp import dsl\n\n\n@dsl.component(base_image=\"python:3.11-slim\")\ndef double(x):\n    return x\n",
     "importing `jv_broken` failed at {f}:4: TypeError: Missing type annotation for argument: x"),
])
def test_a_module_that_fails_to_import_is_named_at_its_own_line(repo, monkeypatch, source, expected):
    (repo / "jv_broken.py").write_text(source)
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_broken:double"))
    monkeypatch.chdir(repo)
    with pytest.raises(kubepipe.ValidationError) as exc:
        kubepipe.validate(repo / "pipelines" / "p.yaml")
    issue = exc.value.issues[0]
    assert expected.format(f="jv_broken.py") in f"{issue.message}; {issue.hint}"


# the user's exception as raised, and where (the helper their module imports: its file, line 2)
BROKEN_HELPER = {
    "ImportError": ("x = 1\nfrom os import no_such_name\n", ImportError),
    "SyntaxError": ("x = 1\ny = (\n", SyntaxError),
}


def _broken(repo, kind: str) -> None:
    (repo / "jv_cause_helper.py").write_text(BROKEN_HELPER[kind][0])
    (repo / "jv_cause_steps.py").write_text("import jv_cause_helper\n" + COMPONENT.format(name="double"))
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_cause_steps:double"))


@pytest.mark.parametrize("kind", sorted(BROKEN_HELPER))
def test_a_module_that_fails_to_import_keeps_the_user_s_exception_as_the_cause(repo, kind):
    """The ValidationError said where, but dropped the user's exception (`from None`): a program (or a debugger)
    calling kubepipe.validate / compile / run could not reach their traceback. It is the error's __cause__ now."""
    import traceback

    _broken(repo, kind)
    for call in (kubepipe.validate, kubepipe.compile):
        with pytest.raises(kubepipe.ValidationError) as exc:
            call(repo / "pipelines" / "p.yaml")
        cause = exc.value.__cause__
        assert type(cause) is BROKEN_HELPER[kind][1], repr(cause)
        assert exc.value.issues[0].cause is cause
        if kind == "SyntaxError":  # its own place: the file and line it could not parse
            assert (cause.filename, cause.lineno) == (str(repo / "jv_cause_helper.py"), 2)
        else:  # its traceback ends in the user's file, at the line that raised
            last = traceback.extract_tb(cause.__traceback__)[-1]
            assert (last.filename, last.lineno) == (str(repo / "jv_cause_helper.py"), 2)


@pytest.mark.parametrize("kind", sorted(BROKEN_HELPER))
def test_the_cli_names_the_user_s_file_and_line_and_shows_their_traceback_with_verbose(repo, monkeypatch, capsys,
                                                                                        kind):
    from cli_runner import run_cli

    _broken(repo, kind)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("COLUMNS", "300")
    code, out, err = run_cli(capsys, "validate", "pipelines/p.yaml")
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"importing `jv_cause_steps` failed at jv_cause_helper.py:2: {kind}" in " ".join(err.split()), err
    code, _out, err = run_cli(capsys, "validate", "pipelines/p.yaml", "-v")  # the traceback reaches their line
    assert code == 2 and f"{repo / 'jv_cause_helper.py'}:2" in err and "direct cause" in err, err


@pytest.mark.parametrize("ref, spelled", [
    ("mycomps.py:total", "write `mycomps:total`"),  # was: cannot import module `mycomps.py`
    ("./mycomps.py", "write `mycomps:<function>`"),  # was: not a KFP component: mapping values are not allowed here
    ("mypkg/sub/steps.py:shout", "write `mypkg.sub.steps:shout`"),  # was: component file ... not found
    ("../up/my-steps.py:f", "write the module as Python imports it"),
])
def test_a_python_file_as_component_says_how_to_name_its_module(tmp_path, ref, spelled):
    from kubepipe.catalog import CatalogError, resolve_component

    with pytest.raises(CatalogError) as exc:
        resolve_component(ref, tmp_path)
    assert exc.value.message == f"`{ref}` names a Python file; a python component is `package.module:function`"
    assert exc.value.hint.startswith(spelled)


def test_a_failed_python_step_is_placed_in_the_users_file_not_kfps_copy(repo):
    from kubepipe.backends.local.watcher import StepWatcher
    from kubepipe.backends.local.user_frames import source_maps
    from kubepipe.backends.runs.record import RunResult, StepRecord

    (repo / "jv_failing.py").write_text('''"""My steps."""
from kfp import dsl


@dsl.component(
    base_image="python:3.11-slim",
)
def double(x: int) -> int:
    """Doubles x."""
    if x < 0:
        raise ValueError(f"negative: {x}")
    return 2 * x
''')
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_failing:double"))
    compiled = kubepipe.compile(repo / "pipelines" / "p.yaml")
    copy = compiled.plan.steps[0].info.component.component_spec.implementation.container.command[-1]
    line = copy.split("\n").index('        raise ValueError(f"negative: {x}")') + 1  # where kfp's copy raises
    run = RunResult(run_id="r", pipeline="p", target="local", run_dir=str(repo), params={}, steps=[StepRecord("a")])
    watcher = StepWatcher(run, __import__("io").StringIO(), {"a": "a"}, None, None, source_maps(compiled.plan.steps))
    watcher.write("Executing task 'a'\nTraceback (most recent call last):\n"
                  '  File "/usr/lib/python3.11/site-packages/kfp/dsl/executor.py", line 453, in execute\n'
                  f'  File "/tmp/tmp.Xy12/ephemeral_component.py", line {line}, in double\n'
                  "ValueError: negative: -1\nTask 'a' finished with status FAILURE\n")
    # was 'ValueError: negative: -1' with, in run.log only, a temp file that is gone
    assert run.steps[0].error == f"ValueError: negative: -1 (at {repo.resolve() / 'jv_failing.py'}:11, in double)"


def test_a_module_without_its_function_says_which_functions_it_has(repo):
    from kubepipe.catalog import CatalogError, resolve_component

    (repo / "jv_two.py").write_text(COMPONENT.format(name="double") + COMPONENT.format(name="triple"))
    with pytest.raises(CatalogError) as exc:  # was: unknown component `jv_two`; use a built-in name, ...
        resolve_component("jv_two", repo / "pipelines")
    assert exc.value.message == "`jv_two` is a module of your repository; a python component is `jv_two:<function>`"
    assert exc.value.hint == "write `jv_two:double` (its KFP components: `double`, `triple`)"


def test_a_module_without_its_function_names_this_repositorys_functions(repo, monkeypatch):
    """`component: jv_same` in a second repository of the process (a notebook validating two) was told to write the
    function of the first repository's jv_same, imported before (`write jv_same:double`, which it has not); and it
    imported with no lock, where another thread's import takes modules out of sys.modules."""
    import threading

    from kubepipe.catalog import CatalogError, resolve, resolve_component
    from kubepipe.catalog.user_modules import USER_IMPORTS

    for name, func in (("first", "double"), ("second", "triple")):
        (repo / name / "pipelines").mkdir(parents=True)
        (repo / name / "jv_same.py").write_text(COMPONENT.format(name=func))
    assert resolve_component("jv_same:double", repo / "first" / "pipelines").ref == "jv_same:double"
    free, import_module = [], resolve._import_module

    def another_thread_may_import() -> bool:
        if USER_IMPORTS.acquire(timeout=0):
            USER_IMPORTS.release()
            return True
        return False

    def spy(name, what):
        other = threading.Thread(target=lambda: free.append(another_thread_may_import()))
        other.start()
        other.join(5)
        return import_module(name, what)

    monkeypatch.setattr(resolve, "_import_module", spy)
    with pytest.raises(CatalogError) as exc:
        resolve_component("jv_same", repo / "second" / "pipelines")
    assert exc.value.hint == "write `jv_same:triple`"
    assert free == [False]  # this thread held the lock of user imports meanwhile


def test_a_component_yaml_that_does_not_parse_is_named_at_its_line_and_column(tmp_path):
    from kubepipe.catalog import CatalogError, resolve_component

    (tmp_path / "comps").mkdir()
    (tmp_path / "comps" / "bad.yaml").write_text("name: x\n  bad: [\n")
    with pytest.raises(CatalogError) as exc:  # was: 'mapping values are not allowed here in "<unicode string>"'
        resolve_component("comps/bad.yaml", tmp_path)
    assert exc.value.message == (f"component file `comps/bad.yaml` is not valid YAML: {tmp_path / 'comps' / 'bad.yaml'}"
                                 ":2:6: mapping values are not allowed here")


def test_typing_generics_of_a_python_component_are_list_and_dict_parameters(repo):
    (repo / "jv_generic.py").write_text('''from typing import Dict, List

from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def numbers(n: int) -> List[int]:
    return list(range(n))


@dsl.component(base_image="python:3.11-slim")
def total(values: List[int], weights: Dict[str, float], names: list[str]) -> float:
    return sum(values) * weights["w"]
''')
    (repo / "pipelines" / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
        "  a: {component: 'jv_generic:numbers', with: {n: 3}}\n"
        "  b: {component: 'jv_generic:total', inputs: {values: '${steps.a.outputs.Output}'},"
        " with: {weights: {w: 0.5}, names: [x]}}\n")
    # was: '`weights` takes a typing.Dict[str, float] artifact, not a literal; wire it: ${steps...}' (and so for
    # `names`), and `values` could not take a's List[int] output
    plan = kubepipe.validate(repo / "pipelines" / "p.yaml")
    ports = plan.steps[1].info.inputs
    assert [(ports[n].kind, ports[n].type) for n in ("values", "weights", "names")] == [
        ("parameter", "list"), ("parameter", "dict"), ("parameter", "list")]


def test_a_local_run_finds_the_users_model_class_from_any_folder(repo, monkeypatch):
    from kubepipe.backends.local.environ import user_module_path

    (repo / "jv_models.py").write_text("class Net:\n    pass\n")
    (repo / "pipelines" / "d.csv").write_text("a,b,label\n1,2,x\n3,4,y\n")
    (repo / "pipelines" / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
        "  load: {component: load-data, with: {source: d.csv}}\n"
        "  train: {component: train-torch, inputs: {dataset: '${steps.load.outputs.dataset}'},"
        " with: {architecture: 'jv_models:Net', label_column: label, feature_columns: [a, b]}}\n")
    monkeypatch.chdir("/")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    compiled = kubepipe.compile(repo / "pipelines" / "p.yaml")
    # was: no PYTHONPATH, so the train step said "cannot import module `jv_models`" unless run from the root
    assert user_module_path(compiled, {}) == {"PYTHONPATH": str(repo.resolve())}


def test_a_built_in_step_failing_in_the_users_class_is_placed_in_it(tmp_path):
    import sysconfig

    import kubepipe.components.training.trainer as trainer
    from kubepipe.backends.local.user_frames import user_frame

    mine = tmp_path / "jv_models.py"
    site = sysconfig.get_paths()["purelib"]
    lines = ['File "/tmp/tmp.Ab/ephemeral_component.py", line 40, in train_torch',  # the built-in's copy
             f'File "{trainer.__file__}", line 200, in fit',  # kubepipe's own code
             f'File "{mine}", line 13, in forward',  # the user's model class
             f'File "{site}/torch/nn/modules/linear.py", line 125, in forward']  # a package it calls
    # was: no place at all (only python components were placed)
    assert user_frame(lines, None) == f"{mine}:13, in forward"
    assert user_frame(lines[:2], None) is None  # a built-in failing in its own code: no user place to name


def test_what_a_module_prints_on_import_stays_off_stdout(repo, monkeypatch, capsys):
    """`print("loaded")` at the top of the user's module came before the JSON document of `--format json`."""
    from cli_runner import run_cli

    (repo / "jv_loud.py").write_text('print("loaded jv_loud")\n' + COMPONENT.format(name="double"))
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_loud:double"))
    code, out, err = run_cli(capsys, "validate", repo / "pipelines" / "p.yaml", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["kind"] == "Validation" and "loaded jv_loud" in err


def test_a_missing_component_file_names_the_folder_it_was_looked_for_in(tmp_path):
    from kubepipe.catalog import CatalogError, resolve_component

    with pytest.raises(CatalogError) as exc:  # was: 'looked in /repo/pipelines/../comps'
        resolve_component("../comps/make.yaml", tmp_path / "pipelines")
    assert exc.value.message == f"component file `../comps/make.yaml` not found (looked in {tmp_path / 'comps'})"


def test_a_component_in_a_packages_init_is_found(repo):
    (repo / "jv_initpkg").mkdir()
    (repo / "jv_initpkg" / "__init__.py").write_text(COMPONENT.format(name="double"))
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_initpkg:double"))
    # was: "cannot import module `jv_initpkg`": only jv_initpkg.py was looked for
    assert kubepipe.validate(repo / "pipelines" / "p.yaml").steps[0].info.import_root == str(repo.resolve())


def test_a_remote_step_whose_body_imports_the_repository_warns_of_its_image(repo):
    (repo / "jv_helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (repo / "jv_body.py").write_text('''from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def double(x: int) -> int:
    import json

    from jv_helpers import double as twice
    return twice(x)
''')
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_body:double"))
    sets = ["host=http://127.0.0.1:1", "pipeline_root=minio://b/r"]
    plan = kubepipe.validate(repo / "pipelines" / "p.yaml", "kubeflow", sets=sets)
    # was: no word; the pod then failed with "No module named 'jv_helpers'"
    (w,) = plan.warnings
    assert (w.path, w.severity) == ("steps.a.component", "warning")
    assert w.message == (f"`jv_body:double` imports `jv_helpers` from your repository ({repo.resolve()}), which its "
                         "image `python:3.11-slim` does not have: the step fails on kubeflow with `No module named "
                         "'jv_helpers'`")
    assert w.hint == "give the step `image:` your project image (kubepipe image build --kind project)"
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_body:double") + "    image: reg/p@sha256:"
                                               + "0f3a9c5e7b2d4f6a8c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f5a\n")
    assert kubepipe.validate(repo / "pipelines" / "p.yaml", "kubeflow", sets=sets).warnings == []
    assert kubepipe.validate(repo / "pipelines" / "p.yaml").warnings == []  # locally the repository is on the path


def test_a_user_input_named_ctx_is_the_users_to_set(repo):
    (repo / "jv_ctx.py").write_text('''from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def f(ctx_mode: str, ctx_run_id: str = "") -> str:
    return ctx_mode + ctx_run_id
''')
    pipeline = "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n  a: {component: 'jv_ctx:f'}\n"
    (repo / "pipelines" / "p.yaml").write_text(pipeline)
    # was: valid, then `kubepipe run` / compile stopped with "internal error: ValueError: Constant argument inputs
    # must be one of type [...] Got: None"; and setting it: "`ctx_mode` is set by kubepipe from the target profile"
    with pytest.raises(kubepipe.ValidationError, match=r"missing input `ctx_mode` \(str\) of `jv_ctx:f`"):
        kubepipe.validate(repo / "pipelines" / "p.yaml")
    (repo / "pipelines" / "p.yaml").write_text(pipeline.replace("'jv_ctx:f'}", "'jv_ctx:f', with: {ctx_mode: fast}}"))
    step = kubepipe.compile(repo / "pipelines" / "p.yaml").plan.steps[0]
    assert step.args["ctx_mode"].value == "fast" and step.args["ctx_run_id"].name == "ctx_run_id"  # kubepipe's own


def test_the_context_inputs_are_those_kubepipe_fills():
    from kubepipe.catalog import CONTEXT_INPUTS
    from kubepipe.plan.settings import context_value
    from kubepipe.spec.profiles import load_profile

    profile = load_profile("local")
    assert all(context_value(n, "s", "p", profile) is not None for n in CONTEXT_INPUTS)


def test_a_pipeline_components_outputs_are_recorded_from_its_inner_tasks(repo):
    import json
    from types import SimpleNamespace

    from kubepipe.backends.local.graph_outputs import fill_graph_outputs, graph_output_sources
    from kubepipe.backends.runs.record import RunResult, StepRecord
    from kubepipe.catalog import resolve_component

    (repo / "jv_inner.py").write_text(COMPONENT.format(name="double") + '''

@dsl.pipeline
def twice(x: int = 1) -> int:
    return double(x=double(x=x).output).output
''')
    comp = resolve_component("jv_inner:twice", repo).component
    sources = graph_output_sources([SimpleNamespace(name="a", info=SimpleNamespace(component=comp))])
    (task, key), = sources["a"].values()
    folder = repo / "artifacts" / "p-2026" / task
    folder.mkdir(parents=True)
    (folder / "executor_output.json").write_text(json.dumps({"parameterValues": {key: 8}}))
    run = RunResult(run_id="r", pipeline="p", target="local", run_dir=str(repo), params={}, steps=[StepRecord("a")])
    run.steps[0].state = "SUCCEEDED"
    fill_graph_outputs(run, repo / "artifacts", sources)
    assert run.steps[0].outputs == {"Output": 8}  # was {}: the run table and `runs show` said `-`


def test_a_module_edited_between_two_compiles_in_one_process_is_read_again(repo):
    """A notebook's second `kubepipe.run` after editing the component ran the first version: the module stayed
    imported. The edited module (and the repository's modules importing from it) is imported again."""
    (repo / "jv_helpers.py").write_text("FACTOR = 2\n")
    (repo / "jv_edited.py").write_text(COMPONENT.format(name="double").replace('"""Doubles x."""',
                                                                                '"""Doubles x."""\n    # v1'))
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_edited:double"))
    body = lambda: kubepipe.compile(repo / "pipelines" / "p.yaml").plan.steps[0].info.component.component_spec \
        .implementation.container.command[-1]  # noqa: E731
    assert "# v1" in body()
    import jv_helpers  # noqa: F401 - the user's own import of a module of the repository
    assert "# v1" in body()  # nothing edited: the same module object

    edited = repo / "jv_edited.py"
    edited.write_text(edited.read_text().replace("# v1", "# v2 edited"))
    st = edited.stat()
    os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # as a save seconds later
    assert "# v2 edited" in body()
    assert "jv_helpers" not in sys.modules  # the repository's modules go with it: one may import another


def test_a_second_repository_s_module_of_the_same_name_is_its_own_not_the_first_s(repo):
    """Two pipelines in one process, each repository with its own `steps.py`: the second compiled (and ran) the
    first's `steps:double`, silently, as `steps` was imported already."""
    body = lambda p: kubepipe.compile(p).plan.steps[0].info.component.component_spec \
        .implementation.container.command[-1]  # noqa: E731
    pipelines = []
    for name in ("one", "two"):
        (repo / name / "pipelines").mkdir(parents=True)
        (repo / name / "jv_same.py").write_text(COMPONENT.format(name="double").replace("2 * x", f"2 * x  # {name}"))
        (repo / name / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_same:double"))
        pipelines.append(repo / name / "pipelines" / "p.yaml")
    assert "# one" in body(pipelines[0])
    compiled = kubepipe.compile(pipelines[1])
    assert "# two" in body(pipelines[1]) and compiled.plan.steps[0].info.import_root == str((repo / "two").resolve())
    assert "# one" in body(pipelines[0])  # and back


@pytest.mark.parametrize("module, files", [("jv_nest", ("jv_nest.py",)),
                                           ("jv_nestpkg.steps", ("jv_nestpkg/__init__.py", "jv_nestpkg/steps.py"))])
def test_a_module_of_a_repository_inside_another_is_the_pipelines_own(repo, module, files):
    """A pipeline whose folder is inside another pipeline's (an example repository under a project) and each with its
    own `steps.py`: once the inner one's was imported, the outer pipeline compiled the inner's (its file lies under
    the outer folder, so it was taken for the outer's own)."""
    body = lambda p: kubepipe.compile(p).plan.steps[0].info.component.component_spec \
        .implementation.container.command[-1]  # noqa: E731
    outer, inner = repo, repo / "examples" / "inner"
    for where in (outer, inner):
        (where / "pipelines").mkdir(parents=True, exist_ok=True)
        for name in files:
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            (where / name).write_text("" if name.endswith("__init__.py") else COMPONENT.format(name="double")
                                      .replace("2 * x", f"2 * x  # {where.name}"))
        (where / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref=f"{module}:double"))
    assert f"# {inner.name}" in body(inner / "pipelines" / "p.yaml")
    assert f"# {outer.name}" in body(outer / "pipelines" / "p.yaml")
    assert f"# {inner.name}" in body(inner / "pipelines" / "p.yaml")  # and back


def test_a_lazy_module_s_getattr_is_not_run_when_looking_for_edited_modules(repo):
    """Every imported module was asked for its `__file__` at each step (0.5 s a step with torch imported), which ran
    a lazy module's __getattr__: one that raises on an attribute it lacks stopped the compile."""
    import types

    class Lazy(types.ModuleType):
        def __getattr__(self, name):
            raise ImportError(f"lazy: {name} needs an optional dependency")

    (repo / "jv_plain.py").write_text(COMPONENT.format(name="double"))
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_plain:double"))
    sys.modules["jv_lazy"] = Lazy("jv_lazy")
    try:
        assert kubepipe.compile(repo / "pipelines" / "p.yaml").plan.steps[0].info.name == "double"
    finally:
        del sys.modules["jv_lazy"]


@pytest.mark.parametrize("target, sets", [
    ("kubeflow", ["host=http://127.0.0.1:1", "pipeline_root=minio://b/r"]),
    ("vertex", ["project=p", "region=europe-west4", "pipeline_root=gs://b/r"]),
])
def test_a_remote_step_without_base_image_warns_it_runs_in_kfps_default_image(repo, target, sets):
    """A user component without base_image ran remotely in kfp's python:3.11 (no kubepipe, none of its libraries)
    while built-ins got the profile's runtime_image, and nothing said so."""
    (repo / "jv_plain.py").write_text('''from kfp import dsl


@dsl.component
def double(x: int) -> int:
    import pandas

    return 2 * x + len(pandas.__name__) * 0
''')
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_plain:double"))
    plan = kubepipe.validate(repo / "pipelines" / "p.yaml", target, sets=sets)
    (w,) = plan.warnings
    assert (w.path, w.severity) == ("steps.a.component", "warning")
    assert w.message == (f"`jv_plain:double` runs on {target} in `python:3.11`, kfp's default for a @dsl.component "
                         "without base_image (plain Python with kfp; the profile's runtime_image is for built-in "
                         "steps): kubepipe and the libraries it imports are not there, so its failure shows the "
                         "exception's type and line, not its message (kubepipe hides credentials in it)")
    assert w.hint.startswith("give the step `image:` your project image (kubepipe image build --kind project)")
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_plain:double") + "    image: reg/p@sha256:"
                                               + "0f3a9c5e7b2d4f6a8c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f5a\n")
    assert kubepipe.validate(repo / "pipelines" / "p.yaml", target, sets=sets).warnings == []
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.format(ref="jv_plain:double"))
    assert kubepipe.validate(repo / "pipelines" / "p.yaml").warnings == []  # locally: this environment
