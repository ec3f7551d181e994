"""Cost of the relay behind a user step's stdout (components/user_streams.py): a step printing `--lines` lines, its
output read from a pipe as a pod's runtime reads it, side by side with the same step unguarded, block-buffered (no
relay, Python's default on a pipe) and with `python -u` (written through, as the relay's child writes). Lines as
a training loop prints them; `key id first`: the first line also holds an AWS access key id, so that the relay's
window for a bare secret key after a key id (aws_secret_keys.KeyIdWindow, 2 s) is open on the lines after it. Medians of interleaved
repeats, seconds a run (the interpreter's start included). Then the relay's own CPU time on the same lines, less noisy
on a busy box: `LineRelay.feed` given them in 64-KiB reads (the relay's), written to /dev/null.

    .venv/bin/python benchmarks/stream_relay.py [--repeats 5] [--lines 100000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

STEP = """
import sys
{guard}
for i in range({lines}):
    print(f"epoch 3 step {{i}}: loss=0.{{i % 1000:03d}} acc=0.912 lr=0.0003{{' user AKIAIOSFODNN7EXAMPLE' if {ids} and i == 0 else ''}}")
"""
MODES = {
    "block-buffered, no relay": ([], ""),
    "python -u, no relay": (["-u"], ""),
    "behind the relay": ([], "from kubepipe.components.user_streams import guard_streams\nguard_streams()"),
}


def run(mode: str, lines: int, ids: bool) -> float:
    flags, guard = MODES[mode]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *flags, "-c", STEP.format(guard=guard, lines=lines, ids=ids)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    took = time.perf_counter() - started
    assert done.stdout.count(b"\n") == lines, done.stderr.decode()
    assert b"AKIAIOSFODNN7EXAMPLE" not in done.stdout or mode != "behind the relay"
    return took


def relay_cpu(lines: int, ids: bool) -> float:
    """CPU seconds of a LineRelay given the step's output in the relay's 64-KiB reads, writing to /dev/null."""
    import os

    from kubepipe.components.user_streams import LineRelay

    data = "".join(f"epoch 3 step {i}: loss=0.{i % 1000:03d} acc=0.912 lr=0.0003"
                   f"{' user AKIAIOSFODNN7EXAMPLE' if ids and i == 0 else ''}\n" for i in range(lines)).encode()
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        relay = LineRelay(fd)
        started = time.process_time()
        for at in range(0, len(data), 1 << 16):
            relay.feed(data[at:at + (1 << 16)])
        relay.close()
        return time.process_time() - started
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    print("| lines | " + " | ".join(MODES) + " | relay / python -u |")
    print("|---|" + "---|" * (len(MODES) + 1))
    for ids in (False, True):
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(args.repeats):  # interleaved: the box's load shared alike
            for mode in MODES:
                times[mode].append(run(mode, args.lines, ids))
        med = {mode: statistics.median(t) for mode, t in times.items()}
        print(f"| {'key id first' if ids else 'plain'} | " + " | ".join(f"{med[m]:.2f} s" for m in MODES)
              + f" | {med['behind the relay'] / med['python -u, no relay']:.2f} |")
    print("\n| lines | the relay's CPU |\n|---|---|")
    for ids in (False, True):
        cpu = statistics.median(relay_cpu(args.lines, ids) for _ in range(args.repeats))
        print(f"| {'key id first' if ids else 'plain'} | {cpu:.3f} s |")


if __name__ == "__main__":
    main()
