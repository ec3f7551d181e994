"""`text-classifier`: mean of hashed word + char n-gram embeddings -> linear (fastText-style).

Char n-grams make it robust to the truncations and codes in merchant strings
("AMZN MKTP US*2K3L4"); it trains in seconds on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TextClassifier"]


class TextClassifier(nn.Module):
    encoding = "hashed-ngrams"
    default_learning_rate = 0.02

    def __init__(self, num_labels: int, input_spec: dict, dim: int = 64, hidden: int = 0, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.EmbeddingBag(int(input_spec["vocab_size"]), dim, mode="mean", padding_idx=0)
        nn.init.uniform_(self.embed.weight, -1.0 / dim, 1.0 / dim)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        if hidden:
            layers += [nn.Linear(dim, hidden), nn.ReLU()]
        layers.append(nn.Linear(hidden or dim, num_labels))
        self.head = nn.Sequential(*layers)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.embed(batch["ids"]))
