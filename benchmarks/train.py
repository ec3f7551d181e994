"""kubepipe's trainer vs a minimal hand-written torch loop: same model, data, optimizer, CPU.

    .venv/bin/python benchmarks/train.py [--rows 4000] [--epochs 3] [--repeats 15] [--threads 1]

Both sides train `text-classifier` on the same pre-encoded rows with the same
AdamW settings and batch size, interleaved, `--repeats` times; medians printed.
"loop" compares training-step throughput (kubepipe's own samples/s counter vs
the bare loop's); "end to end" times the whole `train()` call (label mapping,
encoding, model build, loop, a checkpoint per epoch in the last row) against
encode + bare loop. Goal: loop overhead <= 10%.

The overhead is computed per repeat from the pair run back to back (kubepipe vs the bare loop of the
same repeat), so load that drifts over the run cancels; printed as the median of those paired figures,
their interquartile range, and a 95% bootstrap interval of the median: the overhead is "outside the
noise" when that interval does not contain 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import spread as paired_spread  # noqa: E402


def _data(rows: int):
    import pandas as pd

    flagship = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "merchants_train.csv"
    if flagship.is_file():
        df = pd.read_csv(flagship)
        if {"description", "category"} <= set(df.columns):
            return df.sample(n=min(rows, len(df)), random_state=0, replace=False).reset_index(drop=True), "flagship"
    from kubepipe.components.training.sample_data import merchant_frame

    return merchant_frame(rows, seed=0), "synthetic"


def bare_loop(df, epochs: int, batch_size: int, lr: float, seed: int) -> tuple[float, float]:
    """The loop a user would write by hand: (samples/s, samples per CPU-s, wall s incl. encoding)."""
    import torch
    import torch.nn.functional as F

    from kubepipe.components.training.encoders import HashingEncoder
    from kubepipe.components.training.models.text_classifier import TextClassifier

    t0 = time.perf_counter()
    enc = HashingEncoder()
    ids = torch.from_numpy(enc.encode(df["description"].tolist())["ids"])
    labels = sorted(df["category"].unique())
    y = torch.tensor(df["category"].map({c: i for i, c in enumerate(labels)}).to_numpy())
    torch.manual_seed(seed)
    model = TextClassifier(len(labels), enc.spec())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, fused=True)
    steps = epochs * ((len(y) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + __import__("math").cos(3.14159 * s / steps)))
    train_s = cpu_s = 0.0
    for epoch in range(epochs):
        g = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(len(y), generator=g)
        t1, c1 = time.perf_counter(), time.process_time()
        for idx in order.split(batch_size):
            loss = F.cross_entropy(model({"ids": ids[idx]}), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        train_s += time.perf_counter() - t1
        cpu_s += time.process_time() - c1
    samples = epochs * len(y)
    return samples / train_s, samples / cpu_s, time.perf_counter() - t0


def kubepipe_train(df, epochs: int, batch_size: int, lr: float, seed: int, checkpoints: bool) -> tuple:
    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainer import train

    cfg = TrainConfig(model="text-classifier", text_column="description", label_column="category", epochs=epochs,
                      batch_size=batch_size, learning_rate=lr, seed=seed, validation_fraction=0.0)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trained = train(df, cfg, checkpoint_dir=Path(tmp) / "ckpt" if checkpoints else None, num_gpus=0)
    res = trained.result
    samples = res["samples_per_s"] * res["train_seconds"]
    return res["samples_per_s"], samples / res["train_cpu_seconds"], time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 = steadiest on a shared box)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    df, source = _data(args.rows)
    lr = 0.02
    runs = {"bare": [], "kubepipe": [], "kubepipe+ckpt": []}
    bare_loop(df.head(256), 1, args.batch_size, lr, 0)  # warm caches / lazy imports for both sides
    kubepipe_train(df.head(256), 1, args.batch_size, lr, 0, False)
    for r in range(args.repeats):
        runs["bare"].append(bare_loop(df, args.epochs, args.batch_size, lr, r))
        runs["kubepipe"].append(kubepipe_train(df, args.epochs, args.batch_size, lr, r, False))
        runs["kubepipe+ckpt"].append(kubepipe_train(df, args.epochs, args.batch_size, lr, r, True))
    med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in runs.items()}
    print(f"train benchmark: text-classifier, {len(df)} {source} rows x {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.threads} thread(s), torch {torch.__version__}, median of {args.repeats}")
    print(f"{'':16}{'loop samples/s':>16}{'vs bare':>9}{'samples/CPU-s':>15}{'vs bare':>9}{'end-to-end s':>14}"
          f"{'vs bare':>9}")
    base = med["bare"]
    for name, (sps, cps, wall) in med.items():
        print(f"{name:16}{sps:16.0f}{sps / base[0]:9.3f}{cps:15.0f}{cps / base[1]:9.3f}{wall:14.3f}{wall / base[2]:9.3f}")
    import os

    load = os.getloadavg()
    print(f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")
    for what, i in (("loop, wall", 0), ("loop, CPU time", 1)):
        paired = [100 * (1 - k[i] / b[i]) for k, b in zip(runs["kubepipe"], runs["bare"])]
        mid, (q1, q3), (lo, hi) = paired_spread(paired)
        verdict = "outside the noise" if lo > 0 or hi < 0 else "within the noise (interval contains 0)"
        print(f"overhead of kubepipe's trainer ({what}): median {mid:+.1f}% of {len(paired)} paired repeats, "
              f"IQR {q1:+.1f}% to {q3:+.1f}%, 95% CI of the median {lo:+.1f}% to {hi:+.1f}%: {verdict} "
              "(goal <= 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
