"""`--workers N`: N server processes share one port through SO_REUSEPORT.

Each worker is a full `kubepipe serve` process (own model copy, own batcher); the kernel
spreads connections. The parent forwards SIGTERM/SIGINT and waits for every worker to drain.
"""

from __future__ import annotations

import signal
import subprocess
import sys

__all__ = ["run_workers"]


def _strip_workers(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--workers":
            skip = True
            continue
        if a.startswith("--workers="):
            continue
        out.append(a)
    return out


def run_workers(argv: list[str], n: int) -> int:
    cmd = [sys.executable, "-m", "kubepipe.components.serving.server", *_strip_workers(argv), "--reuse-port"]
    procs = [subprocess.Popen(cmd) for _ in range(n)]

    def forward(sig, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    codes = [p.wait() for p in procs]
    return max(codes, key=abs)
