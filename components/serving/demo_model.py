"""A small trained merchant-string model for serving tests and benchmarks (seconds on a CPU).

Built with the training area's public pieces (encoders, built-in models, `save_model`), so the
artifact is exactly what `train-torch` writes.
"""

from __future__ import annotations

import random
from pathlib import Path

__all__ = ["MERCHANTS", "merchant_strings", "train_demo_text_model", "train_demo_byte_model", "train_demo_tabular_model",
           "nan_weights_copy"]

MERCHANTS = {
    "groceries": ["WHOLEFDS", "SAFEWAY STORE", "TRADER JOE S", "KROGER", "ALDI MARKT", "LIDL"],
    "dining": ["STARBUCKS", "MCDONALD S", "CHIPOTLE ONLINE", "SQ *BLUE BOTTLE COFFEE", "DOORDASH*THAI PALACE"],
    "travel": ["UNITED AIRLINES", "DELTA AIR", "UBER *TRIP", "LYFT RIDE", "MARRIOTT HOTEL", "SAS SCANDINAVIAN"],
    "fuel": ["SHELL OIL", "CHEVRON", "EXXONMOBIL", "BP GAS STATION", "CIRCLE K FUEL"],
    "shopping": ["AMZN MKTP US", "TARGET", "WALMART SUPERCENTER", "IKEA", "BEST BUY"],
}
_CITIES = ["SEATTLE WA", "SAN FRANCISCO CA", "NEW YORK NY", "STOCKHOLM SE", "AUSTIN TX", "CHICAGO IL", "BERLIN DE"]


def merchant_strings(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """`n` card-transaction descriptions (5-9 words each) and their categories."""
    rng = random.Random(seed)  # nosec B311 - synthetic test data, reproducible on purpose
    labels = sorted(MERCHANTS)
    texts, ys = [], []
    for _ in range(n):
        y = rng.choice(labels)
        name = rng.choice(MERCHANTS[y])
        extra = rng.choice(["", f" #{rng.randint(100, 99999)}", f"*{rng.randint(1000, 9999)}K{rng.randint(1, 9)}"])
        texts.append(f"POS PURCHASE {name}{extra} {rng.choice(_CITIES)} {rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}")
        ys.append(y)
    return texts, ys


def _fit(module, batch: dict, targets, epochs: int, lr: float) -> None:
    import torch

    opt = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    with torch.enable_grad():
        for _ in range(epochs):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(module(batch), targets)
            loss.backward()
            opt.step()
    module.eval()


def train_demo_text_model(path: str | Path, *, n: int = 600, epochs: int = 30, dim: int = 64, seed: int = 0,
                          buckets: int = 65536) -> Path:
    """Train the flagship `text-classifier` (hashed n-grams) on synthetic merchant strings."""
    import torch

    from kubepipe.components.training.artifact import save_model
    from kubepipe.components.training.encoders import HashingEncoder, to_tensors
    from kubepipe.components.training.models import build_model, resolve_model_class

    torch.manual_seed(seed)
    texts, ys = merchant_strings(n, seed)
    labels = sorted(set(ys))
    enc = HashingEncoder(buckets=buckets)
    module = build_model(resolve_model_class("text-classifier"), len(labels), enc.spec(), {"dim": dim})
    targets = torch.tensor([labels.index(y) for y in ys])
    _fit(module, to_tensors(enc.encode(texts)), targets, epochs, lr=0.05)
    return save_model(path, module, architecture="text-classifier", model_kwargs={"dim": dim}, labels=labels,
                      encoder=enc, columns={"text_column": "description"}, metadata={"source": "demo_model"})


def train_demo_byte_model(path: str | Path, *, n: int = 600, epochs: int = 20, d_model: int = 128, layers: int = 2,
                          heads: int = 4, max_length: int = 64, seed: int = 0) -> Path:
    """A byte-level `transformer-classifier` on the same merchant strings (its padding mask matters)."""
    import torch

    from kubepipe.components.training.artifact import save_model
    from kubepipe.components.training.encoders import ByteEncoder, to_tensors
    from kubepipe.components.training.models import build_model, resolve_model_class

    torch.manual_seed(seed)
    texts, ys = merchant_strings(n, seed)
    labels = sorted(set(ys))
    enc = ByteEncoder(max_length=max_length)
    kw = {"d_model": d_model, "layers": layers, "heads": heads, "dropout": 0.0}
    module = build_model(resolve_model_class("transformer-classifier"), len(labels), enc.spec(), kw)
    _fit(module, to_tensors(enc.encode(texts)), torch.tensor([labels.index(y) for y in ys]), epochs, lr=0.003)
    return save_model(path, module, architecture="transformer-classifier", model_kwargs=kw, labels=labels,
                      encoder=enc, columns={"text_column": "description"}, metadata={"source": "demo_model"})


def train_demo_tabular_model(path: str | Path, *, n: int = 400, epochs: int = 40, seed: int = 0) -> Path:
    """A `tabular-mlp` on three synthetic features (amount, hour, is_online)."""
    import numpy as np
    import torch

    from kubepipe.components.training.artifact import save_model
    from kubepipe.components.training.encoders import TabularEncoder, to_tensors
    from kubepipe.components.training.models import build_model, resolve_model_class

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = np.stack([rng.gamma(2.0, 30.0, n), rng.integers(0, 24, n), rng.integers(0, 2, n)], 1).astype(np.float32)
    y = ((x[:, 0] > 60) ^ (x[:, 2] > 0)).astype(int)
    labels = ["fraud", "ok"]
    cols = ["amount", "hour", "is_online"]
    enc = TabularEncoder(cols).fit(x)
    module = build_model(resolve_model_class("tabular-mlp"), 2, enc.spec(), {"hidden": 16})
    _fit(module, to_tensors(enc.encode(x)), torch.tensor(y), epochs, lr=0.02)
    return save_model(path, module, architecture="tabular-mlp", model_kwargs={"hidden": 16}, labels=labels,
                      encoder=enc, columns={"feature_columns": cols}, metadata={"source": "demo_model"})


def nan_weights_copy(src: str | Path, dst: str | Path) -> Path:
    """A copy of a model artifact whose weights are all NaN: it loads, and fails the server's warm-up."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from kubepipe.util import atomic_path, atomic_write_text, sha256_file

    dst = Path(dst)
    shutil.copytree(src, dst)
    state = load_file(str(dst / "model.safetensors"))
    with atomic_path(dst / "model.safetensors") as tmp:
        save_file({k: torch.full_like(v, float("nan")) for k, v in state.items()}, str(tmp), metadata={"format": "pt"})
    # re-record the weights' hash, as training would have: the point is a model that loads and fails warm-up
    import json

    card = dst / "kubepipe-model.json"
    spec = json.loads(card.read_text())
    if "weights_sha256" in spec:
        spec["weights_sha256"] = sha256_file(dst / "model.safetensors")
        atomic_write_text(card, json.dumps(spec, indent=2))
    return dst
