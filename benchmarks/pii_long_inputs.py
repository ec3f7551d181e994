"""Card-number masking (`pii.redact`) on a megabyte of pathological text, against a competent user's masker measured
side by side in one process: one regex for 13-19 digits with optional space/-/. between them, a Luhn check, and the
match masked. That baseline finds fewer layouts (no IBANs, no full-width digits); it is the cost floor of the work.
Medians of repeats, seconds a call.

    .venv/bin/python benchmarks/pii_long_inputs.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time

from kubepipe.components.pii import redact

_CANDIDATE = re.compile(r"\d(?:[ .-]?\d){12,18}")


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def baseline(text: str) -> str:
    def mask(m: re.Match) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return "[PAN]" if _luhn(digits) else m.group(0)

    return _CANDIDATE.sub(mask, text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    random.seed(7)
    texts = {
        "digits and separators": "".join(random.choice("0123456789 -.") for _ in range(1_000_000)),
        "card-shaped groups": "4111 " * 200_000,
        "IBAN starts": "DE89 " * 200_000,
        "short digit runs": "%40" * 333_333,
    }
    print(f"{'input (~1 MB)':24} {'baseline':>10} {'redact':>10} {'ratio':>7}")
    for name, text in texts.items():
        base, ours = [], []
        for _ in range(args.repeats):  # interleaved: the box's load falls on both
            t0 = time.perf_counter()
            baseline(text)
            base.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            redact(text)
            ours.append(time.perf_counter() - t0)
        b, o = statistics.median(base), statistics.median(ours)
        print(f"{name:24} {b:9.2f}s {o:9.2f}s {o / b:7.2f}")


if __name__ == "__main__":
    main()
