"""A tiny BERT base-model directory (config.json, tokenizer.json, model.safetensors) for fast tests.

Built with the real libraries: a `tokenizers` WordPiece tokenizer with BERT's normaliser, pre-tokeniser and
[CLS] $A [SEP] template over a vocabulary of the sample merchant words, and a randomly initialised
`transformers` BertModel (2 layers, hidden 32). Not a test module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _vocab() -> list[str]:
    from kubepipe.components.training.sample_data import MERCHANTS

    words = set()
    for names in MERCHANTS.values():
        for name in names:
            words.update(w for w in re.split(r"[^a-z0-9]+", name.lower()) if w)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    pieces = list(chars) + [f"##{c}" for c in chars] + list("#*.&'-,/")
    return SPECIAL + sorted(words) + pieces


def write_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(_vocab()))}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.save(str(path))
    return path


def make_base_model(root: Path, *, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0,
                    prefix: str = "") -> Path:
    """Write the directory and return it; `prefix="bert."` stores the keys as a BertFor... checkpoint does."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    root.mkdir(parents=True, exist_ok=True)
    write_tokenizer(root / "tokenizer.json")
    vocab_size = len(json.loads((root / "tokenizer.json").read_text())["model"]["vocab"])
    config = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": vocab_size,
              "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "intermediate_size": 4 * hidden, "max_position_embeddings": 64, "type_vocab_size": 2,
              "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "pad_token_id": 0,
              "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
    (root / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    model = BertModel(BertConfig(**{k: v for k, v in config.items() if k != "model_type"}))
    state = {prefix + k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(root / "model.safetensors"), metadata={"format": "pt"})
    return root


def bert_config(tokenizer: Path, *, hidden: int, max_positions: int, dropout: float, layers: int = 2) -> dict:
    """A BERT config.json (as a dict) for `tokenizer`'s vocabulary: 2 heads, an FFN twice `hidden` wide."""
    vocab = len(json.loads(tokenizer.read_text())["model"]["vocab"])
    return {"model_type": "bert", "vocab_size": vocab, "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": 2, "intermediate_size": 2 * hidden, "max_position_embeddings": max_positions,
            "type_vocab_size": 2, "hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout,
            "pad_token_id": 0, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}


def save_classifier(root: Path, *, labels: str = "abcde", max_length: int = 32, seed: int = 0) -> Path:
    """A `pretrained-encoder` Model artifact around a random tiny BERT (no training: weights as initialised, dropout
    0.1 as trained models have it); returns its directory."""
    import torch

    from kubepipe.components.training.artifact import save_model
    from kubepipe.components.training.encoders import WordPieceEncoder
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier

    root.mkdir(parents=True, exist_ok=True)
    write_tokenizer(root / "tokenizer.json")
    config = bert_config(root / "tokenizer.json", hidden=32, max_positions=64, dropout=0.1)
    torch.manual_seed(seed)
    module = PretrainedEncoderClassifier(len(labels), {}, config=config, dropout=0.1)
    encoder = WordPieceEncoder(str(root / "tokenizer.json"), max_length=max_length)
    return save_model(root / "model", module, architecture="pretrained-encoder", model_kwargs={"config": config},
                      labels=list(labels), encoder=encoder, columns={"text_column": "description"})
