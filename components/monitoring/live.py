"""Live quality: delayed labels joined to the prediction log, scored, recorded per model version.

Labels arrive later (chargebacks, manual review) as a CSV or Parquet of `request_id, label` (and
`instance` for requests that carried several rows; default 0). They are joined to the logged
predictions on (request_id, instance) and scored with the evaluation gate's own metrics module
(`evaluation.metrics.label_scores`: the log keeps the served label, not every probability, so
the label-based metrics: accuracy, f1_macro, precision_macro, recall_macro, f1_micro and per
class). Thresholds use the gate's syntax and its comparison (`{f1_macro: {min: 0.85}}`).
A (request_id, instance) the log holds more than once (a client that reuses its `X-Request-Id`) is one label for
the first logged prediction only: the step says how many labels met a reused id (`reused_ids`).

Each model version's live metrics are one immutable file in the registry,
`<model>/versions/<n>/live/<window>.json`, written with the registry store's exclusive create
(atomic on every store); the same window with the same labels recorded twice keeps the first. The labels are
part of the window (`labels_digest`): a re-run after labels were corrected or more arrived records the new numbers
beside the first (read_live: oldest first, to the nanosecond of `recorded_ns`), where it kept the first silently
while the step reported the new ones.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid

from kubepipe.components.errors import DataError
from kubepipe.components.pii import redact
from kubepipe.json_values import finite_or_null, null_as_nan

__all__ = ["LIVE_METRICS", "join_labels", "score_versions", "check_live", "record_live", "read_live",
           "live_threshold_issues", "labels_digest"]

LIVE_METRICS = ("accuracy", "f1_macro", "precision_macro", "recall_macro", "f1_micro", "n_examples")
_PER_CLASS = ("f1:", "precision:", "recall:")


def live_threshold_issues(thresholds) -> list:
    """The gate's threshold checks, limited to metrics a label log can give."""
    from kubepipe.components.checks import CheckIssue
    from kubepipe.components.evaluation.gate import threshold_issues

    from kubepipe.components.evaluation.metric_names import CLASSIFICATION

    # a typo is matched against what a label log gives (roc_acu was told 'did you mean `roc_auc`?', then refused)
    live = CLASSIFICATION._replace(choices=LIVE_METRICS[:-1] + tuple(f"{p}<label>" for p in _PER_CLASS),
                                   hint=f"live metrics: {', '.join(LIVE_METRICS[:-1])}; per class: f1:<label>, "
                                        "precision:<label>, recall:<label>")
    issues = threshold_issues(("thresholds",), thresholds or {}, live)
    for metric in (thresholds or {}) if isinstance(thresholds, dict) else ():
        # an unknown one (a typo: f1_macor) is the gate's 'unknown metric', not a metric needing probabilities
        if metric not in LIVE_METRICS and not str(metric).startswith(_PER_CLASS) and CLASSIFICATION.known(metric):
            issues.append(CheckIssue(("thresholds", metric), f"`{metric}` needs every probability, which the "
                                     "prediction log does not keep", f"use one of {', '.join(LIVE_METRICS[:-1])} "
                                     "or f1:<label>"))
    return issues


def join_labels(log_df, labels_df, *, where: str = "labels"):
    """Logged predictions with a delayed label (inner join on request_id, instance). A (request_id, instance) logged
    more than once (a reused `X-Request-Id`) joins its label to the first logged prediction only; how many labels
    met a reused id is `joined.attrs["reused_ids"]`."""
    from kubepipe.components.data.io import id_text, label_text

    missing = [c for c in ("request_id", "label") if c not in labels_df.columns]
    if missing:
        raise DataError(f"{where}: column(s) {', '.join(missing)} missing; a label file has `request_id` and "
                        f"`label` (and `instance` for multi-row requests); it has {list(labels_df.columns)}")
    # one rule for ids and labels (data.io.id_text): a blank cell is no label yet, not the class 'nan', and a
    # whole float (pandas' reading of a column with a blank cell) is its integer: 1.0 is the served label '1'
    # and a cell's surrounding spaces (`r1, fuel` in a hand-written CSV) are not part of it: the server strips the ids
    # it logs, and ` fuel` was counted a miss of the served `fuel`
    labels = labels_df.assign(request_id=[_stripped(id_text(v)) for v in labels_df["request_id"]],
                              instance=_instances(labels_df["instance"], where) if "instance" in labels_df else 0,
                              label=[_stripped(label_text(v)) for v in labels_df["label"]])
    # typed as the log's columns: a file of its header alone gave float64 empty columns, and the join failed with
    # pandas' 'You are trying to merge on object and float64 columns'
    labels = labels.dropna(subset=["request_id", "label"]).astype({"request_id": str, "instance": "int64",
                                                                   "label": str})
    labels = labels.drop_duplicates(["request_id", "instance"], keep="last")[["request_id", "instance", "label"]]
    log = log_df.assign(instance=log_df["instance"].astype("int64"), request_id=log_df["request_id"].astype(str))
    log, reused = _first_logged(log, labels)
    joined = log.merge(labels, on=["request_id", "instance"], how="inner")
    joined.attrs["reused_ids"] = reused
    joined.attrs["labels"] = int(len(labels))
    return joined


def _first_logged(log, labels):
    """The log with one row per (request_id, instance): the first logged (earliest `timestamp`), and how many
    labelled (request_id, instance) pairs were logged more than once. Clients reuse `X-Request-Id` (a retry, a
    fixed id per session): a label joined by id alone was counted once per reuse, each against another answer."""
    import pandas as pd

    if "timestamp" in log.columns:
        when = pd.to_datetime(log["timestamp"], utc=True, format="mixed", errors="coerce")
        log = log.iloc[when.argsort(kind="stable")]
    keys = ["request_id", "instance"]
    repeated = log[log.duplicated(keys, keep=False)].drop_duplicates(keys)[keys]
    reused = int(len(repeated.merge(labels[keys], on=keys, how="inner")))
    return log.drop_duplicates(keys, keep="first"), reused


def _stripped(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def _instances(values, where: str):
    """The `instance` column as row indexes: empty is 0 (a single-row request); anything else not 0, 1, ... stops."""
    import pandas as pd

    text = values.map(lambda v: v.strip() if isinstance(v, str) else v)
    blank = text.isna() | text.eq("")
    numbers = pd.to_numeric(text.where(~blank, 0), errors="coerce")
    bad = numbers.isna() | (numbers % 1 != 0) | (numbers < 0)
    if bad.any():
        at = int(bad.to_numpy().argmax())
        raise DataError(f"{where}: `instance` is not a row index (0, 1, ...) in {int(bad.sum())} row(s) (first: data "
                        f"row {at + 1}, {redact(str(values.iloc[at]))!r}); it numbers the rows of a multi-row request, empty "
                        "for single-row requests")
    return numbers.astype("int64")


def score_versions(joined) -> dict:
    """{model_version: metrics} of the joined rows (label-based metrics of `evaluation.metrics`)."""
    from kubepipe.components.evaluation.metrics import label_scores, per_class_metrics

    out = {}
    for version, rows in joined.groupby(joined["model_version"].astype(str), sort=True):
        names = sorted(set(rows["label"]) | set(rows["prediction"].astype(str)))
        index = {n: i for i, n in enumerate(names)}
        scores = label_scores([index[v] for v in rows["label"]], [index[str(v)] for v in rows["prediction"]], len(names))
        pc = scores.pop("per_class")
        scores.pop("confusion_matrix")
        scores.update(per_class_metrics(pc, names))
        out[str(version)] = scores
    return out


def check_live(metrics: dict, thresholds: dict) -> list[dict]:
    """The gate's absolute checks (evaluation.gate) on live metrics.

    A per-class metric of a class no row of the window was labelled or predicted as is not judged: a window's
    labelled sample without a chargeback `fuel` says nothing about `fuel` (failing it retrained on no evidence)."""
    from kubepipe.components.evaluation.gate import absolute_checks

    checks = absolute_checks("live", metrics, thresholds or {})
    for c in checks:
        # absent, not NaN: a label the window has rows of but the model never predicts is judged (and fails)
        if metrics.get(c["metric"]) is None and str(c["metric"]).startswith(_PER_CLASS):
            label = str(c["metric"]).split(":", 1)[1]
            c.update(passed=True, note=f"[live] {c['metric']}: no row labelled or predicted `{label}` in this "
                                       "window: not judged")
    return checks


def labels_digest(rows) -> str:
    """A digest of the labels joined to one version's rows (request_id, instance, label; order-free): part of the
    record's window, so a re-run with corrected or later labels is a new record and a retry the same one."""
    lines = sorted(f"{r}\t{i}\t{lab}" for r, i, lab in zip(rows["request_id"], rows["instance"], rows["label"]))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]


def _window_key(window: dict) -> str:
    return hashlib.sha256(json.dumps(window, sort_keys=True, default=str).encode()).hexdigest()[:16]


def record_live(registry_uri: str, model: str, version, entry: dict) -> dict:
    """Record one window's live metrics of `model` v`version` (exclusive create: atomic, first wins).

    An entry without a `window` is a record of its own, never a retry of another: its name is random (it was the
    hash of `recorded_at`, whole seconds, so a second record within the same second was dropped, `created: False`)."""
    from kubepipe.components.registry import step_registry
    from kubepipe.components.registry.version import utc_now

    registry = step_registry(registry_uri)
    n = registry.get(model, version).version
    # recorded_ns orders the records of one second (recorded_at has 1-s resolution): read_live's order was the files'
    body = {"model": model, "version": n, "recorded_at": utc_now(), "recorded_ns": time.time_ns(), **entry}
    key = _window_key(entry["window"]) if entry.get("window") else uuid.uuid4().hex[:16]
    # NaN as null (json_values): `NaN` is not JSON, and jq or JSON.parse refused the record
    created = registry.store.create(f"{model}/versions/{n}/live/{key}.json",
                                    json.dumps(finite_or_null(body), sort_keys=True, default=str,
                                               allow_nan=False).encode())
    return {**body, "created": created, "key": key}


def read_live(registry_uri: str, model: str, version) -> list[dict]:
    """Every recorded live window of `model` v`version`, oldest first."""
    from kubepipe.components.registry import step_registry

    registry = step_registry(registry_uri)
    n = registry.get(model, version).version
    rel = f"{model}/versions/{n}/live"
    out = []
    for f in registry.store.listdir(rel):
        if f.endswith(".json"):
            try:
                d = json.loads(registry.store.read(f"{rel}/{f}").decode("utf-8"))
                if not isinstance(d, dict):
                    raise ValueError("it does not hold a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:  # was a raw JSONDecodeError, no file named
                from kubepipe.components.registry import RegistryError

                raise RegistryError(f"{registry.store.uri(f'{rel}/{f}')}: a damaged live record ({exc}); monitor-live "
                                    "writes each whole, so another tool changed it: remove the file (a monitor-live "
                                    "run over that window records it again)") from None
            if isinstance(d.get("metrics"), dict):
                d["metrics"] = null_as_nan(d["metrics"])  # an undefined metric, as recorded
            out.append(d)
    return sorted(out, key=_recorded)


def _recorded(d: dict) -> tuple:
    """A record's place in time: recorded_at, then recorded_ns within its second (0 in records written before it)."""
    ns = d.get("recorded_ns")
    return str(d.get("recorded_at", "")), ns if isinstance(ns, int) and not isinstance(ns, bool) else 0
