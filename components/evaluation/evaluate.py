"""Evaluate a challenger Model on a holdout Dataset, re-evaluate the champion on the same rows, apply the gate.

`evaluate_model(...)` returns the evaluation record (a JSON-able dict) that the
`evaluate` component writes out and `register-model` stores in the registry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from kubepipe.components.checks import CheckIssue, did_you_mean, issues_text
from kubepipe.components.data.io import as_label, id_text, label_text, labelled_rows, whole_float_label
from kubepipe.components.errors import ComponentError, DataError, ModelError
from kubepipe.components.evaluation.gate import champion_of, decide, gate_issues, unloadable_champion
from kubepipe.components.evaluation.metric_names import (
    BINARY_ONLY, PER_CLASS, SERVING, TABULAR_TOKENS, TABULAR_TOKENS_HINT,
)
from kubepipe.components.evaluation.metrics import classification_metrics, cpu_latency_ms
from kubepipe.components.evaluation.serving_latency import measure_serving, serving_note, settings_of, wants_serving
from kubepipe.components.training.model_inputs import model_inputs

__all__ = ["evaluate_model", "model_inputs", "label_indices", "score", "scalar_metrics"]

_BATCH = 8192  # few large forward passes: per-call overhead dominates small CPU batches


def scalar_metrics(m: dict) -> dict:
    """The flat numeric metrics (what thresholds and the Metrics artifact use)."""
    return {k: float(v) for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def label_indices(df, label_column: str, labels: list[str], *, where: str = "holdout") -> np.ndarray:
    cols = [str(c) for c in df.columns]
    if label_column not in cols:
        hint = did_you_mean(label_column, cols)
        raise DataError(f"{where}: label column `{label_column}` is missing (columns: {cols})"
                        + (f"; {hint}" if hint else "; set `label_column` on the evaluate step"))
    as_str = [label_text(v) for v in df[label_column].tolist()]  # the trainer's rule: 3.0 is the label `3`
    empty = sum(v is None for v in as_str)  # NaN, None or a blank string
    if empty:  # a precondition (the indices are by row): evaluate_model leaves such rows out first, as training does
        raise DataError(f"{where}: label column `{label_column}` has {empty} empty value(s); leave those rows out "
                        "first (data.io.labelled_rows, the rule training and evaluate follow)")
    texts = [v for v in as_str if v is not None]  # all of them: none is empty
    index = {lab: i for i, lab in enumerate(labels)}
    # a model trained before labels followed id_text's rule (a champion) names the class `3` as '3.0'
    index.update({alias: i for i, lab in enumerate(labels)
                  if (alias := whole_float_label(lab)) is not None and alias not in index})
    unknown = sorted({v for v in texts if v not in index})
    if unknown:
        raise DataError(f"{where}: column `{label_column}` has label(s) the model was not trained on: {unknown[:5]}"
                        f"{' ...' if len(unknown) > 5 else ''} (model labels: {labels[:10]}). Use a holdout drawn "
                        "from the training label set, or retrain")
    return np.array([index[v] for v in texts], dtype=int)


def _require_two_classes(y: np.ndarray, label_column: str, labels: list[str]) -> None:
    """A holdout of one class scores a classifier that answers that class everywhere as f1_macro 1.0 (sklearn
    averages over the labels present), and the gate passed it: nothing told the classes apart. Refused."""
    present = sorted(set(y.tolist()))
    if len(present) == 1:  # no rows at all: _proba names it
        raise DataError(f"holdout: label column `{label_column}` holds one class ({labels[present[0]]!r}) in all "
                        f"{len(y)} row(s): a classifier's scores on it say nothing (f1_macro is 1.0 for a model "
                        f"that answers {labels[present[0]]!r} to everything), so the gate cannot decide; draw a "
                        f"holdout with rows of at least two of the model's labels {labels[:10]}"
                        f"{' ...' if len(labels) > 10 else ''} (a stratified split), or check `label_column`")


def _proba(model, inputs) -> np.ndarray:
    n = len(inputs)  # never 0: model_inputs refuses a table without rows
    parts = []
    for start in range(0, n, _BATCH):
        chunk = inputs.iloc[start:start + _BATCH] if hasattr(inputs, "iloc") else inputs[start:start + _BATCH]
        parts.append(np.asarray(model.predict_proba(chunk), dtype=float))
    return np.concatenate(parts)


def _require_finite(model, inputs, proba: np.ndarray, what: str) -> None:
    """A row the model answers with NaN (a tabular feature overflowing float32 once standardised) made the
    metrics NaN or skewed, and the gate passed with `log_loss: nan`: it is named, as the server names it."""
    bad = np.flatnonzero(~np.isfinite(proba).all(axis=1))
    if not len(bad):
        return
    i = int(bad[0])
    enc: Any = getattr(model, "encoder", None)  # a tabular model's: it names the overflowing feature
    why = (enc.overflow_note(enc.matrix(inputs.iloc[[i]])[0]) if hasattr(enc, "overflow_note") and
           hasattr(inputs, "iloc") else "not numbers (NaN)")
    raise DataError(f"holdout row {i}: {what}'s probabilities are not numbers ({len(bad)} row(s)): {why}")


def score(model, df, label_column: str, *, what: str = "model", labels: list[str] | None = None,
          positive: int = 1, y: np.ndarray | None = None, inputs: Any = None) -> tuple[dict, np.ndarray]:
    """(metrics, proba in `labels` order, then any class only the model has) of one model on the holdout. `labels` defaults to the model's;
    `positive`: the index in `labels` of a two-label task's positive class; `y`: the holdout's label indices in
    `labels` order, and `inputs` the model's, when the caller read them (evaluate_model reads the labels once for
    every use)."""
    labels = list(labels or model.labels)
    inputs = model_inputs(model, df, what=what) if inputs is None else inputs
    y = label_indices(df, label_column, labels) if y is None else y
    proba = _proba(model, inputs)
    _require_finite(model, inputs, proba, what)
    scored = labels
    if list(model.labels) != labels:  # champion with another label order/set: align its columns
        # a class only it has keeps its column, after the task's: dropping it (and renormalising) credited a
        # champion answering `maybe` everywhere with its second choice, and the gate rejected a better candidate
        own = [as_label(lab, labels) for lab in model.labels]
        scored = labels + [lab for lab in own if lab not in labels]
        aligned = np.zeros((len(proba), len(scored)))
        for j, lab in enumerate(own):
            aligned[:, scored.index(lab)] = proba[:, j]
        proba = aligned
    m = classification_metrics(y, proba, scored, positive=positive, task_labels=len(labels))
    m["latency_ms"] = cpu_latency_ms(model.predict_proba, inputs)
    return m, proba


MAX_SLICES = 1000
MISSING_SLICE = "(missing)"  # the rows whose slice value is blank (NaN, None, NA), one slice


def _slice_metrics(df, y_proba, labels, y: np.ndarray, slices, positive: int = 1) -> dict:
    col, min_rows = slices["column"], int(slices.get("min_rows", 1))
    if col not in df.columns:
        hint = did_you_mean(col, [str(c) for c in df.columns])
        raise DataError(f"holdout: slice column `{col}` is missing (columns: {list(map(str, df.columns))})"
                        + (f"; {hint}" if hint else ""))
    out = {}
    # named by the data layer's rule: an int column with a blank cell reads as floats, its slice `3` is not `3.0`
    values = np.array([v if (v := id_text(cell)) is not None else MISSING_SLICE for cell in df[col].tolist()],
                      dtype=object)
    distinct = set(values)
    if len(distinct) > MAX_SLICES:  # an id column: every value its own slice (~1 s and 1 MB per 1,000 rows)
        raise DataError(f"holdout: slice column `{col}` has {len(distinct):,} distinct values, more than "
                        f"{MAX_SLICES:,}; slice on a column that groups rows (a country, a segment), or add a "
                        "column of buckets with a load-data or user step")
    for v in sorted(distinct):
        mask = values == v
        out[v] = None if mask.sum() < min_rows else scalar_metrics(
            classification_metrics(y[mask], y_proba[mask], labels, positive=positive))
    return out


def positive_index(labels: list[str], positive_label: str) -> int:
    """The index of a two-label model's positive class: `positive_label`, else the second label in sorted order
    (with `fraud`/`legit` that is `legit`: average_precision and the PR curve were about the wrong class)."""
    if not positive_label:
        return 1
    if len(labels) != 2:
        raise ComponentError(f"evaluate: positive_label {positive_label!r} applies to a two-label model; this one has "
                             f"{len(labels)} labels ({', '.join(labels[:10])}): remove positive_label")
    if positive_label not in labels:
        hint = did_you_mean(positive_label, labels)
        raise ComponentError(f"evaluate: positive_label {positive_label!r} is not a label of the model (its labels: "
                             f"{', '.join(labels)})" + (f"; {hint}" if hint else ""))
    return labels.index(positive_label)


def _champion(registry_uri, model_name, model, df, label_column, y: np.ndarray, positive: int = 1,
              model_dir: str = ""):
    from kubepipe.components.registry import step_registry
    from kubepipe.components.registry.integrity import holds
    from kubepipe.components.training.artifact import load_model

    reg = step_registry(registry_uri)
    champ = champion_of(reg, model_name)
    if champ is None:
        return None
    what = f"champion `{model_name}` v{champ.version}"
    path = os.fspath(reg.model_path(model_name, champ.version))  # evaluate_model drops it after its last use
    try:
        try:
            cm = load_model(path)
        except ModelError as exc:  # was the loader's 'retrain or re-copy the artifact', as if the candidate was
            raise unloadable_champion(champ, exc) from None
        if cm.task != model.task:
            raise ComponentError(f"{what} is a {cm.task} model but the challenger is {model.task}; they cannot be "
                                 "compared on one holdout. Set baseline: none, or force the gate with a reason")
        try:
            metrics, _ = score(cm, df, label_column, what=what, labels=list(model.labels), positive=positive, y=y)
        except (DataError, ComponentError) as exc:
            raise ComponentError(f"cannot re-evaluate {what} on this holdout: {exc}. Set baseline: none, or force "
                                 "the gate with a reason") from None
    except BaseException:
        reg.store.drop_local(path)
        raise
    return {"version": champ.version, "metrics": scalar_metrics(metrics), "run_id": champ.run_id, "path": path,
            "uri": champ.model_uri, "same_files": bool(model_dir) and holds(champ, model_dir)}


def _near_champion(registry_uri, model_name: str) -> str:
    """A first run's hint when the registry holds a champion under a name close to `model_name` (a typo there
    skips every relative rule, unsaid): 'model_name `x` has no champion; did you mean `y` (champion v3)? ...'."""
    from kubepipe.components.registry import step_registry

    reg = step_registry(registry_uri)
    champions = {n: v for n in reg.names() if n != model_name and (v := reg.aliases(n).get("champion")) is not None}
    hint = did_you_mean(model_name, champions)
    if not hint:
        return ""
    best = hint.split("`")[1]
    return (f"model_name `{model_name}` has no champion in the registry, `{best}` has (v{champions[best]}): "
            f"{hint} Fix model_name if so; a new model's first run needs nothing")


def evaluate_model(
    model_dir: str, holdout_path: str, *, label_column: str = "", thresholds: dict | None = None,
    relative: dict | None = None, slices: dict | None = None, baseline: str = "champion", model_name: str = "",
    registry_uri: str = "", force: bool = False, force_reason: str = "", model=None, latency: dict | None = None,
    positive_label: str = "",
) -> dict:
    """Score challenger (and champion) on the holdout and decide. `model` may be passed pre-loaded.

    With `latency:` set, or a serving metric (p50_ms, p99_ms, tokens_per_s) in the gate, the challenger
    is also measured on the serving path; the champion too when a relative rule names a serving metric."""
    from kubepipe.components.data.io import read_table
    from kubepipe.components.kfp_values import whole_numbers

    slices = whole_numbers(slices, ("min_rows",))  # a whole `dict` param: KFP delivers 20 as 20.0
    issues = gate_issues(thresholds, relative, slices, baseline, force, force_reason, latency)
    if issues:  # check again at run time: parameters may come from run-time values
        raise ComponentError(issues_text("evaluate", issues))
    if baseline == "champion" and not model_name:
        raise ComponentError("evaluate: no model name to look the champion up by; set `model_name` (or baseline: none)")
    df = read_table(holdout_path, "holdout", "evaluate reads a hand-made CSV as UTF-8, comma-separated; for any "
                    "other file, read it with a load-data step and wire its dataset")
    if model is None:
        from kubepipe.components.training.artifact import load_model
        model = load_model(model_dir)
    _require_unseen_holdout(model, holdout_path)
    issues = model_metric_issues(list(model.labels), thresholds, relative, slices,
                                 has_tokens=getattr(model, "has_tokens", True))
    if issues:  # a name no holdout can give this model would reject every run as "not computed"
        raise ComponentError(issues_text("evaluate", issues))
    label_column = label_column or trained_label_column(model, model_dir)
    df, unlabelled = labelled_rows(df, label_column, "holdout")  # training's rule: a row without a label is left out
    if unlabelled and not len(df):
        raise DataError(f"holdout: label column `{label_column}` is empty in all {unlabelled} row(s): no row to "
                        "score; set `label_column` to the column that holds the classes, or check the upstream step")
    seen = _require_unseen_rows(model, df)
    labels = list(model.labels)
    positive = positive_index(labels, positive_label)
    inputs = model_inputs(model, df, what=f"model {model_dir}")  # a holdout the model cannot read is said first
    y = label_indices(df, label_column, labels)  # read once: the scores, the checks, slices and the PR curve
    metrics, proba = score(model, df, label_column, what=f"model {model_dir}", positive=positive, y=y, inputs=inputs)
    _require_two_classes(y, label_column, labels)
    slice_m = _slice_metrics(df, proba, labels, y, slices, positive) if slices else None
    champion = (_champion(registry_uri, model_name, model, df, label_column, y, positive, model_dir)
                if baseline == "champion" else None)
    try:
        serving = _serving(model_dir, df, champion, thresholds, relative, latency)
    finally:
        if champion is not None:  # a remote registry's download, read for the last time
            from kubepipe.components.registry import step_registry

            step_registry(registry_uri).store.drop_local(champion["path"])
            champion["path"] = champion.pop("uri")  # the record names the registry's copy, not the download
    if serving:
        metrics.update(serving["challenger"]["metrics"])
        if "champion" in serving and champion is not None:  # measured only beside a champion
            champion["metrics"].update(serving["champion"]["metrics"])
    gate = decide(
        scalar_metrics(metrics), thresholds=thresholds, relative=relative, slices=slices, slice_metrics=slice_m,
        champion_metrics=champion["metrics"] if champion else None,
        champion_label=f"champion v{champion['version']}" if champion else "champion",
        baseline=baseline, force=force, force_reason=force_reason,
        measured=serving_note(serving["challenger"]) if serving else "",
        champion_same=bool(champion and champion["same_files"]),
        first_run_hint=_near_champion(registry_uri, model_name) if baseline == "champion" and champion is None
        else "",
    )
    if unlabelled:  # scored on fewer rows than the file holds: the decision says so
        gate.decision += (f"; scored on {len(df)} labelled holdout row(s), {unlabelled} with no `{label_column}` "
                          "left out")
    return {
        "model_name": model_name, "task": model.task, "labels": labels, "label_column": label_column,
        "metrics": scalar_metrics(metrics),
        "confusion_matrix": metrics["confusion_matrix"], "calibration": metrics["calibration"],
        "support": metrics["support"], "roc": metrics.get("roc"), "positive_label": metrics.get("positive_label"),
        "pr": _pr_points(proba, y, positive) if len(labels) == 2 else None,
        "slices": {"column": slices["column"], "metrics": slice_m} if slices else None,
        "champion": champion, "baseline": baseline, "serving": serving,
        "passed": gate.passed, "decision": gate.decision, "gate": gate.to_dict(), "audit": gate.audit,
        "holdout": {"path": os.fspath(holdout_path), "rows": int(len(df)), "unlabelled": unlabelled,
                    "seen_rows": seen},
        "model": {"path": os.fspath(model_dir), "architecture": getattr(model, "architecture", ""),
                  # less the row sketch (~20 KB of hashes, read from the model itself)
                  "metadata": {k: v for k, v in (getattr(model, "metadata", {}) or {}).items() if k != "row_sketch"},
                  # register-model checks that it registers these weights (not another step's model)
                  "weights_sha256": (getattr(model, "spec", None) or {}).get("weights_sha256")},
    }


def _require_unseen_holdout(model, holdout_path) -> None:
    """A holdout with the bytes of the model's training (or validation) data would gate on memorised rows: the
    holdout wired from the training data's step, or `holdout_uri` naming the training file."""
    from kubepipe.util import sha256_file

    meta = getattr(model, "metadata", None) or {}
    seen = {"training": (meta.get("training_data") or {}).get("content_hash"),
            "validation": meta.get("validation_data_hash")}
    if not Path(holdout_path).is_file():  # a directory artifact (read_dataset takes its one file): not a step's hash
        return
    digest = "sha256:" + sha256_file(holdout_path)
    for role, value in seen.items():
        if value == digest:
            raise DataError(f"holdout {holdout_path} is the model's {role} data (content hash {digest[:19]}...): the "
                            "gate would score rows the model learned from; wire a holdout it did not train on")


# Half the rows the sketch tells apart, enough of them not to be chance, and well above the share rows of the same
# data share by chance (a table of a few binary features repeats nearly every row: a fair split overlaps ~100%)
_SEEN_SHARE, _SEEN_MIN, _SEEN_ABOVE_CHANCE = 0.5, 5, 0.3


def _require_unseen_rows(model, df) -> dict:
    """The holdout's rows against the sketches of the model's training and validation rows (data.row_sketch): the
    training data re-saved (another column order, CRLF, quoting, CSV for Parquet) or a holdout drawn from it has
    other bytes and the same rows. Refused when at least half of the holdout rows a sketch tells apart are the
    model's, beyond what rows of the same data share by chance; else {role: {checked, found, share, by_chance}} for
    the record."""
    from kubepipe.components.data.row_sketch import overlap

    sketches = (getattr(model, "metadata", None) or {}).get("row_sketch") or {}
    found = {}
    for role in ("training", "validation"):
        got = overlap(sketches[role], df) if isinstance(sketches.get(role), dict) else None
        if got is None:  # an older model, or a holdout without the columns (model_inputs says so)
            continue
        found[role] = got
        if got["found"] >= _SEEN_MIN and got["share"] >= max(_SEEN_SHARE, got["by_chance"] + _SEEN_ABOVE_CHANCE):
            raise DataError(f"holdout: about {got['share']:.0%} of its rows are rows of the model's {role} data "
                            f"({got['found']} of the {got['checked']} holdout rows its sample of {role} rows tells "
                            f"apart, compared by their values in {', '.join(sketches[role]['columns'])}, not by the "
                            "file's bytes): the gate would score rows the model learned from; wire a holdout it "
                            "did not train on")
    return found


def model_metric_issues(labels: list[str], thresholds=None, relative=None, slices=None, *,
                        has_tokens: bool = True) -> list[CheckIssue]:
    """Gate metrics this model can never have: a per-class metric of a label it was not trained on
    (`f1:digitl`), a binary-only metric (roc_auc) of a model with more than two labels, tokens_per_s of a model
    whose inputs have no tokens (`LoadedModel.has_tokens`: tabular)."""
    named: list[tuple[tuple, Any]] = [(("thresholds", m), m) for m in thresholds or {}] + [(("relative", m), m) for m in relative or {}]
    inner = (slices or {}).get("thresholds")
    named += [(("slices", "thresholds", m), m) for m in inner] if isinstance(inner, dict) else []
    issues = []
    for path, metric in named:
        head, sep, label = str(metric).partition(":")
        if sep and head in PER_CLASS and label not in labels:
            issues.append(CheckIssue(path, f"the model has no label `{label}` (labels: {', '.join(labels[:20])})",
                                     did_you_mean(metric, [f"{head}:{lab}" for lab in labels])
                                     or "name a label the model was trained on"))
        elif metric in BINARY_ONLY and len(labels) != 2:
            issues.append(CheckIssue(path, f"`{metric}` is for binary tasks; this model has {len(labels)} labels",
                                     "use f1_macro, or a per-class metric such as recall:<label>"))
        elif metric == "tokens_per_s" and not has_tokens:
            issues.append(CheckIssue(path, TABULAR_TOKENS, TABULAR_TOKENS_HINT))
    return issues


def _serving(model_dir, df, champion, thresholds, relative, latency) -> dict | None:
    """Serving figures of the challenger (and of the champion when a relative rule needs them), side by side."""
    if not wants_serving(thresholds, relative, latency):
        return None
    dirs = {"challenger": os.fspath(model_dir)}
    if champion is not None and set(relative or {}) & set(SERVING):
        dirs["champion"] = champion["path"]
    return measure_serving(dirs, lambda m: model_inputs(m, df, what=f"model {m.path}"), settings_of(latency))


def trained_label_column(model, model_dir) -> str:
    """The label column the model was trained on (its metadata's config); never a silent `label`."""
    config = (getattr(model, "metadata", None) or {}).get("config") or {}
    column = config.get("label_column") if isinstance(config, dict) else None
    if not isinstance(column, str) or not column:
        raise ComponentError(f"evaluate: `label_column` is not set and the model {model_dir} does not record the "
                             "column it was trained on; set `label_column` on the evaluate step")
    return column


def _pr_points(proba, y: np.ndarray, positive: int = 1) -> dict:
    from kubepipe.components.evaluation.metrics import pr_curve

    precision, recall = pr_curve(y == positive, proba[:, positive])
    return {"precision": precision, "recall": recall}
