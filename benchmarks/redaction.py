"""Cost of hiding credentials in a line (`redact_text`), asked for every line of run.log, a server's access log and
each message, against its baseline measured side by side: every rule run on the line (`_redact_shapes` after the
environment's secrets, what redact_text did before its pre-test). Also `environment_secrets()` with the environment
unchanged, 135 variables. Medians of interleaved repeats, microseconds a call.

The prediction log's column pass (`text_columns.redact_strings`, one flush's text column of `--rows` flagship
descriptors): PII and credentials (the writer's pass) against its baseline, decision 0017's PII-only pre-filter,
side by side; on the descriptors as they are and with one in ten holding a credential. Milliseconds a column.

    .venv/bin/python benchmarks/redaction.py [--repeats 7] [--number 2000] [--rows 50000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import timeit

from kubepipe import redaction

LINES = {
    "short line, nothing to hide": "step load: read 1000 rows in 0.3s",
    "log line, nothing to hide": "2026-01-01 12:00:00,123 INFO kubepipe.components.train: epoch 3/10 loss=0.2314 "
                                 "acc=0.912 lr=0.0003",
    "access log line": '127.0.0.1 - - "POST /v1/models/clf:predict HTTP/1.1" 200 OK 0.004s',
    "line with a secret": "connect postgres://app:Hunter2@db/x failed, password=Hunter2",
    # a URL encoded into another's query: its items are read as a query too (nested_item_spans)
    "access log, encoded query": '127.0.0.1 - - "GET /authorize?client_id=app&next=https%3A%2F%2Fb.example.com%2Ff'
                                 '%3Fx%3D1%26sig%3DAbC123dEf HTTP/1.1" 302',
}


def per_call_us(fn, number: int) -> float:
    return timeit.timeit(fn, number=number) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    for i in range(max(0, 135 - len(os.environ))):
        os.environ[f"BENCH_FILLER_{i}"] = "x" * 40
    os.environ["BENCH_DB_PASSWORD"] = "hunter2hunter2"

    def every_rule(line: str) -> str:
        return redaction._redact_shapes(redaction._hide_environment(line))

    print(f"{len(os.environ)} environment variables; load average {os.getloadavg()[0]:.1f}")
    print(f"{'line':32} {'every rule':>12} {'redact_text':>12} {'ratio':>7}")
    for name, line in LINES.items():
        assert redaction.redact_text(line) == every_rule(line)
        base, new = [], []
        for _ in range(args.repeats):  # interleaved: the box's load falls on both
            base.append(per_call_us(lambda: every_rule(line), args.number))
            new.append(per_call_us(lambda: redaction.redact_text(line), args.number))
        b, n = statistics.median(base), statistics.median(new)
        print(f"{name:32} {b:10.1f}us {n:10.1f}us {n / b:7.2f}")
    env = [per_call_us(redaction.environment_secrets, args.number * 5) for _ in range(args.repeats)]
    print(f"environment_secrets(), unchanged: {statistics.median(env):.1f}us")
    column_pass(args.rows, args.repeats)


def column_pass(rows: int, repeats: int) -> None:
    """ms per column: the prediction log's pass (PII + credentials) against the PII-only pre-filter (its baseline)."""
    import random
    import sys
    from pathlib import Path

    import pyarrow as pa

    from kubepipe.components.text_columns import redact_strings

    sys.path.insert(0, str(Path(__file__).parent))
    import serve  # benchmarks/serve.py: the flagship's real descriptors

    rng = random.Random(7)
    descriptors = serve.descriptors()
    texts = [rng.choice(descriptors) for _ in range(rows)]
    leaks = ["api_key=Zq8v3KpL0aX9mN2bWc", "Authorization: Bearer abcDEF123456789xyzQ",
             "https://h.example.com/a?token=Tk9xQ2vL8mN3", "AKIAIOSFODNN7EXAMPLE"]
    mixes = {"descriptors": texts,
             "1 in 10 with a credential": [f"{t} {rng.choice(leaks)}" if i % 10 == 0 else t for i, t in enumerate(texts)]}
    print(f"\ncolumn of {rows} rows (4,096-row chunks, as the writer builds it), ms")
    print(f"{'texts':32} {'PII only':>12} {'PII + creds':>12} {'ratio':>7}")
    for name, values in mixes.items():
        column = pa.chunked_array([pa.array(values[i:i + 4096], pa.string()) for i in range(0, rows, 4096)])
        base, new = [], []
        for _ in range(repeats):
            base.append(per_call_us(lambda: redact_strings(column), 1) / 1000)
            new.append(per_call_us(lambda: redact_strings(column, credentials=True), 1) / 1000)
        b, n = statistics.median(base), statistics.median(new)
        print(f"{name:32} {b:10.1f}ms {n:10.1f}ms {n / b:7.2f}")


if __name__ == "__main__":
    main()
