"""`make demo`'s narration when the champion alias points nowhere (a first deploy rolled back)."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

import kubepipe.demo as demo


class _Run:
    ok, error, run_dir = True, "", "."

    def step(self, name):
        return SimpleNamespace(outputs={"decision": "no champion: promote", "action": "rolled_back"},
                               state="SKIPPED", artifacts={})


def test_no_champion_is_said_not_vnone(monkeypatch, tmp_path):
    from kubepipe.components.serving import endpoints

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "_reset", lambda: None)
    monkeypatch.setattr(demo, "_run", lambda out, title, params: _Run())
    monkeypatch.setattr(demo, "_champion", lambda: None)
    monkeypatch.setattr(endpoints, "get_endpoint", lambda *a: {"url": "http://127.0.0.1:1"})
    monkeypatch.setattr(endpoints, "predict_endpoint", lambda *a: {"predictions": []})
    buf = io.StringIO()
    res = demo.run_demo(Console(file=buf, width=200))
    text = buf.getvalue()
    assert res.champion_versions == [None, None, None]
    assert "vNone" not in text
    assert "deploy: rolled_back -> no champion" in text
    assert "now: no champion" in text
    assert "deploy step: skipped; still no champion" in text


def test_a_champion_is_named_by_version(monkeypatch, tmp_path):
    from kubepipe.components.serving import endpoints

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "_reset", lambda: None)
    monkeypatch.setattr(demo, "_run", lambda out, title, params: _Run())
    monkeypatch.setattr(demo, "_champion", lambda: 3)
    monkeypatch.setattr(endpoints, "get_endpoint", lambda *a: {"url": "http://127.0.0.1:1"})
    monkeypatch.setattr(endpoints, "predict_endpoint", lambda *a: {"predictions": []})
    buf = io.StringIO()
    demo.run_demo(Console(file=buf, width=200))
    assert "deploy: rolled_back -> champion v3" in buf.getvalue()
    assert "still champion v3" in buf.getvalue()
