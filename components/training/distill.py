"""Knowledge distillation: a teacher model's soft labels for the student's training rows, and the loss.

The teacher is frozen and in eval mode (no dropout), and the training inputs do not change between
epochs, so its logits are computed once for every training row before the first step (in chunks,
without gradients, bf16 autocast on CUDA) and indexed per batch like the hard labels; a DDP rank
takes the rows of its shard. Loss (Hinton et al. 2015):

    (1 - alpha) * CE(student, y) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

T^2 keeps the soft term's gradient scale independent of the temperature.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from kubepipe.components.errors import ModelError

__all__ = ["teacher_logits", "distillation_loss"]

log = logging.getLogger(__name__)


def teacher_logits(teacher, inputs, labels: list[str], device: str = "cpu", chunk: int = 256) -> np.ndarray:
    """float32 [len(inputs), len(labels)]: the teacher's logits, columns in the student's label order."""
    import torch

    from kubepipe.components.data.io import as_label

    own = [as_label(lab, labels) for lab in teacher.labels]  # an older teacher's '3.0' is the student's `3`
    missing = [lab for lab in labels if lab not in own]
    if missing:
        raise ModelError(f"teacher {teacher.path} was not trained on label(s) {missing[:5]} of the student's "
                         f"data (teacher labels: {list(teacher.labels)[:10]}); distil from a teacher trained on "
                         "the same label set")
    extra = [lab for lab in own if lab not in labels]
    if extra:
        log.warning("teacher labels %s are not in the training data: their logits are dropped", extra[:5])
    columns = torch.tensor([own.index(lab) for lab in labels])
    dev = torch.device(device)
    if str(teacher.device) != str(dev):
        teacher.to(str(dev))
    teacher.module.eval()
    started, parts = time.perf_counter(), []
    n = len(inputs)
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        for start in range(0, n, chunk):
            part = inputs.iloc[start:start + chunk] if hasattr(inputs, "iloc") else inputs[start:start + chunk]
            parts.append(teacher.forward(teacher.encode(part)).float()[:, columns])
    out = torch.cat(parts).numpy() if parts else np.zeros((0, len(labels)), dtype=np.float32)
    if not np.isfinite(out).all():
        raise ModelError(f"teacher {teacher.path} gives non-finite logits on the training data; retrain the teacher")
    log.info("teacher logits for %d rows in %.1f s", n, time.perf_counter() - started)
    return np.ascontiguousarray(out, dtype=np.float32)


def distillation_loss(student, target, teacher, *, temperature: float, alpha: float, label_smoothing: float = 0.0):
    """Mean over the batch of the mixed hard-label / soft-label loss (student and teacher logits float32)."""
    import torch.nn.functional as F

    hard = F.cross_entropy(student, target, label_smoothing=label_smoothing)
    if alpha == 0:
        return hard
    t = float(temperature)
    soft = F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1), log_target=True,
                    reduction="batchmean") * (t * t)
    return (1.0 - alpha) * hard + alpha * soft
