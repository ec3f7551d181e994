"""`pretrained-encoder`: a pretrained BERT-family encoder (Hugging Face `transformers`), mean-pooled, + a head.

The encoder is built from its config alone (`transformers.AutoModel.from_config`: no hub access), so
loading an artifact needs neither the base model nor the network; the trainer then calls
`load_pretrained()` to copy the base weights in (sha256 checked) before fine-tuning. Pooling is the
mean of the last hidden states over real tokens (attention mask), as sentence-transformers trained
all-MiniLM-L6-v2. `param_groups` gives layer-wise learning-rate decay: the head gets the base rate,
encoder layer i of L (1 = lowest) `lr * decay**(L + 1 - i)`, the embeddings `lr * decay**(L + 1)`.
"""

from __future__ import annotations

import os
import re

import torch
from torch import nn

__all__ = ["PretrainedEncoderClassifier", "mean_pool", "sdpa_mask", "resolve_pretrained"]

_LAYER = re.compile(r"\.layers?\.(\d+)\.")  # encoder.encoder.layer.3. (BERT), .transformer.layer.3. (DistilBERT)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of `hidden` [B, L, H] over the positions where `mask` [B, L] is 1 (None: every position), in
    `hidden`'s dtype. Summed and divided in float32: in bf16 the sum and the count were each rounded to 8 bits
    (257 tokens counted as 256), so a bf16-served model pooled other means than the one trained. The product by
    the 0/1 mask is exact in any dtype, so it is taken in `hidden`'s and only the sum accumulates in float32 (no
    float32 copy of `hidden`, and the count stays an integer: fewer ops a pass, the same mean)."""
    if mask is None:
        return (hidden.sum(dim=1, dtype=torch.float32) / hidden.shape[1]).to(hidden.dtype)
    summed = (hidden * mask.unsqueeze(-1)).sum(dim=1, dtype=torch.float32)
    return (summed / mask.sum(dim=1, keepdim=True).clamp(min=1)).to(hidden.dtype)


def sdpa_mask(mask: torch.Tensor) -> torch.Tensor:
    """The [B, L] 0/1 padding mask as the [B, 1, 1, L] boolean mask SDPA reads (True: attend), for an encoder of
    transformers 5 or later, which uses a 4-D mask as given. From a 2-D mask it built a [B, 1, L, L] one (~25 ops a
    pass) after asking `mask.all()` (a GPU sync a pass, to drop a mask without padding); this is 2 ops."""
    return (mask != 0).view(mask.shape[0], 1, 1, mask.shape[1])


def _takes_4d_mask() -> bool:
    """Whether this `transformers` (imported by _build_encoder) passes a 4-D attention mask through as it is (5.0
    on: masking_utils); 4.x raised on one."""
    from transformers import __version__

    return int(__version__.split(".")[0]) >= 5


def _build_encoder(config: dict):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a hub
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        from transformers import AutoConfig, AutoModel
    except ImportError:
        from kubepipe.components.errors import ModelError

        raise ModelError("the pretrained-encoder needs `transformers`: pip install 'kubepipe[nlp]'") from None
    cfg = dict(config)
    model_type = cfg.pop("model_type")
    hf_config = AutoConfig.for_model(model_type, **{k: v for k, v in cfg.items() if not k.startswith("_")})
    try:  # BERT-like models: no pooler (its weights would get no gradient and DDP would complain)
        return AutoModel.from_config(hf_config, add_pooling_layer=False, attn_implementation="sdpa")
    except TypeError:
        return AutoModel.from_config(hf_config, attn_implementation="sdpa")


class PretrainedEncoderClassifier(nn.Module):
    encoding = "wordpiece"
    # a batch without padding may come without its attention mask (unpadded_inputs): SDPA then runs with no mask,
    # which lets a GPU pick its flash kernel (none takes a mask); the mask is all ones, so the answer is the same
    mask_optional = True
    default_learning_rate = 5e-5
    worker_imports = ("transformers.modeling_utils",)  # DDP workers fork with it loaded (see distributed.py)
    resolve_hyperparameters = staticmethod(lambda enc, model: resolve_pretrained(enc, model))

    def __init__(self, num_labels: int, input_spec: dict, config: dict, base_model: dict | None = None,
                 dropout: float = 0.1, layer_lr_decay: float = 1.0):
        super().__init__()
        if not isinstance(config, dict) or "model_type" not in config:
            raise ValueError("`config` must be the base model's config.json (with model_type)")
        if not 0 < float(layer_lr_decay) <= 1:
            raise ValueError(f"layer_lr_decay must be in (0, 1], got {layer_lr_decay}")
        self.base_model = dict(base_model or {})
        self.layer_lr_decay = float(layer_lr_decay)
        self.encoder = _build_encoder(config)
        self.mask_4d = _takes_4d_mask()
        hidden = int(self.encoder.config.hidden_size)
        self.num_layers = int(self.encoder.config.num_hidden_layers)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_labels)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch.get("attention_mask")
        attend = None if mask is None else sdpa_mask(mask) if self.mask_4d else mask
        hidden = self.encoder(input_ids=batch["input_ids"], attention_mask=attend).last_hidden_state
        return self.head(self.drop(mean_pool(hidden, mask)))

    def load_pretrained(self) -> None:
        """Copy the base weights (the file the record names, sha256 checked) into the encoder: the bytes hashed
        are the bytes loaded (one read), so a file replaced after the check cannot load under its hash."""
        from safetensors.torch import load

        from kubepipe.components.errors import ModelError
        from kubepipe.components.training.filebytes import read_hashed

        path, want = self.base_model.get("weights_file"), self.base_model.get("weights_sha256")
        if not path or not os.path.isfile(path):
            raise ModelError(f"base model weights {path!r} not found: resolve `base_model` again (retrain)")
        data, digest = read_hashed(path)
        if want and digest != want:
            raise ModelError(f"{path}: sha256 {digest} differs from the recorded {want}: the base model changed "
                             "since the training started; refusing to load it")
        try:
            state = load(data)
        except Exception as exc:  # the Rust parser's own error type: a damaged file
            raise ModelError(f"{path}: not a safetensors file ({' '.join(str(exc).split())[:200]})") from None
        del data
        prefix = self.encoder.base_model_prefix + "."  # "bert." in checkpoints of BertFor... heads
        state = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
        own = self.encoder.state_dict()
        kept = {k: v for k, v in state.items() if k in own}
        missing = [k for k in own if k not in kept and not k.endswith("position_ids")]
        if missing:
            raise ModelError(f"{path}: lacks {len(missing)} encoder weight(s) such as {missing[:3]}; is it a "
                             f"{self.encoder.config.model_type} checkpoint matching config.json?")
        for k, v in kept.items():
            if v.shape != own[k].shape:
                raise ModelError(f"{path}: {k} has shape {list(v.shape)}, the config says {list(own[k].shape)}")
        self.encoder.load_state_dict(kept, strict=False)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """AdamW groups with layer-wise learning-rate decay; no weight decay on biases and norms."""
        depth = self.num_layers + 1
        groups: dict[tuple[float, float], list] = {}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith("encoder."):
                found = _LAYER.search(name)
                level = int(found.group(1)) + 1 if found else (0 if "embeddings" in name else depth)
            else:
                level = depth  # the head
            scale = self.layer_lr_decay ** (depth - level)
            decay = weight_decay if p.ndim >= 2 else 0.0
            groups.setdefault((scale, decay), []).append(p)
        ordered = sorted(groups.items(), key=lambda kv: (-kv[0][0], -kv[0][1]))  # the head's rate first
        return [{"params": ps, "lr": lr * scale, "weight_decay": decay} for (scale, decay), ps in ordered]


def resolve_pretrained(encoder_kwargs: dict, model_kwargs: dict) -> tuple[dict, dict]:
    """Training-time hook: `base_model` (name or directory) -> the config, a record with the weights'
    sha256, and the tokenizer file for the encoder."""
    from kubepipe.components.training.base_models import DEFAULT_BASE_MODEL, resolve_base_model

    model_kwargs = dict(model_kwargs)
    base = resolve_base_model(model_kwargs.pop("base_model", None) or DEFAULT_BASE_MODEL,
                              model_kwargs.pop("base_model_sha256", None) or None)
    limit = base.config.get("max_position_embeddings")
    length = encoder_kwargs.get("max_length", 128)
    if isinstance(limit, int) and isinstance(length, int) and length > limit:
        from kubepipe.components.errors import ModelError

        raise ModelError(f"max_length {length} exceeds the base model's {limit} positions; lower `max_length`")
    model_kwargs.update(config=base.config, base_model=base.record())
    # the encoder checks the tokenizer bytes it loads against what was checked here (the package's pin)
    return {**encoder_kwargs, "tokenizer_file": str(base.tokenizer_file),
            "tokenizer_sha256": base.tokenizer_sha256}, model_kwargs
