"""The training set: columns checked, labels mapped, validation split, inputs encoded once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from kubepipe.components.checks import did_you_mean
from kubepipe.components.data.io import label_text, labelled_rows, require_text
from kubepipe.components.data.padded import PADDED
from kubepipe.components.errors import DataError, ModelError
from kubepipe.components.training.config import TrainConfig
from kubepipe.components.training.encoders import ENCODINGS, Encoder, TabularEncoder

__all__ = ["TrainSet", "prepare", "resolve_columns", "stratified_split"]

log = logging.getLogger(__name__)


@dataclass
class TrainSet:
    labels: list[str]
    columns: dict  # {"text_column": c} | {"feature_columns": [...]}
    train: dict  # encoded arrays, first dim = rows
    y_train: np.ndarray
    val: dict | None
    y_val: np.ndarray | None
    train_tokens: int | None  # per epoch, for tokens/s; None: the encoder has no tokens (tabular)
    soft: np.ndarray | None = None  # a teacher's logits [n_train, n_labels] (distillation), else None

    @property
    def n_train(self) -> int:
        return len(self.y_train)


def _require(df, column: str, where: str, role: str) -> None:
    if column not in df.columns:
        hint = did_you_mean(column, [str(c) for c in df.columns])
        raise DataError(f"{where}: {role} column {column!r} not found; columns are {list(map(str, df.columns))}"
                        + (f"; {hint}" if hint else f". Set `{role}_column` to one of them"))


def resolve_columns(df, cfg: TrainConfig, tabular: bool, where: str) -> dict:
    """The input columns: as configured, else inferred (the one text column / all numeric columns)."""
    others = [str(c) for c in df.columns if str(c) != cfg.label_column]
    if tabular:
        cols = cfg.feature_columns or [c for c in others if df[c].dtype.kind in "biuf"]
        if not cols:
            raise DataError(f"{where}: no numeric feature columns found; set `feature_columns`")
        for c in cols:
            _require(df, c, where, "feature")
            if df[c].dtype.kind not in "biufc":
                raise DataError(f"{where}: feature column {c!r} is {df[c].dtype}, not numeric; "
                                f"drop it from `feature_columns` or encode it as numbers" + _padded_hint(df[c], c))
        return {"feature_columns": list(cols)}
    if cfg.text_column:
        _require(df, cfg.text_column, where, "text")
        return {"text_column": cfg.text_column}
    texts = [c for c in others if df[c].dtype.kind in "OSU" or str(df[c].dtype) in ("string", "str")]
    if len(texts) != 1:
        raise DataError(f"{where}: cannot tell which column holds the text ({texts or 'no string columns'}); "
                        f"set `text_column`")
    return {"text_column": texts[0]}


def _padded_hint(column, name: str) -> str:
    """How to read a CSV column of zero-padded numbers (`07`), which the data layer keeps as text, as numbers."""
    import pandas as pd

    present = column.dropna().astype(str)
    padded = present[present.str.contains(PADDED)]
    if not len(padded) or pd.to_numeric(present, errors="coerce").isna().any():
        return ""
    return (f" (its cells are numbers written with a leading zero, e.g. {padded.iloc[0]!r}, which a CSV "
            f"keeps as text: read the file with a load-data step with `dtypes: {{{name}: float}}`)")


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): about `fraction` of each class to validation, at least one row kept for training."""
    rng = np.random.default_rng(seed)
    val = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        take = min(int(round(fraction * len(idx))), len(idx) - 1)
        val.append(idx[:take])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx


def _label_texts(values) -> np.ndarray:
    """Each label as text by the data layer's one rule (an integer label column with a blank cell reads as
    floats: 3.0 is the label `3`, as the holdout and the server name it); a missing or blank label is None."""
    return np.array([label_text(v) for v in values.tolist()], dtype=object)


def _inputs(df, columns: dict):
    if "text_column" in columns:
        return df[columns["text_column"]].tolist()
    return df[columns["feature_columns"]]


def _require_distinct(labels: list[str], column: str, where: str) -> None:
    """Two labels that differ only in surrounding whitespace (`fuel` and `fuel `) are one class mistyped:
    trained apart, the model splits that class's rows between them."""
    seen: dict[str, str] = {}
    for lab in labels:
        other = seen.setdefault(lab.strip(), lab)
        if other != lab:
            raise DataError(f"{where}: label column {column!r} holds {other!r} and {lab!r}, which differ only in "
                            "spaces around them: they would train as two classes; strip the column in the source "
                            "(or the step that makes it), and catch it early with a validate-data "
                            "`expect_column_values_to_match_regex: {column: ..., regex: '^\\S(.*\\S)?$'}`")


def _require_in_range(encoder, frame, encoded: dict, columns: dict, where: str) -> None:
    """A row whose feature overflows float32 once standardised is encoded as NaN (TabularEncoder.encode): the
    model answers it with NaN, so a validation row made val_loss NaN for every epoch and its prediction a
    guess. It is named as evaluate and the server name it."""
    bad = np.flatnonzero(np.isnan(encoded["x"]).any(axis=1))
    if len(bad):
        row = frame[columns["feature_columns"]].iloc[int(bad[0])].to_numpy(dtype=np.float64)
        raise DataError(f"{where}: row {frame.index[int(bad[0])]} ({len(bad)} row(s) in all): "
                        f"{encoder.overflow_note(row)}; fix the value or drop the row upstream")


def _require_scalable(encoder, frame, columns: dict, where: str) -> None:
    """A feature one extreme value scales to nothing (TabularEncoder.unscalable) trained as a column of zeros,
    unsaid: it is refused naming the column, the row and the value."""
    found = encoder.unscalable(_inputs(frame, columns))
    if found is not None:
        j, pos, why = found
        column = columns["feature_columns"][j]
        value = float(frame[column].iloc[pos])
        row = frame.index[pos]
        if why == "outlier":
            raise DataError(f"{where}: feature column {column!r}: row {row} holds {value:g}, so far from the column's "
                            f"other values that standardising it (std {encoder.std[j]:.3g}) maps the middle half of "
                            "them to one value; the model would read the column as a flag for that row alone: fix "
                            "the value (its units?) or drop the row upstream, or rescale the column (log, clip)")
        said = (f"row {row} holds {value:g}, which makes the column's variance overflow float64"
                if why == "overflow" else f"its values spread by less than 1e-12 (row {row} holds {value:g}), "
                "too little to standardise")
        raise DataError(f"{where}: feature column {column!r}: {said}; the model would read the whole column as ~0: "
                        "fix the value (its units?) or drop the row upstream, or rescale the column")


def prepare(train_df, val_df, cfg: TrainConfig, encoding: str, encoder_kwargs: dict,
            where: str = "dataset", val_where: str = "validation", teacher=None,
            teacher_device: str = "cpu") -> tuple[TrainSet, Encoder]:
    """Check the frames, map labels, split, fit the encoder and encode every row once (and, with a
    `teacher` LoadedModel, its logits for every training row)."""
    if len(train_df) == 0:
        raise DataError(f"{where}: the training dataset is empty (0 rows); check the upstream step's output")
    _require(train_df, cfg.label_column, where, "label")
    tabular = encoding == "tabular"
    columns = resolve_columns(train_df, cfg, tabular, where)
    train_df, blank = labelled_rows(train_df, cfg.label_column, where)
    if len(train_df) == 0:
        raise DataError(f"{where}: label column {cfg.label_column!r} is empty in all {blank} row(s); set "
                        "`label_column` to the column that holds the classes, or check the upstream step's output")
    y_all = _label_texts(train_df[cfg.label_column])
    if not tabular:
        require_text(train_df[columns["text_column"]].tolist(), columns["text_column"], source=where,
                     hint="check the upstream step's output, or set `text_column` to the column that holds the text")
    labels = sorted(set(y_all))
    _require_distinct(labels, cfg.label_column, where)
    if len(labels) < 2:
        raise DataError(f"{where}: label column {cfg.label_column!r} has one class ({labels[0]!r}); "
                        f"a classifier needs at least two")
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[v] for v in y_all], dtype=np.int64)
    if val_df is not None:
        _require(val_df, cfg.label_column, val_where, "label")
        for col in columns.get("feature_columns", [columns.get("text_column")]):
            _require(val_df, col, val_where, "feature" if tabular else "text")
        val_df, blank = labelled_rows(val_df, cfg.label_column, val_where)  # as the training rows
        val_labels = _label_texts(val_df[cfg.label_column])
        known = np.array([t in index for t in val_labels], dtype=bool)
        unseen = sorted({t for t in val_labels if t not in index})
        if not known.any():  # it trained on, unsaid but for a warning, with no validation score at all
            why = ("it has no rows" if not blank and not unseen else f"every row's {cfg.label_column!r} is empty"
                   if not unseen else f"its labels {unseen[:5]}{' ...' if len(unseen) > 5 else ''} are none of "
                   f"the training data's {labels[:10]}{' ...' if len(labels) > 10 else ''}")
            raise DataError(f"{val_where}: no validation row to score: {why}; wire held-out rows of the training "
                            "classes as `validation`, or leave it out to hold out `validation_fraction` of the dataset")
        if unseen:
            log.warning("%s: ignoring %d row(s) whose label is not in the training data: %s", val_where,
                        int((~known).sum()), unseen[:5])
        val_df = val_df[known]
        if not tabular:  # scored on no text, val_loss and the kept epoch were the label frequencies'
            require_text(val_df[columns["text_column"]].tolist(), columns["text_column"], source=val_where,
                         hint="check the step that makes the validation dataset")
        train_idx, val_frame = np.arange(len(y)), val_df
    elif cfg.validation_fraction > 0:
        train_idx, val_idx = stratified_split(y, cfg.validation_fraction, cfg.seed)
        val_frame = train_df.iloc[val_idx]
    else:
        train_idx, val_frame = np.arange(len(y)), None
    train_frame = train_df.iloc[train_idx]
    if tabular:
        encoder: Encoder = TabularEncoder(columns["feature_columns"]).fit(_inputs(train_frame, columns))
        _require_scalable(encoder, train_frame, columns, where)
    else:
        try:
            encoder = ENCODINGS[encoding](**encoder_kwargs)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"bad preprocessing hyperparameters {encoder_kwargs}: {exc}") from None
    train_inputs = _inputs(train_frame, columns)
    data = TrainSet(labels=labels, columns=columns, train=encoder.encode(train_inputs), y_train=y[train_idx],
                    val=None, y_val=None,
                    train_tokens=encoder.count_tokens(train_inputs) if encoder.has_tokens else None)
    if teacher is not None:
        from kubepipe.components.training.distill import teacher_logits

        from kubepipe.components.training.model_inputs import model_inputs

        # the teacher reads the rows as it was trained to: its own text or feature columns, not the student's
        rows = model_inputs(teacher, train_frame, what=f"teacher {teacher.path}", where=where)
        data.soft = teacher_logits(teacher, rows, labels, teacher_device)
    if tabular:
        _require_in_range(encoder, train_frame, data.train, columns, where)
    if val_frame is not None and len(val_frame):
        data.val = encoder.encode(_inputs(val_frame, columns))
        if tabular:
            _require_in_range(encoder, val_frame, data.val, columns, val_where)
        data.y_val = np.array([index[v] for v in _label_texts(val_frame[cfg.label_column])], dtype=np.int64)
    return data, encoder
