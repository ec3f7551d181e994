"""`kubepipe endpoints list | stop | predict` with bad names and malformed endpoint records."""

from __future__ import annotations

import json

import pytest

from cli_runner import run_cli_text as _run




@pytest.fixture()
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)
    d = tmp_path / ".kubepipe" / "endpoints"
    d.mkdir(parents=True)
    # a well-formed record whose processes are gone (pid 1 is never ours): listed as down
    (d / "good.json").write_text(json.dumps({
        "name": "good", "port": 18081, "url": "http://127.0.0.1:18081", "model_dir": "/models/good",
        "backend": {"pid": 1, "port": 18082, "start_time": None}, "proxy": {"pid": 1, "port": 18081}}),
        encoding="utf-8")
    return d


BAD = {
    "strpid": {"name": "strpid", "port": 18083, "url": "http://127.0.0.1:18083", "model_dir": "/m",
               "backend": {"pid": "1234"}},
    "nourl": {"name": "nourl", "port": 18084, "model_dir": "/m"},
    "badport": {"name": "badport", "port": "80", "url": "http://127.0.0.1:80", "model_dir": "/m"},
    "proxylist": {"name": "proxylist", "port": 18085, "url": "http://x", "model_dir": "/m", "proxy": [1]},
    "array": [1, 2],
    "badurl": {"name": "badurl", "port": 18086, "url": "http://[::1", "model_dir": "/m"},
}


def _write_bad(d, name):
    text = "{not json" if name == "invalid" else json.dumps(BAD[name])
    (d / f"{name}.json").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("name", ["..", "../../etc/passwd", "/etc/passwd", "a/b", ".hidden", ""])
@pytest.mark.parametrize("cmd", ["stop", "predict"])
def test_path_names_are_refused(state, capsys, name, cmd):
    argv = ["endpoints", cmd, name] + (["hello"] if cmd == "predict" else [])
    code, text = _run(capsys, *argv)
    assert code == 2, text
    assert "endpoint name" in text and "Traceback" not in text


def test_get_endpoint_refuses_traversal(state):
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving.endpoints import get_endpoint, stop_endpoint

    for fn in (get_endpoint, stop_endpoint):
        with pytest.raises(ComponentError, match="endpoint name"):
            fn("../../etc/passwd", state_dir=str(state.parent))
    assert not list(state.parent.parent.glob("*.lock"))


@pytest.mark.parametrize("name", sorted(BAD) + ["invalid"])
@pytest.mark.parametrize("cmd", ["stop", "predict"])
def test_malformed_record_is_clear_error(state, capsys, name, cmd):
    _write_bad(state, name)
    argv = ["endpoints", cmd, name] + (["hello"] if cmd == "predict" else [])
    code, text = _run(capsys, *argv)
    assert code == 2, text
    assert f"{name}.json" in text and "Traceback" not in text and "internal error" not in text.lower()
    assert (state / f"{name}.json").exists()  # not deleted: its processes may still run


@pytest.mark.parametrize("name", sorted(BAD) + ["invalid"])
def test_list_shows_corrupt_and_others(state, capsys, name):
    _write_bad(state, name)
    code, text = _run(capsys, "endpoints", "list")
    assert code == 0, text
    assert "good" in text and "down" in text
    assert name in text and "corrupt" in text and f"{name}.json" in text


def test_field_named_in_error(state):
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving.endpoints import get_endpoint

    _write_bad(state, "strpid")
    with pytest.raises(ComponentError, match=r"backend\.pid"):
        get_endpoint("strpid", state_dir=str(state.parent))
    _write_bad(state, "nourl")
    with pytest.raises(ComponentError, match=r"'url'.*missing"):
        get_endpoint("nourl", state_dir=str(state.parent))


def test_good_record_stops(state, capsys):
    code, text = _run(capsys, "endpoints", "stop", "good")
    assert code == 0 and "stopped endpoint good" in text
    assert not (state / "good.json").exists()


def test_predict_piped_is_tab_separated_with_a_header(state, capsys, monkeypatch):
    """rich turned the tabs into spaces, so `kubepipe endpoints predict ... | cut -f1` got whole lines."""
    pytest.importorskip("httpx")
    from cli_runner import run_cli
    from kubepipe.components.serving import endpoints

    answer = {"predictions": [{"label": "fuel", "probability": 0.556}, {"label": "pharmacy", "probability": 0.97}]}
    monkeypatch.setattr(endpoints, "predict_endpoint", lambda name, inputs, state_dir: answer)
    code, out, err = run_cli(capsys, "endpoints", "predict", "good", "SHELL OIL [b]HOUSTON", "x")
    assert code == 0, err
    assert out == "label\tprobability\ttext\nfuel\t0.5560\tSHELL OIL [b]HOUSTON\npharmacy\t0.9700\tx\n"


def test_one_unreadable_record_does_not_stop_the_repair_of_the_others(state, capsys):
    """`endpoints repair` stopped at the first bad record (exit 2), so no other endpoint was settled."""
    from cli_runner import run_cli

    (state / "half.json").write_text(json.dumps({
        "name": "half", "port": 18087, "url": "http://127.0.0.1:18087", "model_dir": "/m",
        "backend": {"pid": 1, "port": 18088}, "proxy": {"pid": 1, "port": 18087},
        "pending": [{"role": "backend", "token": "gone#backend#0"}]}), encoding="utf-8")
    _write_bad(state, "array")
    code, out, err = run_cli(capsys, "endpoints", "repair", "--format", "json")
    assert code == 1, err
    items = {i["name"]: i for i in json.loads(out)["items"]}
    assert items["half"]["actions"] == ["forgot the backend of an interrupted deploy (not running)"]
    # both are down now, and their models are gone: repair cannot start them again, and says so (pid 1 runs: not theirs)
    assert items["good"]["error"] == ("endpoint good is down (its proxy (pid 1: another program's now) and backend "
                                      "(pid 1: another program's now) stopped) and "
                                      "cannot be started again: its model /models/good is gone; re-run its deploy "
                                      "step, or `kubepipe endpoints stop good`")
    assert items["half"]["error"].startswith("endpoint half is down (its proxy (pid 1: another program's now) and")
    assert items["array"]["error"].startswith(f"endpoint record {state / 'array.json'}")
    assert not json.loads(state.joinpath("half.json").read_text())["pending"]


def test_list_shows_no_python_none_for_missing_pids(state, capsys):
    """A corrupt or interrupted endpoint's pids read `None, None`."""
    from cli_runner import run_cli

    _write_bad(state, "array")
    code, out, err = run_cli(capsys, "endpoints", "list")
    assert code == 0, err
    assert "array\t-\tcorrupt\t-\t-, -\n" in out and "None" not in out


def test_predict_sends_a_tabular_model_s_rows_as_json(state, tmp_path, monkeypatch):
    """`kubepipe endpoints predict` sent every argument as a string, which a tabular model refuses: 'instances[0]:
    expected an object of features or a list of 8 numbers, got str', whatever the user typed."""
    httpx = pytest.importorskip("httpx")
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving.endpoints import predict_endpoint

    sent = []

    def post(url, json=None, **_):
        sent.append(json["instances"])
        return httpx.Response(200, json={"predictions": [{"label": "0", "probability": 0.9}] * len(json["instances"])})

    monkeypatch.setattr(httpx, "post", post)
    for name, task, feats in (("tab", "tabular-classification", ["amount", "hour", "foreign"]),
                              ("txt", "text-classification", [])):
        model = tmp_path / name
        model.mkdir()
        (model / "kubepipe-model.json").write_text(json.dumps({
            "format_version": 1, "task": task, "architecture": "tabular-mlp", "labels": ["0", "1"],
            "preprocessing": {"encoding": "tabular" if feats else "hashed-ngrams"},
            "input_spec": {"feature_columns": feats} if feats else {}}))
        (state / f"{name}.json").write_text(json.dumps({"name": name, "port": 18090, "url": "http://127.0.0.1:18090",
                                                        "model_dir": str(model)}))
    predict_endpoint("tab", ['[12.5, 3, 0]', '{"amount": 1, "hour": 2, "foreign": null}'], str(state.parent))
    predict_endpoint("txt", ['[12.5, 3, 0]', "SHELL"], str(state.parent))
    assert sent == [[[12.5, 3, 0], {"amount": 1, "hour": 2, "foreign": None}], ['[12.5, 3, 0]', "SHELL"]]
    with pytest.raises(ComponentError) as err:
        predict_endpoint("tab", ['[1, 2, 3]', "12.5"], str(state.parent))
    assert str(err.value) == ("input 2 ('12.5'): endpoint tab serves a tabular model; give each row as JSON: an object "
                              "of its features, e.g. '{\"amount\": 0.0, \"hour\": 0.0, ...}', or a list of 3 numbers "
                              "in this order: amount, hour, foreign")
    # NaN and 1e400 (read as inf) were an 'internal error: ValueError: Out of range float values are not JSON
    # compliant' from httpx, the CLI's traceback hint; each is named, before anything is sent
    for row, said in (('[NaN, 3, 0]', "`amount` reads as nan"), ('{"amount": 1, "hour": 1e400, "foreign": 0}',
                                                                 "`hour` reads as inf")):
        with pytest.raises(ComponentError) as err:
            predict_endpoint("tab", ['[1, 2, 3]', row], str(state.parent))
        assert str(err.value) == (f"input 2 ({row!r}): {said}, which is no JSON number (NaN, Infinity, or beyond a "
                                  "float's range like 1e400); give a finite number, or null for a missing feature")
    assert len(sent) == 2


def test_predict_on_a_retriever_prints_its_hits(state, capsys, monkeypatch):
    """A retrieval index's endpoint answers a list of hits per query: `endpoints predict` died with 'internal error:
    TypeError: list indices must be integers or slices, not str'."""
    pytest.importorskip("httpx")
    from cli_runner import run_cli
    from kubepipe.components.serving import endpoints

    answer = {"predictions": [[{"doc_id": "m1", "score": 0.91, "text": "Netflix"}, {"doc_id": "m7", "score": 0.4}],
                              []]}
    monkeypatch.setattr(endpoints, "predict_endpoint", lambda name, inputs, state_dir: answer)
    code, out, err = run_cli(capsys, "endpoints", "predict", "good", "NETFLIX.COM CA", "zzz")
    assert code == 0, err
    assert out == "rank\tdoc_id\tscore\tquery\n1\tm1\t0.9100\tNETFLIX.COM CA\n2\tm7\t0.4000\tNETFLIX.COM CA\n"


def test_endpoints_are_looked_for_beside_the_local_profile_s_state_dir(state, capsys, tmp_path):
    """A local deploy records its endpoint beside the local profile's state_dir (`state_dir: shared/state` in
    configs/local.yaml: shared/endpoints/), yet `kubepipe endpoints list` read <home>/endpoints: 'no local endpoints
    in .kubepipe/endpoints', and `endpoints stop NAME` could not stop the endpoint the deploy had started."""
    from kubepipe.components.deploy.target import endpoints_root

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "local.yaml").write_text("target: local\nstate_dir: shared/state\n")
    assert endpoints_root("shared/state") == "shared"  # where deploy_local writes, for this profile
    (tmp_path / "shared").mkdir()
    (state.parent / "endpoints").rename(tmp_path / "shared" / "endpoints")
    code, text = _run(capsys, "endpoints", "list")
    assert code == 0 and "good" in text and "down" in text, text
    code, text = _run(capsys, "endpoints", "stop", "good")
    assert code == 0 and "stopped endpoint good" in text
    assert not (tmp_path / "shared" / "endpoints" / "good.json").exists()


def test_list_and_repair_name_the_same_folder_when_there_are_no_endpoints(tmp_path, capsys, monkeypatch):
    """`endpoints list` said 'no local endpoints in .kubepipe/endpoints' and `endpoints repair` 'no local endpoints
    in .kubepipe', for the one folder both read."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    code, out, err = run_cli(capsys, "endpoints", "list", "--home", home)
    assert code == 0 and err.strip() == f"no local endpoints in {home}/endpoints", err
    code, out, err = run_cli(capsys, "endpoints", "repair", "--home", home)
    assert code == 0 and out.strip() == f"no local endpoints in {home}/endpoints", out


def test_a_home_that_does_not_exist_is_said_so_not_an_empty_one(tmp_path, capsys, monkeypatch):
    """`kubepipe endpoints list --home ~/prj/.kubepipr` (a typo), or run from another folder than the deploy's, said
    only 'no local endpoints in ...', as if the endpoints were gone."""
    from cli_runner import run_cli

    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "kubepipr"
    for cmd in ("list", "repair"):
        code, out, err = run_cli(capsys, "endpoints", cmd, "--home", typo)
        assert code == 0 and (out + err).strip() == (f"no local endpoints in {typo}/endpoints: {typo} does not exist "
                                                     "(a typo in --home / KUBEPIPE_HOME?)"), (out, err)
    code, out, err = run_cli(capsys, "endpoints", "list")
    assert err.strip() == (f"no local endpoints in .kubepipe/endpoints: .kubepipe does not exist here "
                           f"({tmp_path}/.kubepipe); run from the folder the deploy ran in, or give --home"), err


def test_a_refused_input_is_named_as_the_command_line_numbers_it(state, tmp_path, monkeypatch):
    """`kubepipe endpoints predict good SHELL <600 x>` said 'answered 400: instances[1]: ...': the server's 0-based
    index into the request, where this command's own errors number inputs from 1 (input 2 is instances[1])."""
    httpx = pytest.importorskip("httpx")
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving.endpoints import predict_endpoint

    def post(url, json=None, **_):
        return httpx.Response(400, json={"error": "instances[1]: the text has 600 characters; the limit is 512",
                                         "field": "instances[1]"})

    monkeypatch.setattr(httpx, "post", post)
    (state / "up.json").write_text(json.dumps({"name": "up", "port": 18091, "url": "http://127.0.0.1:18091",
                                               "model_dir": "/m"}))  # no proxy recorded: not known to be down
    with pytest.raises(ComponentError) as err:
        predict_endpoint("up", ["SHELL", "x" * 600], str(state.parent))
    assert str(err.value) == ("endpoint up answered 400 for input 2 ('" + "x" * 40 + "...'): instances[1]: the text "
                              "has 600 characters; the limit is 512")


def test_predict_sends_no_request_over_the_smaller_batch_limit_of_stable_and_canary(state, tmp_path, monkeypatch):
    """More inputs than the endpoint's --max-batch-size were one request, the server's 413; with a canary either
    backend may answer, so the smaller limit holds (the last --max-batch-size given, as the server reads it)."""
    httpx = pytest.importorskip("httpx")
    from kubepipe.components.serving.endpoints import predict_endpoint

    sent = []

    def post(url, json=None, **_):
        sent.append(json["instances"])
        return httpx.Response(200, json={"predictions": [{"label": t} for t in json["instances"]]})

    monkeypatch.setattr(httpx, "post", post)
    (state / "two.json").write_text(json.dumps({
        "name": "two", "port": 18090, "url": "http://127.0.0.1:18090", "model_dir": str(tmp_path),
        "backend": {"pid": 1, "port": 1, "args": ["--max-batch-size", "9", "--max-batch-size=3"]},
        "canary": {"pid": 1, "port": 2, "percent": 10, "args": ["--max-wait-ms", "2"]}}))
    texts = [f"t{i}" for i in range(7)]
    assert [p["label"] for p in predict_endpoint("two", texts, str(state.parent))["predictions"]] == texts
    assert sent == [texts[:3], texts[3:6], texts[6:]]


@pytest.fixture()
def fake_server():
    """A loopback HTTP server answering every POST with the JSON body its test sets (and its status, 200 unless
    set)."""
    import http.server
    import threading

    answer = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("content-length") or 0))
            data = json.dumps(answer["body"]).encode()
            self.send_response(answer.get("status", 200))
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], answer
    finally:
        server.shutdown()
        server.server_close()


def test_predict_refuses_an_answer_with_fewer_predictions_than_inputs(state, capsys, fake_server):
    """`endpoints predict` paired inputs and answers with zip: a server answering 2 predictions for 3 texts cut the
    table to 2 rows, exit 0, the third text silently dropped."""
    pytest.importorskip("httpx")
    from cli_runner import run_cli

    port, answer = fake_server
    (state / "short.json").write_text(json.dumps({"name": "short", "port": port, "url": f"http://127.0.0.1:{port}",
                                                  "model_dir": "/m"}), encoding="utf-8")
    answer["body"] = {"predictions": [{"label": "fuel", "probability": 0.5}] * 2}
    code, out, err = run_cli(capsys, "endpoints", "predict", "short", "a", "b", "c")
    assert code != 0 and out == "", (out, err)
    assert (f"endpoint short at http://127.0.0.1:{port} gave 2 answers for 3 inputs (inputs 1-3); nothing is "
            "shown") in err
    answer["body"] = {"predictions": [{"label": "fuel", "probability": 0.5}] * 3}
    code, out, err = run_cli(capsys, "endpoints", "predict", "short", "a", "b", "c")
    assert code == 0 and out.count("fuel") == 3, (out, err)


def test_predict_shows_an_answer_of_another_shape_as_it_was_sent(state, capsys, fake_server):
    """A server answering other objects than {label, probability} (a user model class's) made `endpoints predict`
    an 'internal error: KeyError: 'label''; a probability of null a TypeError. Each answer is shown as sent."""
    pytest.importorskip("httpx")
    from cli_runner import run_cli

    port, answer = fake_server
    (state / "own.json").write_text(json.dumps({"name": "own", "port": port, "url": f"http://127.0.0.1:{port}",
                                                "model_dir": "/m"}), encoding="utf-8")
    answer["body"] = {"predictions": [{"class": "fuel", "score": 0.5}, {"label": "x", "probability": None}]}
    code, out, err = run_cli(capsys, "endpoints", "predict", "own", "a", "b")
    assert code == 0, err
    assert out == ('answer\ttext\n{"class": "fuel", "score": 0.5}\ta\n{"label": "x", "probability": null}\tb\n')
    answer["body"] = {"predictions": [[{"doc_id": "m1"}], [{"doc_id": "m2", "score": 0.25}]]}  # a hit without score
    code, out, err = run_cli(capsys, "endpoints", "predict", "own", "a", "b")
    assert code == 0 and out.splitlines()[0] == "answer\ttext", (out, err)


@pytest.mark.parametrize("reply, code, said", [
    ((400, {"error": "instances[0]: the text is empty", "field": "instances[0]"}), 2,
     "error: endpoint fake answered 400 for input 1 ('x'): instances[0]: the text is empty"),
    ((500, {"error": "model crashed"}), 1, "error: endpoint fake answered 500: model crashed"),
    ((503, {"error": "not ready"}), 1, "error: endpoint fake answered 503: not ready"),
    ((429, {"error": "busy"}), 1, "error: endpoint fake answered 429: busy"),
    ((200, {"predictions": []}), 1, "error: endpoint fake at {url} gave 0 answers for 1 inputs (inputs 1-1); "
                                     "nothing is shown, as the answers cannot be paired with the inputs; check its "
                                     "server (`kubepipe endpoints list`) and its log"),
    ((200, {"predictions": [{"label": "fuel", "probability": 0.5}]}), 0, "label probability text fuel 0.5000 x"),
])
def test_predict_exits_2_for_the_user_s_error_and_1_for_the_service_s(state, fake_server, capsys, reply, code, said):
    """Every error of `endpoints predict` exited 2, a server's 500 or an endpoint not answering too, where the exit
    code table (docs/cli.md) says a service failing or not answering exits 1 (worth a retry) and 2 is the user's."""
    port, answer = fake_server
    (state / "fake.json").write_text(json.dumps({"name": "fake", "port": port, "url": f"http://127.0.0.1:{port}",
                                                 "model_dir": "/models/fake"}), encoding="utf-8")
    answer["status"], answer["body"] = reply
    got, text = _run(capsys, "endpoints", "predict", "fake", "x")
    assert (got, text) == (code, said.format(url=f"http://127.0.0.1:{port}")), text


def test_predict_exits_1_for_an_endpoint_not_answering_and_2_for_an_unknown_one(state, capsys):
    """The command's usage error (no such endpoint) exits 2; an endpoint that does not answer, 1 (worth a retry)."""
    import socket

    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (state / "gone.json").write_text(json.dumps({"name": "gone", "port": port, "url": f"http://127.0.0.1:{port}",
                                                 "model_dir": "/models/gone"}), encoding="utf-8")
    assert _run(capsys, "endpoints", "predict", "gone", "x") == (
        1, f"error: endpoint gone at http://127.0.0.1:{port} is not answering (ConnectError); check `kubepipe "
           "endpoints list`")
    code, text = _run(capsys, "endpoints", "predict", "nosuch", "x")
    assert (code, text) == (2, f"error: no local endpoint named 'nosuch' in {state}; its endpoints: gone, good"), text


def test_predict_says_which_inputs_a_baking_canary_answered(state, capsys, monkeypatch):
    """During a bake the table read as the endpoint's one model: nothing said that some answers were the
    canary's. stderr names them; the table (stdout) stays the answers alone, and a stable-only answer says nothing."""
    from cli_runner import run_cli
    from kubepipe.components.serving import endpoints

    answer = {"predictions": [{"label": "fuel", "probability": 0.5}] * 3, "version": None, "canary_version": 3,
              "answered_by": [{"revision": "canary", "version": 3}, {"revision": "stable", "version": 2},
                              {"revision": "canary", "version": 3}]}
    monkeypatch.setattr(endpoints, "predict_endpoint", lambda name, inputs, state_dir: answer)
    code, out, err = run_cli(capsys, "endpoints", "predict", "good", "a", "b", "c")
    assert code == 0, err
    assert out.count("fuel") == 3 and "canary" not in out
    assert ("a canary v3 bakes on this endpoint: it answered inputs 1, 3 of 3, the stable version the others"
            in " ".join(err.split())), err
    answer["answered_by"] = [{"revision": "stable", "version": 2}] * 3
    code, _out, err = run_cli(capsys, "endpoints", "predict", "good", "a", "b", "c")
    assert code == 0 and "canary" not in err


def test_a_deploy_lock_held_past_its_timeout_says_which_endpoint_and_file(tmp_path, caplog):
    # the endpoint lock is kubepipe.util.locked (was filelock's): the same wait, the same message
    import time

    from lock_holder import held_elsewhere

    from kubepipe.components.errors import ComponentError
    from kubepipe.components.serving.endpoint_record import endpoints_dir, locked

    lock_file = endpoints_dir(tmp_path) / ".web.lock"
    lock_file.parent.mkdir(parents=True)
    with held_elsewhere(lock_file) as holder:
        start = time.monotonic()
        with pytest.raises(ComponentError) as err:
            with locked(tmp_path, "web", timeout_s=1):
                pytest.fail("locked an endpoint another process holds")
        assert 1 <= time.monotonic() - start < 4
        # a stop run while a deploy bakes its canary waited minutes without a word
        assert f"endpoint web: waiting for another deploy, stop or repair of it to finish (it holds {lock_file}; " \
               "up to 1s)" in caplog.text
        with pytest.raises(ComponentError) as short:  # a wait under a second is not rounded to "0s"
            with locked(tmp_path, "web", timeout_s=0.25):
                pytest.fail("locked an endpoint another process holds")
        with locked(tmp_path, "other", timeout_s=0.3):  # one lock per endpoint
            pass
    assert str(err.value) == (f"endpoint web: another deploy, stop or repair has held {lock_file} for 1s (pid "
                              f"{holder.pid}: `ps -p {holder.pid} -o pid,etime,args`); wait for it, or stop it if "
                              "it is stuck")
    assert f"held {lock_file} for 0.25s (pid {holder.pid}:" in str(short.value)
    with locked(tmp_path, "web", timeout_s=0.3):  # its holder gone
        pass


@pytest.mark.parametrize("field, change", [
    ("backend.port", lambda r: r["backend"].pop("port")),  # repair moves a proxy to it: was KeyError 'port'
    ("proxy.port", lambda r: r["proxy"].update(port=0)),
    ("switch.champion", lambda r: r.update(switch={"to": {"pid": 1, "port": 2}, "champion": "v2"})),
    ("canary.deployer", lambda r: r.update(canary={"pid": 1, "port": 3, "percent": 10, "deployer": "me"})),
    ("canary.deployer.create_time", lambda r: r.update(canary={"pid": 1, "port": 3, "percent": 10,
                                                               "deployer": {"pid": 2, "create_time": "now"}})),
])
def test_a_field_repair_and_list_read_is_named_not_an_internal_error(state, capsys, field, change):
    """`switch.champion` was 'internal error: AttributeError' in repair, `canary.deployer` in list."""
    rec = json.loads((state / "good.json").read_text(encoding="utf-8"))
    change(rec)
    (state / "good.json").write_text(json.dumps(rec), encoding="utf-8")
    code, text = _run(capsys, "endpoints", "repair", "good")
    assert code == 2 and f"good.json: field '{field}' must be" in text, text
    code, text = _run(capsys, "endpoints", "list")
    assert code == 0 and "corrupt" in text and f"field '{field}' must be" in text, text


def test_predict_sends_nothing_to_another_program_on_the_port_of_an_endpoint_that_is_down(state, capsys, fake_server):
    """The endpoint's proxy died and another program took its port: `endpoints predict` sent it the inputs and showed
    its answer as the endpoint's predictions (exit 0), or its HTML error as 'endpoint answered 501'."""
    port, answer = fake_server
    answer["body"] = {"predictions": [{"label": "not-this-model", "probability": 1.0}]}
    (state / "gone.json").write_text(json.dumps({
        "name": "gone", "port": port, "url": f"http://127.0.0.1:{port}", "model_dir": str(state),  # there
        "proxy": {"pid": 1, "port": port}, "backend": {"pid": 1, "port": 2}}), encoding="utf-8")
    code, text = _run(capsys, "endpoints", "predict", "gone", "x")
    assert (code, text) == (1, "error: endpoint gone is down: its proxy (pid 1: another program's now) and backend "
                               "(pid 1: another program's now) stopped; nothing was sent to "
                               f"http://127.0.0.1:{port}, where another program may answer now; `kubepipe endpoints "
                               "repair gone` starts it again"), text


def test_a_url_that_is_not_the_proxy_s_address_names_the_field(state, capsys):
    """A record kubepipe writes holds http://127.0.0.1:PORT; another (`http://localhost:PORT`, another host) made
    `list` and `repair` of a live endpoint an 'internal error: ValueError: not a local endpoint URL', and `predict`
    sent the inputs wherever it pointed."""
    rec = json.loads((state / "good.json").read_text(encoding="utf-8"))
    (state / "good.json").write_text(json.dumps(dict(rec, url="http://localhost:18081")), encoding="utf-8")
    for argv in (("list",), ("repair", "good"), ("predict", "good", "x")):
        code, text = _run(capsys, "endpoints", *argv)
        assert "field 'url' must be 'http://127.0.0.1:18081' (the proxy on its `port`) (got 'http://localhost:18081'); " \
               "correct it, or stop its processes by hand (`pgrep -af -- '--name good( |$)'` lists them) and delete " \
               "the file" in text, (argv, text)
