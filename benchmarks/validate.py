"""validate-data (Great Expectations 1.x) vs plain GX and vs the same checks written directly in pandas.

    .venv/bin/python benchmarks/validate.py [--rows 1000000] [--repeats 3] [--no-gx] [--no-step]

Data: ROWS x 20 columns (10 float, 4 int, 4 low-cardinality strings, 2 id strings) with a few
planted nulls / out-of-range values / unknown categories, so unexpected-value samples are non-empty.
Suite: 30 expectations. Ways, each timed in a fresh process (so no way inherits another's imports,
caches or patches), repeats interleaved, medians of `--repeats`:

  pandas    the same 30 checks in plain pandas: unexpected count + first 10 unexpected values per
            map check (nulls skipped, as GX does), observed value per aggregate check
  kubepipe  kubepipe.components.data.validate.validate_frame (one GX batch, one suite run,
            copy-on-write, no batch fingerprint, numeric short cut of GX's Decimal scan) - what the
            validate-data step runs
  gx        plain GX 1.x in a process that never imports kubepipe (so none of its GX settings), the
            suite as GX's docs write it, asking for the same result format as kubepipe (BASIC, 10
            unexpected values, no unexpected-row list or index query): the fair baseline for GX

Memory is peak RSS (VmHWM, reset through /proc/self/clear_refs once the frame is built; ru_maxrss
where that is unavailable) minus the RSS before the frame existed, over the DataFrame's own size
(`memory_usage(deep=True)`): (frame + everything validation holds at its peak) / frame.
`--no-step` skips the real step's shape: read the frame from Parquet (arrow -> pandas) and validate,
once per way, kubepipe (`read_dataset` + `validate_frame`) vs pandas (`read_parquet` + the checks).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

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


def run_gx_plain(df, exps):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.registry import get_expectation_impl

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # printing is not what we measure
    bd = ctx.data_sources.add_pandas("plain").add_dataframe_asset("d").add_batch_definition_whole_dataframe("all")
    suite = ctx.suites.add(gx.ExpectationSuite(
        name="plain", expectations=[get_expectation_impl(n)(**kw) for item in exps for n, kw in item.items()]))
    result_format = {"result_format": "BASIC", "partial_unexpected_count": 10, "include_unexpected_rows": False,
                     "return_unexpected_index_query": False}  # what kubepipe asks for
    return bd.get_batch(batch_parameters={"dataframe": df}).validate(suite, result_format=result_format)


WAYS = {"pandas": pandas_checks, "kubepipe": run_kubepipe, "gx": run_gx_plain}


def _failed(way: str, result) -> int:
    if way == "pandas":
        return sum(not r["success"] for r in result)
    if way == "kubepipe":
        return len(result.failed)
    return sum(not r.success for r in result.results)


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak(reset: bool) -> int:
    if reset:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _read(way: str, path: str):
    """The frame from Parquet as each way's step reads it (kubepipe: the validate-data step's reader)."""
    if way == "kubepipe":
        from kubepipe.components.data.io import read_dataset

        return read_dataset(path)
    import pandas as pd

    return pd.read_parquet(path)


def child(way: str, rows: int, parquet: str | None) -> None:
    """In a fresh process: one timed run of `way` and its peak RSS, as JSON on stdout."""
    import gc

    exps = expectations()
    small = make_frame(1000)
    WAYS[way](small, exps)  # imports, GX registry, pandas caches: outside the measurement
    if parquet:  # and the Parquet reader's (pyarrow is tens of MB of code and allocator pools)
        with tempfile.TemporaryDirectory() as tmp:
            small.to_parquet(os.path.join(tmp, "small.parquet"), index=False)
            _read(way, os.path.join(tmp, "small.parquet"))
    del small
    gc.collect()
    before = _rss()
    if parquet:  # the real step's shape: the frame comes from Parquet inside the measurement
        reset = _reset_peak()
        t = time.perf_counter()
        df = _read(way, parquet)
        result = WAYS[way](df, exps)
    else:
        df = make_frame(rows)
        gc.collect()
        reset = _reset_peak()
        t = time.perf_counter()
        result = WAYS[way](df, exps)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "failed": _failed(way, result), "df_bytes": int(df.memory_usage(deep=True).sum()),
                      "peak_over_before": _peak(reset) - before, "hwm_reset": reset}))


def profile_child(rows: int) -> None:
    """kubepipe's run under cProfile: the share of GX's per-metric null filter on string columns."""
    import cProfile
    import pstats

    exps = expectations()
    run_kubepipe(make_frame(1000), exps)
    df = make_frame(rows)
    prof = cProfile.Profile()
    prof.runcall(run_kubepipe, df, exps)
    stats = pstats.Stats(prof)
    rows_ = [(name, row) for (f, _, name), row in stats.stats.items() if f.endswith("dtypes/missing.py")]
    strings = next((row for name, row in rows_ if name == "_isna_string_dtype"), None)
    calls, cum = (strings[1], strings[3]) if strings else (0, 0.0)
    print(json.dumps({"total": stats.total_tt, "isna_string_calls": calls, "isna_string_s": cum}))


def _spawn(way: str, rows: int, parquet: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", way, "--rows", str(rows)] + (["--parquet", parquet] if parquet else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode:
        raise SystemExit(f"{way} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-gx", action="store_true", help="skip plain GX (the slowest way)")
    ap.add_argument("--no-step", action="store_true", help="skip the Parquet -> pandas -> validate rows")
    ap.add_argument("--jobs", type=int, default=1, help="child processes at a time (1 = one after another; more "
                    "only on a box with cores to spare, or one so busy that every way is slowed alike)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--parquet", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "profile":
        return profile_child(args.rows)
    if args.child:
        return child(args.child, args.rows, args.parquet)
    ways = [w for w in WAYS if not (args.no_gx and w == "gx")]
    df = make_frame(args.rows)
    load = os.getloadavg()
    print(f"{args.rows:,} rows x {df.shape[1]} columns, {len(expectations())} expectations; DataFrame "
          f"{df.memory_usage(deep=True).sum() / 2**20:.0f} MiB; each run in a fresh process, repeats interleaved, "
          f"median of {args.repeats}, {args.jobs} at a time; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    runs: dict[str, list[dict]] = {w: [] for w in ways}
    order = [way for _ in range(args.repeats) for way in ways]  # interleaved, so load hits every way alike
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for way, result in zip(order, pool.map(lambda w: _spawn(w, args.rows), order)):
            runs[way].append(result)
    med = {w: statistics.median(r["seconds"] for r in v) for w, v in runs.items()}
    print(f"{'way':<10} {'median s':>9} {'min-max s':>14} {'vs pandas':>10} {'vs gx':>7} {'failed':>7} "
          f"{'peak RSS / df':>14}")
    for way in ways:
        secs = [r["seconds"] for r in runs[way]]
        mem = statistics.median((r["peak_over_before"]) / r["df_bytes"] for r in runs[way])
        vs_gx = f"{med[way] / med['gx']:.2f}x" if "gx" in med else "-"
        print(f"{way:<10} {med[way]:>9.3f} {min(secs):>6.2f}-{max(secs):<7.2f} {med[way] / med['pandas']:>9.2f}x "
              f"{vs_gx:>7} {runs[way][0]['failed']:>7} {mem:>13.2f}x")
    print("failed = expectations that failed (the planted problems); all ways must agree: "
          + ("yes" if len({r["failed"] for v in runs.values() for r in v}) == 1 else "NO"))
    if not runs[ways[0]][0]["hwm_reset"]:
        print("(peak RSS from ru_maxrss: /proc/self/clear_refs is unavailable, so it includes building the frame)")
    prof = _spawn("profile", args.rows)
    print(f"kubepipe under cProfile ({prof['total']:.2f} s): pandas' null scan of object (string) columns ran "
          f"{prof['isna_string_calls']} times, {prof['isna_string_s']:.2f} s = "
          f"{100 * prof['isna_string_s'] / prof['total']:.0f}% (GX filters `df[df[col].notnull()]` once per "
          "metric, and an object column's scan is a Python-object loop)")
    if args.no_step:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.parquet")
        df.to_parquet(path, index=False)
        del df
        print("the real step's shape: read the Parquet file (arrow -> pandas) and validate, one run each")
        print(f"{'way':<10} {'seconds':>9} {'peak RSS / df':>14}")
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            found = list(pool.map(lambda w: _spawn(w, args.rows, path), ("pandas", "kubepipe")))
        for way, r in zip(("pandas", "kubepipe"), found):
            print(f"{way:<10} {r['seconds']:>9.3f} {r['peak_over_before'] / r['df_bytes']:>13.2f}x")


if __name__ == "__main__":
    main()
