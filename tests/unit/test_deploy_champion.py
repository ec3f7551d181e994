"""The deploy step's champion move (promote_champion, audit_rollback) and how its report states it."""

from __future__ import annotations

from kubepipe.components.deploy.champion import promote_champion
from kubepipe.components.deploy.target import report_markdown
from kubepipe.components.registry import Registry


def _registry(tmp_path, n: int = 2) -> Registry:
    reg = Registry(str(tmp_path / "reg"))
    model = tmp_path / "m"
    model.mkdir(exist_ok=True)
    for i in range(n):
        (model / "kubepipe-model.json").write_text(f'{{"i": {i}}}')
        reg.register(str(model), name="shop")
    return reg


def test_a_re_run_promoting_the_champion_again_says_nothing_moved(tmp_path):
    reg = _registry(tmp_path)
    first = promote_champion(reg.uri, "shop", 1, reason="first")
    assert first == {"moved": True, "version": 1, "from_version": None, "reason": "first"}
    again = promote_champion(reg.uri, "shop", 1, reason="re-run")
    assert again["moved"] is False and again["version"] == 1 and again["from_version"] == 1
    assert again["why"] == "v1 was already champion; nothing moved"
    assert len(reg.history("shop")) == 1
    md = report_markdown({"action": "promoted", "why": "ok", "model": "shop", "version": 1, "target": "local",
                          "champion": again})
    assert "- **Champion moved:** no (v1 was already champion; nothing moved)" in md
    moved = promote_champion(reg.uri, "shop", 2, reason="second")
    assert moved["moved"] is True and moved["from_version"] == 1
    assert "- **Champion moved:** yes, to v2" in report_markdown({"champion": moved})


def _strict(text: str):
    """JSON as jq / JSON.parse read it: NaN and Infinity are no JSON."""
    import json

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_a_nan_of_the_canary_analysis_is_null_in_the_report_and_the_endpoint_record(tmp_path):
    from kubepipe.components.serving.endpoint_record import read_record, write_record

    analysis = {"decision": "rollback", "why": "x", "checks": [{"check": "p99_ms", "canary": float("nan"),
                                                                  "stable": float("inf"), "limit": 3.0, "passed": False}]}
    md = report_markdown({"action": "rolled_back", "model": "shop", "version": 2, "canary_analysis": analysis})
    doc = _strict(md.split("```json")[1].split("```")[0])
    assert doc["canary_analysis"]["checks"][0]["canary"] is None and doc["canary_analysis"]["checks"][0]["limit"] == 3
    rec = {"name": "shop", "url": "http://127.0.0.1:8080", "port": 8080, "model_dir": "/m", "version": 2,
           "switch": None, "champion": {"details": {"canary_analysis": analysis}}}
    f = write_record(tmp_path, "shop", rec)
    assert _strict(f.read_text())["champion"]["details"]["canary_analysis"]["checks"][0]["stable"] is None
    assert read_record(tmp_path, "shop")["port"] == 8080


def test_an_audit_record_the_registry_cannot_take_is_a_warning_in_the_report(tmp_path, monkeypatch, capsys):
    from kubepipe.components.deploy.champion import audit_rollback

    reg = _registry(tmp_path)

    def denied(self, *a, **kw):
        raise PermissionError(13, "Permission denied", "https://x/history?token=abc123")

    monkeypatch.setattr(Registry, "record_event", denied)
    out = audit_rollback(reg.uri, "shop", 2, reason="canary analysis failed")
    assert out["recorded"] is False and "PermissionError" in out["error"] and "abc123" not in out["error"]
    assert "`kubepipe models history shop` will not show it" in out["error"]
    assert capsys.readouterr().err.startswith("warning: the rollback of `shop` v2 is done")
    md = report_markdown({"action": "rolled_back", "model": "shop", "version": 2, "audit": out})
    assert "- **Warning:** the rollback of `shop` v2 is done" in md


def test_a_deploy_step_s_registry_error_names_the_profile_s_registry_uri(tmp_path):
    """A deploy step on a profile whose registry_uri is a file said 'point --registry / KUBEPIPE_REGISTRY at a
    folder' (the promote after the rollout, the champion read before it): a step's registry is the profile's."""
    import pytest

    from kubepipe.components.deploy.champion import PromotionFailed, current_champion
    from kubepipe.components.registry import RegistryError

    afile = tmp_path / "afile"
    afile.write_text("x")
    where = "point the profile's registry_uri (configs/<target>.yaml or --set registry_uri) at a folder"
    with pytest.raises(RegistryError) as exc:
        current_champion(f"file://{afile}", "shop")
    assert where in str(exc.value)
    with pytest.raises(PromotionFailed) as failed:
        promote_champion(f"file://{afile}", "shop", 1, reason="rollout passed")
    assert where in str(failed.value) and "KUBEPIPE_REGISTRY" not in str(failed.value)
