"""The trainer's input path (components/training/feed.py): batches gathered by index, widths, the loss tally,
and a pretrained-encoder fine-tune that equals a hand-written loop bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kubepipe.components.training.feed import BatchFeed, LossTally  # noqa: E402


def _arrays(n: int = 37, full: int = 9, seed: int = 0):
    """A padded encoding: row r has lengths[r] real tokens (>= 1), ids > 0 there and 0 after."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, full + 1, n)
    mask = (np.arange(full) < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, 500, (n, full)) * mask
    return lengths, {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


@pytest.mark.parametrize("resident", [True, False], ids=["resident", "staged"])
@pytest.mark.parametrize("per_rank,start", [(8, 0), (8, 3), (37, 0), (5, 7)])
def test_batches_are_the_rows_of_the_order_cut_to_their_longest(resident, per_rank, start):
    """Each batch against numpy: the rows `order` names, in its order, cut to the longest of them; the staged
    path (the GPU's for data too large to keep there: a host gather into its own buffer) gives the same."""
    lengths, arrays = _arrays()
    y = torch.arange(37) % 4
    soft = torch.randn(37, 4)
    feed = BatchFeed(arrays, y, soft, "cpu", resident_bytes=1 << 40 if resident else 0)
    assert feed.resident is resident
    order = torch.randperm(37, generator=torch.Generator().manual_seed(1))
    got = list(feed.epoch(order, per_rank, start))
    chunks = np.array_split(order.numpy(), range(per_rank, 37, per_rank))
    assert len(got) == len(chunks) - start
    for batch, rows in zip(got, chunks[start:], strict=True):
        width = int(lengths[rows].max())
        assert batch.rows == len(rows)
        assert np.array_equal(batch.inputs["input_ids"].numpy(), arrays["input_ids"].numpy()[rows, :width])
        assert np.array_equal(batch.inputs["attention_mask"].numpy(), arrays["attention_mask"].numpy()[rows, :width])
        assert np.array_equal(batch.target.numpy(), y.numpy()[rows])
        assert np.array_equal(batch.soft.numpy(), soft.numpy()[rows])
        assert all(v.is_contiguous() for v in batch.inputs.values())


def test_widths_without_a_mask_and_of_rows_without_tokens():
    """No attention mask (byte or hashed ids, tabular rows): nothing is cut. A batch whose rows have no real
    token keeps one position (an empty tensor would fail in the encoder)."""
    x = torch.arange(60, dtype=torch.float32).reshape(20, 3)
    feed = BatchFeed({"x": x}, torch.zeros(20, dtype=torch.int64), None, "cpu")
    assert feed.widths(torch.arange(20), 6) == [None] * 4
    batch = next(feed.epoch(torch.arange(19, -1, -1), 6))
    assert torch.equal(batch.inputs["x"], x.flip(0)[:6]) and batch.soft is None
    mask = torch.zeros(4, 5, dtype=torch.int64)
    mask[2, :3] = 1
    feed = BatchFeed({"input_ids": mask * 7, "attention_mask": mask}, torch.zeros(4, dtype=torch.int64), None, "cpu")
    assert feed.widths(torch.tensor([0, 1, 2, 3]), 2) == [1, 3]


@pytest.mark.parametrize("defer", [False, True], ids=["at-once", "deferred"])
def test_loss_tally_sums_in_float64_and_names_the_first_non_finite_checked_step(defer):
    losses = [0.5, 0.25, float("nan"), 2.0, float("inf")]
    tally = LossTally("cpu", 1.0, check_every=1, defer=defer)
    found = [tally.add(torch.tensor(v), rows=3, step=i) for i, v in enumerate(losses[:2])]
    assert found == [None, None] and tally.sum.dtype == torch.float64
    assert tally.sum.item() == 1.0 + 3 * 0.5 + 3 * 0.25
    bad = tally.add(torch.tensor(losses[2]), rows=3, step=2)
    assert bad is not None and bad[0] == 3 and math.isnan(bad[1])
    # every 2nd step only: the NaN at step 3 is not looked at, the inf at step 4 is
    tally = LossTally("cpu", 0.0, check_every=2, defer=defer)
    seen = [tally.add(torch.tensor(v), rows=1, step=i) for i, v in enumerate([*losses[:2], 1.0, float("inf")])]
    assert seen == [None, None, None, (4, math.inf)]
    assert tally.landed(wait=True) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the pinned copy and its event need CUDA")
def test_loss_tally_on_the_gpu_reads_the_copy_once_landed():
    tally = LossTally("cuda:0", 0.0, check_every=1)
    assert tally.defer
    assert tally.add(torch.tensor(1.0, device="cuda:0"), rows=2, step=0) in (None,)
    tally.add(torch.tensor(float("nan"), device="cuda:0"), rows=2, step=1)
    bad = tally.landed(wait=True)
    assert bad is not None and bad[0] == 2 and math.isnan(bad[1])


def _hand_loop(trained, data, cfg, epochs: int) -> tuple[list[float], dict]:
    """The fine-tune written out by hand: seed, model, AdamW, cosine schedule, each epoch's permutation (what
    DistributedSampler draws for one process: randperm seeded seed + epoch), each batch cut to its longest row."""
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier

    torch.manual_seed(cfg.seed)
    model = PretrainedEncoderClassifier(len(trained.labels), trained.encoder.spec(), **trained.model_kwargs)
    model.load_pretrained()
    opt = torch.optim.AdamW(model.param_groups(cfg.learning_rate, 0.0), lr=cfg.learning_rate, fused=True)
    n, per = len(data.y_train), cfg.batch_size
    total = epochs * -(-n // per)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(1.0, s / total))))
    ids, mask = torch.from_numpy(data.train["input_ids"]), torch.from_numpy(data.train["attention_mask"])
    y = torch.from_numpy(data.y_train)
    losses = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed + epoch)).numpy()
        total_loss = torch.tensor(0.0, dtype=torch.float64)
        for start in range(0, n, per):
            rows = torch.from_numpy(order[start:start + per])
            width = int(data.train["attention_mask"][rows.numpy()].sum(axis=1).max())
            logits = model({"input_ids": ids[rows, :width], "attention_mask": mask[rows, :width]})
            loss = torch.nn.functional.cross_entropy(logits.float(), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.detach().double() * len(rows)
        losses.append(float(total_loss / n))
    return losses, model.state_dict()


def test_pretrained_fine_tune_equals_a_hand_written_loop_bit_for_bit(tmp_path):
    """train() on padded merchant rows (dropout on: the RNG stream must match too) against _hand_loop: every
    epoch's loss and every weight identical, not close; the gather by index must not change one bit."""
    pytest.importorskip("transformers")
    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.sample_data import merchant_frame
    from kubepipe.components.training.trainer import train
    from kubepipe.components.training.trainset import prepare
    from tiny_bert import make_base_model

    torch.set_num_threads(1)
    base = make_base_model(tmp_path / "base")
    cfg = TrainConfig(model="pretrained-encoder", label_column="category", epochs=2, batch_size=24, seed=5,
                      learning_rate=3e-3, validation_fraction=0.0,
                      hyperparameters={"base_model": str(base), "max_length": 24})
    df = merchant_frame(100, seed=4)
    trained = train(df, cfg, num_gpus=0)
    data, _ = prepare(df, None, cfg, "wordpiece", {"tokenizer_file": str(base / "tokenizer.json"), "max_length": 24})
    widths = data.train["attention_mask"].sum(axis=1)
    assert widths.min() < widths.max() == data.train["input_ids"].shape[1]  # batches are cut: the path is exercised
    losses, weights = _hand_loop(trained, data, cfg, 2)
    assert [row["train_loss"] for row in trained.result["history"]] == losses
    got = trained.module.state_dict()
    assert got.keys() == weights.keys()
    assert all(torch.equal(got[k], weights[k]) for k in weights)


def test_a_batch_without_padding_goes_without_its_mask_only_when_asked():
    """drop_full_mask (a model with `mask_optional`): a batch whose rows all fill its width comes without
    `attention_mask` (SDPA may then take a GPU's flash kernel); a batch with padding keeps it, as does every batch
    of a feed not asked to drop it."""
    lengths = np.array([3, 3, 3, 2, 5, 1, 4, 4])
    mask = torch.from_numpy((np.arange(6) < lengths[:, None]).astype(np.int64))
    arrays = {"input_ids": mask * 9, "attention_mask": mask}
    order = torch.arange(8)
    kept = BatchFeed(arrays, torch.zeros(8, dtype=torch.int64), None, "cpu")
    dropped = BatchFeed(arrays, torch.zeros(8, dtype=torch.int64), None, "cpu", drop_full_mask=True)
    assert dropped.unpadded(order, 2) == [True, False, False, True]
    for feed, want in [(kept, [True] * 4), (dropped, [False, True, True, False])]:
        got = list(feed.epoch(order, 2))
        assert ["attention_mask" in b.inputs for b in got] == want
        assert [b.inputs["input_ids"].shape[1] for b in got] == [3, 3, 5, 4]


def test_the_pretrained_encoder_without_a_mask_equals_it_with_an_all_ones_mask(tmp_path):
    """What dropping the mask relies on: logits and gradients of an unpadded batch are those of its all-ones mask."""
    pytest.importorskip("transformers")
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier
    from tiny_bert import bert_config, write_tokenizer

    write_tokenizer(tmp_path / "tokenizer.json")
    torch.manual_seed(0)
    model = PretrainedEncoderClassifier(4, {}, config=bert_config(tmp_path / "tokenizer.json", hidden=32, max_positions=64, dropout=0.0), dropout=0.0)
    assert model.mask_optional
    ids = torch.randint(5, 60, (6, 7))
    grads = []
    for batch in ({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, {"input_ids": ids}):
        model.zero_grad()
        out = model(batch)
        out.square().sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads[0][1], grads[1][1], strict=True))
