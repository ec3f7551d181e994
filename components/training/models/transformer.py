"""`transformer-classifier`: a pre-LN transformer encoder over UTF-8 bytes, [CLS]-pooled.

Attention is `scaled_dot_product_attention` (fused memory-efficient kernel on CUDA,
with the key-padding mask).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TransformerClassifier", "Block"]


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Linear(ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.ln2(x)))


class TransformerClassifier(nn.Module):
    encoding = "bytes"
    default_learning_rate = 1e-3

    def __init__(self, num_labels: int, input_spec: dict, d_model: int = 128, layers: int = 2, heads: int = 4,
                 ff_mult: int = 4, dropout: float = 0.1):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of heads ({heads})")
        self.tok = nn.Embedding(int(input_spec["vocab_size"]), d_model, padding_idx=0)
        self.pos = nn.Embedding(int(input_spec["max_length"]), d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, ff_mult * d_model, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_labels)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["ids"]
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        # True = attend. Always passed: testing for padding first would sync the GPU every step;
        # the memory-efficient SDPA kernel takes the mask, and [CLS] keeps every row non-empty.
        mask = (ids != 0)[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x[:, 0]))
