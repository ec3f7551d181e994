"""Per-column drift of a current dataset against a reference: PSI (binned numerics, categories, text tokens) and KS.

Column kinds: numeric -> PSI on reference-quantile bins (a bucket per value, and per gap around them, for at most
`bins` distinct values) + two-sample KS test; low-cardinality
strings/bools -> PSI on categories (reference top-N, the rest pooled as `(other)`); free text ->
PSI on the distribution of lower-cased words (letters of any script; each character in Chinese and Japanese, which
have no spaces between words; the reference's 300 most frequent tokens
seen at least 10 times; the rest pooled as `(rare or new token)`, both sides' rare words with the current
side's new ones), which moves when unseen merchants or words appear. Nulls are their own bucket, and so are ±inf
in a numeric column.
A reference with no word seen 10 times has no token distribution: that column is skipped, saying why.
A numeric reference column that arrives as text (one 'unknown' cell) is compared as numbers, what does not parse
counted as null and named in the reason; one holding at most `max_categories` values (codes, labels: served '1'
vs a trained 1) is compared as categories.
"""

from __future__ import annotations

import re
from typing import Any

from kubepipe.components.checks import did_you_mean
from kubepipe.components.data.io import id_text, require_columns
from kubepipe.components.errors import DataError
from kubepipe.components.pii import redact

__all__ = ["DEFAULT_THRESHOLDS", "detect_drift", "column_kind", "psi", "chi2_pvalue"]

DEFAULT_THRESHOLDS = {"psi": 0.2, "chi2_pvalue": 0.05, "ks_statistic": 0.1, "ks_pvalue": 0.05}
_EPS = 1e-4  # floor for empty buckets, so PSI stays finite
# letters of any script (`[a-z]` read Cyrillic or Greek text as no words, so its drift was skipped, and cut `café`
# to `caf`); digits and `_` are not words
# Chinese and Japanese are written without spaces between words: each Han, kana character is a token (a sentence was
# one token, and the column 'identifier-like', skipped); Korean puts spaces between words and stays with them
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002ffff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]{{2,}}")
_MIN_TOKEN_COUNT = 10  # a rarer token is a bucket of sampling noise


def psi(ref_share, cur_share) -> float:
    """Population stability index of two aligned share vectors."""
    import numpy as np

    r = np.clip(np.asarray(ref_share, dtype=float), _EPS, None)
    c = np.clip(np.asarray(cur_share, dtype=float), _EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def column_kind(ref, max_categories: int = 50) -> str:
    """numeric | categorical | text | skip (datetimes, identifiers)."""
    kind = ref.dtype.kind
    if kind in "iuf":
        return "numeric"
    if kind == "b":
        return "categorical"
    if kind in "Mm":
        return "skip"
    values = ref.dropna()
    if values.nunique() <= max_categories:
        return "categorical"
    head = values.astype(str).head(2000)
    # words: the whitespace-separated ones, or in Chinese and Japanese text (no spaces) the characters
    words = (head.str.count(r"\s+") + 1).combine(head.str.count(f"[{_CJK}]"), max)
    return "text" if words.mean() >= 2 else "skip"


def detect_drift(current, reference, *, columns: list | None = None, thresholds: dict | None = None,
                 bins: int = 10, max_categories: int = 50, column_map: dict | None = None) -> dict:
    """Compare `current` with `reference` column by column; returns the drift report as a dict.

    `column_map` pairs a current column with a differently named reference column, e.g.
    `{prediction: category}`: served predictions vs the labels the model was trained on.
    """
    th = _thresholds(thresholds)
    column_map = {str(k): str(v) for k, v in (column_map or {}).items()}
    for cur, ref in column_map.items():
        if ref not in reference.columns:  # it named no alternative and no column: a typo was a guess
            hint = did_you_mean(ref, map(str, reference.columns))
            raise DataError(f"drift: column_map {cur}: {ref}: the reference has no column `{ref}`"
                            f"{f' ({hint})' if hint else ''}; it has {_listed(reference.columns)}")
        reference = reference.assign(**{cur: reference[ref]})
    names = list(columns) if columns else [c for c in reference.columns if c in current.columns
                                           and c not in column_map.values()]
    names += [c for c in column_map if c not in names]
    if not names:  # nothing compared would read as "no drift"
        raise DataError(f"drift: the current data and the reference have no column in common (current: "
                        f"{_listed(current.columns)}; reference: {_listed(reference.columns)}); name the columns "
                        "to compare in `columns`, or pair differently named ones in `column_map`")
    require_columns(current, names, source="drift: the current data")
    require_columns(reference, names, source="drift: the reference")
    for col in th["columns"]:  # a typo here left that column on the global thresholds, silently
        if col not in names:
            hint = did_you_mean(col, names)
            raise DataError(f"drift thresholds: columns.{col}: `{col}` is not a compared column"
                            f"{f' ({hint})' if hint else ''}; compared: {_listed(names)}")
    if len(current) == 0 or len(reference) == 0:
        raise DataError("drift: the current data and the reference must both have rows")
    reference = reference.assign(**{n: _decimals_as_floats(reference[n]) for n in names})
    current = current.assign(**{n: _decimals_as_floats(current[n]) for n in names})
    report: dict[str, Any] = {}
    for name in names:
        kind = column_kind(reference[name], max_categories)
        col_th = {**th["global"], **th["columns"].get(name, {})}
        entry: dict[str, Any] = {"kind": kind, "thresholds": col_th}
        if name in column_map:
            entry["reference_column"] = column_map[name]
        cur = current[name]
        if kind == "numeric" and cur.dtype.kind not in "iufb":
            if reference[name].nunique() <= max_categories:  # codes or labels (served '0'/'1' vs 0/1 trained)
                entry.update(kind="categorical")
                kind = "categorical"
            else:  # a measure that one 'unknown' cell made text: its categories would be mostly `(other)`
                cur, not_numbers = _as_numbers(cur)
                if not_numbers:
                    entry["not_numbers"] = not_numbers
        if kind == "numeric":
            entry.update(_numeric(reference[name], cur, bins))
        elif kind == "categorical":
            entry.update(_categorical(reference[name].astype(object), current[name].astype(object), max_categories,
                                      flags=_is_flags(reference[name])))
        elif kind == "text":
            entry.update(_text(reference[name], current[name], max_tokens=300) or {
                "kind": "skip", "reason": f"skipped: no word appears {_MIN_TOKEN_COUNT} times in the reference's "
                f"{len(reference)} rows, so every word of both sides would be `(rare or new token)` and PSI 0 "
                "whatever the current text; compare with a larger reference"})
        else:
            entry.update(reason="skipped (datetime or identifier-like column)")
        if entry["kind"] == "skip":
            entry["drifted"] = False
            report[name] = entry
            continue
        reasons = []
        if entry["psi"] > col_th["psi"] and entry["chi2_pvalue"] < col_th["chi2_pvalue"]:
            reasons.append(f"PSI {entry['psi']:.3f} > {col_th['psi']} (chi-square p={entry['chi2_pvalue']:.2g})")
        if kind == "numeric" and entry["ks_statistic"] > col_th["ks_statistic"] and entry["ks_pvalue"] < col_th["ks_pvalue"]:
            reasons.append(f"KS {entry['ks_statistic']:.3f} > {col_th['ks_statistic']} (p={entry['ks_pvalue']:.2g})")
        entry["drifted"] = bool(reasons)
        entry["reason"] = "; ".join(reasons) or "stable"
        if not reasons and entry["psi"] > col_th["psi"]:  # say why a high PSI is no drift
            entry["reason"] = (f"stable: PSI {entry['psi']:.3f} > {col_th['psi']} is within sampling noise "
                               f"(chi-square p={entry['chi2_pvalue']:.2g})")
        if entry.get("not_numbers"):
            bad = entry["not_numbers"]
            entry["reason"] += (f"; {bad['count']} current value(s) are not numbers (e.g. "
                                f"{', '.join(repr(v) for v in bad['examples'])}): compared as nulls")
        if entry.get("infinite"):
            inf = entry["infinite"]
            entry["reason"] += (f"; infinite values (±inf): {inf['reference']} in the reference, {inf['current']} in "
                                "the current data, compared as a bucket of their own")
        report[name] = entry
    drifted = [n for n, e in report.items() if e["drifted"]]
    checked = [n for n, e in report.items() if e["kind"] != "skip"]
    return {
        "drift_detected": bool(drifted),
        "drifted_columns": drifted,
        "share_drifted": round(len(drifted) / len(checked), 4) if checked else 0.0,
        "max_psi": max((e.get("psi", 0.0) for e in report.values()), default=0.0),
        "rows": {"reference": int(len(reference)), "current": int(len(current))},
        "columns": report,
    }


def _listed(columns, most: int = 10) -> str:
    names = [f"`{c}`" for c in list(columns)[:most]]
    return (", ".join(names) or "none") + (f" and {len(columns) - most} more" if len(columns) > most else "")


def _thresholds(thresholds: dict | None) -> dict:
    th = dict(thresholds or {})
    cols = th.pop("columns", {}) or {}
    unknown = [k for k in th if k not in DEFAULT_THRESHOLDS]
    if unknown:
        raise DataError(f"drift thresholds: unknown key(s) {', '.join(unknown)}; use {', '.join(DEFAULT_THRESHOLDS)}")
    return {"global": {**DEFAULT_THRESHOLDS, **{k: float(v) for k, v in th.items()}},
            "columns": {str(c): {k: float(v) for k, v in (b or {}).items()} for c, b in cols.items()}}


def _decimals_as_floats(values):
    """A column of decimal.Decimal (a Parquet decimal128 column: SQL NUMERIC, BigQuery, Spark) as floats, else
    as it is: pandas holds them as objects, so a shifted amount was skipped as 'identifier-like', never compared."""
    from decimal import Decimal

    present = values.dropna()
    if values.dtype != object or present.empty or not all(isinstance(v, Decimal) for v in present):
        return values
    return values.map(lambda v: float(v) if isinstance(v, Decimal) else None).astype(float)


def _as_numbers(values) -> tuple:
    """A text column of a numeric reference column as numbers; what does not parse is null (PSI's null bucket)."""
    import pandas as pd

    numbers = pd.to_numeric(values.map(lambda v: v.strip() if isinstance(v, str) else v), errors="coerce")
    bad = values[numbers.isna() & values.notna()]
    return numbers.astype(float), ({"count": int(len(bad)), "examples": [str(v) for v in bad.unique()[:3]]}
                                   if len(bad) else None)


def chi2_pvalue(ref_counts, cur_counts) -> float:
    """p of the chi-square test that both sides' counts over the same buckets come from one distribution.

    PSI alone is an effect size that sampling noise inflates: 100 rows drawn from the reference itself have a
    token PSI near 1 over 300 buckets. A PSI counts as drift only where this test says the difference is real.
    Where the chi-square distribution does not hold (Cochran: an expected count below 1, or over a fifth below 5; a
    window of a few rows), p is simulated: _SIMULATED tables with the same margins (R's `chisq.test(simulate.p.value =
    TRUE)`), seeded, so a re-run decides the same. The asymptotic p of one row in a bucket holding a tenth of the
    reference was 0.012 where the exact one is 0.2: a window of one request was drift, and a retrain.
    """
    import numpy as np
    from scipy import stats

    table = np.array([ref_counts, cur_counts], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0  # one bucket, or an empty side: no difference to test
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if expected.min() >= 1 and (expected < 5).mean() <= 0.2:
        return float(stats.chi2_contingency(table).pvalue)
    buckets = table.sum(axis=0).astype(np.int64)
    cur = np.random.default_rng(0).multivariate_hypergeometric(buckets, int(table[1].sum()), size=_SIMULATED)
    drawn = np.stack([buckets - cur, cur], axis=1)

    def statistic(observed):
        return (((observed - expected) ** 2) / expected).sum(axis=(-2, -1))

    at_least = statistic(drawn) >= statistic(table) * (1 - 1e-9)  # a draw as far from independence as the data
    return float((1 + at_least.sum()) / (1 + _SIMULATED))


_SIMULATED = 4000  # its p's standard error is at most 0.008 (0.0035 near 0.05)


def _shares(counts, total: int):
    return [c / total for c in counts] if total else [0.0] * len(counts)


def _numeric(ref, cur, bins: int) -> dict:
    import numpy as np
    from scipy import stats

    r, c = ref.dropna().to_numpy(dtype=float), cur.dropna().to_numpy(dtype=float)
    if len(r) == 0 or len(c) == 0:  # a side all null: the buckets are values and nulls (its PSI was a made-up 10.0)
        rc, cc = [len(r), len(ref) - len(r)], [len(c), len(cur) - len(c)]
        return {"psi": round(psi(_shares(rc, len(ref)), _shares(cc, len(cur))), 6), "ks_statistic": 0.0,
                "ks_pvalue": 1.0, "chi2_pvalue": chi2_pvalue(rc, cc)}
    # ±inf (a ratio over 0) is a bucket of its own, as null is: in the reference's quantiles it made the top edges
    # inf and NaN, and its mean (Infinity) failed the step's metadata ('Fail to serialize Infinity')
    rf, cf = r[np.isfinite(r)], c[np.isfinite(c)]
    scale = _scale(rf, cf)  # 1.0 but for values near float64's limit
    values = np.unique(rf)
    if 0 < len(values) <= bins:  # discrete (a constant, codes, 0/1 flags): each value a bucket, and each gap between
        # them; quantile bins merged them (a constant 5 moved to 6, or ones from 5% to 50% of a 0/1 column: PSI 0)
        edges = np.sort(np.concatenate([values, np.nextafter(values, np.inf)]))
    else:
        edges = np.unique(np.quantile(rf / scale, np.linspace(0, 1, bins + 1))[1:-1] * scale) if len(rf) else values
    rc = np.bincount(np.searchsorted(edges, rf, side="right"), minlength=len(edges) + 1).tolist()
    cc = np.bincount(np.searchsorted(edges, cf, side="right"), minlength=len(edges) + 1).tolist()
    rc += [len(r) - len(rf), int(ref.isna().sum())]
    cc += [len(c) - len(cf), int(cur.isna().sum())]
    ks = stats.ks_2samp(r, c)  # an infinity is the most extreme value of its side's CDF
    out: dict[str, Any] = {
        "psi": round(psi(_shares(rc, len(ref)), _shares(cc, len(cur))), 6),
        "chi2_pvalue": chi2_pvalue(rc, cc),
        "ks_statistic": round(float(ks.statistic), 6),
        "ks_pvalue": float(ks.pvalue),
        "reference_mean": float((rf / scale).mean() * scale) if len(rf) else None,
        "current_mean": float((cf / scale).mean() * scale) if len(cf) else None,
    }
    if len(rf) < len(r) or len(cf) < len(c):
        out["infinite"] = {"reference": len(r) - len(rf), "current": len(c) - len(cf)}
    return out


def _scale(*values) -> float:
    """A power of two that the finite values are divided by for their mean and quantiles, 1.0 below 2**960.

    Values near float64's limit (1e308) overflowed the mean's sum and the quantiles' differences: the mean was
    inf or NaN, which failed the step's metadata, and the bin edges -inf. Dividing by a power of two is exact.
    """
    import numpy as np

    top = max((float(np.max(np.abs(v))) for v in values if len(v)), default=0.0)
    return float(2.0 ** (int(np.frexp(top)[1]) - 960)) if top > 2.0 ** 960 else 1.0


def _bucketed(ref_values, cur_values, top: int, other: str, min_count: int = 1) -> dict:
    import pandas as pd

    rv, cv = pd.Series(ref_values), pd.Series(cur_values)
    counts = rv.value_counts()
    keep = counts[counts >= min_count].head(top).index  # rare buckets only add sampling noise to PSI
    rb = rv.where(rv.isin(keep), other).value_counts()
    cb = cv.where(cv.isin(keep), other).value_counts()
    labels = sorted(set(rb.index) | set(cb.index), key=str)
    rc, cc = [int(rb.get(k, 0)) for k in labels], [int(cb.get(k, 0)) for k in labels]
    rs, cs = _shares(rc, len(rv)), _shares(cc, len(cv))
    moved = sorted(zip(labels, rs, cs), key=lambda t: -abs(t[2] - t[1]))[:5]
    return {
        "psi": round(psi(rs, cs), 6),
        "chi2_pvalue": chi2_pvalue(rc, cc),
        # a category may be a card number or an address: the report and its JSON show it masked
        "top_changes": [{"value": redact(str(k)), "reference": round(a, 4), "current": round(b, 4)}
                        for k, a, b in moved],
    }


_WHOLE_TEXT = re.compile(r"[+-]?\d+\.0+")


def _category(value) -> str:
    """A category as text by the label rule (data.io.id_text): a whole float is its integer, so a reference label
    column that a blank cell made float (1.0) is the served label '1', not a category of its own (PSI 17, drift, a
    retrain); and so is a whole float written as text ('1.0' in a CSV column that one 'unknown' cell left text)."""
    import pandas as pd

    text = None if pd.api.types.is_scalar(value) and pd.isna(value) else id_text(value)  # None, NaN, NA, NaT
    if text is None:
        return "(null)"
    whole = isinstance(value, str) and _WHOLE_TEXT.fullmatch(text.strip())
    return str(int(text.strip().split(".", 1)[0])) if whole else text


_TRUE, _FALSE = frozenset({"1", "true", "t", "yes"}), frozenset({"0", "false", "f", "no"})


def _flag(value) -> str:
    """A value of a bool reference column's kind as the reference's category: a served tabular row logs a bool
    feature as 1.0 / 0.0, JSON and many CSVs write true / false; each was a category the reference never had
    (`(other)`: PSI 17.7, drift, a retrain in every window, of the same data)."""
    text = _category(value)
    low = text.strip().lower()
    return "True" if low in _TRUE else "False" if low in _FALSE else text


def _is_flags(ref) -> bool:
    """A bool column, or one a null made object (True, False, None)."""
    import numpy as np

    present = ref.dropna()
    return ref.dtype.kind == "b" or (ref.dtype == object and not present.empty
                                     and all(isinstance(v, (bool, np.bool_)) for v in present))


def _categorical(ref, cur, top: int, flags: bool = False) -> dict:
    # no fillna: on a float column made object it warned of pandas' coming downcasting change in every run's log
    category = _flag if flags else _category
    return _bucketed(ref.map(category), cur.map(category), top, "(other)")


def _text(ref, cur, max_tokens: int) -> dict | None:
    """PSI of the token distributions; None when no reference token is frequent enough to be a bucket."""
    from collections import Counter

    def tokens(s):
        return [t for v in s.fillna("").astype(str).str.lower() for t in _TOKEN.findall(v)] or ["(empty)"]

    ref_tokens = tokens(ref)
    if Counter(ref_tokens).most_common(1)[0][1] < _MIN_TOKEN_COUNT:
        return None
    out = _bucketed(ref_tokens, tokens(cur), max_tokens, "(rare or new token)", min_count=_MIN_TOKEN_COUNT)
    out["token_basis"] = f"top {max_tokens} reference tokens seen at least {_MIN_TOKEN_COUNT} times"
    return out
