"""validate-data (Great Expectations 1.x) vs the same checks written directly in pandas.

    .venv/bin/python benchmarks/validate.py [--rows 1000000] [--repeats 3] [--naive]

Data: ROWS x 20 columns (10 float, 4 int, 4 low-cardinality strings, 2 id strings) with a few
planted nulls / out-of-range values / unknown categories, so unexpected-value samples are non-empty.
Suite: 30 expectations. Three ways, side by side in one run, medians of `--repeats`:

  pandas    the same 30 checks in plain pandas: unexpected count + first 10 unexpected values per
            map check (nulls skipped, as GX does), observed value per aggregate check
  kubepipe  kubepipe.components.data.validate.validate_frame (one GX batch, one suite run,
            copy-on-write, tuned result_format) - what the validate-data step runs
  gx-naive  (with --naive) the same suite through GX 1.x as its docs show it (no copy-on-write,
            SUMMARY results, batch fingerprint on)

Peak memory: each way runs again in a fresh subprocess under tracemalloc (numpy and pandas
report their buffers to it); we print the peak of (DataFrame + everything allocated while
validating) divided by the DataFrame's own size (`memory_usage(deep=True)`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("TQDM_DISABLE", "1")

CATS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def make_frame(rows: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(10):
        x = rng.normal(50, 10, rows)
        x[rng.integers(0, rows, rows // 100_000 + 1)] = np.nan if i % 3 == 0 else 500.0
        cols[f"f{i}"] = x
    for i in range(4):
        cols[f"i{i}"] = rng.integers(0, 24, rows)
    for i in range(4):
        s = np.array(CATS, dtype=object)[rng.integers(0, len(CATS), rows)]
        s[rng.integers(0, rows, 3)] = "unknown" if i == 0 else "alpha"
        cols[f"c{i}"] = s
    cols["id0"] = np.char.add("tx-", np.arange(rows).astype(str)).astype(object)
    cols["id1"] = np.char.add("acct-", rng.integers(0, rows // 4 + 1, rows).astype(str)).astype(object)
    return pd.DataFrame(cols)


def expectations() -> list[dict]:
    exps: list[dict] = [{"expect_column_values_to_not_be_null": {"column": f"f{i}"}} for i in range(10)]
    exps += [{"expect_column_values_to_be_between": {"column": f"f{i}", "min_value": 0, "max_value": 100}} for i in range(8)]
    exps += [{"expect_column_values_to_be_in_set": {"column": f"c{i}", "value_set": CATS}} for i in range(4)]
    exps += [{"expect_column_mean_to_be_between": {"column": f"i{i}", "min_value": 5, "max_value": 20}} for i in range(3)]
    exps += [
        {"expect_column_values_to_be_unique": {"column": "id0"}},
        {"expect_column_values_to_match_regex": {"column": "id0", "regex": "^tx-[0-9]+$"}},
        {"expect_column_value_lengths_to_be_between": {"column": "id1", "min_value": 6, "max_value": 13}},
        {"expect_table_row_count_to_be_between": {"min_value": 1}},
        {"expect_column_to_exist": {"column": "i3"}},
    ]
    assert len(exps) == 30
    return exps


# ---- the baseline: the same checks in plain pandas -------------------------------------------

def _map_result(series, bad_mask, n: int = 10) -> dict:
    bad = series[bad_mask]
    return {"unexpected_count": int(bad_mask.sum()), "sample": bad.head(n).tolist()}


def pandas_checks(df, exps: list[dict]) -> list[dict]:
    out = []
    for item in exps:
        (name, kw), = item.items()
        col = df[kw["column"]] if "column" in kw and kw["column"] in df else None
        if name == "expect_column_values_to_not_be_null":
            r = {"unexpected_count": int(col.isna().sum())}
        elif name == "expect_column_values_to_be_between":
            nn = col.dropna()
            r = _map_result(nn, ~nn.between(kw["min_value"], kw["max_value"]))
        elif name == "expect_column_values_to_be_in_set":
            nn = col.dropna()
            r = _map_result(nn, ~nn.isin(kw["value_set"]))
        elif name == "expect_column_values_to_be_unique":
            nn = col.dropna()
            r = _map_result(nn, nn.duplicated(keep=False))
        elif name == "expect_column_values_to_match_regex":
            nn = col.dropna()
            r = _map_result(nn, ~nn.str.contains(kw["regex"], regex=True))
        elif name == "expect_column_value_lengths_to_be_between":
            nn = col.dropna()
            r = _map_result(nn, ~nn.str.len().between(kw["min_value"], kw["max_value"]))
        elif name == "expect_column_mean_to_be_between":
            m = float(col.mean())
            r = {"observed": m, "success": kw["min_value"] <= m <= kw["max_value"]}
        elif name == "expect_table_row_count_to_be_between":
            r = {"observed": len(df), "success": len(df) >= kw["min_value"]}
        elif name == "expect_column_to_exist":
            r = {"success": kw["column"] in df.columns}
        else:
            raise ValueError(name)
        r.setdefault("success", r.get("unexpected_count", 0) == 0)
        out.append({"name": name, **r})
    return out


# ---- the ways --------------------------------------------------------------------------------

def run_kubepipe(df, exps):
    from kubepipe.components.data.validate import resolve_expectations, validate_frame

    return validate_frame(df, resolve_expectations(exps), unexpected_sample=10)


def run_gx_naive(df, exps):
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # printing is not what we measure
    bd = ctx.data_sources.add_pandas("naive").add_dataframe_asset("d").add_batch_definition_whole_dataframe("all")
    suite = ctx.suites.add(gx.ExpectationSuite(
        name="naive", expectations=[get_expectation_impl(n)(**kw) for item in exps for n, kw in item.items()]))
    return bd.get_batch(batch_parameters={"dataframe": df}).validate(suite, result_format="SUMMARY")


WAYS = {"pandas": pandas_checks, "kubepipe": run_kubepipe, "gx-naive": run_gx_naive}


def _failed(way: str, result) -> int:
    if way == "pandas":
        return sum(not r["success"] for r in result)
    if way == "kubepipe":
        return len(result.failed)
    return sum(not r.success for r in result.results)


def child_memory(way: str, rows: int) -> None:
    """In a fresh process: peak (DataFrame + validation) under tracemalloc, as JSON on stdout."""
    import tracemalloc

    df = make_frame(rows)
    exps = expectations()
    WAYS[way](make_frame(1000), exps)  # warm up imports and caches outside the measurement
    size = int(df.memory_usage(deep=True).sum())
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    WAYS[way](df, exps)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    print(json.dumps({"df_bytes": size, "extra_peak": peak}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive", action="store_true", help="also time plain GX (slow: ~7x pandas)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_memory(args.child, args.rows)
    ways = [w for w in WAYS if args.naive or w != "gx-naive"]
    df, exps = make_frame(args.rows), expectations()
    print(f"{args.rows:,} rows x {df.shape[1]} columns, {len(exps)} expectations; "
          f"DataFrame {df.memory_usage(deep=True).sum() / 2**20:.0f} MiB; median of {args.repeats}")
    for way in ways:  # warm-up: imports, GX registry, pandas caches
        WAYS[way](df.head(1000), exps)
    times: dict[str, list[float]] = {w: [] for w in ways}
    failed = {}
    for _ in range(args.repeats):
        for way in ways:  # interleaved, so load on the shared box hits every way alike
            t = time.perf_counter()
            result = WAYS[way](df, exps)
            times[way].append(time.perf_counter() - t)
            failed[way] = _failed(way, result)
    med = {w: statistics.median(v) for w, v in times.items()}
    mem = {}
    for way in ways:
        proc = subprocess.run([sys.executable, __file__, "--child", way, "--rows", str(args.rows)],
                              capture_output=True, text=True, check=True)
        mem[way] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'way':<10} {'median s':>9} {'vs pandas':>10} {'failed':>7} {'peak mem / df':>14}")
    for way in ways:
        m = mem[way]
        ratio = (m["df_bytes"] + m["extra_peak"]) / m["df_bytes"]
        print(f"{way:<10} {med[way]:>9.3f} {med[way] / med['pandas']:>9.2f}x {failed[way]:>7} {ratio:>13.2f}x")
    print("failed = expectations that failed (the planted problems); all ways must agree")


if __name__ == "__main__":
    main()
