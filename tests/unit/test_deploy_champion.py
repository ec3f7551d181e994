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
