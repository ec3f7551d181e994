"""`register(..., reuse_same=True)` at the same moment as another registration of the same files: one version."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from kubepipe.components.registry import Registry
from kubepipe.components.registry.store import LocalStore


def _model(tmp_path, folder: str, tag: str = "a") -> str:
    d = tmp_path / folder
    d.mkdir()
    (d / "model.safetensors").write_bytes(tag.encode() * 10)
    (d / "kubepipe-model.json").write_text(json.dumps({"tag": tag}))
    return str(d)


@pytest.fixture()
def slow_copy(monkeypatch):
    """Each registration's copy takes a while: the second registration checks for the same files while the first
    one is still copying them."""
    put = LocalStore.put_tree

    def slow(self, local_dir, rel):
        time.sleep(0.5)
        put(self, local_dir, rel)

    monkeypatch.setattr(LocalStore, "put_tree", slow)


def _at_once(uri: str, folders: list[str], name: str = "clf") -> list[tuple[int, bool]]:
    got: dict[int, tuple[int, bool]] = {}
    errors: list[BaseException] = []

    def one(i: int, folder: str) -> None:
        reg = Registry(uri)  # one per run: `existing` is the object's
        try:
            got[i] = (reg.register(folder, name=name, run_id=f"run-{i}", reuse_same=True).version, reg.existing)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i, f)) for i, f in enumerate(folders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return [got[i] for i in range(len(folders))]


def test_two_registrations_of_the_same_files_at_once_add_one_version(tmp_path, slow_copy):
    uri = f"file://{tmp_path / 'registry'}"
    results = _at_once(uri, [_model(tmp_path, "run1"), _model(tmp_path, "run2")])
    reg = Registry(uri)
    assert [v.version for v in reg.versions("clf")] == [1], reg.versions("clf")
    assert sorted(results) == [(1, False), (1, True)]  # one added it, the other found it
    assert sorted((tmp_path / "registry" / "clf" / "versions").iterdir()) == [tmp_path / "registry/clf/versions/1"]


def test_registrations_of_other_files_at_once_each_add_their_version(tmp_path, slow_copy):
    uri = f"file://{tmp_path / 'registry'}"
    results = _at_once(uri, [_model(tmp_path, "m1", "a"), _model(tmp_path, "m2", "b")])
    assert sorted(results) == [(1, False), (2, False)]


def test_a_registration_of_the_same_files_that_failed_is_not_waited_for(tmp_path, monkeypatch):
    """The first registration's copy fails (a full disk): the second, which waited for it, adds its own version."""
    uri = f"file://{tmp_path / 'registry'}"
    put = LocalStore.put_tree
    first, second = _model(tmp_path, "run1"), _model(tmp_path, "run2")

    def first_fails(self, local_dir, rel):
        time.sleep(0.5)
        if local_dir == first:
            raise OSError(28, "No space left on device")
        put(self, local_dir, rel)

    monkeypatch.setattr(LocalStore, "put_tree", first_fails)
    outcome: list = []
    t = threading.Thread(target=lambda: outcome.append(_try(uri, first)))
    t.start()
    while not (tmp_path / "registry" / "clf" / "versions" / "1").exists():  # the first has claimed v1: copying
        time.sleep(0.01)
    mv = Registry(uri).register(second, name="clf", reuse_same=True)
    t.join(30)
    assert "No space left on device" in str(outcome[0])
    assert mv.version == 2 and [v.version for v in Registry(uri).versions("clf")] == [2]


def _try(uri: str, folder: str):
    try:
        return Registry(uri).register(folder, name="clf", reuse_same=True)
    except Exception as exc:  # noqa: BLE001 - the test reads it
        return exc


def test_a_killed_registration_of_the_same_files_is_not_waited_for(tmp_path):
    """A registration killed mid-copy (its process gone) leaves an incomplete version that never commits: the next
    registration of those files does not wait for it."""
    uri = f"file://{tmp_path / 'registry'}"
    folder = _model(tmp_path, "run1")
    script = ("import sys; from kubepipe.components.registry import Registry; "
              "Registry(sys.argv[1]).register(sys.argv[2], name='clf', reuse_same=True)")
    killed = subprocess.run([sys.executable, "-c", script, uri, folder], start_new_session=True, timeout=60,
                            env={**__import__("os").environ, "KUBEPIPE_FAILPOINT": "register.copied"})
    assert killed.returncode == -9
    assert [v.status for v in Registry(uri).versions("clf")] == ["incomplete"]
    started = time.monotonic()
    mv = Registry(uri).register(_model(tmp_path, "run2"), name="clf", reuse_same=True)
    assert mv.version == 2 and time.monotonic() - started < 5


def test_a_registration_reads_each_committed_version_once(tmp_path, monkeypatch):
    """The look for the same files after the claim read every version's version.json again (a registry of 200
    versions on GCS: 200 more reads a registration); those committed before the claim are not read again."""
    uri = f"file://{tmp_path / 'registry'}"
    for tag in "abc":
        Registry(uri).register(_model(tmp_path, f"m-{tag}", tag), name="clf", reuse_same=True)
    reads: list[str] = []
    read = LocalStore.read

    def counting(self, rel):
        reads.append(rel)
        return read(self, rel)

    monkeypatch.setattr(LocalStore, "read", counting)
    assert Registry(uri).register(_model(tmp_path, "m-d", "d"), name="clf", reuse_same=True).version == 4
    for n in (1, 2, 3):
        assert reads.count(f"clf/versions/{n}/version.json") == 1, reads


def test_a_registration_whose_claim_is_still_being_written_is_waited_for(tmp_path, monkeypatch):
    """The first registration made v1's folder and is still writing its claim (its temp file there, fsync slow under
    load) when the second lists the versions: the second takes v2 and must wait for v1, not add its own (CI saw
    [1, 2])."""
    uri = f"file://{tmp_path / 'registry'}"
    create = LocalStore.create
    first, second = _model(tmp_path, "run1"), _model(tmp_path, "run2")
    v1 = tmp_path / "registry" / "clf" / "versions" / "1"

    def slow_first_claim(self, rel, data, *, parents=True):
        if rel == "clf/versions/1/claim.json":  # the folder and a temp file, then the link a while later
            v1.mkdir(parents=True, exist_ok=True)
            (v1 / ".tmp-claim-writing").write_bytes(b"")
            time.sleep(1.0)
            (v1 / ".tmp-claim-writing").unlink()
        return create(self, rel, data, parents=parents)

    monkeypatch.setattr(LocalStore, "create", slow_first_claim)
    outcome: list = []
    t = threading.Thread(target=lambda: outcome.append(_try(uri, first)))
    t.start()
    while not (v1 / ".tmp-claim-writing").exists():
        time.sleep(0.01)
    mv = Registry(uri).register(second, name="clf", reuse_same=True)
    t.join(30)
    assert outcome[0].version == 1 and mv.version == 1
    assert [v.version for v in Registry(uri).versions("clf")] == [1]
    assert not (tmp_path / "registry" / "clf" / "versions" / "2").exists()  # its claim removed


def test_a_claim_folder_left_by_a_killed_create_is_waited_for_at_most_the_grace(tmp_path, monkeypatch):
    """A create killed between its folder and its link leaves a temp file and no claim: a registration of any files
    waits for it `CLAIM_GRACE_S` at most, then adds its version."""
    from kubepipe.components.registry import same_files

    monkeypatch.setattr(same_files, "CLAIM_GRACE_S", 0.6)
    uri = f"file://{tmp_path / 'registry'}"
    v1 = tmp_path / "registry" / "clf" / "versions" / "1"
    v1.mkdir(parents=True)
    (v1 / ".tmp-killed-123").write_bytes(b"")
    started = time.monotonic()
    mv = Registry(uri).register(_model(tmp_path, "run1"), name="clf", reuse_same=True)
    assert mv.version == 2 and 0.5 < time.monotonic() - started < 10
