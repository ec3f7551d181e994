"""One forward pass of the packaged MiniLM classifier with an all-ones attention mask vs with none (what kubepipe
now passes for a pass without padding: serving/runtime.py, training/feed.py).

    python benchmarks/unmasked_pass.py [--shapes 1x9,1x16,8x12,32x12] [--passes 60] [--threads 1]

Both arms run in one process on the same weights and inputs, alternating pass by pass (the order flips each
round); medians of --passes. On a GPU the point is the kernel SDPA may pick (flash takes no mask); on the CPU
this measures what the mask costs there. Prints the largest |difference| of the logits too (the answer is the same).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="1x9,1x16,8x12,32x12", help="rows x tokens of each pass")
    ap.add_argument("--passes", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    args = ap.parse_args()

    import torch

    from kubepipe.components.serving.runtime import without_dropout
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier, resolve_pretrained

    torch.set_num_threads(args.threads)
    _, kwargs = resolve_pretrained({"max_length": 128}, {})
    model = PretrainedEncoderClassifier(20, {}, **kwargs).eval()
    model.load_pretrained()
    without_dropout(model)
    model = model.to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    gen = torch.Generator().manual_seed(0)
    print(f"unmasked_pass: MiniLM classifier on {args.device}, {args.threads} thread(s), medians of {args.passes}")
    for shape in args.shapes.split(","):
        rows, width = (int(v) for v in shape.split("x"))
        ids = torch.randint(1000, 20000, (rows, width), generator=gen).to(args.device)
        arms = {"mask": {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, "none": {"input_ids": ids}}
        times: dict[str, list[float]] = {k: [] for k in arms}
        with torch.inference_mode():
            outs = {k: model(v) for k, v in arms.items()}
            for r in range(args.passes + 5):
                for k in (list(arms) if r % 2 else list(arms)[::-1]):
                    sync()
                    t0 = time.perf_counter()
                    model(arms[k])
                    sync()
                    if r >= 5:
                        times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        diff = (outs["mask"].float() - outs["none"].float()).abs().max().item()
        print(f"  {rows:>3} x {width:<4} mask {med['mask']:8.3f} ms   none {med['none']:8.3f} ms   "
              f"none/mask {med['none'] / med['mask']:.3f}   max |dlogit| {diff:.2e}")


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    main()
