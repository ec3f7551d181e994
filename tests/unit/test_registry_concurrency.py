"""Registry under concurrent writers and writers killed mid-write (real processes, local store)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import pytest

from kubepipe.components.registry import Registry, RegistryError

N_PROCS = 6
ROUNDS = 3


def _worker(uri: str, idx: int, tmp: str, barrier) -> None:
    reg = Registry(uri)
    barrier.wait()
    for r in range(ROUNDS):
        d = os.path.join(tmp, f"m-{idx}-{r}")
        os.makedirs(d)
        with open(os.path.join(d, "model.safetensors"), "w") as fh:
            fh.write(f"{idx}:{r}")
        mv = reg.register(d, name="clf", metrics={"idx": idx, "round": r})
        reg.promote("clf", mv.version, reason=f"proc {idx} round {r}")


def _kill_alive(procs) -> None:
    """SIGKILL the processes this test started that are still running, and reap them."""
    for p in procs:
        if p.pid is not None and p.is_alive():
            p.kill()
            p.join(10)


def test_concurrent_register_and_promote_is_consistent(tmp_path):
    uri = f"file://{tmp_path / 'reg'}"
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(N_PROCS)
    procs = [ctx.Process(target=_worker, args=(uri, i, str(tmp_path), barrier)) for i in range(N_PROCS)]
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + 60
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        assert [p.exitcode for p in procs] == [0] * N_PROCS
    finally:
        _kill_alive(procs)

    reg = Registry(uri)
    versions = reg.versions("clf")
    total = N_PROCS * ROUNDS
    assert [v.version for v in versions] == list(range(1, total + 1))  # no duplicates, no gaps
    assert all(v.ok for v in versions)
    contents = {open(os.path.join(reg.model_path("clf", v.version), "model.safetensors")).read() for v in versions}
    assert len(contents) == total  # every version holds its own writer's model
    for v in versions:  # metadata and files belong together
        assert open(os.path.join(v.model_uri, "model.safetensors")).read() == f"{v.metrics['idx']}:{v.metrics['round']}"

    hist = reg.history("clf")
    assert [h["generation"] for h in hist] == list(range(1, total + 1))  # every promote landed: no lost update
    assert sorted(h["version"] for h in hist) == list(range(1, total + 1))
    for before, after in zip(hist, hist[1:]):
        assert after["previous"] == before["champion"]  # each move built on the state before it
    champ = reg.alias("clf", "champion")
    assert champ.version == hist[-1]["version"] and champ.version in {v.version for v in versions}
    assert reg.alias("clf", "previous").version == hist[-2]["champion"]


def _slow_register(uri: str, model_dir: str) -> None:
    Registry(uri).register(model_dir, name="clf", metrics={})


def _promote_forever(uri: str) -> None:
    reg = Registry(uri)
    i = 0
    while True:
        reg.promote("clf", 1 + i % 2, reason="flip")
        i += 1


def test_writer_killed_mid_write_leaves_registry_readable(tmp_path):
    uri = str(tmp_path / "reg")
    reg = Registry(uri)
    small = tmp_path / "small"
    small.mkdir()
    (small / "model.safetensors").write_bytes(b"x")
    reg.register(str(small), name="clf", metrics={})
    reg.register(str(small), name="clf", metrics={})

    big = tmp_path / "big"
    big.mkdir()
    for i in range(40):  # many files so the copy takes a while
        (big / f"shard-{i}.bin").write_bytes(os.urandom(1 << 20))
    ctx = mp.get_context("fork")
    p = ctx.Process(target=_slow_register, args=(uri, str(big)))
    try:
        p.start()
        claim = tmp_path / "reg/clf/versions/3/claim.json"
        deadline = time.monotonic() + 20
        while not claim.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert claim.exists(), "the writer never claimed v3"
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
        assert p.exitcode == -signal.SIGKILL
    finally:
        _kill_alive([p])

    listed = reg.versions("clf")
    assert [(v.version, v.status) for v in listed] == [(1, "ok"), (2, "ok"), (3, "incomplete")]
    with pytest.raises(RegistryError, match="v3 is incomplete"):
        reg.get("clf", 3)
    assert reg.register(str(small), name="clf", metrics={}).version == 4  # the dead claim is skipped

    # kill a promoter in the middle of its compare-and-swap loop
    q = ctx.Process(target=_promote_forever, args=(uri,))
    try:
        q.start()
        deadline = time.monotonic() + 30
        while len(reg.history("clf")) < 3 and time.monotonic() < deadline:  # a few promotes have landed
            time.sleep(0.01)
        os.kill(q.pid, signal.SIGKILL)
        q.join(10)
        assert q.exitcode == -signal.SIGKILL
    finally:
        _kill_alive([q])
    hist = reg.history("clf")
    assert len(hist) >= 3 and all("error" not in h for h in hist)
    champ = reg.alias("clf", "champion").version
    assert champ == hist[-1]["champion"] in (1, 2)
    assert reg.promote("clf", 4, reason="after crash").version == 4
    assert reg.alias("clf", "previous").version == champ
    # half-written temp files (as a writer killed before its link leaves them) are ignored by readers
    (tmp_path / "reg/clf/aliases/.tmp-abc-123").write_text('{"champion": 2, "sta')
    (tmp_path / "reg/clf/versions/.tmp-def-456").write_text("x")
    assert reg.alias("clf", "champion").version == 4
    assert [v.version for v in reg.versions("clf")] == [1, 2, 3, 4]
    assert reg.register(str(small), name="clf", metrics={}).version == 5


def _racing_rollbacks(uri: str, tmp_path) -> tuple[Registry, list]:
    """Two rollbacks that both read champion v3 before either writes (a barrier in front of their alias create)."""
    import threading

    reg = Registry(uri)
    for tag in "abc":
        d = tmp_path / tag
        d.mkdir()
        (d / "w.bin").write_text(tag)
        reg.promote("clf", reg.register(str(d), name="clf").version, reason=tag)
    barrier = threading.Barrier(2, timeout=10)
    results: list = []

    def one(i: int) -> None:
        r = Registry(uri)
        real = r.store.create

        def create(rel, data):  # both have read the state; then they race for the next generation
            if "/aliases/" in rel and not getattr(barrier, f"passed{i}", False):
                setattr(barrier, f"passed{i}", True)
                barrier.wait()
            return real(rel, data)

        r.store.create = create
        try:
            results.append((r.rollback("clf", reason=f"op{i}").version, r.replaced))
        except RegistryError as exc:
            results.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return reg, results


def test_two_rollbacks_at_once_go_back_one_step(tmp_path):
    """Both read champion v3; the loser re-read v2 and popped again, sending the champion to v1."""
    reg, results = _racing_rollbacks(str(tmp_path / "reg"), tmp_path)
    assert sorted(results) == [(2, 2), (2, 3)]  # one moved v3 -> v2; the other found v2 already: nothing moved
    assert reg.alias("clf", "champion").version == 2
    assert [h["action"] for h in reg.history("clf")] == ["promote"] * 3 + ["rollback"]


@pytest.mark.parametrize("store", ["file", "memory"])
def test_a_rollback_whose_champion_moved_under_it_is_refused(tmp_path, store):
    """A promote landing between a rollback's read and its write: the rollback undid the new champion instead."""
    import uuid

    uri = str(tmp_path / "reg") if store == "file" else f"memory://reg-{uuid.uuid4().hex}"
    reg = Registry(uri)
    for tag in "abcd":
        d = tmp_path / tag
        d.mkdir()
        (d / "w.bin").write_text(tag)
        reg.register(str(d), name="clf")
    for v in (1, 2, 3):
        reg.promote("clf", v, reason=f"p{v}")
    other = Registry(uri)
    real = reg.store.create
    reg.store.create = lambda rel, data: (other.promote("clf", 4, reason="hotfix"), real(rel, data))[1]
    with pytest.raises(RegistryError) as err:
        reg.rollback("clf", reason="bad canary")
    assert "the champion moved from v3 to v4 while you were rolling back (promote by " in str(err.value)
    assert "nothing was changed: run `kubepipe models show clf`" in str(err.value)
    assert Registry(uri).alias("clf", "champion").version == 4


def test_first_registrations_of_starter_and_starter_at_once_do_not_both_pass(tmp_path):
    """Both listed the registry before either claimed a version: both passed the case check, two models. (Local
    store: fsspec's memory filesystem has no atomic exclusive create, see store.py.)"""
    import threading

    uri = str(tmp_path / "reg")
    barrier = threading.Barrier(2, timeout=10)
    results: dict = {}

    def one(name: str) -> None:
        r = Registry(uri)
        real = r.store.listdir

        def listdir(rel=""):
            got = real(rel)
            if rel == "" and not getattr(r, "_listed", False):  # both have seen the empty registry
                r._listed = True
                barrier.wait()
            return got

        r.store.listdir = listdir
        d = tmp_path / name
        d.mkdir()
        (d / "w.bin").write_text(name)
        try:
            results[name] = r.register(str(d), name=name).version
        except RegistryError as exc:
            results[name] = str(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in ("Starter", "starter")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    names = Registry(uri).names()
    assert len(names) == 1, names
    loser = "starter" if names == ["Starter"] else "Starter"
    assert results[names[0]] == 1
    assert results[loser].startswith(f"cannot register model `{loser}`: the ")  # holds `X` / the spelling `X` ...
    assert f"`{names[0]}`" in results[loser]  # (the winner had not yet claimed its version number)


def test_a_promote_expecting_a_champion_that_moved_is_refused_and_moves_nothing(tmp_path):
    """A deploy promotes with the champion it read before its canary bake: a person's promote during the bake
    was silently replaced by the deployed version (one compare-and-set rule with rollback's)."""
    from kubepipe.components.registry import ChampionMoved

    reg = Registry(str(tmp_path / "reg"))
    for tag in "abc":
        d = tmp_path / tag
        d.mkdir()
        (d / "w.bin").write_text(tag)
        reg.register(str(d), name="clf")
    assert reg.promote("clf", 1, reason="first", expect=None).version == 1  # no champion yet: None is expected
    reg.promote("clf", 3, reason="hotfix by hand")
    with pytest.raises(ChampionMoved) as err:
        reg.promote("clf", 2, reason="canary passed", expect=1)
    assert "the champion moved from v1 to v3 while you were promoting v2 (promote by " in str(err.value)
    assert reg.alias("clf", "champion").version == 3 and len(reg.history("clf")) == 2
    assert reg.promote("clf", 3, reason="again", expect=1).version == 3  # already so: nothing to refuse
    assert reg.promote("clf", 2, reason="canary passed", expect=3).version == 2


def test_without_hard_links_a_create_killed_midway_leaves_no_torn_file(tmp_path, monkeypatch):
    """Filesystems without hard links (os.link: EPERM) fell back to writing the bytes into the path itself: a writer
    killed midway left a torn version.json / alias generation that looked committed. Here each write into the
    target dies after half its bytes, with no clean-up (as a kill): the path is absent, empty or whole."""
    import errno

    from kubepipe.components.registry.store import LocalStore

    store = LocalStore(str(tmp_path / "reg"))
    target = os.path.realpath(store.uri("m/aliases/00000001.json"))
    data = b'{"champion": 1}' * 100

    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    real_fdopen = os.fdopen

    def dying_fdopen(fd, *a, **kw):
        fh = real_fdopen(fd, *a, **kw)
        if os.path.realpath(f"/proc/self/fd/{fd}") == target:
            write = fh.write

            def torn(b):
                write(bytes(b)[: len(b) // 2])
                fh.flush()
                raise SystemExit("killed")
            fh.write = torn
        return fh

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "fdopen", dying_fdopen)
    monkeypatch.setattr(os, "unlink", lambda p: None)  # a killed writer cleans nothing up
    try:
        created = store.create("m/aliases/00000001.json", data)
    except SystemExit:
        created = False
    monkeypatch.undo()
    held = open(target, "rb").read() if os.path.exists(target) else None
    assert held in (None, b"", data), held[:40]
    assert created and held == data
    monkeypatch.setattr(os, "link", no_link)
    assert store.create("m/aliases/00000001.json", b"other") is False  # still exclusive
    assert store.create("m/aliases/00000002.json", b"next")
    assert open(store.uri("m/aliases/00000002.json"), "rb").read() == b"next"


def test_without_hard_links_a_temp_file_gc_removed_is_the_retryable_error_not_a_raw_one(tmp_path, monkeypatch):
    """The no-hard-link fallback raised a raw FileNotFoundError (an internal error) when `models gc` removed the
    stalled writer's temp file, where the hard-link path says what happened; it says the same, and leaves nothing."""
    import errno

    from kubepipe.components.registry.store import LocalStore

    store = LocalStore(str(tmp_path / "reg"))

    def no_link(src, dst):
        raise OSError(errno.ENOTSUP, "Operation not supported")

    real_replace = os.replace
    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "replace", lambda src, dst: (os.unlink(src), real_replace(src, dst)))  # gc, then move
    with pytest.raises(RegistryError) as err:
        store.create("m/aliases/00000001.json", b"{}")
    assert "its temp file was removed before it was committed (by `kubepipe models gc`" in str(err.value)
    assert err.value.retryable and os.listdir(store.uri("m/aliases")) == []
