"""A missing extra is a user error with the exact pip line; `kubepipe init` is all or nothing."""

from __future__ import annotations

import pytest

from kubepipe import extras
from kubepipe.cli.console import report_error
from kubepipe.errors import UserError
from kubepipe.extras import EXTRAS, MissingExtra, missing_extra, pip_line, require
from kubepipe.scaffold import init_project


@pytest.fixture
def no_pandas_here(monkeypatch):
    """The local extra as if one of its modules were not installed."""
    monkeypatch.setitem(EXTRAS, "local", ("kubepipe_test_absent_mod", *EXTRAS["local"]))


def test_require_names_what_is_missing_and_the_pip_line(no_pandas_here):
    with pytest.raises(MissingExtra) as exc:
        require("local", feature="`kubepipe expectations infer`")
    assert str(exc.value) == ("`kubepipe expectations infer` needs kubepipe_test_absent_mod, which this install lacks; "
                              "install it with: pip install 'kubepipe[local]'")
    assert exc.value.exit_code == 2 and isinstance(exc.value, UserError)
    require("serve", feature="x")  # installed here: no error


def test_pip_line_quotes_the_extras_for_the_shell():
    assert pip_line("local", "serve") == "pip install 'kubepipe[local,serve]'"


def test_an_import_error_of_an_extra_module_becomes_the_pip_hint(no_pandas_here, capsys):
    exc = ModuleNotFoundError("No module named 'kubepipe_test_absent_mod.io'", name="kubepipe_test_absent_mod.io")
    assert missing_extra(exc).extras == ("local",)
    assert report_error(exc) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "pip install 'kubepipe[local]'" in err and "internal error" not in err


def test_an_import_error_of_an_installed_module_stays_an_internal_error(capsys):
    # a renamed name inside an installed library is a bug (or a version clash), not a missing extra
    exc = ImportError("cannot import name 'gone' from 'pandas.core' (/x/pandas/core/__init__.py)", name="pandas.core")
    assert missing_extra(exc) is None
    assert report_error(exc) == 1
    assert "internal error" in capsys.readouterr().err


def test_namespace_form_of_a_missing_import_maps_to_its_extra(monkeypatch):
    monkeypatch.setitem(EXTRAS, "vertex", ("google.cloud.kubepipe_test_absent",))
    exc = ImportError("cannot import name 'kubepipe_test_absent' from 'google.cloud' (unknown location)",
                      name="google.cloud")
    assert missing_extra(exc).extras == ("vertex",)


def test_unknown_extra_is_a_programming_error():
    with pytest.raises(KeyError, match="unknown extra 'gpu'"):
        extras.missing_modules("gpu")


def test_init_is_all_or_nothing(tmp_path):
    (tmp_path / "configs").mkdir()
    keep = tmp_path / "configs" / "local.yaml"
    keep.write_text("# mine\n")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "data").write_text("mine\n")  # a file where init's last writes need a folder
    with pytest.raises(UserError, match="pipelines/data: a file is in the way of this folder"):
        init_project(tmp_path, "starter", force=True)
    assert keep.read_text() == "# mine\n"  # what --force had replaced is back
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == ["configs", "configs/local.yaml", "pipelines", "pipelines/data"]  # nothing new, no temp files


def test_init_refuses_before_writing_anything(tmp_path):
    (tmp_path / "pipelines" / "data").mkdir(parents=True)
    (tmp_path / "pipelines" / "data" / "starter_holdout.csv").write_text("x\n")
    with pytest.raises(UserError, match="starter_holdout.csv exists; pass --force"):
        init_project(tmp_path, "starter")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", "pipelines", "starter_holdout.csv"]


def test_init_writes_the_shipped_starter_data(tmp_path):
    from kubepipe.components.data.samples import starter_samples

    init_project(tmp_path, "starter")
    expected = starter_samples()["starter_train.csv"].to_csv(index=False, lineterminator="\n")
    assert (tmp_path / "pipelines" / "data" / "starter_train.csv").read_text() == expected


def test_init_of_a_second_pipeline_keeps_the_projects_profiles(tmp_path, capsys):
    from cli_runner import run_cli

    init_project(tmp_path, "first")
    mine = tmp_path / "configs" / "local.yaml"
    mine.write_text("target: local\n# mine\n")
    # was: 'configs/local.yaml exists; pass --force to overwrite, or choose another --name', which no name passes
    code, out, err = run_cli(capsys, "init", str(tmp_path), "--name", "second")
    assert code == 0, err
    assert (tmp_path / "pipelines" / "second.yaml").is_file() and mine.read_text() == "target: local\n# mine\n"
    assert f"= {mine} (exists: kept; --force overwrites)" in out
    with pytest.raises(UserError, match="second.yaml exists; pass --force to overwrite, or choose another --name"):
        init_project(tmp_path, "second")
    init_project(tmp_path, "second", force=True)
    assert mine.read_text().startswith("# Target profile written by `kubepipe init`.")


def test_init_writes_the_schema_its_pipeline_names_for_editors(tmp_path):
    # was: `# yaml-language-server: $schema=https://kubepipe.dev/schema/pipeline-v1.json`, a URL nothing serves:
    # an editor opening the starter said it could not load the schema, and completion and checks were off
    from kubepipe.spec.schema import schema_json

    init_project(tmp_path, "first")
    pipeline = tmp_path / "pipelines" / "first.yaml"
    line = pipeline.read_text().splitlines()[0]
    assert line.startswith("# yaml-language-server: $schema="), line
    schema = (pipeline.parent / line.split("$schema=", 1)[1]).resolve()
    assert schema == (tmp_path / "kubepipe.schema.json").resolve() and schema.read_text() == schema_json()
    schema.write_text("{}\n")  # the project's own (e.g. from another kubepipe version): kept, as its profiles
    init_project(tmp_path, "second")
    assert schema.read_text() == "{}\n"
    init_project(tmp_path, "second", force=True)
    assert schema.read_text() == schema_json()


def test_init_refuses_a_name_the_pipeline_could_not_have(tmp_path):
    # was: written, then `kubepipe validate` said 'metadata.name: string should have at most 63 characters'
    with pytest.raises(UserError, match=r"--name a{64} \(64 characters; at most 63\): use lowercase letters"):
        init_project(tmp_path, "a" * 64)
    assert not any(tmp_path.iterdir())
    init_project(tmp_path, "a" * 63)
    import kubepipe

    assert len(kubepipe.validate(tmp_path / "pipelines" / f"{'a' * 63}.yaml").steps) == 6


def test_an_extra_missing_deep_in_a_command_names_the_command(capsys, monkeypatch, tmp_path):
    from cli_runner import run_cli

    import kubepipe.components.serving.endpoints as endpoints

    def lacks_httpx(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'httpx'", name="httpx")

    monkeypatch.setattr(endpoints, "repair_endpoints", lacks_httpx)
    monkeypatch.setattr(extras, "_installed", lambda module: module != "httpx")
    code, _, err = run_cli(capsys, "endpoints", "repair", "--home", tmp_path)
    # was: 'this command needs httpx, ...'
    assert code == 2 and err.startswith("error: `kubepipe endpoints repair` needs httpx, which this install lacks; "
                                        "install it with: pip install 'kubepipe[serve]'"), err


def test_init_into_a_file_names_that_file(tmp_path):
    # was 'FILE/pipelines: a file is in the way of this folder': a folder that is not there, not the file that is
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(UserError) as exc:
        init_project(tmp_path / "notes.txt", "starter")
    assert str(exc.value) == f"{tmp_path / 'notes.txt'}: a file is in the way of this folder; choose another path"
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_run_asks_for_the_extra_a_steps_setting_needs_before_it_starts(tmp_path, monkeypatch, capsys):
    """`architecture: pretrained-encoder` without the nlp extra: load, validate and the rest ran first, then train
    failed ('the pretrained-encoder needs the `tokenizers` package'); the run now refuses up front, naming the step,
    its setting and the pip line, and writes no run."""
    from cli_runner import run_cli_text

    monkeypatch.setitem(EXTRAS, "nlp", ("kubepipe_test_absent_mod", *EXTRAS["nlp"]))
    init_project(tmp_path, "enc")
    pipeline = tmp_path / "pipelines" / "enc.yaml"
    text = pipeline.read_text(encoding="utf-8")
    assert text.count("architecture: text-classifier") == 1
    pipeline.write_text(text.replace("architecture: text-classifier", "architecture: pretrained-encoder"))
    monkeypatch.chdir(tmp_path)
    code, said = run_cli_text(capsys, "run", pipeline)
    assert code == 2, said
    assert ("running steps train (architecture: pretrained-encoder) here needs kubepipe_test_absent_mod, which this "
            "install lacks; install it with: pip install 'kubepipe[nlp]'") in said, said
    assert [p.name for p in (tmp_path / ".kubepipe").iterdir()] == [".gitignore"]  # no run folder


@pytest.mark.parametrize(("uri", "module", "extra"), [("gs://acme-ml/registry", "gcsfs", "gcs"),
                                                       ("s3://acme-ml/registry", "s3fs", "s3")])
def test_a_registry_on_an_object_store_without_its_driver_names_the_extra(tmp_path, uri, module, extra):
    """`kubepipe models list` with KUBEPIPE_REGISTRY=gs://... on an install without [gcs] said only fsspec's "Please
    install gcsfs": the pip line of the extra, as every other missing extra says it."""
    import json
    import subprocess
    import sys

    probe = (f"import sys; sys.modules[{module!r}] = None\n"  # not installed, as on `pip install kubepipe[local]`
             "from kubepipe.cli.app import main\nsys.exit(main(['models', 'list', '--format', 'json']))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "KUBEPIPE_REGISTRY": uri})
    assert done.returncode == 2, done.stdout + done.stderr
    message = json.loads(done.stdout or done.stderr)["error"]["message"]  # the JSON error document
    assert f"install it with: pip install 'kubepipe[{extra}]'" in message and uri in message, message


@pytest.mark.parametrize(("uri", "module", "extra"), [("gs://acme-ml/train.csv", "gcsfs", "gcs"),
                                                       ("s3://acme-ml/train.csv", "s3fs", "s3")])
def test_data_on_an_object_store_without_its_driver_names_the_extra(uri, module, extra):
    """load-data's read names the extra for s3:// as it did for gs:// alone (one rule: extras.storage_pip_hint)."""
    import subprocess
    import sys

    probe = (f"import sys; sys.modules[{module!r}] = None\n"
             "from kubepipe.components.data.sources import fetch_bytes\n"
             f"try:\n    fetch_bytes({uri!r})\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("DataError ") and uri in done.stdout, done.stdout + done.stderr
    assert f"install it with: pip install 'kubepipe[{extra}]'" in done.stdout, done.stdout
