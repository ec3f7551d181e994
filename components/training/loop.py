"""The training loop of one process: schedule, mixed precision, validation, early stopping, checkpoints.

Runs alone (world 1) or as one DDP rank. Batches are index slices of tensors
encoded once up front (resident on the GPU when they fit; see feed.py), so the
loop adds little over a hand-written one. Shuffling is a pure function of (seed, epoch),
and checkpoints carry optimizer, scheduler and RNG states, so a resumed run
replays the same steps as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from kubepipe.components.errors import ModelError
from kubepipe.components.training.checkpoint import load_checkpoint, save_checkpoint
from kubepipe.components.training.config import TrainConfig
from kubepipe.components.training.distill import distillation_loss
from kubepipe.components.training.feed import BatchFeed, LossTally, cut_padding
from kubepipe.components.evaluation.metrics import label_scores
from kubepipe.components.training.trainset import TrainSet
from kubepipe.util import failpoint

__all__ = ["TrainingError", "LoopSetup", "lr_factor", "run_loop", "evaluate"]

log = logging.getLogger(__name__)


class TrainingError(ModelError):
    """Training cannot go on (non-finite loss, ...): the message says where and what to change."""


@dataclass
class LoopSetup:
    cfg: TrainConfig
    model_ref: str
    model_kwargs: dict
    input_spec: dict
    fingerprint: str
    checkpoint_dir: str | None = None
    rank: int = 0
    world: int = 1
    device: str = "cpu"  # "cpu" | "cuda:<i>"
    callbacks: list = field(default_factory=list)


class LoopState(TypedDict):
    """Where the loop is and what it has seen: checkpointed as a plain dict, and given to callbacks."""
    epoch: int  # epochs done
    step_in_epoch: int
    global_step: int
    loss_sum: float  # of the epoch so far (a resumed epoch goes on from it)
    seen: int  # rows of the epoch so far
    history: list[dict[str, float]]  # one row per epoch: epoch, train_loss, lr, val_*
    best: float | None  # the best value of the early-stopping metric
    best_epoch: int
    bad_epochs: int
    stopped_early: bool
    train_seconds: float
    train_cpu_seconds: float
    samples: int
    epoch_seconds: list[float]
    epoch_samples: list[int]


def lr_factor(schedule: str, warmup: int, total: int):
    """Multiplier of the base learning rate at optimizer step `step` (for LambdaLR)."""
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))
        return 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress
    return factor


def _amp(cfg: TrainConfig, device_type: str) -> bool:
    import torch

    if cfg.precision == "bf16":
        return True
    return cfg.precision == "auto" and device_type == "cuda" and torch.cuda.is_bf16_supported()


def evaluate(model, arrays: dict, y, *, device, amp: bool, n_labels: int, chunk: int = 2048) -> dict:
    """val loss (float32), accuracy and macro-F1 over all rows, in chunks, without gradients."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    losses, preds = 0.0, []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for start in range(0, len(y), chunk):
            rows = {k: v[start:start + chunk] for k, v in arrays.items()}
            batch = {k: v.to(device, non_blocking=True) for k, v in cut_padding(rows, _token_width(rows)).items()}
            target = y[start:start + chunk].to(device, non_blocking=True)
            logits = model(batch).float()
            losses += float(F.cross_entropy(logits, target, reduction="sum"))
            preds.append(logits.argmax(dim=1).cpu())
    model.train(was_training)
    scores = label_scores(y.numpy(), torch.cat(preds).numpy(), n_labels)  # the gate's own rule
    return {"loss": losses / max(1, len(y)), "accuracy": scores["accuracy"], "f1_macro": scores["f1_macro"]}


def _token_width(rows: dict) -> int | None:
    """The longest real row of an encoded batch with an attention mask (None without one)."""
    mask = rows.get("attention_mask")
    return None if mask is None or mask.dim() != 2 else max(1, int(mask.sum(dim=1).max()))


def _param_groups(model, lr: float, weight_decay: float) -> list[dict]:
    own = getattr(model, "param_groups", None)
    if own is not None:  # the model's own groups (layer-wise learning rates); each group has its "lr"
        return own(lr, weight_decay)
    if not weight_decay:  # one group: one fused optimizer kernel per step
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": 0.0}]
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]  # biases, norms: no decay
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def _require_finite(bad: tuple[int, float] | None, epoch: int, n_batches: int, check_every: int, lr: float) -> None:
    """`bad`: (step, loss) of a non-finite training loss (LossTally), or None."""
    if bad is not None:
        raise TrainingError(
            f"training loss became {bad[1]} at epoch {epoch + 1}, step {bad[0]} of {n_batches}"
            f"{'' if check_every == 1 else ' (checked every %d steps)' % check_every}: lower "
            f"`learning_rate` (now {lr}), set `max_grad_norm`, or check the data for extreme values")


def _better(metric: str, value: float, best: float | None) -> bool:
    return best is None or (value < best if metric == "val_loss" else value > best)


def run_loop(data: TrainSet, setup: LoopSetup):
    """Train; returns (the model holding the chosen weights, result summary)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import Dataset, DistributedSampler

    class _Rows(Dataset[int]):  # the training rows by index: the sampler reads only how many there are
        def __init__(self, n: int) -> None:
            self.n = n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, index: int) -> int:
            return index

    from kubepipe.components.training.models import build_model, resolve_model_class

    cfg, rank, world = setup.cfg, setup.rank, setup.world
    device = torch.device(setup.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)
    n_labels = len(data.labels)
    model = build_model(resolve_model_class(setup.model_ref), n_labels, setup.input_spec, setup.model_kwargs,
                        name=setup.model_ref)
    if hasattr(model, "load_pretrained"):  # a checkpoint, when there is one, overrides these weights below
        model.load_pretrained()
    model = model.to(device)
    train_model = model  # DDP's and torch.compile's wrappers train; `model` is what is returned and saved
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile and device.type == "cuda":  # on CPU: said once, by trainer.train
        train_model = torch.compile(train_model)
    amp = _amp(cfg, device.type)
    per_rank = max(1, cfg.batch_size // world)
    n = data.n_train
    sampler: DistributedSampler[int] = DistributedSampler(_Rows(n), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    steps_per_epoch = math.ceil(len(sampler) / per_rank)
    total_steps = steps_per_epoch * cfg.epochs
    lr = cfg.learning_rate or float(getattr(type(model), "default_learning_rate", 1e-3))
    try:  # the fused kernel is several times faster on CPU and GPU where this torch has it
        optimizer = torch.optim.AdamW(_param_groups(model, lr, cfg.weight_decay), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        optimizer = torch.optim.AdamW(_param_groups(model, lr, cfg.weight_decay), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(cfg.lr_schedule, int(cfg.warmup_fraction * total_steps), total_steps))

    # encoded data: on the GPU when small, else gathered into pinned host memory and copied ahead (feed.py)
    feed = BatchFeed({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.train.items()},
                     torch.from_numpy(data.y_train),
                     None if data.soft is None else torch.from_numpy(data.soft),  # teacher logits, per training row
                     device, drop_full_mask=bool(getattr(model, "mask_optional", False)))
    val = None if data.val is None else ({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.val.items()},
                                         torch.from_numpy(data.y_val))

    st: LoopState = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "loss_sum": 0.0, "seen": 0, "history": [],
          "best": None, "best_epoch": 0, "bad_epochs": 0, "stopped_early": False, "train_seconds": 0.0,
          "train_cpu_seconds": 0.0, "samples": 0, "epoch_seconds": [], "epoch_samples": []}
    best_state = None
    folder = setup.checkpoint_dir  # a path or an fsspec URI (see checkpoint.py)
    ckpt = load_checkpoint(folder, setup.fingerprint, model)
    resumed = None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        st.update(ckpt["trainer"])
        best_state = ckpt.get("best_model")
        torch.set_rng_state(ckpt["rng_cpu"])
        if device.type == "cuda" and ckpt.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng_cuda"], device)
        resumed = {"epoch": st["epoch"], "step_in_epoch": st["step_in_epoch"]}
        if rank == 0:
            log.info("resuming from %s at epoch %d step %d", folder, st["epoch"] + 1, st["step_in_epoch"])

    def checkpoint() -> None:
        if folder is None or rank != 0:
            return
        save_checkpoint(folder, {
            "fingerprint": setup.fingerprint, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "trainer": dict(st), "best_model": best_state,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None})

    check_every = 1 if device.type == "cpu" else 50  # on a GPU: read without waiting, a step or two late
    monitor = cfg.early_stopping_metric
    last_ckpt = time.monotonic()
    train_model.train()
    for epoch in range(st["epoch"], cfg.epochs):
        if st["stopped_early"]:
            break
        sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(sampler)), dtype=torch.int64)
        n_batches = math.ceil(len(order) / per_rank)
        tally = LossTally(device, st["loss_sum"], check_every)
        t0, c0 = time.perf_counter(), time.process_time()
        epoch_start = st["train_seconds"]  # a resumed epoch counts from the restart
        for i, batch in enumerate(feed.epoch(order, per_rank, st["step_in_epoch"]), start=st["step_in_epoch"]):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = train_model(batch.inputs)
            if batch.soft is None:
                loss = F.cross_entropy(logits.float(), batch.target, label_smoothing=cfg.label_smoothing)
            else:
                loss = distillation_loss(logits.float(), batch.target, batch.soft, temperature=cfg.distill_temperature,
                                         alpha=cfg.distill_alpha, label_smoothing=cfg.label_smoothing)
            _require_finite(tally.add(loss, batch.rows, i), epoch, n_batches, check_every, lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            st["seen"] += batch.rows
            st["step_in_epoch"], st["global_step"] = i + 1, st["global_step"] + 1
            for cb in setup.callbacks:
                getattr(cb, "on_step", lambda s: None)(st)
            if world == 1 and folder is not None and i + 1 < n_batches and (
                    (cfg.checkpoint_every_steps and st["global_step"] % cfg.checkpoint_every_steps == 0)
                    or time.monotonic() - last_ckpt > cfg.checkpoint_every_s):
                st["loss_sum"] = float(tally.sum)
                st["train_seconds"] += time.perf_counter() - t0
                st["train_cpu_seconds"] += time.process_time() - c0
                checkpoint()
                t0, c0, last_ckpt = time.perf_counter(), time.process_time(), time.monotonic()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            _require_finite(tally.landed(wait=True), epoch, n_batches, check_every, lr)
        st["train_seconds"] += time.perf_counter() - t0
        st["train_cpu_seconds"] += time.process_time() - c0
        totals = torch.stack([tally.sum, torch.tensor(float(st["seen"]), dtype=torch.float64, device=device)])
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(totals)
        train_loss = float(totals[0] / totals[1])
        st["samples"] += int(totals[1])
        st["epoch_seconds"].append(st["train_seconds"] - epoch_start)
        st["epoch_samples"].append(int(totals[1]))
        if not math.isfinite(train_loss):
            raise TrainingError(f"training loss is {train_loss} after epoch {epoch + 1}: lower `learning_rate` "
                                f"(now {lr}) or set `max_grad_norm`")
        row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": float(scheduler.get_last_lr()[0])}
        if val is not None:
            scores = evaluate(model, val[0], val[1], device=device, amp=amp, n_labels=n_labels)
            row.update({"val_loss": scores["loss"], "val_accuracy": scores["accuracy"], "val_f1_macro": scores["f1_macro"]})
            if _better(monitor, row[monitor], st["best"]):
                st["best"], st["best_epoch"], st["bad_epochs"] = row[monitor], epoch + 1, 0
                if cfg.early_stopping_patience:
                    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                st["bad_epochs"] += 1
                if cfg.early_stopping_patience and st["bad_epochs"] >= cfg.early_stopping_patience:
                    st["stopped_early"] = True
        else:
            st["best_epoch"] = epoch + 1
        st["history"].append(row)
        if rank == 0:
            log.info("epoch %d/%d: %s", epoch + 1, cfg.epochs,
                     ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
        st.update({"epoch": epoch + 1, "step_in_epoch": 0, "loss_sum": 0.0, "seen": 0})
        checkpoint()
        failpoint(f"train.epoch-{epoch + 1}-checkpointed")  # chaos tests: a power cut after this epoch's save
        last_ckpt = time.monotonic()
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
        for cb in setup.callbacks:
            getattr(cb, "on_epoch", lambda s: None)(st)

    restored = best_state is not None and st["best_epoch"] != st["epoch"]
    if restored:
        model.load_state_dict(best_state)
    seconds = max(st["train_seconds"], 1e-9)
    result = {
        "history": st["history"], "epochs_run": st["epoch"], "best_epoch": st["best_epoch"] or st["epoch"],
        "kept_epoch": st["best_epoch"] if restored else st["epoch"],  # whose weights are returned
        "stopped_early": st["stopped_early"], "train_seconds": st["train_seconds"],
        "train_cpu_seconds": st["train_cpu_seconds"],  # this process only; for overhead measurements
        "epoch_seconds": st["epoch_seconds"], "epoch_samples": st["epoch_samples"],
        "samples_per_s": st["samples"] / seconds,
        "tokens_per_s": (None if data.train_tokens is None  # a tabular model: rows are samples_per_s
                         else data.train_tokens * st["samples"] / max(1, n) / seconds),
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
        "world_size": world, "precision": "bf16" if amp else "fp32", "resumed_from": resumed,
        "distilled": feed.soft is not None,
        "global_steps": st["global_step"],
    }
    return model, result
