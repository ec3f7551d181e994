"""`kubepipe models ...` against a real local registry."""

from __future__ import annotations

import json

import pytest

from kubepipe.components.registry import Registry
from cli_runner import run_cli as _run


@pytest.fixture()
def reg(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("KUBEPIPE_USER", "ann")
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    r = Registry()  # the default: file://.kubepipe/registry under cwd
    for i in range(3):
        r.register(str(model), name="clf", metrics={"accuracy": 0.8 + i / 100}, run_id=f"run-{i}",
                   model_card=f"# clf v{i + 1}\n\ncard text")
    return r




def _cells(table: str, first: str) -> list[str] | None:
    """The cells of the record whose first cell is `first` (piped output: one tab-separated record per line)."""
    for line in table.splitlines():
        cells = line.split("\t")
        if len(cells) > 1 and cells[0] == first:
            return cells
    return None


def test_list_promote_show_rollback(reg, capsys):
    code, out, _ = _run(capsys, "models", "list")
    assert code == 0 and _cells(out, "model") == ["model", "versions", "champion", "previous"], out
    assert _cells(out, "clf") == ["clf", "3", "-", "-"], out  # three versions, no aliases yet
    code, out, _ = _run(capsys, "models", "promote", "clf", "2", "--reason", "better f1")
    assert code == 0 and "champion is v2" in out
    code, out, _ = _run(capsys, "models", "promote", "clf", "3", "--reason", "best")
    assert "champion is v3 (was v2)" in out
    code, out, _ = _run(capsys, "models", "promote", "clf", "3", "--reason", "again")
    assert code == 0 and "clf: champion is already v3; nothing moved" in out
    code, out, _ = _run(capsys, "models", "list", "clf")
    assert code == 0 and "run-2" in out and "0.8200" in out and "champion" in out and "previous" in out
    code, out, _ = _run(capsys, "models", "show", "clf")
    assert code == 0 and "clf v3" in out and "card text" in out and "run-2" in out
    code, out, _ = _run(capsys, "models", "rollback", "clf", "--reason", "canary failed")
    assert code == 0 and "champion is v2" in out
    code, out, _ = _run(capsys, "models", "history", "clf")
    assert code == 0 and "canary failed" in out and "rollback" in out and "ann" in out
    # gen, action, version, from, champion, previous: versions as `models list` shows them (were bare numbers)
    assert _cells(out, "3")[:6] == ["3", "rollback", "v2", "v3", "v2", "-"], out
    assert reg.alias("clf", "champion").version == 2


def test_list_leaves_out_incomplete_versions_and_says_how_gc_removes_them(reg, capsys, tmp_path):
    """A registration killed before its version.json was counted as a version ('clf 4') and listed as one."""
    import json

    claim = tmp_path / ".kubepipe" / "registry" / "clf" / "versions" / "4" / "claim.json"
    claim.parent.mkdir(parents=True)
    claim.write_text('{"by": "ann"}')
    code, out, err = _run(capsys, "models", "list")
    assert code == 0 and _cells(out, "clf") == ["clf", "3", "-", "-"], out
    note = ("model `clf`: 1 incomplete version left out (v4: a registration that died, or one still copying); "
            "`kubepipe models gc clf` (same --registry) removes those older than its --older-than (default 60 min)")
    assert note in " ".join(err.split())
    code, out, err = _run(capsys, "models", "list", "clf")
    assert code == 0 and _cells(out, "v4") is None and _cells(out, "v3") is not None and note in " ".join(err.split())
    _, out, _ = _run(capsys, "models", "list", "--format", "json")
    assert json.loads(out)["items"][0] == {"name": "clf", "versions": 3, "champion": None, "previous": None,
                                               "incomplete": [4]}
    _, out, _ = _run(capsys, "models", "list", "clf", "--format", "json")
    doc = json.loads(out)
    assert [v["version"] for v in doc["items"]] == [1, 2, 3] and doc["incomplete"] == [4]


def test_list_shows_a_retrieval_index_s_metrics(reg, capsys, tmp_path):
    reg.register(str(tmp_path / "m"), name="idx", metrics={"recall@5": 0.75, "mrr@10": 0.43, "query_p99_ms": 11.5})
    code, out, _ = _run(capsys, "models", "list", "idx")
    assert code == 0 and _cells(out, "version")[5:] == ["recall@5", "recall@10", "mrr@10", "ndcg@10"], out
    assert _cells(out, "v1")[5:] == ["0.7500", "-", "0.4300", "-"], out
    code, out, _ = _run(capsys, "models", "list", "clf")
    assert _cells(out, "version")[5:] == ["accuracy", "f1_macro", "log_loss", "roc_auc"], out


def test_errors_exit_2_with_a_message(reg, capsys, tmp_path):
    code, _, err = _run(capsys, "models", "show", "clf", "9")
    assert code == 2 and "no version 9" in err and "Traceback" not in err
    code, _, err = _run(capsys, "models", "rollback", "clf")
    assert code == 2 and "no previous champion" in err
    (tmp_path / ".kubepipe/registry/clf/versions/1/version.json").write_text("{")
    code, out, err = _run(capsys, "models", "list", "clf")
    assert code == 0 and "corrupt" in out and "v1 is corrupt" in err and "v2" in out
    code, _, err = _run(capsys, "models", "list", "nope", "--registry", f"file://{tmp_path / 'other'}")
    assert code == 2 and " ".join(err.split()) == (  # was "no versions of `nope` ...; check the name or --registry"
        f"error: no model `nope` in {tmp_path / 'other'} (models: none); check the name and the registry "
        "(--registry)")  # the source given (the local profile's registry_uri when none is)
    for name in ("clff", "CLF"):  # a typo, the case: was the whole list of models to search by eye
        code, _, err = _run(capsys, "models", "promote", name, "1", "--reason", "x")
        assert code == 2 and f"error: no model `{name}` in" in err and "(models: clf); did you mean `clf`? check the " \
            "name" in " ".join(err.split()), err


def test_verify_names_the_versions_whose_files_changed_after_registration(reg, capsys, tmp_path):
    # `models list` said `ok` for a version whose weights were overwritten in place; nothing could tell
    import json

    code, out, _ = _run(capsys, "models", "verify", "clf")
    assert code == 0 and [_cells(out, f"v{n}")[1] for n in (1, 2, 3)] == ["intact"] * 3, out
    weights = tmp_path / ".kubepipe" / "registry" / "clf" / "versions" / "2" / "model" / "model.safetensors"
    weights.write_bytes(b"tampered")
    (weights.parent / "extra.bin").write_bytes(b"x")
    code, out, err = _run(capsys, "models", "verify", "clf", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["kind"] == "ModelVerify" and doc["intact"] is False
    v2 = next(v for v in doc["versions"] if v["version"] == 2)
    assert (v2["changed"], v2["missing"], v2["added"], v2["intact"]) == (["model.safetensors"], [], ["extra.bin"],
                                                                            False)
    assert all(v["intact"] for v in doc["versions"] if v["version"] != 2)
    code, out, err = _run(capsys, "models", "verify", "clf", "1")
    assert code == 0 and _cells(out, "v1")[1] == "intact"
    code, out, err = _run(capsys, "models", "verify", "clf", "2")
    assert code == 1 and "CHANGED" in out and "changed: model.safetensors; added: extra.bin" in out
    assert " ".join(err.split()) == (  # was 'clf: files changed after registration', no version, no path
        f"error: clf v2: files changed after registration in {tmp_path}/.kubepipe/registry/clf/versions/2/model; "
        "serving and evaluation refuse them: register the model again")


def test_verify_of_every_version_fails_on_a_corrupt_one(reg, capsys, tmp_path):
    # was skipped: every row 'intact', exit 0, though v2's recorded sha256s could not even be read
    import json

    (tmp_path / ".kubepipe" / "registry" / "clf" / "versions" / "2" / "version.json").write_text("{")
    code, out, err = _run(capsys, "models", "verify", "clf")
    assert code == 1 and [_cells(out, f"v{n}")[1] for n in (1, 2, 3)] == ["intact", "CORRUPT", "intact"], out
    assert "error: model `clf` v2 is corrupt: " in err and "files changed" not in err
    code, out, err = _run(capsys, "models", "verify", "clf", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["intact"] is False
    assert [(v["version"], v["intact"], "error" in v) for v in doc["versions"]] == [
        (1, True, False), (2, False, True), (3, True, False)]


def test_verify_reports_a_version_whose_files_cannot_be_read_and_checks_the_others(reg, capsys, tmp_path):
    """A dangling link in v2's stored folder stopped `models verify clf` at v2 (exit 2, v3 unchecked) with the advice
    for registering ('copy the file into the model folder'); v2 is damaged, the others checked, and a promote of v2
    is refused naming it."""
    import os

    stored = tmp_path / ".kubepipe" / "registry" / "clf" / "versions" / "2" / "model" / "model.safetensors"
    stored.unlink()
    os.symlink(tmp_path / "gone", stored)
    code, out, err = _run(capsys, "models", "verify", "clf")
    assert code == 1 and [_cells(out, f"v{n}")[1] for n in (1, 2, 3)] == ["intact", "CORRUPT", "intact"], out
    want = f"error: model `clf` v2: its files in {tmp_path}/.kubepipe/registry/clf/versions/2/model cannot be read ("
    assert want in " ".join(err.split())
    code, _, err = _run(capsys, "models", "promote", "clf", "2", "--reason", "x")
    assert code == 2 and "register the model again, or promote a sound version" in " ".join(err.split())


def test_json_output_holds_no_nan_a_metric_that_is_nan_is_null(reg, capsys, tmp_path):
    # was '"roc_auc": NaN': not JSON, so `kubepipe models show ... --format json | jq` failed on the whole document
    import json

    reg.register(str(tmp_path / "m"), name="clf", metrics={"roc_auc": float("nan"), "log_loss": float("inf")})
    for args in (("models", "show", "clf", "4"), ("models", "list", "clf")):
        code, out, _ = _run(capsys, *args, "--format", "json")
        doc = json.loads(out, parse_constant=lambda c, args=args: pytest.fail(f"{c} in {' '.join(args)}"))
        metrics = doc["metrics"] if "metrics" in doc else doc["items"][-1]["metrics"]
        assert code == 0 and metrics == {"roc_auc": None, "log_loss": None}


def test_a_champion_whose_folder_is_gone_is_named_and_a_sound_version_can_be_promoted(reg, capsys, tmp_path):
    # was: 'has no version champion' from show, and promote / rollback refused ('has no version 3') because they
    # loaded the old champion to say what they replaced: nothing could repair the registry
    import shutil

    _run(capsys, "models", "promote", "clf", "3", "--reason", "first")
    shutil.rmtree(tmp_path / ".kubepipe" / "registry" / "clf" / "versions" / "3")  # a cleanup script, a lifecycle rule
    code, _, err = _run(capsys, "models", "show", "clf")
    assert code == 2 and " ".join(err.split()) == (
        f"error: model `clf`'s champion is v3, but {tmp_path}/.kubepipe/registry/clf/versions/3 is gone (versions: 1, "
        "2); promote a version that is there: kubepipe models promote clf VERSION --reason ...")
    code, out, _ = _run(capsys, "models", "list")
    assert code == 0 and _cells(out, "clf") == ["clf", "2", "v3", "-"], out  # was '-': no champion at all
    code, out, err = _run(capsys, "models", "promote", "clf", "1", "--reason", "repair")
    assert code == 0 and "champion is v1 (was v3)" in out, err


def test_history_shows_a_decision_about_no_version_without_vnone(reg, capsys):
    reg.promote("clf", 1, reason="first")
    reg.record_event("clf", "note", reason="traffic paused for the migration")
    code, out, _ = _run(capsys, "models", "history", "clf")
    assert code == 0 and _cells(out, "2")[1:4] == ["note", "-", "-"], out  # the version cell was 'vNone'


def test_promote_reports_the_champion_it_replaced_when_another_move_came_between(reg, capsys, monkeypatch):
    # `was` was read before the move: five promoters at once printed '"was": 7' for a move off v3
    import json

    real = Registry.promote
    _run(capsys, "models", "promote", "clf", "1", "--reason", "first")

    def racing(self, name, version, **kw):
        monkeypatch.setattr(Registry, "promote", real)
        real(Registry(self.uri), name, 2, reason="another CI job")  # lands between the CLI's start and its move
        return real(self, name, version, **kw)

    monkeypatch.setattr(Registry, "promote", racing)
    code, out, _ = _run(capsys, "models", "promote", "clf", "3", "--reason", "mine", "--format", "json")
    assert code == 0 and (json.loads(out)["champion"], json.loads(out)["was"]) == (3, 2)
    assert [(h["version"], h["from_version"]) for h in reg.history("clf")] == [(1, None), (2, 1), (3, 2)]


def test_a_model_folder_given_as_the_registry_says_to_give_its_parent(reg, capsys):
    # `models list -r .kubepipe/registry/clf` said only 'no models in ...', as if the registry were empty
    code, out, err = _run(capsys, "models", "list", "-r", ".kubepipe/registry/clf")
    assert code == 0 and out == ""
    assert "this folder is one model's (it holds versions/): give its parent as --registry" in err
    code, _, err = _run(capsys, "models", "list", "-r", ".kubepipe/empty")
    assert code == 0 and "no models in" in err and "parent" not in err


def test_models_list_in_a_home_that_does_not_exist_says_so(tmp_path, capsys, monkeypatch):
    """`models list --home typo` said 'no models in typo/registry', as if none were registered; `runs list` and
    `endpoints list` name the misspelt home."""
    monkeypatch.delenv("KUBEPIPE_REGISTRY", raising=False)
    code, out, err = _run(capsys, "models", "list", "--home", tmp_path / "hmoe")
    assert code == 0 and out == ""
    assert " ".join(err.split()) == (f"no models in {tmp_path}/hmoe/registry: {tmp_path}/hmoe does not exist (a "
                                     "typo in --home / KUBEPIPE_HOME?)")
    (tmp_path / "home").mkdir()
    code, _, err = _run(capsys, "models", "list", "--home", tmp_path / "home")
    assert " ".join(err.split()) == f"no models in {tmp_path}/home/registry"


def test_a_registry_folder_that_does_not_exist_is_named_as_such(reg, capsys, tmp_path):
    # `models list -r ./regsitry` (a typo) said 'no models in .../regsitry', as if it were an empty registry
    code, out, err = _run(capsys, "models", "list", "-r", "regsitry")
    assert code == 0 and out == ""
    assert " ".join(err.split()) == f"no models in {tmp_path}/regsitry: it does not exist (a typo in --registry?)"
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, "models", "list", "-r", "empty")
    assert " ".join(err.split()) == f"no models in {tmp_path}/empty"
    # `models gc -r regsitry` said only 'no incomplete versions or temp files older than 60 min'
    code, out, _ = _run(capsys, "models", "gc", "-r", "regsitry")
    assert code == 0 and " ".join(out.split()) == (f"no incomplete versions or temp files older than 60 min in "
                                                   f"{tmp_path}/regsitry: it does not exist (a typo in --registry?)")
    code, out, _ = _run(capsys, "models", "gc", "-r", ".kubepipe/registry/clf")
    assert "give its parent as --registry" in out
    code, out, _ = _run(capsys, "models", "gc", "-r", "empty")
    assert " ".join(out.split()) == "no incomplete versions or temp files older than 60 min"


def test_a_model_folder_as_the_registry_names_where_that_path_was_given(reg, capsys, tmp_path, monkeypatch):
    """configs/local.yaml's registry_uri at one model's folder: `models list` / `show` said 'give its parent as
    --registry', a flag not given; a typo'd KUBEPIPE_REGISTRY was 'a typo in --registry / KUBEPIPE_REGISTRY?'."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "local.yaml").write_text("target: local\nregistry_uri: file://.kubepipe/registry/clf\n")
    code, out, err = _run(capsys, "models", "list")
    assert code == 0 and out == ""
    assert " ".join(err.split()).endswith("this folder is one model's (it holds versions/): give its parent as "
                                          f"registry_uri in {tmp_path}/configs/local.yaml:2:1"), err
    code, _, err = _run(capsys, "models", "show", "clf")
    assert code == 2 and f"parent as registry_uri in {tmp_path}/configs/local.yaml:2:1" in " ".join(err.split()), err
    monkeypatch.setenv("KUBEPIPE_REGISTRY", "regsitry")
    code, _, err = _run(capsys, "models", "list")
    assert " ".join(err.split()) == (f"no models in {tmp_path}/regsitry: it does not exist "
                                     "(a typo in KUBEPIPE_REGISTRY?)")


def test_a_model_folder_given_as_the_registry_of_show_promote_history_says_to_give_its_parent(reg, capsys):
    # `models list -r .kubepipe/registry/clf` said so, and show / promote / history said only 'no model `clf` in ...'
    for args in (["show", "clf"], ["promote", "clf", "1", "--reason", "x"], ["history", "clf"]):
        code, out, err = _run(capsys, "models", *args, "-r", ".kubepipe/registry/clf")
        assert code == 2 and out == "", args
        assert "this folder is one model's (it holds versions/): give its parent as --registry" in err, args


@pytest.mark.parametrize("move", [("promote", "clf", "3"), ("rollback", "clf")])
def test_a_blank_reason_is_refused_by_promote_and_rollback_alike(reg, capsys, move):
    """`models rollback --reason ""` recorded 'rollback' while promote refused an empty reason: one rule."""
    reg.promote("clf", 1, reason="a")
    reg.promote("clf", 2, reason="b")
    code, _, err = _run(capsys, "models", *move, "--reason", "  ")
    assert code == 2 and f"error: {move[0]} needs a reason (it is kept in the history): give --reason '...'" in err
    assert reg.aliases("clf") == {"champion": 2, "previous": 1} and len(reg.history("clf")) == 2


def test_show_prints_whole_and_small_metrics_as_they_are(reg, capsys, tmp_path):
    """`models show` printed a count of 300.0 as `300.0000` and a learning rate of 1e-05 as `0.0000`."""
    reg.register(str(tmp_path / "m"), name="lr", metrics={"n_test": 300.0, "lr": 1e-05, "f1_macro": 0.91234,
                                                           "loss": float("nan"), "epochs": 3, "huge": 1.5e300,
                                                           "neg": -2.5e20})
    code, out, _ = _run(capsys, "models", "show", "lr", "1")
    assert code == 0
    assert [_cells(out, k) for k in ("n_test", "lr", "f1_macro", "loss", "epochs", "huge", "neg")] == [
        ["n_test", "300"], ["lr", "1e-05"], ["f1_macro", "0.9123"], ["loss", "n/a"], ["epochs", "3"],
        ["huge", "1.5e+300"], ["neg", "-2.5e+20"]], out  # a huge one was printed as 301 digits


def test_models_read_the_registry_the_local_profile_names(reg, capsys, tmp_path):
    """configs/local.yaml's `registry_uri` (init's local profile says to set it there) is where a local run's
    register-model puts its versions, yet `kubepipe models list` read <home>/registry: 'no models in
    .kubepipe/registry', and `models show NAME` said there was no such model."""
    import json

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "local.yaml").write_text("target: local\nregistry_uri: file://shared-registry\n")
    model = tmp_path / "m"
    Registry("file://shared-registry").register(str(model), name="fraud", metrics={"accuracy": 0.9}, run_id="r")
    code, out, _ = _run(capsys, "models", "list", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and [i["name"] for i in doc["items"]] == ["fraud"], doc
    assert doc["registry"] == str(tmp_path / "shared-registry")
    code, out, _ = _run(capsys, "models", "show", "fraud", "1")
    assert code == 0 and "fraud v1" in out
    code, out, _ = _run(capsys, "models", "list", "--registry", "file://.kubepipe/registry")
    assert code == 0 and _cells(out, "clf") == ["clf", "3", "-", "-"], out  # --registry still wins


def test_a_move_warns_of_a_local_endpoint_still_serving_another_version(reg, capsys, tmp_path):
    """`models rollback` said 'rolled back; champion is v2' while the deploy step's local endpoint went on serving
    v3, with nothing to say that an alias move restarts no server."""
    import json

    reg.promote("clf", 2, reason="x")
    reg.promote("clf", 3, reason="y")
    served = reg.get("clf", 3).model_uri
    (tmp_path / ".kubepipe" / "endpoints").mkdir(parents=True)
    (tmp_path / ".kubepipe" / "endpoints" / "clf.json").write_text(json.dumps({
        "name": "clf", "url": "http://127.0.0.1:18080", "port": 18080, "model_dir": served, "version": 3}))
    code, out, err = _run(capsys, "models", "rollback", "clf", "--reason", "canary failed")
    assert code == 0 and "champion is v2" in out
    assert (f"warning: local endpoint clf still serves clf v3 ({served}): moving the champion restarts no server; "
            "it serves v2 once a deploy step deploys it") in " ".join(err.split())
    code, out, err = _run(capsys, "models", "promote", "clf", "3", "--reason", "back")
    assert code == 0 and "warning" not in err  # the endpoint serves the champion


def test_a_huge_whole_number_metric_is_shortened_in_list_and_show(reg, capsys, tmp_path):
    """A whole-number metric of 10**400 (an int, as JSON keeps it) was printed as 401 digits: only floats were
    shortened, and `.4g` of an int past a float's range raises OverflowError."""
    reg.register(str(tmp_path / "m"), name="big", metrics={"accuracy": 10**400, "log_loss": -123456 * 10**300,
                                                            "f1_macro": 10**15, "roc_auc": 10**15 - 1})
    code, out, _ = _run(capsys, "models", "list", "big")
    assert code == 0 and _cells(out, "v1")[-4:] == ["1e+400", "1e+15", "-1.235e+305", "999999999999999"], out
    code, out, _ = _run(capsys, "models", "show", "big", "1")
    assert code == 0 and _cells(out, "accuracy") == ["accuracy", "1e+400"], out


def test_models_profile_help_names_the_nearest_profile_file():
    """`models --target` / --registry said the profile is configs/<target>.yaml (of the working directory); it is the
    nearest one above it (find_profile_file), as --profile's help says."""
    import kubepipe.spec.profiles as profiles
    from kubepipe.cli.models import MOVE_TARGET, REGISTRY

    assert "nearest configs/<target>.yaml above the working directory" in MOVE_TARGET.help
    assert "nearest configs/local.yaml above the working directory" in REGISTRY.help
    assert "the nearest configs/<target>.yaml" in profiles.__doc__.splitlines()[0]


def test_a_registry_given_beside_a_target_profile_naming_another_is_refused(reg, capsys, monkeypatch, tmp_path):
    """KUBEPIPE_REGISTRY exported for local work won over `--target vertex`'s registry_uri: the move was refused as
    'needs a gs:// registry_uri ..., got file://...' naming neither source, or (a gs:// one) made in another registry
    than the one the target's runs register and deploy from, and mirrored onto Vertex from there."""
    prof = tmp_path / "vertex.yaml"
    prof.write_text("target: vertex\nproject: p\nregion: europe-west4\npipeline_root: gs://b/root\n"
                    "registry_uri: gs://b/registry\nruntime_image: europe-docker.pkg.dev/p/r/runtime@sha256:"
                    + "0" * 64 + "\nvertex_model_registry: true\n")
    monkeypatch.setenv("KUBEPIPE_REGISTRY", reg.uri)
    code, _, err = _run(capsys, "models", "promote", "clf", "1", "--target", "vertex", "--profile", prof,
                        "--reason", "x")
    assert code == 2 and " ".join(err.split()) == (
        f"error: KUBEPIPE_REGISTRY names the registry {reg.uri}, but the vertex profile's registry_uri is "
        "gs://b/registry (where its runs register and deploy): a move must be made in one; drop KUBEPIPE_REGISTRY "
        "to move in the profile's, or give --set registry_uri=URI"), err
    monkeypatch.delenv("KUBEPIPE_REGISTRY")
    code, _, err = _run(capsys, "models", "rollback", "clf", "--target", "vertex", "--profile", prof,
                        "--registry", "gs://other/registry")
    assert code == 2 and "error: --registry names the registry gs://other/registry, but the vertex profile's" in err
    assert reg.aliases("clf") == {"champion": None, "previous": None}


def test_history_of_a_model_never_promoted_says_so(reg, capsys):
    """It printed the table's headers only, as if the history could not be read."""
    code, out, err = _run(capsys, "models", "history", "clf")
    assert code == 0 and out == "" and " ".join(err.split()) == (
        "model `clf` has no promotions or rollbacks yet: kubepipe models promote clf VERSION --reason ... (or a "
        "deploy, or register-model with `promote: true`) makes the first")
    code, out, _ = _run(capsys, "models", "history", "clf", "--format", "json")
    assert code == 0 and '"items": []' in out


@pytest.mark.parametrize("argv", [("promote", "clf", "-1", "--reason", "x"), ("show", "clf", "-12"),
                                  ("verify", "clf", "-3")])
def test_a_negative_version_is_refused_as_a_version_not_an_option(reg, capsys, argv):
    code, _, err = _run(capsys, "models", *argv)  # click read `-1` as an option: 'No such option: -1'
    assert code == 2 and "No such option" not in err, err
    assert f"{argv[2]} is not a version: a version is a whole number from 1" in " ".join(err.split()), err
    assert Registry().alias("clf", "champion") is None


def test_an_unknown_option_after_a_version_is_still_named(reg, capsys):
    code, _, err = _run(capsys, "models", "promote", "clf", "1", "--reasn", "x")
    assert code == 2 and "No such option: --reasn" in err, err


def test_a_set_registry_uri_wins_over_kubepipe_registry_and_says_so(reg, capsys, monkeypatch, tmp_path):
    """--set registry_uri=X beside an exported KUBEPIPE_REGISTRY=Y was refused, asking to drop the variable or to
    give the --set that was given: the command line wins over the environment, and stderr says which won."""
    other = Registry(f"file://{tmp_path}/other")
    other.register(str(tmp_path / "m"), name="clf")
    monkeypatch.setenv("KUBEPIPE_REGISTRY", other.uri)
    code, out, err = _run(capsys, "models", "promote", "clf", "2", "--reason", "x", "--set", f"registry_uri={reg.uri}")
    assert code == 0 and "champion is v2" in out, err
    assert " ".join(err.split()) == (f"warning: moving in {reg.uri} (--set registry_uri), not in KUBEPIPE_REGISTRY's "
                                     f"{other.uri}: the command line wins over the environment"), err
    assert reg.alias("clf", "champion").version == 2 and other.alias("clf", "champion") is None
    monkeypatch.delenv("KUBEPIPE_REGISTRY")
    code, _, err = _run(capsys, "models", "rollback", "clf", "--registry", other.uri,
                        "--set", f"registry_uri={reg.uri}")
    assert code == 2 and " ".join(err.split()) == (f"error: --registry names the registry {other.uri}, but --set "
                                                   f"registry_uri names {reg.uri}: give one of them"), err
    assert reg.alias("clf", "champion").version == 2


@pytest.mark.parametrize("given, minutes", [("90", 90), ("1h", 60), ("30m", 30), ("90s", 1.5), ("1d", 1440)])
def test_gc_older_than_takes_minutes_or_a_duration_with_its_unit(reg, capsys, given, minutes):
    """`kubepipe models gc --older-than 1h` was 'Input should be a valid number, unable to parse string as a number',
    the unit (minutes) unsaid."""
    code, out, err = _run(capsys, "models", "gc", "--older-than", given, "--dry-run", "--format", "json")
    assert code == 0 and json.loads(out)["older_than_minutes"] == minutes, err


@pytest.mark.parametrize("given", ["1 hour", "-5", "inf", "400d", "1w"])
def test_gc_older_than_that_is_no_duration_says_what_to_give(reg, capsys, given):
    code, out, err = _run(capsys, "models", "gc", "--older-than", given)
    assert code == 2 and (f"Invalid value for '--older-than': '{given}' is no duration: give minutes (e.g. 60) or a "
                          "duration with its unit (90s, 30m, 2h, 1d), at least 0") in " ".join(err.replace("│", " ").split())


def test_promote_help_names_every_version_form_it_takes(reg, capsys):
    """`models promote --help` said 'Version number to make champion', while `previous` and `v3` are taken too."""
    code, out, _ = _run(capsys, "models", "promote", "--help")
    assert code == 0 and "its number (from 1: 3 or v3) or `previous`" in " ".join(out.replace("│", " ").split())
    for given in ("1", "v2", "previous"):
        assert _run(capsys, "models", "promote", "clf", given, "--reason", "r")[0] == 0
