"""A Model's inputs from a table's columns: the text column or the feature columns it was trained on.

One rule for every reader of rows with a model: evaluate (the holdout), the latency gate, and distillation
(the teacher reads the training rows through its own column, which need not be the student's).
"""

from __future__ import annotations

import math

from kubepipe.components.checks import did_you_mean
from kubepipe.components.data.io import require_text
from kubepipe.components.errors import ComponentError, DataError, ModelError

__all__ = ["model_inputs"]


def model_inputs(model, df, *, what: str = "model", where: str = "holdout"):
    """The model's inputs from the columns of `df` (`where` names that table in messages); a clear error when
    the columns do not fit the model."""
    spec, cols = model.input_spec, [str(c) for c in df.columns]
    if len(df) == 0:  # a header-only CSV's columns read as text: a tabular model's holdout was 'not numeric'
        raise DataError(f"the {where} has no rows (a header only?); {what} needs at least one row to read")
    if model.task == "text-classification":
        col = spec.get("text_column")
        if col not in cols:
            numeric = [c for c in cols if df[c].dtype.kind in "fiub"]
            looks = (f"; the {where} looks tabular (numeric columns {numeric[:6]})"
                     if len(numeric) >= max(1, len(cols) - 2) else "")
            hint = did_you_mean(col, cols)
            raise ComponentError(
                f"{what} is a text-classification model reading column `{col}`, but the {where} has no such "
                f"column (columns: {cols}){looks}. Use a model trained for this data, or rename the column"
                + (f" ({hint})" if hint else ""))
        texts = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in df[col].tolist()]
        require_text(texts, col, source=where, hint=f"{what} reads this column; check the upstream step's output")
        return texts
    if model.task == "tabular-classification":
        feats = [str(c) for c in spec.get("feature_columns") or []]
        missing = [c for c in feats if c not in cols]
        if missing:
            texty = [c for c in cols if df[c].dtype.kind == "O"]
            looks = (f"; the {where} looks like text data (text columns {texty[:4]})"
                     if texty and len(missing) == len(feats) else "")
            raise ComponentError(
                f"{what} is a tabular-classification model needing feature columns {feats}; the {where} lacks "
                f"{missing} (columns: {cols}){looks}. Use a model trained for this data")
        bad = [c for c in feats if df[c].dtype.kind not in "fiub"]
        if bad:
            raise DataError(f"{where} feature column(s) {bad} are not numeric ({what} is tabular); "
                            "fix their dtype upstream")
        return df[feats]
    raise ModelError(f"{what} has task {model.task!r}; only text- and tabular-classification models read rows")
