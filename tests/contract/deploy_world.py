"""What the deploy contract tests share: a kubernetes client for a fake API server, and a real
registry as register-model leaves it (v1 champion, later versions registered)."""

from __future__ import annotations

from pathlib import Path

from kubepipe.components.registry import Registry

__all__ = ["kube_client", "champion_registry"]


def kube_client(url: str):
    from kubernetes import client

    cfg = client.Configuration(host=url)
    cfg.proxy = None  # loopback: never through an environment's proxy
    return client.ApiClient(cfg)


def champion_registry(root: Path, name: str, versions: int = 2, metrics=None) -> Registry:
    """`versions` registered models of `name` (metrics(i) each, when given), v1 promoted champion."""
    reg = Registry(f"file://{root / 'registry'}")
    for i in range(1, versions + 1):
        model = root / f"model{i}"
        model.mkdir()
        (model / "kubepipe-model.json").write_text(f'{{"v": {i}}}')
        reg.register(str(model), name=name, **({"metrics": metrics(i)} if metrics else {}))
    reg.promote(name, 1, reason="first")
    return reg
