"""The `train-torch` step: read Dataset artifacts, train, write Model, Metrics and curve artifacts.

Artifacts are duck-typed (`.path`, `.metadata`, `log_metric`), so the KFP
component is a thin shim and this runs in plain tests too.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from kubepipe.components.data.row_sketch import row_sketch
from kubepipe.components.errors import DataError, ModelError
from kubepipe.components.report_files import write_report
from kubepipe.components.training.checkpoint import checkpoint_dir, remove_checkpoint
from kubepipe.components.training.config import TrainConfig
from kubepipe.components.training.curve import curve_html

__all__ = ["train_torch_step", "read_frame"]

log = logging.getLogger(__name__)


# the step has no reader settings; the data layer's hints name load-data's
_CSV_NOTE = ("train-torch reads a hand-made CSV as UTF-8, comma-separated; for any other file, read it with a "
             "load-data step (`source`, `encoding`, `delimiter`) and train on its dataset")


def read_frame(artifact, role: str):
    """A Dataset artifact as a DataFrame (Parquet per the contract; CSV accepted for hand-made inputs)."""
    from kubepipe.components.data.io import read_table

    return read_table(artifact.path, role, _CSV_NOTE)


def _hash(artifact) -> str | None:
    meta = getattr(artifact, "metadata", None) or {}
    return meta.get("content_hash")


def _require_other_validation(dataset, validation) -> None:
    """A `validation` input with the training data's bytes scores memorised rows: early stopping and the kept
    epoch would follow the training loss."""
    paths = [Path(getattr(a, "path", None) or "") for a in (dataset, validation)] if validation is not None else []
    if not paths or not all(p.is_file() for p in paths):
        return
    from kubepipe.util import sha256_file

    if sha256_file(validation.path) == sha256_file(dataset.path):
        raise DataError(f"the validation dataset ({validation.path}) is the training dataset (same content): "
                        "validation scores would measure memorised rows; wire held-out rows as `validation`, or "
                        "leave it out to hold out `validation_fraction` of the dataset")


def train_torch_step(*, dataset, model, metrics, curve, validation=None, architecture: str = "text-classifier",
                     text_column: str = "", label_column: str = "label", feature_columns: list | None = None,
                     epochs: int = 5, batch_size: int = 64, learning_rate: float = 0.0, lr_schedule: str = "cosine",
                     weight_decay: float = 0.0, seed: int = 0, early_stopping_patience: int = 0,
                     early_stopping_metric: str = "val_f1_macro", validation_fraction: float = 0.1,
                     hyperparameters: dict | None = None, num_gpus: int = -1, compile: bool = False,
                     ctx_state_dir: str = "", ctx_run_id: str = "", ctx_step: str = "train",
                     num_procs: int | None = None, backend: str | None = None, teacher=None,
                     distill_temperature: float = 2.0, distill_alpha: float = 0.5, base_model: str = "",
                     base_model_sha256: str = "") -> dict:
    """Train and write the three output artifacts; returns the metrics logged. With a `teacher` Model
    artifact the student also learns the teacher's soft labels (see distill.py)."""
    from kubepipe.components.training.trainer import train

    if not logging.getLogger().handlers:  # inside a KFP task: show per-epoch progress in the pod log
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hyperparameters = dict(hyperparameters or {})
    if base_model:  # pretrained-encoder: its resolve hook reads these two from the model's hyperparameters
        hyperparameters["base_model"] = base_model
    if base_model_sha256:
        hyperparameters["base_model_sha256"] = base_model_sha256
    cfg = TrainConfig(model=architecture, label_column=label_column, text_column=text_column or None,
                      feature_columns=list(feature_columns) if feature_columns else None, epochs=epochs,
                      batch_size=batch_size, learning_rate=learning_rate or None, lr_schedule=lr_schedule,
                      weight_decay=weight_decay, seed=seed, early_stopping_patience=early_stopping_patience,
                      early_stopping_metric=early_stopping_metric, validation_fraction=validation_fraction,
                      hyperparameters=dict(hyperparameters or {}), compile=compile,
                      distill_temperature=distill_temperature, distill_alpha=distill_alpha)
    teacher_model = None
    distilled: dict[str, Any] | None = None
    if teacher is not None and getattr(teacher, "path", None):
        from kubepipe.components.training.artifact import load_model

        teacher_model = load_model(teacher.path)
        distilled = {"teacher": {"architecture": teacher_model.architecture, "uri": getattr(teacher, "uri", None),
                                 "weights_sha256": teacher_model.spec.get("weights_sha256")},
                     "temperature": distill_temperature, "alpha": distill_alpha}
    train_df = read_frame(dataset, "training")
    _require_other_validation(dataset, validation)
    val_df = read_frame(validation, "validation") if validation is not None and getattr(validation, "path", None) else None
    folder = checkpoint_dir(ctx_state_dir, ctx_run_id, ctx_step)
    started = time.time()
    trained = train(train_df, cfg, val_df=val_df, data_hash=_hash(dataset), checkpoint_dir=folder,
                    num_gpus=num_gpus, num_procs=num_procs, backend=backend,
                    where=f"dataset ({dataset.path})",
                    val_where=f"validation ({getattr(validation, 'path', '')})", teacher=teacher_model, step=ctx_step)
    del teacher_model  # free its memory before saving
    res, fin = trained.result, trained.final
    source = (getattr(dataset, "metadata", None) or {}).get("source")
    sketched = [*(trained.columns.get("feature_columns") or [trained.columns.get("text_column")]), cfg.label_column]
    out = trained.save(model.path, extra_metadata={"validation_data_hash": _hash(validation) if validation else None,
                                                    "run_id": ctx_run_id, "step": ctx_step,
                                                    "distillation": distilled,
                                                    # evaluate finds these rows in a holdout, whatever its bytes
                                                    "row_sketch": {"training": row_sketch(train_df, sketched,
                                                                                          cfg.label_column),
                                                                   "validation": None if val_df is None else
                                                                   row_sketch(val_df, sketched, cfg.label_column)},
                                                    # drift monitors compare against exactly this data
                                                    "training_data": {"uri": getattr(dataset, "uri", None),
                                                                      "source": source,
                                                                      "content_hash": _hash(dataset)}})
    values = {
        "train_loss": fin.get("train_loss"), "val_loss": fin.get("val_loss"),
        "val_accuracy": fin.get("val_accuracy"), "val_f1_macro": fin.get("val_f1_macro"),
        "samples_per_s": res["samples_per_s"], "tokens_per_s": res["tokens_per_s"],  # None: tabular
        "epochs_run": res["epochs_run"], "best_epoch": res["best_epoch"], "train_seconds": res["train_seconds"],
        # the epoch whose weights the model holds and whose val_* these are: without early stopping the last,
        # not best_epoch (val_f1_macro 0.85 beside best_epoch 6 read as epoch 6's score, and as its weights)
        "kept_epoch": res["kept_epoch"],
    }
    values = {k: float(v) for k, v in values.items() if v is not None}
    undefined = [k for k, v in values.items() if not math.isfinite(v)]
    if undefined:  # a KFP metric NaN is no JSON (the run's record refused it); the curve marks the epoch
        log.warning("not logging %s: not a number at the kept epoch", ", ".join(undefined))
        values = {k: v for k, v in values.items() if k not in undefined}
    for key, value in values.items():
        metrics.log_metric(key, round(value, 6))
    if hasattr(model, "metadata"):
        model.metadata.update({"framework": "pytorch", "architecture": architecture, "task": "tabular-classification" if trained.encoder.encoding == "tabular" else "text-classification",
                               "labels": len(trained.labels), "data_hash": trained.data_hash,
                               **{k: round(v, 6) for k, v in values.items() if k.startswith("val_")}})
    facts = {"model": architecture, "device": res["device"], "processes": res["world_size"],
             "precision": res["precision"], "epochs run": res["epochs_run"], "best epoch": res["best_epoch"],
             "kept epoch (its weights)": res["kept_epoch"],
             "stopped early": res["stopped_early"], "resumed from": res["resumed_from"] or "-",
             "distilled from": distilled["teacher"]["architecture"] if distilled else "-",
             "samples/s": f"{res['samples_per_s']:.0f}", "wall time (s)": f"{time.time() - started:.1f}"}
    write_report(curve, curve_html(res["history"], title=f"Training curve: {architecture}",
                                   best_epoch=res["best_epoch"], facts=facts))
    if not out.is_dir():
        raise ModelError(f"{out}: the model directory was not written")
    remove_checkpoint(folder)  # the step succeeded: a checkpoint would only fill the state folder
    return values
