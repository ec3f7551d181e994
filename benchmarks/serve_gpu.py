"""GPU serving benchmark: the fine-tuned MiniLM teacher on CUDA, `kubepipe serve` vs the bare KServe server.

    python benchmarks/serve_gpu.py [--repeats 3] [--seconds 5] [--compile] [--compile-mode MODE] [--workers 4]
    python benchmarks/serve_gpu.py --smoke --quick   # on the CPU, a 64-row teacher: checks the script runs

Goal on one H100/H200-class GPU: teacher >= 100k tokens/s at >= 100 RPS with p99 <= 50 ms.
The teacher is `pretrained-encoder` fine-tuned from all-MiniLM-L6-v2 on the flagship data
(one epoch on the GPU: seconds). Servers side by side on 127.0.0.1, same GPU:
  kubepipe          `kubepipe serve --device cuda` (bf16 weights, the default on CUDA)
  kubepipe-compile  the same with `--torch-compile` (with --compile); with `--compile-mode M` (implies --compile)
                    `--torch-compile --compile-mode M`, named kubepipe-compile-M (reduce-overhead: CUDA graphs,
                    passes padded to bucketed shapes captured at load: docs/serving.md)
  kubepipe-wN       the same with `--workers N` (with --workers N; with both, kubepipe-compile-wN too): the
                    bare baseline stays one process, so these ratios are no like-for-like comparison
  bare              the bare KServe ModelServer with torch eager fp32 on the GPU (benchmarks/serve.py --bare)
Load as in benchmarks/serve.py: 6-8-word descriptors, 32 and 64 per request, closed loop at
1/4/16/64 connections plus an open loop at max(100, the goal's tokens/s / tokens per request)
requests/s at each size. Tokens = `LoadedModel.count_tokens` (WordPiece tokens without specials).
Without CUDA it says so and exits 0 (use benchmarks/serve.py on a CPU).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve as bench  # noqa: E402

from kubepipe.components.serving.options import COMPILE_MODES  # noqa: E402

GOAL_TOKENS_S, GOAL_RPS, GOAL_P99_MS = 100_000.0, 100.0, 50.0


def train_teacher(work: Path, epochs: int, rows: int | None = None, num_gpus: int = 1) -> Path:
    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.trainer import train

    out = work / (f"teacher-gpu-e{epochs}" if rows is None else f"teacher-smoke-e{epochs}-r{rows}")
    if not (out / "model.safetensors").is_file():
        t0 = time.perf_counter()
        cfg = TrainConfig(model="pretrained-encoder", text_column="description", label_column="category", seed=7,
                          epochs=epochs, batch_size=32, learning_rate=1e-4, lr_schedule="linear", weight_decay=0.01,
                          hyperparameters={"base_model": "package:all-minilm-l6-v2", "max_length": 32,
                                           "layer_lr_decay": 0.9, "warmup_fraction": 0.1, "max_grad_norm": 1.0})
        frame = bench._frame("merchants_train.csv")
        train(frame if rows is None else frame.head(rows), cfg, num_gpus=num_gpus).save(out)
        print(f"teacher fine-tuned in {time.perf_counter() - t0:.0f}s")
    return out


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # --work (serve.py's) is no --workers
    ap.add_argument("--compile", action="store_true", help="also serve with --torch-compile")
    ap.add_argument("--compile-mode", choices=COMPILE_MODES, default="default",
                    help="torch.compile's mode of the compiled server (implies --compile)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0,
                    help="also serve with `--workers N` (server processes sharing the port): kubepipe-wN. The bare "
                         "baseline stays one process, so its ratios to bare are no like-for-like comparison")
    # the whole script on the CPU, a small teacher, no goal verdict: checks it still runs (tests), not the GPU
    ap.add_argument("--smoke", action="store_true")
    own, rest = ap.parse_known_args(argv)
    args = bench.parse(["--instances", "32,64", *rest])
    if args.bare:
        bench.bare_server(args.bare[0], int(args.bare[1]), args.bare[2], args.threads, args.device)
        return 0
    import torch

    if not torch.cuda.is_available() and not own.smoke:
        print("serve_gpu.py needs a CUDA GPU and torch sees none (torch.cuda.is_available() is False): nothing "
              "measured. Run benchmarks/serve.py for the CPU figures.")
        return 0
    device = "cpu" if own.smoke else "cuda"
    gpu = "the CPU (--smoke)" if own.smoke else torch.cuda.get_device_name(0)
    print(f"GPU: {gpu}; torch {torch.__version__}; {bench.pin_load(args)}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    teacher = train_teacher(work, own.epochs, rows=64 if own.smoke else None, num_gpus=0 if own.smoke else 1)
    from kubepipe.components.training.artifact import load_model

    m = load_model(teacher)
    texts = bench.descriptors()
    tokens = {k: sum(m.count_tokens(bench.json.loads(b)["instances"]) for b in bench.make_bodies(texts, k)) / 64
              for k in args.inst}
    del m
    # each size at the rate that carries the goal's tokens/s (at least 100 requests/s), not the smallest size's rate
    args.rate = {k: max(GOAL_RPS, 1.05 * GOAL_TOKENS_S / t) for k, t in tokens.items()}
    cmds = bench.server_cmds("teacher", teacher, device=device, threads=args.threads, aa=args.aa)
    bare = {k: v for k, v in cmds.items() if k.startswith("bare")}  # bare, and bare-2 with --aa
    cmds = {"kubepipe": cmds["kubepipe"]}  # not the CPU's ONNX servers
    compiled = "kubepipe-compile" + ("" if own.compile_mode == "default" else f"-{own.compile_mode}")
    if own.compile or own.compile_mode != "default":
        cmds[compiled] = cmds["kubepipe"] + ["--torch-compile", "--compile-mode", own.compile_mode]
    if own.workers > 1:
        cmds[f"kubepipe-w{own.workers}"] = cmds["kubepipe"] + ["--workers", str(own.workers)]
        if compiled in cmds:  # both: the configuration the first GPU run pointed to (benchmarks/README.md)
            cmds[f"{compiled}-w{own.workers}"] = cmds[compiled] + ["--workers", str(own.workers)]
    cmds |= bare
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="kubepipe-bench-serve-gpu-"))
    try:
        bodies = {k: bench.make_bodies(texts, k) for k in args.inst}
        raw = bench.measure(cmds, bodies, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summ = bench.summarise(raw, tokens)
    print(bench.starts_line(raw))
    bench.print_group("teacher on " + gpu + ": tokens per request " +
                      ", ".join(f"{k}/req {t:.1f}" for k, t in tokens.items()), summ, tokens, args.rate)
    ok = False
    for name in [n for n in summ if not n.startswith("bare")]:
        for k, v in summ[name].items():
            fig = v["fixed"]
            if fig is None:
                print(f"{name} {k}/req at {bench.rate_for(args.rate, k):.0f} requests/s: over capacity")
                continue
            met = fig["tokens_s"] >= GOAL_TOKENS_S and fig["rps"] >= GOAL_RPS and fig["p99_ms"] <= GOAL_P99_MS
            ok |= met
            print(f"{name} {k}/req at {bench.rate_for(args.rate, k):.0f} requests/s offered: {fig['tokens_s']:.0f} tokens/s, "
                  f"{fig['rps']:.0f} RPS, p99 {fig['p99_ms']:.1f} ms -> {'met' if met else 'MISSED'} "
                  f"(goal >= 100k tokens/s at >= 100 RPS, p99 <= 50 ms)")
    return 0 if ok or own.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
