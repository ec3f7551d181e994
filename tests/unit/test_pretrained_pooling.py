"""pretrained-encoder mean pooling in bf16 (served with --precision bf16, or under autocast): the sum and the count
are taken in float32, so the pooled vector is one bf16 rounding of the exact mean; fp64 is the oracle."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from kubepipe.components.training.artifact import load_model, save_model  # noqa: E402
from kubepipe.components.training.encoders import WordPieceEncoder  # noqa: E402
from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier, mean_pool  # noqa: E402
from tiny_bert import bert_config, write_tokenizer  # noqa: E402

U_BF16 = 2.0 ** -8  # bf16's unit roundoff (8 significant bits): one rounding of a real number


def test_bf16_mean_pool_is_one_rounding_of_the_exact_mean():
    """257..299 tokens: counts bf16 cannot hold (257 -> 256), and sums bf16 rounds; fp64 is the oracle."""
    torch.manual_seed(0)
    lens = torch.randint(257, 300, (32,))
    mask = (torch.arange(300) < lens[:, None]).long()
    hidden = (torch.randn(32, 300, 64) * 0.5 + 0.3).to(torch.bfloat16)
    exact = (hidden.double() * mask[..., None]).sum(1) / lens[:, None].double()
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            got = mean_pool(hidden, mask)
        assert got.dtype == torch.bfloat16
        assert ((got.double() - exact).abs() <= U_BF16 * exact.abs() + 1e-6).all()


def _served(tmp_path, labels: int, *, hidden: int, max_positions: int, max_length: int):
    """A tiny pretrained-encoder artifact (random weights, dropout off), saved and loaded as the server loads it."""
    write_tokenizer(tmp_path / "tokenizer.json")
    config = bert_config(tmp_path / "tokenizer.json", hidden=hidden, max_positions=max_positions, dropout=0.0)
    torch.manual_seed(0)
    module = PretrainedEncoderClassifier(labels, {}, config=config, dropout=0.0)
    encoder = WordPieceEncoder(str(tmp_path / "tokenizer.json"), max_length=max_length)
    out = save_model(tmp_path / "model", module, architecture="pretrained-encoder", model_kwargs={"config": config},
                     labels=list("abcdefgh"[:labels]), encoder=encoder, columns={"text_column": "description"})
    return load_model(out)


def test_bf16_served_pooling_matches_an_fp32_reference(tmp_path):
    """The served path (TorchRunner, --precision bf16) pools the encoder's bf16 hidden states as an fp64 mean
    would, and its probabilities are those of the correctly rounded mean through the same bf16 head."""
    from kubepipe.components.serving.runtime import TorchRunner

    runner = TorchRunner(_served(tmp_path, 6, hidden=64, max_positions=512, max_length=320), precision="bf16")
    seen = {}
    runner.module.encoder.register_forward_hook(lambda m, a, o: seen.__setitem__("hidden", o.last_hidden_state))
    runner.module.head.register_forward_hook(lambda m, a, o: seen.__setitem__("pooled", a[0]))
    rng = np.random.default_rng(0)
    words = ["starbucks", "coffee", "amazon", "uber", "trip", "shell", "target"]
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(255, 300, size=48)]
    batch = runner.loaded.encoder.encode(texts)
    assert (batch["attention_mask"].sum(1) > 256).any()
    proba = torch.softmax(torch.from_numpy(runner(batch)).double(), -1)
    mask = torch.from_numpy(batch["attention_mask"]).double()[..., None]
    exact = (seen["hidden"].double() * mask).sum(1) / mask.sum(1)
    assert ((seen["pooled"].double() - exact).abs() <= U_BF16 * exact.abs() + 1e-6).all()
    with torch.inference_mode():
        want = torch.softmax(runner.module.head(exact.to(torch.bfloat16)).double(), -1)
    assert (proba - want).abs().max().item() <= 2e-5  # bf16 sums and counts gave ~2e-4


def test_served_pass_without_padding_goes_without_its_mask(tmp_path):
    """TorchRunner: an unpadded pass reaches the encoder with no attention mask (a GPU's flash attention takes
    none), a padded one with it; the answers are those of the masked pass either way."""
    from kubepipe.components.serving.runtime import TorchRunner

    runner = TorchRunner(_served(tmp_path, 3, hidden=32, max_positions=64, max_length=16))
    seen = []
    runner.module.encoder.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs.get("attention_mask") is None), with_kwargs=True)
    for texts, unpadded in [(["starbucks coffee", "coffee starbucks"], True), (["uber", "shell coffee trip"], False)]:
        batch = runner.loaded.encoder.encode(texts)
        assert bool(batch["attention_mask"].all()) is unpadded
        got = runner(batch)
        with torch.inference_mode():
            want = runner.module({k: torch.from_numpy(v) for k, v in batch.items()}).numpy()
        assert seen[0] is unpadded and seen[1] is False  # the runner's pass, then the masked reference
        seen.clear()
        np.testing.assert_allclose(got, want, atol=1e-6)
