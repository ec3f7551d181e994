"""`tabular-mlp`: an MLP over standardised numeric features."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TabularMLP"]


class TabularMLP(nn.Module):
    encoding = "tabular"
    default_learning_rate = 3e-3

    def __init__(self, num_labels: int, input_spec: dict, hidden: int = 128, layers: int = 2, dropout: float = 0.1):
        super().__init__()
        width, blocks = int(input_spec["num_features"]), []
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        blocks.append(nn.Linear(width, num_labels))
        self.net = nn.Sequential(*blocks)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(batch["x"])
