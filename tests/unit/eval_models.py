"""Real Model artifacts and holdout Datasets for the evaluation tests (not a test module)."""

from __future__ import annotations

import numpy as np


def tabular_model(path, w: float = 3.0, w1: float = 0.0, labels=("no", "yes"), features=("x0", "x1"),
                  architecture: str = "tabular-mlp", model_kwargs: dict | None = None) -> str:
    """A linear tabular-mlp: logit(yes) = w*x0 + w1*x1 (labels follow x0; w < 0 is a bad model).

    `architecture` may name a user class with the same weights (e.g. a deliberately slow subclass)."""
    import torch

    from kubepipe.components.training.artifact import save_model
    from kubepipe.components.training.encoders import TabularEncoder
    from kubepipe.components.training.models.tabular_mlp import TabularMLP

    m = TabularMLP(num_labels=len(labels), input_spec={"num_features": len(features)}, layers=0)
    with torch.no_grad():
        m.net[0].weight.zero_()
        m.net[0].bias.zero_()
        m.net[0].weight[len(labels) - 1, 0] = w / 2
        m.net[0].weight[0, 0] = -w / 2
        m.net[0].weight[len(labels) - 1, 1] = w1 / 2
        m.net[0].weight[0, 1] = -w1 / 2
    save_model(path, m, architecture=architecture, model_kwargs={"layers": 0, **(model_kwargs or {})}, labels=list(labels),
               encoder=TabularEncoder(list(features)), columns={"feature_columns": list(features)},
               metadata={"data_hash": "sha256:train", "config": {"label_column": "label"}})
    return str(path)


def text_model(path, labels=("groceries", "travel")) -> str:
    import torch

    from kubepipe.components.training.artifact import save_model
    from kubepipe.components.training.encoders import HashingEncoder
    from kubepipe.components.training.models import build_model, resolve_model_class

    torch.manual_seed(0)
    enc = HashingEncoder(buckets=512, max_features=32)
    module = build_model(resolve_model_class("text-classifier"), len(labels), enc.spec(), {"dim": 8})
    save_model(path, module, architecture="text-classifier", model_kwargs={"dim": 8}, labels=list(labels),
               encoder=enc, columns={"text_column": "description"})
    return str(path)


def tabular_holdout(path, n: int = 400, seed: int = 0, label="label", noise: float = 0.5):
    import pandas as pd

    from kubepipe.components.data.io import write_dataset

    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    df = pd.DataFrame({"x0": x0, "x1": x1, "region": np.where(np.arange(n) % 4 == 0, "north", "south")})
    df[label] = np.where(x0 + noise * rng.normal(size=n) > 0, "yes", "no")
    write_dataset(df, path)
    return str(path)


def text_holdout(path, n: int = 20):
    import pandas as pd

    from kubepipe.components.data.io import write_dataset

    df = pd.DataFrame({"description": [f"coffee shop {i}" for i in range(n)], "label": ["groceries", "travel"] * (n // 2)})
    write_dataset(df, path)
    return str(path)
