"""Train a model from DataFrames: resolve the model, prepare data, pick devices, run (DDP when asked).

`train(train_df, cfg, ...)` returns a `Trained` whose `save(path)` writes the
Model artifact. Devices: every visible GPU (or `num_gpus` of them) with nccl,
one process each; CPU otherwise, or `num_procs` gloo workers on CPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from dataclasses import dataclass, replace

from kubepipe.components.errors import DataError, ModelError
from kubepipe.components.training.checkpoint import usable_location
from kubepipe.components.training.config import TrainConfig, config_problems, trainer_knobs
from kubepipe.components.training.encoders import Encoder
from kubepipe.components.training.loop import LoopSetup, run_loop
from kubepipe.components.training.models import (build_model, encoder_problems, model_encoding, model_problems,
                                                  resolve_model_class, split_hyperparameters)
from kubepipe.components.training.trainset import TrainSet, prepare

__all__ = ["Trained", "train", "plan_devices"]

log = logging.getLogger(__name__)


@dataclass
class Trained:
    module: object  # torch.nn.Module on CPU, eval mode
    encoder: Encoder
    labels: list[str]
    columns: dict
    model_ref: str
    model_kwargs: dict
    result: dict  # history, best_epoch, epochs_run, samples_per_s, device, ...
    config: TrainConfig
    data_hash: str

    @property
    def final(self) -> dict:
        """The history row of the epoch whose weights are kept."""
        rows = [r for r in self.result["history"] if r["epoch"] == self.result["kept_epoch"]]
        return rows[0] if rows else (self.result["history"][-1] if self.result["history"] else {})

    def metadata(self) -> dict:
        import numpy
        import torch

        from kubepipe._version import __version__ as kubepipe_version

        fin = self.final
        return {
            "framework": {"torch": torch.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
                          "kubepipe": kubepipe_version},
            "data_hash": self.data_hash, "device": self.result["device"], "world_size": self.result["world_size"],
            "precision": self.result["precision"], "train_seconds": round(self.result["train_seconds"], 3),
            "epochs_run": self.result["epochs_run"], "best_epoch": self.result["best_epoch"],
            "kept_epoch": self.result["kept_epoch"],
            "stopped_early": self.result["stopped_early"], "resumed_from": self.result["resumed_from"],
            "metrics": {k: v for k, v in fin.items() if k != "epoch"},
            "config": self.config.to_dict(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def save(self, path, extra_metadata: dict | None = None):
        from kubepipe.components.training.artifact import save_model

        return save_model(path, self.module, architecture=self.model_ref, model_kwargs=self.model_kwargs,
                          labels=self.labels, encoder=self.encoder, columns=self.columns,
                          metadata={**self.metadata(), **(extra_metadata or {})})


def _apply_trainer_keys(cfg: TrainConfig) -> TrainConfig:
    """Trainer knobs given inside `hyperparameters` move to the config; the rest stay for the model."""
    moved, hp = trainer_knobs(cfg.hyperparameters)
    cfg = replace(cfg, hyperparameters=hp, **moved)
    problems = config_problems(cfg.to_dict())
    if problems:
        raise ModelError("; ".join(msg for _, msg in problems))
    return cfg


def plan_devices(num_gpus: int | None, num_procs: int | None, backend: str | None) -> tuple[int, str, str]:
    """(world size, backend, device of a single process). num_gpus: None/-1 = all visible, 0 = CPU."""
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    use_gpu = visible > 0 and num_gpus != 0 and backend in (None, "nccl")
    if use_gpu:
        want = visible if num_gpus in (None, -1) else num_gpus
        if want > visible:
            log.warning("%d GPU(s) requested, %d visible: using %d", want, visible, visible)
        world = num_procs or min(want, visible)
        return world, "nccl", "cuda:0"
    if num_gpus not in (None, -1, 0):
        log.warning("%d GPU(s) requested but CUDA is not available: training on CPU", num_gpus)
    return (num_procs or 1), (backend or "gloo"), "cpu"


def _fingerprint(cfg: TrainConfig, data: TrainSet, model_ref: str, model_kwargs: dict, world: int) -> str:
    h = hashlib.sha256(json.dumps([cfg.fingerprint_fields(), model_ref, model_kwargs, world], sort_keys=True,
                                  default=str).encode())
    for arrays in (data.train, data.val or {}):
        for key in sorted(arrays):
            h.update(key.encode())
            h.update(arrays[key].tobytes())
    h.update(data.y_train.tobytes())
    if data.y_val is not None:  # corrected validation labels change early stopping and the kept epoch
        h.update(b"y_val")
        h.update(data.y_val.tobytes())
    if data.soft is not None:
        h.update(b"teacher")
        h.update(data.soft.tobytes())
    return h.hexdigest()


def train(train_df, cfg: TrainConfig, *, val_df=None, data_hash: str | None = None, checkpoint_dir=None,
          num_gpus: int | None = None, num_procs: int | None = None, backend: str | None = None,
          callbacks=(), where: str = "dataset", val_where: str = "validation", teacher=None,
          step: str = "train") -> Trained:
    """Train `cfg.model` on `train_df` (validation: `val_df`, else a stratified fraction); see module doc.
    `teacher`: a LoadedModel whose soft labels the student learns too (distillation). `step`: the pipeline step,
    named in warnings."""

    cfg = _apply_trainer_keys(cfg)
    cls = resolve_model_class(cfg.model)
    task_kind = "tabular" if cfg.feature_columns else ("tabular" if getattr(cls, "encoding", None) == "tabular" else "text")
    encoding = model_encoding(cls, task_kind)
    enc_kwargs, model_kwargs = split_hyperparameters(encoding, cfg.hyperparameters)
    problems = encoder_problems(encoding, enc_kwargs) + model_problems(cfg.model, model_kwargs)
    if problems:
        raise ModelError("hyperparameters: " + "; ".join(msg for _, msg in problems))
    resolve = getattr(cls, "resolve_hyperparameters", None)
    if resolve is not None:  # e.g. a pretrained base model: its config, weights record and tokenizer
        enc_kwargs, model_kwargs = resolve(enc_kwargs, model_kwargs)
    world, backend, device = plan_devices(num_gpus, num_procs, backend)
    if cfg.compile and device == "cpu":  # once, here: not once per DDP worker
        log.warning("step `%s`: compile: true is ignored: torch.compile is used on CUDA only and this step trains "
                    "on CPU (%s); set compile: false, or run it where a GPU is visible", step,
                    "num_gpus: 0" if num_gpus == 0 else "no CUDA GPU is visible")
    if teacher is not None:
        task = "tabular-classification" if task_kind == "tabular" else "text-classification"
        if teacher.task != task:
            raise ModelError(f"teacher {teacher.path} is a {teacher.task} model; the student {cfg.model!r} "
                             f"is {task}: distil from a teacher of the same task")
    try:
        data, encoder = prepare(train_df, val_df, cfg, encoding, enc_kwargs, where=where, val_where=val_where,
                                teacher=teacher, teacher_device=device)
    except (TypeError, ValueError) as exc:  # encoding the rows or the teacher's pass: not the settings
        raise ModelError(f"preparing the training data failed: {type(exc).__name__}: {exc}") from None
    if cfg.early_stopping_patience and data.val is None:  # it would train every epoch and keep the last
        # a `validation` dataset with no row to score is refused in prepare: only the fraction can hold out none
        raise DataError(f"early_stopping_patience {cfg.early_stopping_patience} needs validation rows, and "
                        f"validation_fraction {cfg.validation_fraction} holds out no row of the {where}; "
                        "give a `validation` dataset, raise `validation_fraction`, or set early_stopping_patience: 0")
    input_spec = encoder.spec()
    if world > 1:
        build_model(cls, len(data.labels), input_spec, model_kwargs, name=cfg.model)  # fail here, not in a worker
    fingerprint = _fingerprint(cfg, data, cfg.model, model_kwargs, world)
    setup = LoopSetup(cfg=cfg, model_ref=cfg.model, model_kwargs=model_kwargs, input_spec=input_spec,
                      fingerprint=fingerprint, checkpoint_dir=usable_location(checkpoint_dir),
                      device=device, callbacks=list(callbacks))
    if world > 1:
        from kubepipe.components.training.distributed import launch

        state, result = launch(data, setup, world, backend)
        module = build_model(cls, len(data.labels), input_spec, model_kwargs, name=cfg.model)
        module.load_state_dict(state)
    else:
        module, result = run_loop(data, setup)
    module = module.cpu().eval()
    return Trained(module=module, encoder=encoder, labels=data.labels, columns=data.columns, model_ref=cfg.model,
                   model_kwargs=model_kwargs, result=result, config=cfg,
                   data_hash=data_hash or "sha256:" + fingerprint_data(data))


def fingerprint_data(data: TrainSet) -> str:
    h = hashlib.sha256()
    for key in sorted(data.train):
        h.update(data.train[key].tobytes())
    h.update(data.y_train.tobytes())
    return h.hexdigest()
