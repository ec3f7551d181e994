"""Registry: versions, aliases, history, corrupt entries; local folder and fsspec (memory://)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from kubepipe.components.registry import ModelVersion, Registry, RegistryError


def _model(tmp_path, tag: str) -> str:
    d = tmp_path / f"model-{tag}"
    d.mkdir()
    (d / "model.safetensors").write_bytes(tag.encode() * 10)
    (d / "kubepipe-model.json").write_text(json.dumps({"tag": tag}))
    return str(d)


@pytest.fixture(params=["file", "memory"])
def reg(request, tmp_path):
    if request.param == "file":
        return Registry(f"file://{tmp_path / 'reg'}")
    return Registry(f"memory://reg-{uuid.uuid4().hex}")


def test_register_copies_files_and_keeps_lineage(reg, tmp_path):
    mv = reg.register(
        _model(tmp_path, "a"), name="clf", metrics={"f1_macro": 0.91}, data_hash="sha256:abc",
        run_id="run-1", code_version="0.1.0", model_card="# Card", audit=[{"action": "force", "by": "ann"}],
    )
    assert isinstance(mv, ModelVersion) and mv.version == 1 and mv.ok
    got = reg.get("clf", 1)
    assert (got.metrics, got.data_hash, got.run_id, got.code_version, got.model_card) == (
        {"f1_macro": 0.91}, "sha256:abc", "run-1", "0.1.0", "# Card")
    assert got.audit == [{"action": "force", "by": "ann"}]
    assert set(got.files) == {"model.safetensors", "kubepipe-model.json"}
    local = reg.model_path("clf", 1)
    assert open(os.path.join(local, "model.safetensors"), "rb").read() == b"a" * 10
    assert reg.register(_model(tmp_path, "b"), name="clf", metrics={}).version == 2
    assert reg.names() == ["clf"]


def test_promote_rollback_and_history(reg, tmp_path):
    for tag in "abc":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
    assert reg.alias("clf", "champion") is None  # registering never promotes
    reg.promote("clf", 1, reason="first")
    reg.promote("clf", 2, reason="better")
    champ = reg.promote("clf", 3, reason="best", by="ci-bot")
    assert champ.version == 3 and champ.aliases == ("champion",)
    assert reg.alias("clf", "previous").version == 2
    assert reg.promote("clf", 3, reason="again").version == 3  # already champion: no move
    assert reg.rollback("clf", reason="bad canary").version == 2
    assert reg.alias("clf", "previous").version == 1
    assert reg.rollback("clf").version == 1
    assert reg.alias("clf", "previous") is None
    with pytest.raises(RegistryError, match="no previous champion"):
        reg.rollback("clf")
    hist = reg.history("clf")
    assert [(h["action"], h["version"], h["champion"]) for h in hist] == [
        ("promote", 1, 1), ("promote", 2, 2), ("promote", 3, 3), ("rollback", 2, 2), ("rollback", 1, 1)]
    assert hist[2]["by"] == "ci-bot" and hist[3]["reason"] == "bad canary"
    assert [h["generation"] for h in hist] == [1, 2, 3, 4, 5]
    assert reg.get("clf", "champion").version == 1


def test_bad_requests_are_clear(reg, tmp_path):
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    with pytest.raises(RegistryError, match=r"no version 7 .*versions: 1"):
        reg.get("clf", 7)
    with pytest.raises(RegistryError, match="needs a reason"):
        reg.promote("clf", 1, reason=" ")
    with pytest.raises(RegistryError, match="bad model name"):
        reg.register(_model(tmp_path, "b"), name="../etc", metrics={})
    with pytest.raises(RegistryError, match="not a folder"):
        reg.register(str(tmp_path / "nope"), name="clf", metrics={})
    with pytest.raises(RegistryError, match="unknown alias `best`"):
        reg.alias("clf", "best")
    with pytest.raises(RegistryError, match="no champion yet"):
        reg.get("clf", "champion")


def test_corrupt_version_is_listed_as_corrupt_while_others_list(tmp_path):
    reg = Registry(str(tmp_path / "reg"))  # plain path form
    for tag in "abc":
        reg.register(_model(tmp_path, tag), name="clf", metrics={"tag": 1})
    (tmp_path / "reg/clf/versions/2/version.json").write_text('{"name": "clf", "vers')
    listed = reg.versions("clf")
    assert [(v.version, v.status) for v in listed] == [(1, "ok"), (2, "corrupt"), (3, "ok")]
    assert "versions/2/version.json" in listed[1].error
    with pytest.raises(RegistryError, match=r"v2 is corrupt: .*version.json"):
        reg.get("clf", 2)
    with pytest.raises(RegistryError, match="corrupt"):
        reg.promote("clf", 2, reason="x")
    assert reg.promote("clf", 3, reason="ok").version == 3
    # a well-formed JSON that claims another version is corrupt too
    (tmp_path / "reg/clf/versions/1/version.json").write_text(json.dumps({"name": "clf", "version": 9}))
    assert reg.versions("clf")[0].status == "corrupt"


def test_damaged_alias_generation_falls_back_to_last_good(tmp_path, caplog):
    reg = Registry(str(tmp_path / "reg"))
    for tag in "ab":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
    reg.promote("clf", 1, reason="a")
    (tmp_path / "reg/clf/aliases/00000002.json").write_text("{not json")  # e.g. a foreign tool's torn write
    with caplog.at_level("WARNING", logger="kubepipe.components.registry.aliases"):
        assert reg.alias("clf", "champion").version == 1
        reg.aliases("clf")
    # was silent: `models list` showed v1 as the champion, the unreadable last move said nowhere but in `history`
    [warning] = [r.getMessage() for r in caplog.records]  # once per damaged file
    assert warning.startswith(f"model `clf`: alias state unreadable: {tmp_path}/reg/clf/aliases/00000002.json (")
    assert warning.endswith("answering from generation 1, so the champion may predate the last move: see "
                            "`kubepipe models history clf`, and promote the intended version again")
    assert "error" in reg.history("clf")[1]
    reg.promote("clf", 2, reason="b")  # next generation is 3, built on the last good state
    assert [h.get("generation") for h in reg.history("clf")] == [1, 2, 3]
    assert reg.alias("clf", "previous").version == 1


def test_a_damaged_alias_generation_read_by_two_threads_at_once_is_said_once(tmp_path, caplog, monkeypatch):
    """The once-per-file rule was an unguarded set: two threads of one process (the Python API) both found the file
    unsaid, and both warned."""
    import threading
    import time

    from kubepipe.components.registry import aliases

    class Slow(set):
        def __contains__(self, item):
            found = super().__contains__(item)
            time.sleep(0.2)  # both threads have looked before either records
            return found

    monkeypatch.setattr(aliases, "_WARNED", Slow())
    reg = Registry(str(tmp_path / "reg"))
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    reg.promote("clf", 1, reason="a")
    (tmp_path / "reg/clf/aliases/00000002.json").write_text("{not json")
    with caplog.at_level("WARNING", logger="kubepipe.components.registry.aliases"):
        threads = [threading.Thread(target=reg.aliases, args=("clf",)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert len([r for r in caplog.records if "alias state unreadable" in r.getMessage()]) == 1


def _two_promotions(tmp_path) -> Registry:
    """Two alias generations: champion v2 (generation 2) over v1 (generation 1)."""
    reg = Registry(str(tmp_path / "reg"))
    for tag in "ab":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
    reg.promote("clf", 1, reason="a")
    reg.promote("clf", 2, reason="b")
    return reg


def test_an_alias_file_that_cannot_be_read_is_an_error_not_an_older_champion(tmp_path, monkeypatch):
    import builtins
    import errno

    from kubepipe.components.registry import store

    reg = _two_promotions(tmp_path)
    newest = str(tmp_path / "reg/clf/aliases/00000002.json")

    def flaky_mount(path, *args, **kwargs):  # as NFS answers: EIO for the newest generation only
        if str(path) == newest:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(store, "open", flaky_mount, raising=False)
    with pytest.raises(RegistryError) as exc:
        reg.alias("clf", "champion")
    assert str(exc.value) == (f"{newest}: cannot read this alias state: Input/output error (EIO); not falling back "
                              "to an older generation, which could name an old champion: retry, or check the "
                              "storage (a network mount?)")
    assert exc.value.retryable
    with pytest.raises(RegistryError, match="Input/output error"):  # nor is a move built on an older state
        reg.promote("clf", 1, reason="c")
    monkeypatch.undo()
    assert reg.alias("clf", "champion").version == 2


def _eio(where: str, real):
    """`real`, failing with EIO (as a flaky mount or a storage backend answers) for paths ending in `where`."""
    import errno

    def call(path, *args, **kwargs):
        if str(path).endswith(where):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return real(path, *args, **kwargs)
    return call


def test_an_fsspec_read_that_fails_with_eio_names_the_file_not_the_network(tmp_path, monkeypatch):
    """It was 'registry memory://...: cannot reach it: [Errno 5] ...; check the URI, your credentials and the
    network'."""
    reg = Registry(f"memory://reg-{uuid.uuid4().hex}")
    for tag in "ab":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
    reg.promote("clf", 1, reason="a")
    reg.promote("clf", 2, reason="b")
    fs = reg.store.fs
    monkeypatch.setattr(fs, "cat_file", _eio("clf/aliases/00000002.json", fs.cat_file))
    with pytest.raises(RegistryError) as exc:
        reg.alias("clf", "champion")
    assert str(exc.value) == (f"{reg.store.uri('clf/aliases/00000002.json')}: cannot read it: Input/output error "
                              "(EIO); retry, or check the storage (a network mount or bucket?)")
    assert exc.value.retryable
    with pytest.raises(FileNotFoundError):  # absence stays absence
        reg.store.read("clf/aliases/00000009.json")
    monkeypatch.undo()
    assert reg.alias("clf", "champion").version == 2


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_a_claim_that_cannot_be_read_is_not_reported_as_removed_by_gc(tmp_path, monkeypatch, kind):
    """An EIO on the registration's own claim said 'the registration took so long that kubepipe models gc
    removed it as abandoned': the storage failed, and the error says so; nothing is committed."""
    import builtins

    from kubepipe.components.registry import store

    reg = Registry(str(tmp_path / "reg") if kind == "file" else f"memory://reg-{uuid.uuid4().hex}")
    if kind == "file":
        monkeypatch.setattr(store, "open", _eio("claim.json", builtins.open), raising=False)
    else:
        monkeypatch.setattr(reg.store.fs, "cat_file", _eio("claim.json", reg.store.fs.cat_file))
    with pytest.raises((OSError, RegistryError)) as exc:
        reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    assert "Input/output error" in str(exc.value) and "gc" not in str(exc.value)
    monkeypatch.undo()
    assert "ok" not in [v.status for v in reg.versions("clf")]  # nothing committed
    assert reg.register(_model(tmp_path, "b"), name="clf", metrics={}).ok  # and the registry works on


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_mtime_is_none_only_when_the_file_is_gone(tmp_path, monkeypatch, kind):
    """mtime returned None for any OSError: an EIO looked like an unknown age (gc skipped the version silently)."""
    from kubepipe.components.registry import store

    reg = Registry(str(tmp_path / "reg") if kind == "file" else f"memory://reg-{uuid.uuid4().hex}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    assert isinstance(reg.store.mtime("clf/versions/1/version.json"), float)
    assert reg.store.mtime("clf/versions/9/version.json") is None
    if kind == "file":
        monkeypatch.setattr(store.os, "stat", _eio("version.json", os.stat))
    else:
        monkeypatch.setattr(reg.store.fs, "info", _eio("version.json", reg.store.fs.info))
    with pytest.raises(RegistryError) as exc:
        reg.store.mtime("clf/versions/1/version.json")
    assert str(exc.value) == (f"{reg.store.uri('clf/versions/1/version.json')}: cannot read its modification time: "
                              "Input/output error (EIO); retry, or check the storage (a network mount or bucket?)")
    assert exc.value.retryable


def test_an_alias_generation_listed_but_gone_falls_back_to_the_one_before(tmp_path, monkeypatch):
    reg = _two_promotions(tmp_path)
    (tmp_path / "reg/clf/aliases/00000002.json").unlink()
    monkeypatch.setattr(Registry, "_generations", lambda self, name: [1, 2])  # listed, then removed
    assert reg.alias("clf", "champion").version == 1


def test_store_without_exclusive_create_is_refused(tmp_path):
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem
    from fsspec.registry import _registry

    class NoExcl(MemoryFileSystem):
        protocol = ("noexcl",)
        store: dict = {}
        pseudo_dirs = [""]

        def _open(self, path, mode="rb", **kw):
            if "x" in mode:
                raise ValueError(f"unsupported mode {mode}")
            return super()._open(path, mode, **kw)

    fsspec.register_implementation("noexcl", NoExcl, clobber=True)
    try:
        with pytest.raises(RegistryError, match="cannot create files exclusively .*gcsfs>=2024.12"):
            Registry("noexcl://reg").register(_model(tmp_path, "a"), name="clf", metrics={})
    finally:
        _registry.pop("noexcl", None)


def test_a_name_the_registry_does_not_hold_is_named_with_the_models_it_does(reg, tmp_path):
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    for call in (lambda: reg.get("clff", "champion"), lambda: reg.get("clff", 1), lambda: reg.history("clff"),
                 lambda: reg.promote("clff", 1, reason="x"), lambda: reg.rollback("clff")):
        with pytest.raises(RegistryError) as exc:  # was "has no champion yet" / an empty history
            call()
        assert str(exc.value).startswith(f"no model `clff` in {reg.store.uri()} (models: clf); did you mean `clf`? "
                                         "check the name")
    with pytest.raises(RegistryError, match="model `clf` has no champion yet"):  # a known model: as before
        reg.get("clf", "champion")
    assert reg.history("clf") == []


def test_stray_entries_the_registry_did_not_write_are_not_versions_or_generations(tmp_path):
    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    reg.promote("clf", 1, reason="first")
    for stray in ("007", "x", "²"):  # `²`.isdigit() but int() refuses it: was an internal error on every command
        (tmp_path / "reg/clf/versions" / stray).mkdir()
    (tmp_path / "reg/clf/aliases/99.json").write_text("[]")  # was generation 99, read from 00000099.json
    assert [v.version for v in reg.versions("clf")] == [1]  # `007` was v7, "incomplete" at versions/7
    assert [h["generation"] for h in reg.history("clf")] == [1]
    assert reg.register(_model(tmp_path, "b"), name="clf", metrics={}).version == 2  # was 8


def test_gc_of_a_name_the_registry_does_not_hold_says_so(reg, tmp_path):
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    with pytest.raises(RegistryError) as exc:  # was [] ("no incomplete versions"): a typo looked like a clean gc
        reg.gc("clff", older_than_s=0)
    assert str(exc.value).startswith(f"no model `clff` in {reg.store.uri()} (models: clf); did you mean `clf`? "
                                     "check the name")
    assert reg.gc("clf", older_than_s=0) == []


@pytest.mark.parametrize("change, error", [
    ({"version": True}, "version.json says 'clf' vTrue, expected 'clf' v1"),  # was listed as vTrue, status ok
    ({"version": 1.0}, "version.json says 'clf' v1.0, expected 'clf' v1"),
    ({"model_card": 5}, "field `model_card` must be a str"),  # was an internal error in `models show`
    ({"audit": [5]}, "field `audit` must be a list of objects"),  # likewise
    ({"run_id": {"a": 1}}, "field `run_id` must be a str"),
])
def test_a_version_json_with_a_wrong_type_is_corrupt_not_an_internal_error(tmp_path, change, error):
    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={}, run_id=7)
    path = tmp_path / "reg/clf/versions/1/version.json"
    assert json.loads(path.read_text())["run_id"] == "7"  # written as it is read back
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    (v,) = reg.versions("clf")
    assert (v.version, v.status) == (1, "corrupt")
    assert v.error == f"model `clf` v1 is corrupt: {reg.store.uri('clf/versions/1')}/version.json: {error}; " \
        "register the model again (the other versions are unaffected)"


def test_an_alias_not_set_yet_says_how_it_gets_set(tmp_path):
    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    with pytest.raises(RegistryError) as exc:  # was only "model `clf` has no champion yet"
        reg.get("clf", "champion")
    assert str(exc.value) == ("model `clf` has no champion yet; promote a version: "
                              "kubepipe models promote clf VERSION --reason ...")
    reg.promote("clf", 1, reason="first")
    with pytest.raises(RegistryError) as exc:
        reg.get("clf", "previous")
    assert str(exc.value) == "model `clf` has no previous yet; a second promotion sets it"


def test_a_generation_whose_event_lacks_keys_is_an_unreadable_history_row(tmp_path):
    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    reg.promote("clf", 1, reason="first")
    (tmp_path / "reg/clf/aliases/00000002.json").write_text(json.dumps(
        {"champion": 1, "previous": None, "stack": [1], "event": {"action": "promote"}}))
    first, second = reg.history("clf")  # `models history` showed 'internal error: KeyError' for such a row
    assert first["action"] == "promote" and first["reason"] == "first"
    where = reg.store.uri("clf/aliases/00000002.json")
    assert second == {"generation": 2,
                      "error": f"unreadable alias generation {where}: its event has no `version`, `by`, `at`, `reason`"}


def test_a_generation_whose_aliases_disagree_with_its_stack_is_skipped_like_a_damaged_one(tmp_path):
    reg = Registry(f"file://{tmp_path / 'reg'}")
    for tag in "ab":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
    reg.promote("clf", 1, reason="first")
    reg.promote("clf", 2, reason="second")
    (tmp_path / "reg/clf/aliases/00000003.json").write_text(json.dumps(
        {"champion": "x", "previous": None, "stack": [1], "event": {"action": "promote", "version": 1, "by": "a",
                                                                     "at": "t", "reason": "r"}}))
    # was read as champion "x": `models show` said "has no version champion", promote "bad version 'x'"
    assert (reg.get("clf", "champion").version, reg.get("clf", "previous").version) == (2, 1)
    assert reg.history("clf")[-1]["error"].endswith("`champion` / `previous` must be the last two versions of `stack`")
    assert reg.promote("clf", 1, reason="back").version == 1


@pytest.mark.parametrize("stack", [[True], [1, 0], [-2]])
def test_a_generation_whose_stack_holds_no_version_number_is_skipped_like_a_damaged_one(tmp_path, stack):
    """`true` (an int to Python) or 0 in a hand-edited stack was the champion: `models show` and every evaluate
    failed with 'bad version True', the file unnamed."""
    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    reg.promote("clf", 1, reason="first")
    champion, previous = stack[-1], (stack[-2:-1] or [None])[0]
    (tmp_path / "reg/clf/aliases/00000002.json").write_text(json.dumps(
        {"champion": champion, "previous": previous, "stack": stack, "event": {
            "action": "promote", "version": champion, "by": "a", "at": "t", "reason": "r"}}))
    assert reg.alias("clf", "champion").version == 1
    assert reg.history("clf")[-1]["error"].endswith("`stack` must be a list of version numbers (1 or more)")


@pytest.mark.parametrize("damage", ["corrupt", "incomplete"])
def test_rollback_onto_a_damaged_previous_is_refused_and_moves_nothing(tmp_path, damage):
    reg = Registry(f"file://{tmp_path / 'reg'}")
    for tag in "ab":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
    reg.promote("clf", 1, reason="first")
    reg.promote("clf", 2, reason="second")
    meta = tmp_path / "reg" / "clf" / "versions" / "1" / "version.json"
    meta.write_text("{") if damage == "corrupt" else meta.unlink()
    # was: the alias moved onto v1 anyway, then the command failed reading it: a champion that cannot be served
    with pytest.raises(RegistryError, match=rf"cannot roll back `clf` to v1: model `clf` v1 is {damage}.*"
                                            r"the champion stays v2\. Promote a sound version instead"):
        reg.rollback("clf", reason="bad canary")
    assert reg._state("clf")["champion"] == 2 and len(reg.history("clf")) == 2


def test_credentials_in_the_registry_uri_are_never_shown(tmp_path):
    # was: 'registry http://ann:hunter2@127.0.0.1:1/reg: cannot reach it', and a query token in every model_uri
    for uri in ("http://ann:hunter2@127.0.0.1:1/reg", f"memory://reg-{uuid.uuid4().hex}?sv=2022-11-02&sig=hunter2"):
        with pytest.raises(RegistryError, match="a registry URI cannot carry") as info:
            Registry(uri).names()
        assert "hunter2" not in str(info.value) and "<redacted>" in str(info.value)


def test_verify_of_a_remote_store_leaves_no_download_behind(tmp_path, monkeypatch):
    import tempfile

    reg = Registry(f"memory://reg-{uuid.uuid4().hex}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert reg.verify("clf", 1) == {"version": 1, "path": reg.get("clf", 1).model_uri, "changed": [], "missing": [],
                                    "added": []}
    assert os.listdir(tmp_path / "tmp") == []  # was: one kubepipe-registry-* copy of the model per version verified


def test_a_version_is_a_number_or_v_and_a_number_only(tmp_path):
    reg = Registry(f"file://{tmp_path / 'reg'}")
    for tag in "abcdefghijk":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
    assert [reg.get("clf", v).version for v in (10, "10", "v10", " 3 ", "03")] == [10, 10, 10, 3, 3]
    for typed in ("1_0", "vv5", "٣", "+3", "3.0", True):  # were v10, v5, v3, v3: promoted without a word
        with pytest.raises(RegistryError, match=r"bad version .*: give a number \(e\.g\. 3\) or an alias"):
            reg.promote("clf", typed, reason="typo")
    assert reg.history("clf") == []


def test_a_name_ending_in_a_newline_is_refused_not_a_second_model(tmp_path):
    # `model_name: >` (a folded YAML scalar) is 'clf\n': `$` matched before the newline, so it registered a
    # model folder 'clf\n' beside 'clf', and validate passed it (a namespace 'ns\n' too)
    from kubepipe.components.checks import model_name_issues, namespace_issues

    reg = Registry(f"file://{tmp_path / 'reg'}")
    with pytest.raises(RegistryError, match=r"bad model name 'clf\\n': use ASCII letters, digits"):
        reg.register(_model(tmp_path, "a"), name="clf\n")
    assert [i.message for i in model_name_issues({"model_name": "clf\n"})] == ["bad model name 'clf\\n'"]
    assert [i.message for i in namespace_issues({"namespace": "ns\n"})] == ["bad Kubernetes namespace 'ns\\n'"]
    assert not os.path.exists(tmp_path / "reg")


def test_a_local_version_commits_only_files_already_on_disk(tmp_path, monkeypatch):
    # version.json is fsynced and commits the version; the model files were copied without fsync, so after a power
    # cut a committed version (maybe the champion) could hold empty weights
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        return real(fd)

    reg = Registry(f"file://{tmp_path / 'reg'}")
    model = _model(tmp_path, "a")
    monkeypatch.setattr(os, "fsync", spy)
    reg.register(model, name="clf", metrics={})
    base = str((tmp_path / "reg" / "clf" / "versions" / "1").resolve())
    commit = max(i for i, p in enumerate(synced) if p.startswith(f"{base}/.tmp-"))  # version.json, written last
    for path in ("model/model.safetensors", "model/kubepipe-model.json", "model"):
        assert f"{base}/{path}" in synced[:commit], (path, synced)


def test_promote_and_rollback_refuse_a_version_whose_files_changed(reg, tmp_path):
    # was: a tampered version became champion (deploy refused it only later)
    import fsspec

    for tag in "abc":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
    reg.promote("clf", 1, reason="first")
    reg.promote("clf", 3, reason="third")
    fs = fsspec.filesystem("memory") if reg.store.uri().startswith("memory") else fsspec.filesystem("file")
    for v in (1, 2):
        weights = f"{reg.store.root}/clf/versions/{v}/model/model.safetensors"
        fs.pipe_file(weights, fs.cat_file(weights) + b"appended")
    with pytest.raises(RegistryError, match=r"^model `clf` v2: files changed after registration in \S*clf/versions/2/"
                                            r"model \(changed: model\.safetensors\); refusing to make it champion"):
        reg.promote("clf", 2, reason="tampered")
    with pytest.raises(RegistryError, match=r"^model `clf` v1: files changed .*\(changed: model\.safetensors\); "
                                            r"refusing to roll back to it \(the champion stays v3\)"):
        reg.rollback("clf", reason="bad canary")
    assert reg.aliases("clf") == {"champion": 3, "previous": 1}
    assert [h["action"] for h in reg.history("clf")] == ["promote", "promote"]


def test_model_path_refuses_a_version_whose_files_changed_after_registration(reg, tmp_path):
    # the loader checks only the weights: an edited kubepipe-model.json (labels swapped) was deployed and evaluated
    import fsspec

    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    reg.register(_model(tmp_path, "b"), name="clf", metrics={})
    spec = f"{reg.store.root}/clf/versions/1/model/kubepipe-model.json"
    fs = fsspec.filesystem("memory") if reg.store.uri().startswith("memory") else fsspec.filesystem("file")
    fs.pipe_file(spec, b'{"tag": "swapped"}')
    with pytest.raises(RegistryError, match=r"^model `clf` v1: files changed after registration in \S*clf/versions/1/"
                                            r"model \(changed: kubepipe-model\.json\); refusing to use them"):
        reg.model_path("clf", 1)
    assert os.path.isfile(os.path.join(reg.model_path("clf", 2), "kubepipe-model.json"))


def test_a_folder_that_holds_the_registry_is_refused_not_copied_into_itself(tmp_path, monkeypatch):
    # `Registry().register(".", ...)` from the repository root copied the registry into itself, level after level,
    # until 'File name too long' ('... free space (or fix the store) and register again')
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"w")
    reg = Registry()  # .kubepipe/registry under the cwd
    with pytest.raises(RegistryError, match=r"^cannot register '\.': it holds the registry itself \(.*\.kubepipe/"
                                            r"registry\); pass the Model artifact's directory"):
        reg.register(".", name="clf")
    assert reg.names() == []


def test_a_number_the_aliases_still_name_is_not_given_to_a_new_version(tmp_path):
    import shutil

    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    reg.register(_model(tmp_path, "b"), name="clf", metrics={})
    reg.promote("clf", 1, reason="first")
    reg.promote("clf", 2, reason="second")
    shutil.rmtree(tmp_path / "reg" / "clf" / "versions" / "2")  # the champion's folder, removed by hand
    shutil.rmtree(tmp_path / "reg" / "clf" / "versions" / "1")  # and the previous one's
    # was v1: the rollback target (and, with v2 reused next, the champion) became a model nobody promoted
    assert reg.register(_model(tmp_path, "c"), name="clf", metrics={}).version == 3
    assert reg.get("clf", 3).aliases == ()


def test_files_in_a_linked_folder_are_registered_and_a_link_loop_is_named(reg, tmp_path):
    # os.walk does not enter linked folders: a model folder whose tokenizer/ links to a shared copy was registered
    # without the tokenizer, silently, and served without it
    shared = tmp_path / "shared-tokenizer"
    shared.mkdir()
    (shared / "tokenizer.json").write_text('{"model": "wordpiece"}')
    model = tmp_path / "model-linked"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w" * 10)
    (model / "tokenizer").symlink_to(shared, target_is_directory=True)
    mv = reg.register(str(model), name="clf", metrics={})
    assert set(reg.get("clf", mv.version).files) == {"model.safetensors", "tokenizer/tokenizer.json"}
    with reg.model_files("clf", mv.version) as folder:
        assert open(os.path.join(folder, "tokenizer", "tokenizer.json")).read() == '{"model": "wordpiece"}'
    (shared / "back").symlink_to(model, target_is_directory=True)
    with pytest.raises(RegistryError, match=r"model-linked/tokenizer/back: a linked folder reaches .*model-linked "
                                            r"again \(a symlink loop"):
        reg.register(str(model), name="clf", metrics={})


def test_a_local_registry_writes_files_others_can_read(tmp_path):
    # version.json, claim.json and the alias generations were mkstemp's 0600 beside 0644 model files: a registry
    # folder shared by a team (or CI and a person) could not be read by anyone but its writer
    import stat

    old = os.umask(0o022)
    try:
        reg = Registry(f"file://{tmp_path / 'reg'}")
        reg.register(_model(tmp_path, "a"), name="clf", metrics={})
        reg.promote("clf", 1, reason="first")
    finally:
        os.umask(old)
    modes = {os.path.relpath(os.path.join(d, f), tmp_path / "reg"): stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode)
             for d, _, files in os.walk(tmp_path / "reg") for f in files}
    assert {"clf/versions/1/version.json", "clf/versions/1/claim.json"} <= set(modes), modes
    assert {p: m for p, m in modes.items() if m != 0o644} == {}


def test_gc_removes_old_temp_files_a_killed_create_left(tmp_path):
    """A create killed before its link left `.tmp-*` in aliases/ or versions/<n>/, never swept by gc."""
    reg = Registry(str(tmp_path / "reg"))
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    root = tmp_path / "reg" / "clf"
    old = [root / "aliases" / ".tmp-abc-999", root / "versions" / "1" / ".tmp-def-999"]
    young = root / "versions" / "1" / ".tmp-new-998"
    for f in old + [young]:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"{half")
    for f in old:
        os.utime(f, (os.path.getmtime(f) - 7200,) * 2)
    assert [r["path"] for r in reg.gc("clf", older_than_s=3600, dry_run=True)] == [str(f) for f in old]
    assert all(f.exists() for f in old)
    got = reg.gc("clf", older_than_s=3600)
    assert [(r["what"], r["version"]) for r in got] == [("temp file", None), ("temp file", 1)]
    assert not any(f.exists() for f in old) and young.exists()
    assert reg.get("clf", 1).ok


@pytest.mark.parametrize("named", [False, True])
def test_gc_sweeps_the_aliases_temp_files_of_a_model_with_no_versions_left(tmp_path, named):
    """A model whose version folders were all removed (by hand, a lifecycle rule) kept its aliases/ history and
    any `.tmp-*` there: `models gc` never looked at it ('no model `clf`' with the name, nothing without)."""
    import shutil

    reg = Registry(str(tmp_path / "reg"))
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    reg.promote("clf", 1, reason="a")
    shutil.rmtree(tmp_path / "reg/clf/versions/1")
    stale = tmp_path / "reg/clf/aliases/.tmp-abc-999"
    stale.write_bytes(b"{half")
    os.utime(stale, (os.path.getmtime(stale) - 7200,) * 2)
    got = reg.gc("clf" if named else None, older_than_s=3600)
    assert [(r["name"], r["what"], r["path"]) for r in got] == [("clf", "temp file", str(stale))]
    assert not stale.exists() and (tmp_path / "reg/clf/aliases/00000001.json").exists()


@pytest.mark.parametrize("move", ["promote", "register"])
def test_a_write_whose_temp_file_gc_removed_fails_naming_it(tmp_path, monkeypatch, move):
    """`models gc --older-than 0` beside a writer stalled before its link removed the writer's `.tmp-*` file: the
    promote died with a raw FileNotFoundError (an internal error), a registration said 'free space'. Like git's
    prune (temp files younger than the grace period are kept), gc removes only temp files older than --older-than;
    a writer that loses its own anyway fails with a retryable error saying so, and nothing is committed."""
    from kubepipe.components.registry import store

    reg = _two_promotions(tmp_path)
    real_link = os.link

    in_gc: list = []

    def stalled_then_linked(src, dst):
        if os.path.basename(src).startswith(store.TEMP_PREFIX) and not in_gc:  # not gc's own create (abandon)
            in_gc.append(1)
            reg.gc(older_than_s=0)  # runs while this writer is stalled
            in_gc.pop()
        return real_link(src, dst)

    monkeypatch.setattr(store.os, "link", stalled_then_linked)
    with pytest.raises(RegistryError) as exc:
        if move == "promote":
            reg.promote("clf", 1, reason="c")
        else:
            reg.register(_model(tmp_path, "c"), name="clf", metrics={})
    assert "its temp file was removed before it was committed (by `kubepipe models gc` with an --older-than " \
           "shorter than this write's stall?); nothing was written: run it again" in str(exc.value)
    assert exc.value.retryable
    monkeypatch.undo()
    assert reg.alias("clf", "champion").version == 2 and [v.version for v in reg.versions("clf")] == [1, 2]


def test_a_name_differing_only_in_case_from_a_model_there_is_refused(reg, tmp_path):
    """`Starter` beside `starter` shares one folder on a case-insensitive filesystem (macOS, Windows): its v1 was
    `starter`'s next version there, and a separate model on S3. Refused on every store, naming the model there."""
    reg.register(_model(tmp_path, "a"), name="starter", metrics={})
    with pytest.raises(RegistryError) as exc:
        reg.register(_model(tmp_path, "b"), name="Starter", metrics={})
    assert str(exc.value) == (
        f"cannot register model `Starter`: the registry holds `starter` ({reg.store.uri('starter')}), a name that "
        "differs only in case; the two would share one folder on a case-insensitive filesystem (macOS, Windows). "
        "Register it as `starter`, or choose a name that differs in more than case")
    assert reg.names() == ["starter"]
    assert reg.register(_model(tmp_path, "c"), name="starter", metrics={}).version == 2


@pytest.mark.parametrize("uri, what", [
    ("memory://ci:hunter2@bucket/reg", "a password"),
    ("memory://ci:hunter2/x@bucket/reg", "a password"),  # a `/` in it: urlsplit saw no password, fsspec a bucket
    ("memory://bucket/reg?endpoint_url=http%3A%2F%2Fminio&token=hunter2", "a query string"),
])
def test_a_registry_uri_with_a_password_or_query_is_refused_up_front(uri, what):
    """fsspec's stores read neither: `s3://k:s@bucket/reg` failed 'Parameter validation failed:', and
    `s3://bucket/reg?token=...` stored every version under the key `reg?token=.../clf/...`, each model_uri shown
    as `s3://bucket/reg?token=REDACTED`, and a local deploy recorded that redacted URI for its champion move,
    which then opened another (empty) registry. Refused, naming what to do and never showing the secret."""
    with pytest.raises(RegistryError) as exc:
        Registry(uri)
    msg = str(exc.value)
    assert "hunter2" not in msg
    assert f"a registry URI cannot carry {what}: fsspec's stores read it as part of the bucket or path" in msg
    assert "AWS_ENDPOINT_URL_S3" in msg and "GOOGLE_APPLICATION_CREDENTIALS" in msg


def test_a_dangling_symlink_in_the_model_folder_is_named(tmp_path):
    """A model folder with a link whose target is gone (a moved Hugging Face cache) failed the registration with a
    raw FileNotFoundError; it names the link and its target, and nothing is claimed."""
    d = _model(tmp_path, "a")
    os.symlink(tmp_path / "cache/tokenizer.json", os.path.join(d, "tokenizer.json"))
    reg = Registry(str(tmp_path / "reg"))
    with pytest.raises(RegistryError) as exc:
        reg.register(d, name="clf", metrics={})
    assert str(exc.value) == (f"{d}/tokenizer.json: a symlink to {tmp_path}/cache/tokenizer.json, which does not "
                              "exist; copy the file into the model folder, or fix the link")
    assert reg.names() == []


@pytest.mark.parametrize("uri", ["s3://", "s3:///", "gs://", "S3://", "Gs://"])
def test_a_bucket_store_uri_without_a_bucket_is_refused(uri):
    """`--registry s3://` (KUBEPIPE_REGISTRY=s3://$BUCKET with BUCKET unset) listed the account's buckets as the
    registry ('no models in s3://', exit 0), and a registration would write into a bucket named after the model."""
    pytest.importorskip("s3fs" if uri.lower().startswith("s3") else "gcsfs")
    with pytest.raises(RegistryError) as exc:
        Registry(uri)
    scheme = uri.split(":")[0].lower()  # a scheme in capitals is the same store (S3:// passed as a bucket once)
    assert str(exc.value) == (f"registry {uri}: no bucket given; use {scheme}://BUCKET/PATH in --registry / "
                              "KUBEPIPE_REGISTRY (an unset variable where the bucket goes?)")


@pytest.mark.parametrize("first, second", [("merchant_categorizer", "merchant-categorizer"),
                                           ("Fraud.Model", "fraud-model"), ("a" * 63 + "x", "a" * 63 + "y")])
def test_the_vertex_mirror_refuses_a_second_model_onto_one_vertex_model_id(tmp_path, first, second):
    """Vertex model ids are lowercase letters, digits and '-', at most 63: `merchant_categorizer` and
    `merchant-categorizer` both mirrored onto the Vertex model `merchant-categorizer`, their versions mixed and one
    model's champion alias moved onto the other's version. Refused before anything is written or uploaded."""
    from kubepipe.components.registry.vertex import VertexModelRegistry, vertex_model_id

    reg = VertexModelRegistry(f"memory://reg-{uuid.uuid4().hex}", project="p", location="l", serving_image="img")
    reg.registry.register(_model(tmp_path, "a"), name=first, metrics={})
    with pytest.raises(RegistryError) as exc:
        reg.register(_model(tmp_path, "b"), name=second, metrics={})
    assert str(exc.value) == (
        f"cannot register model `{second}` with the Vertex AI mirror: its Vertex model id `{vertex_model_id(first)}` "
        f"is model `{first}`'s (an id keeps lowercase letters, digits and '-', at most 63), so both would be one "
        f"Vertex model; register it as `{first}`, or choose a name that maps to another id")
    assert reg.registry.names() == [first]


def test_a_registration_gc_removed_mid_copy_says_so_not_free_space(tmp_path, monkeypatch):
    """`models gc --older-than 0` beside a slow copy removed the version folder under it: the registration said
    'failed: [Errno 2] No such file ...; free space (or fix the store) and register again'."""
    from kubepipe.components.registry import store

    reg = Registry(str(tmp_path / "reg"))
    real_copy = store.shutil.copy2

    def stalled_copy(src, dst, **kwargs):
        reg.gc(older_than_s=0)  # runs while this copy is stalled
        return real_copy(src, dst, **kwargs)

    monkeypatch.setattr(store.shutil, "copy2", stalled_copy)
    with pytest.raises(RegistryError) as exc:
        reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    assert str(exc.value) == ("model `clf` v1: the registration took so long that `kubepipe models gc` removed it as "
                              "abandoned; register again")


def test_an_empty_model_folder_is_not_registered(reg, tmp_path):
    """A model folder with no files (the wrong output wired, a failed save) became an `ok` version with no files,
    which `models verify` called intact and a deploy only failed on."""
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(RegistryError) as exc:
        reg.register(str(tmp_path / "empty"), name="clf", metrics={})
    assert str(exc.value) == (f"cannot register {str(tmp_path / 'empty')!r}: the folder holds no files; pass the "
                              "Model artifact's directory (a train step's `model`)")
    assert reg.names() == []


def test_details_may_not_set_the_history_event_s_own_keys(tmp_path):
    """`promote(details={"version": 9})` was a raw TypeError ('multiple values for keyword argument'), and
    `details={"by": "mallory"}` replaced who moved the champion in the history."""
    reg = _two_promotions(tmp_path)
    with pytest.raises(RegistryError) as exc:
        reg.promote("clf", 1, reason="x", details={"by": "mallory", "at": "never", "score": 1})
    assert str(exc.value) == ("details: `at`, `by` are the history event's own; put your values under another key "
                              "(as deploy does, `canary_analysis`)")
    with pytest.raises(RegistryError, match="^details: `version` is the history event's own"):
        reg.record_event("clf", "canary-rollback", reason="z", details={"version": 9})
    assert len(reg.history("clf")) == 2 and reg.alias("clf", "champion").version == 2
    reg.promote("clf", 1, reason="x", details={"canary_analysis": {"by": "kept, nested"}})
    assert reg.history("clf")[-1]["canary_analysis"] == {"by": "kept, nested"}


def test_a_name_with_a_non_ascii_letter_is_told_which_letters(tmp_path):
    """'münchen' was refused with 'use letters, digits, ...': it is letters."""
    with pytest.raises(RegistryError) as exc:
        Registry(str(tmp_path / "reg")).register(_model(tmp_path, "a"), name="münchen", metrics={})
    assert str(exc.value) == ("bad model name 'münchen': use ASCII letters, digits, '.', '_' or '-' (start with a "
                              "letter or digit, max 128)")


def test_gc_removes_old_temp_files_a_killed_live_record_left(tmp_path):
    """monitor-live writes `versions/<n>/live/<key>.json` with the same exclusive create: a writer killed before its
    link left `.tmp-*` there, and gc looked only in `aliases/` and `versions/<n>/`."""
    reg = Registry(str(tmp_path / "reg"))
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    assert reg.store.create("clf/versions/1/live/abc.json", b"{}")
    stale = tmp_path / "reg/clf/versions/1/live/.tmp-abc-999"
    stale.write_bytes(b"{half")
    os.utime(stale, (os.path.getmtime(stale) - 7200,) * 2)
    got = reg.gc("clf", older_than_s=3600)
    assert [(r["version"], r["what"], r["path"]) for r in got] == [(1, "temp file", str(stale))]
    assert not stale.exists() and (tmp_path / "reg/clf/versions/1/live/abc.json").exists()


def test_a_create_whose_answer_was_lost_and_retried_is_still_ours(tmp_path, monkeypatch):
    """S3 and GCS clients retry a request whose answer was lost (a timeout, a 503) after the server applied it; the
    retry's precondition then fails (412, FileExistsError) and the create read as lost: a rollback was re-applied on
    the state it had itself written until no champion was left, a registration took the next number."""
    import contextlib

    reg = Registry(f"memory://reg-{uuid.uuid4().hex}")
    for tag in "abc":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
        reg.promote("clf", reg.versions("clf")[-1].version, reason=tag)
    fs = reg.store.fs
    real_open = fs.open

    @contextlib.contextmanager
    def applied_then_412(path, mode="rb", **kwargs):
        if mode != "xb":
            with real_open(path, mode, **kwargs) as fh:
                yield fh
            return
        with real_open(path, mode, **kwargs) as fh:
            yield fh
        raise FileExistsError(path)  # the retried request's answer

    monkeypatch.setattr(fs, "open", applied_then_412)
    assert reg.rollback("clf", reason="bad canary").version == 2
    assert reg.register(_model(tmp_path, "d"), name="clf", metrics={}).version == 4
    monkeypatch.undo()
    assert [e["action"] for e in reg.history("clf")] == ["promote", "promote", "promote", "rollback"]
    assert [(v.version, v.status) for v in reg.versions("clf")] == [(1, "ok"), (2, "ok"), (3, "ok"), (4, "ok")]


def test_a_remote_object_whose_key_climbs_out_of_the_model_folder_is_refused(tmp_path):
    """An object store key may hold `..`: `.../versions/1/model/../../../../x` (written by anyone with access to the
    bucket) was downloaded outside the download folder, onto any path of the machine verifying or serving it, and
    `models verify` said intact."""
    reg = Registry(f"memory://reg-{uuid.uuid4().hex}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    escape = tmp_path / "escaped.txt"
    key = reg.store._p("clf/versions/1/model/") + "../" * 30 + str(escape).lstrip("/")
    reg.store.fs.pipe_file(key, b"x")
    with pytest.raises(RegistryError) as exc:
        reg.verify("clf", 1)
    assert str(exc.value).startswith(f"{reg.store.uri('clf/versions/1/model')}: the object ")
    assert str(exc.value).endswith(" climbs out of this folder ('..' in its key); refusing to download it: remove "
                                   "it from the store")
    assert not escape.exists()


def test_a_download_that_fails_midway_leaves_no_partial_copy(tmp_path, monkeypatch):
    """A remote version whose download failed (the network, an EIO) left its partial copy in /tmp, one per try."""
    import tempfile

    d = _model(tmp_path, "a")
    (tmp_path / "model-a" / "z-last.bin").write_bytes(b"z")
    reg = Registry(f"memory://reg-{uuid.uuid4().hex}")
    reg.register(d, name="clf", metrics={})
    monkeypatch.setattr(reg.store.fs, "get_file", _eio("z-last.bin", reg.store.fs.get_file))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(RegistryError, match="Input/output error"):
        reg.model_path("clf", 1)
    assert os.listdir(tmp_path / "tmp") == []


@pytest.mark.parametrize("uri", ["reg\n", " s3://bucket/reg", "memory://reg\t"])
def test_a_registry_uri_with_surrounding_whitespace_is_refused(tmp_path, monkeypatch, uri):
    """KUBEPIPE_REGISTRY or registry_uri read from a file (a ConfigMap, an .env) keeps its newline: `reg\\n` was
    another folder, created by the first registration, and `models list` printed 'no models in .../reg' over two
    lines."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RegistryError) as exc:
        Registry(uri)
    assert str(exc.value) == (f"registry {uri!r}: a registry URI cannot begin or end with whitespace (a newline "
                              "kept from a file it was read from?); remove it")
    assert os.listdir(tmp_path) == []


def test_the_same_files_registered_again_return_their_version_not_a_duplicate(reg, tmp_path):
    """A run resumed after its register step (or re-run) registers the same bytes again: one version, not two."""
    first = reg.register(_model(tmp_path, "a"), name="clf", metrics={"f1_macro": 0.9}, run_id="run-1")
    assert reg.existing is False and first.version == 1
    reg.promote("clf", 1, reason="first")
    again = reg.register(first_copy(tmp_path, "a"), name="clf", metrics={"f1_macro": 0.9}, run_id="run-2",
                         reuse_same=True)
    assert reg.existing is True
    assert (again.version, again.run_id, again.aliases) == (1, "run-1", ("champion",))
    assert [v.version for v in reg.versions("clf")] == [1]
    assert reg.register(_model(tmp_path, "b"), name="clf", reuse_same=True).version == 2 and reg.existing is False
    assert reg.register(first_copy(tmp_path, "a"), name="other", reuse_same=True).version == 1  # another name
    assert reg.register(first_copy(tmp_path, "a"), name="clf").version == 3  # asked to add: added


def first_copy(tmp_path, tag: str) -> str:
    """`_model(tag)`'s files in another folder (a resumed run's copy of the same model)."""
    d = tmp_path / f"copy-{tag}-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    (d / "model.safetensors").write_bytes(tag.encode() * 10)
    (d / "kubepipe-model.json").write_text(json.dumps({"tag": tag}))
    return str(d)


def test_gc_removing_a_version_before_its_stalled_writer_commits_leaves_no_empty_version(reg, tmp_path):
    """gc removed the folder between the writer's claim check and its version.json create, and the create (its
    makedirs; an object store has no folders) made an `ok` version holding no model files."""
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    real = reg.store.create

    def stalled(rel, data, **kw):
        if rel.endswith("/version.json"):
            assert [r["version"] for r in Registry(reg.uri).gc("clf", older_than_s=0)] == [2]
        return real(rel, data, **kw)

    reg.store.create = stalled
    with pytest.raises(RegistryError, match=r"^model `clf` v2: the registration took so long that `kubepipe models "
                                            r"gc` removed it as abandoned; register again"):
        reg.register(_model(tmp_path, "b"), name="clf", metrics={})
    reg.store.create = real
    assert [(v.version, v.status) for v in reg.versions("clf")] == [(1, "ok")]
    assert reg.register(_model(tmp_path, "c"), name="clf", metrics={}).version == 2


def test_gc_never_removes_a_version_committed_after_it_was_listed(reg, tmp_path):
    """gc listed v2 as incomplete, its writer then committed it, and gc removed a registration that had succeeded."""
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    gc_reg = Registry(reg.uri)
    real, real_mtime = reg.store.create, gc_reg.store.mtime
    committed: list = []

    def writer_create(rel, data, **kw):
        if not rel.endswith("/version.json"):
            return real(rel, data, **kw)

        def mtime(r):  # gc has listed v2 as incomplete; the writer commits now
            if not committed:
                committed.append(real(rel, data, **kw))
            return real_mtime(r) - 7200 if real_mtime(r) else None

        gc_reg.store.mtime = mtime
        assert gc_reg.gc("clf", older_than_s=0) == []
        return committed[0]

    reg.store.create = writer_create
    assert reg.register(_model(tmp_path, "b"), name="clf", metrics={}).version == 2
    reg.store.create = real
    assert [(v.version, v.status) for v in reg.versions("clf")] == [(1, "ok"), (2, "ok")]
    assert reg.verify("clf", 2)["changed"] == [] and reg.verify("clf", 2)["missing"] == []


def test_a_version_gc_was_killed_removing_reads_as_incomplete_and_gc_finishes_it(reg, tmp_path):
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    reg.store.create("clf/versions/2/version.json", b'{"abandoned": {"by": "gc"}}')
    v2 = reg.versions("clf")[1]
    assert (v2.status, v2.error) == ("incomplete", "model `clf` v2 is incomplete: its registration was abandoned and "
                                     f"`kubepipe models gc` is removing {reg.store.uri('clf/versions/2')}")
    assert [r["version"] for r in reg.gc("clf", older_than_s=0)] == [2]
    assert [v.version for v in reg.versions("clf")] == [1]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("odd", ["fifo", "device", "link-to-root", "link-to-parent"])
def test_a_model_folder_with_a_fifo_or_a_link_above_it_is_refused_naming_it(tmp_path, odd):
    """A FIFO blocked the hashing forever, a link to /dev/zero never ended, a link to `/` walked the whole
    filesystem; each is refused before a version number is taken."""
    reg = Registry(str(tmp_path / "reg"))
    d = _model(tmp_path, "a")
    path = os.path.join(d, "odd")
    if odd == "fifo":
        os.mkfifo(path)
    else:
        os.symlink({"device": "/dev/zero", "link-to-root": "/", "link-to-parent": ".."}[odd], path)
    want = {"fifo": f"{path}: a FIFO (named pipe), not a file; a model folder holds files and folders only",
            "device": f"{path}: a device, not a file; a model folder holds files and folders only",
            "link-to-root": f"{path}: a symlink to /, a folder holding the model folder itself; link only the folders",
            "link-to-parent": f"{path}: a symlink to {tmp_path}, a folder holding the model folder itself"}[odd]
    with pytest.raises(RegistryError) as exc:
        reg.register(d, name="clf", metrics={})
    assert str(exc.value).startswith(want), str(exc.value)
    assert reg.names() == []


def test_a_spelling_claimed_by_a_failed_first_registration_is_explained(tmp_path):
    """`Starter`'s first registration failed (an empty folder, a full disk) after claiming the spelling, and
    `starter` was then told 'the registry holds `Starter`', a model that is nowhere."""
    import errno

    reg = Registry(str(tmp_path / "reg"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RegistryError, match="holds no files"):
        reg.register(str(empty), name="Starter")
    real = reg.store.put_tree
    reg.store.put_tree = lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(RegistryError, match="free space"):
        reg.register(_model(tmp_path, "a"), name="Starter")
    reg.store.put_tree = real
    with pytest.raises(RegistryError) as exc:
        reg.register(_model(tmp_path, "b"), name="starter")
    assert str(exc.value) == (
        f"cannot register model `starter`: the spelling `Starter` was claimed for this name "
        f"({tmp_path}/reg/.names/starter.json) by a registration that has no version yet: still starting, or it "
        "failed; register it as `Starter`, or, if no registration of `Starter` runs, remove that file")
    assert reg.register(_model(tmp_path, "c"), name="Starter").version == 1


def test_gc_sweeps_the_temp_files_a_killed_name_claim_left(tmp_path):
    reg = Registry(str(tmp_path / "reg"))
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    stale, young = tmp_path / "reg/.names/.tmp-abc-999", tmp_path / "reg/.names/.tmp-def-998"
    stale.write_bytes(b"{half")
    young.write_bytes(b"{half")
    os.utime(stale, (os.path.getmtime(stale) - 7200,) * 2)
    assert reg.gc("clf", older_than_s=3600) == []  # a model's gc: its own folder only
    got = reg.gc(older_than_s=3600)
    assert [(r["name"], r["version"], r["what"], r["path"]) for r in got] == [(None, None, "temp file", str(stale))]
    assert not stale.exists() and young.exists() and (tmp_path / "reg/.names/clf.json").exists()


def test_an_undefined_metric_is_stored_as_json_null_and_read_back_as_nan(reg, tmp_path):
    """version.json held `NaN` / `Infinity` (json.dumps' default): not JSON, so jq and JSON.parse refused the file."""
    import math

    def strict(raw: bytes):
        return json.loads(raw, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))

    mv = reg.register(_model(tmp_path, "nan"), name="shop", metrics={"accuracy": 0.5, "roc_auc": float("nan"),
                                                                      "log_loss": float("inf")})
    reg.promote("shop", mv.version, reason="first", details={"canary_analysis": {"psi": float("-inf")}})
    stored = strict(reg.store.read(f"shop/versions/{mv.version}/version.json"))
    assert stored["metrics"] == {"accuracy": 0.5, "roc_auc": None, "log_loss": None}
    assert strict(reg.store.read("shop/aliases/00000001.json"))["event"]["canary_analysis"] == {"psi": None}
    got = reg.get("shop", mv.version).metrics
    assert got["accuracy"] == 0.5 and math.isnan(got["roc_auc"]) and math.isnan(got["log_loss"])


@pytest.mark.parametrize("kw, error", [({"metrics": [0.9]}, "field `metrics` must be a dict"),
                                       ({"metadata": "gate passed"}, "field `metadata` must be a dict"),
                                       ({"audit": {"action": "x"}}, "field `audit` must be a list"),
                                       ({"audit": ["passed"]}, "field `audit` must be a list of objects")])
def test_a_registration_with_a_wrongly_typed_field_is_refused_before_anything_is_written(tmp_path, kw, error):
    """It was committed, then read back as corrupt ('register the model again', which did the same)."""
    reg = Registry(str(tmp_path / "reg"))
    with pytest.raises(RegistryError) as exc:
        reg.register(_model(tmp_path, "m"), name="shop", **kw)
    model = str(tmp_path / "model-m")
    assert str(exc.value) == f"cannot register {model!r} as `shop`: {error}; nothing was registered"
    assert reg.names() == [] and not (tmp_path / "reg").exists()


@pytest.mark.parametrize("metrics, error", [
    ({"accuracy": True}, "metric `accuracy` is True (bool), not a number; give each metric as a number"),
    ({"accuracy": "0.9"}, "metric `accuracy` is '0.9' (str), not a number (a number in quotes: give it without them)"),
    ({"f1_macro": [0.9]}, "metric `f1_macro` is [0.9] (list), not a number"),
    ({"f1_macro": {"mean": 0.9}}, "metric `f1_macro` is {'mean': 0.9} (dict), not a number"),
    ({1: 0.9}, "metric name 1 (int) is not text: name each metric with text (e.g. '1')"),
])
def test_a_metric_that_is_no_number_is_refused_naming_it(tmp_path, metrics, error):
    """`True`, `"0.9"` and `[0.9]` were registered as they were: `models list` showed `True` as accuracy and a gate
    comparing with that champion found no number (bool is an int subclass: refused by name); `{1: 0.9}` was stored
    under "1"."""
    reg = Registry(str(tmp_path / "reg"))
    with pytest.raises(RegistryError) as exc:
        reg.register(_model(tmp_path, "m"), name="shop", metrics=metrics)
    assert error in str(exc.value) and str(exc.value).endswith("; nothing was registered")
    assert reg.names() == []


def test_a_refused_metric_s_value_is_shown_redacted_and_short(tmp_path):
    """The refusal printed the value whole: a token passed as a metric, a curve of 10,000 points."""
    reg = Registry(str(tmp_path / "reg"))
    with pytest.raises(RegistryError) as exc:
        reg.register(_model(tmp_path, "t"), name="shop", metrics={"token": "ghp_" + "a1" * 18})
    assert "metric `token` is '<redacted>' (str), not a number" in str(exc.value) and "a1a1" not in str(exc.value)
    with pytest.raises(RegistryError) as exc:
        reg.register(_model(tmp_path, "c"), name="shop", metrics={"curve": list(range(10_000))})
    assert "metric `curve` is [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16... (list), not a number" in \
        str(exc.value) and len(str(exc.value)) < 400


def test_numpy_numbers_and_undefined_metrics_are_registered_as_numbers(tmp_path):
    import math

    import numpy as np

    reg = Registry(str(tmp_path / "reg"))
    mv = reg.register(_model(tmp_path, "m"), name="shop",
                      metrics={"accuracy": np.float32(0.5), "n": np.int64(3), "roc_auc": None, "x": float("nan")})
    got = reg.get("shop", mv.version).metrics
    assert got["accuracy"] == 0.5 and got["n"] == 3 and type(got["n"]) is int
    assert math.isnan(got["roc_auc"]) and math.isnan(got["x"])
    with pytest.raises(RegistryError, match=r"metric `ok` is np.True_ \(bool\), not a number"):
        reg.register(_model(tmp_path, "b"), name="shop", metrics={"ok": np.bool_(True)})


def test_one_version_json_that_cannot_be_read_is_that_version_s_problem_not_the_listing_s(tmp_path, monkeypatch):
    """A version.json without read permission (another user's, 0600) or a folder in its place failed the whole
    `models list` ('check the path exists and is writable'); it is that version, listed as unreadable, and a storage
    failure (EIO) names the file and is retryable."""
    import errno

    reg = Registry(str(tmp_path / "reg"))
    for tag in "ab":
        reg.register(_model(tmp_path, tag), name="shop")
    (tmp_path / "reg" / "shop" / "versions" / "3" / "version.json").mkdir(parents=True)
    real = reg.store.read

    def read(rel):
        if rel == "shop/versions/2/version.json":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(rel)

    monkeypatch.setattr(reg.store, "read", read)
    got = {v.version: (v.status, v.error) for v in reg.versions("shop")}
    assert got[1] == ("ok", None) and got[2][0] == got[3][0] == "corrupt"
    assert got[2][1] == (f"model `shop` v2 is unreadable: {tmp_path}/reg/shop/versions/2/version.json: Permission "
                         "denied (EACCES); fix its permissions (a folder there: move it away); the other versions are "
                         "unaffected")
    assert "v3 is unreadable: " in got[3][1] and "Is a directory (EISDIR)" in got[3][1]
    monkeypatch.setattr(reg.store, "read", lambda rel: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(RegistryError) as exc:
        reg.versions("shop")
    assert str(exc.value).startswith(f"{tmp_path}/reg/shop/versions/1/version.json: cannot read it: I/O error (EIO)")
    assert exc.value.retryable


def test_a_commit_killed_without_hard_links_leaves_an_incomplete_version_gc_removes(tmp_path, monkeypatch):
    """Without hard links a version.json is created empty, then the written bytes are renamed over it: a writer killed
    between left an empty version.json, listed as corrupt ('Expecting value') and never removed by `models gc`."""
    import errno
    import time

    reg = Registry(str(tmp_path / "reg"))
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    real_replace = os.replace

    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    def killed_at_commit(src, dst, *a, **kw):
        if str(dst).endswith("version.json"):
            raise SystemExit("killed")
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "replace", killed_at_commit)
    monkeypatch.setattr(os, "unlink", lambda p: None)  # a killed writer cleans nothing up
    with pytest.raises(SystemExit):
        reg.register(_model(tmp_path, "b"), name="clf", metrics={})
    monkeypatch.undo()
    entry = reg.store.uri("clf/versions/2/version.json")
    assert os.path.getsize(entry) == 0
    v2 = reg.versions("clf")[1]
    assert (v2.status, v2.error) == ("incomplete", "model `clf` v2 is incomplete: its registration was killed while "
                                     f"committing ({entry} is empty); `kubepipe models gc` removes it")
    old = time.time() - 7200
    os.utime(reg.store.uri("clf/versions/2/claim.json"), (old, old))
    assert reg.gc("clf", older_than_s=3600) == []  # aged from the empty commit, not from the claim
    os.utime(entry, (old, old))
    assert [(r["version"], r["what"]) for r in reg.gc("clf", older_than_s=3600)] == [(2, "incomplete version")]
    assert [v.version for v in reg.versions("clf")] == [1] and not os.path.exists(reg.store.uri("clf/versions/2"))


def test_a_full_local_disk_while_downloading_a_version_names_the_temp_folder_not_the_store(tmp_path, monkeypatch):
    """A promote from a remote registry downloads the version to check its sha256s; /tmp filling up said
    's3://.../model: cannot download it: No space left on device (ENOSPC); retry, or check the storage (a network
    mount or bucket?)', sending the user to the bucket."""
    import errno
    import glob
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    reg = Registry(f"memory://reg-{uuid.uuid4().hex}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(reg.store.fs, "get_file", full)
    with pytest.raises(RegistryError) as exc:
        reg.promote("clf", 1, reason="first")
    assert str(exc.value).startswith(f"{reg.store.uri('clf/versions/1/model')}: downloading it into "
                                     f"{tmp_path / 'tmp'}/kubepipe-registry-")
    assert str(exc.value).endswith(" failed: No space left on device (ENOSPC): the local disk of that temp folder is "
                                   "full (a version is downloaded whole to serve, evaluate or check it; the partial "
                                   "copy was removed); free space there, or point TMPDIR at a disk with room for the "
                                   "model")
    assert glob.glob(str(tmp_path / "tmp" / "*")) == [] and reg.aliases("clf")["champion"] is None


def test_a_local_promote_hashes_only_files_whose_stat_changed_since_last_found_intact(tmp_path, monkeypatch):
    """Each promote hashed every byte of the model (seconds per GB): a file whose size, mtime, ctime and inode are
    those recorded when it was last found as registered is not read again; any write (its mtime put back too) is."""
    from kubepipe.components.registry import stat_digests

    hashed: list[int] = []
    real = stat_digests.sha256_file

    def counting(path):
        hashed.append(os.path.getsize(path))
        return real(path)

    monkeypatch.setattr(stat_digests, "sha256_file", counting)
    monkeypatch.setattr(stat_digests, "RACY_NS", 0)  # the test's files are fresh; the race rule is checked below
    reg = Registry(f"file://{tmp_path / 'reg'}")
    for tag in "ab":
        reg.register(_model(tmp_path, tag), name="clf", metrics={})
    total, total2 = (sum(os.path.getsize(p) for p in (tmp_path / f"reg/clf/versions/{v}/model").iterdir()) for v in (1, 2))
    reg.promote("clf", 1, reason="first")
    assert sum(hashed) == total  # the first check hashes all
    hashed.clear()
    reg.promote("clf", 2, reason="second")
    reg.rollback("clf", reason="back")
    reg.promote("clf", 1, reason="again")
    assert sum(hashed) == total2  # v2 once (v1 not again: the rollback and the third promote read nothing of it)
    hashed.clear()
    reg.promote("clf", 2, reason="again")
    assert hashed == []  # both versions checked once already: nothing read
    weights = tmp_path / "reg/clf/versions/1/model/model.safetensors"
    st = os.stat(weights)
    weights.write_bytes(b"B" * st.st_size)  # same size, mtime put back: the ctime still moved
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(RegistryError, match=r"v1: files changed after registration .*\(changed: model\.safetensors\)"):
        reg.promote("clf", 1, reason="tampered")
    assert hashed == [st.st_size]  # the changed file only


def test_files_changed_in_the_tick_before_a_check_are_not_recorded(tmp_path, monkeypatch):
    from kubepipe.components.registry import stat_digests

    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    reg.promote("clf", 1, reason="first")  # its files were written just now: racy, so not vouched for
    assert not os.path.exists(tmp_path / "reg/clf/versions/1" / stat_digests.STAT_FILE)


@pytest.mark.parametrize("typed", ["-1", -1, "0", 0, "v0", " -3 "])
def test_a_version_below_1_names_the_rule(tmp_path, typed):
    """`kubepipe models promote clf --reason r -- -1` said 'bad version' (0: 'no version 0') and no more."""
    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(_model(tmp_path, "a"), name="clf", metrics={})
    with pytest.raises(RegistryError, match=r"^bad version .*: versions are numbered from 1 \(the first registered is "
                                            r"v1\); give a number \(e\.g\. 3\) or an alias \(champion, previous\)$"):
        reg.promote("clf", typed, reason="typo")
    with pytest.raises(RegistryError, match=r"^bad version '\+3': give a number"):
        reg.promote("clf", "+3", reason="typo")


@pytest.mark.parametrize("uri", ["file://", "file:///", "FILE://", "file:////"])
def test_a_file_uri_naming_no_folder_is_refused_not_the_working_directory(tmp_path, monkeypatch, uri):
    """`--registry "file://$REG"` (or registry_uri: file://${env.REG}) with REG unset was the working directory (the
    first registration made one there; `models list` said 'no models in /home/me/proj'), and file:/// the root."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RegistryError) as exc:
        Registry(uri)
    assert str(exc.value) == (f"registry {uri}: it names no folder (an unset variable where the path goes?); give one: "
                              "file:///path/to/registry, or a folder path")
    assert os.listdir(tmp_path) == []
    assert Registry("file://reg").store.uri() == str(tmp_path / "reg")  # a relative folder is one


def test_a_profile_registry_uri_naming_no_folder_is_a_validate_error(tmp_path):
    from kubepipe.errors import ValidationError
    from kubepipe.api import load_target

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "local.yaml").write_text("registry_uri: file://\n")
    with pytest.raises(ValidationError, match=r"registry_uri.*it names no folder"):
        load_target("local", start=tmp_path, home=tmp_path / ".kubepipe")
