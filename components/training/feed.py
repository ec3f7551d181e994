"""The training loop's input path: batches gathered by index from tensors encoded once, the loss tallied on
the device.

Nothing here runs Python per row, and nothing waits for the GPU: an epoch's batch widths are one vectorised
max over the shuffled order (read once, from host memory), its row indices travel to the GPU in one copy, and
each batch is an `index_select` of those. Data too large to stay on the GPU is gathered on the host into
pinned memory and copied on a side stream, issued while the GPU still runs the step before. On CPU the same
code runs without pinning or streams. Every value is the one the former per-step code gathered (the same
rows, bytes and order), so training is bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["Batch", "BatchFeed", "LossTally", "cut_padding", "RESIDENT_BYTES"]

RESIDENT_BYTES = 2 << 30  # encoded data below this lives on the GPU for the whole run


def cut_padding(rows: dict, width: int | None) -> dict:
    """Rows are padded to the longest row of the whole data set; cut the token axis to `width` (the batch's
    own longest), so the encoder computes no padding that the batch does not need."""
    if width is None:
        return rows
    full = rows["attention_mask"].shape[1]
    return {k: (v[:, :width] if v.dim() == 2 and v.shape[1] == full else v) for k, v in rows.items()}


@dataclass
class Batch:
    inputs: dict  # the model's inputs, on the device, cut to the batch's longest row
    target: Any  # labels [rows], on the device
    soft: Any  # the teacher's logits of these rows, or None
    rows: int


class BatchFeed:
    """One epoch's batches from `arrays` (encoded inputs, host tensors, first dim = rows), `y` and `soft`."""

    def __init__(self, arrays: dict, y, soft, device, resident_bytes: int = RESIDENT_BYTES,
                 drop_full_mask: bool = False) -> None:
        import torch

        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        mask = arrays.get("attention_mask")
        # real tokens per row, on the host: widths come without a device sync
        self.lengths = mask.sum(dim=1) if mask is not None and mask.dim() == 2 else None
        # a batch whose rows all fill its width goes without the mask (a model with `mask_optional`: the GPU's
        # flash attention takes none); known from the host's lengths, so no device sync
        self.drop_full_mask = drop_full_mask and self.lengths is not None
        size = sum(t.nbytes for t in arrays.values())
        self.resident = size < resident_bytes  # on CPU "staged" only in tests: the code path the GPU's big data takes
        move = self.cuda and self.resident
        self.arrays = {k: (t.to(self.device) if move else t) for k, t in arrays.items()}
        self.y = y.to(self.device)
        self.soft = None if soft is None else soft.to(self.device)
        self.stream = torch.cuda.Stream(self.device) if self.cuda and not self.resident else None

    def widths(self, order, per_rank: int) -> list[int | None]:
        """Each batch's longest real row (None: no attention mask), as the batches `order.split(per_rank)`."""
        import torch

        count = -(-len(order) // per_rank)
        if self.lengths is None:
            return [None] * count
        lengths = self.lengths[order]
        lengths = torch.cat([lengths, lengths.new_zeros(count * per_rank - len(order))])
        return lengths.view(count, per_rank).amax(dim=1).clamp_(min=1).tolist()

    def epoch(self, order, per_rank: int, start: int = 0) -> Iterator[Batch]:
        """The batches of `order` (row indices, host int64) from batch `start` on. Each is gathered when the
        one before has been handed out: by then the loop has queued that step, which the GPU is running."""
        widths = self.widths(order, per_rank)
        host = order.split(per_rank)
        full = self.unpadded(order, per_rank) if self.drop_full_mask else [False] * len(host)
        index = order.pin_memory().to(self.device, non_blocking=True) if self.cuda else order  # one copy an epoch
        on_device = index.split(per_rank)
        for i in range(start, len(host)):
            yield self._gather(host[i], on_device[i], widths[i], full[i])

    def unpadded(self, order, per_rank: int) -> list[bool]:
        """Whether each batch's rows all have the same length (no padding once cut to its width)."""
        if self.lengths is None:
            return [False] * -(-len(order) // per_rank)
        return [bool(c.min() == c.max()) for c in self.lengths[order].split(per_rank)]

    def _gather(self, host_idx, idx, width, full: bool = False) -> Batch:
        rows = cut_padding(self.arrays, width)
        if full:
            rows = {k: v for k, v in rows.items() if k != "attention_mask"}
        if self.resident:
            inputs = {k: v.index_select(0, idx) for k, v in rows.items()}
        else:
            inputs = self._staged(rows, host_idx)
        soft = None if self.soft is None else self.soft.index_select(0, idx)
        return Batch(inputs=inputs, target=self.y.index_select(0, idx), soft=soft, rows=len(host_idx))

    def _staged(self, rows: dict, host_idx) -> dict:
        """Gather on the host straight into pinned memory, copy on the side stream; the compute stream waits
        for the copy, not the host."""
        import torch

        pinned = {}
        for k, v in rows.items():
            pinned[k] = torch.empty((len(host_idx), *v.shape[1:]), dtype=v.dtype, pin_memory=self.cuda)
            torch.index_select(v, 0, host_idx, out=pinned[k])
        if self.stream is None:
            return pinned
        with torch.cuda.stream(self.stream):
            out = {k: v.to(self.device, non_blocking=True) for k, v in pinned.items()}
        compute = torch.cuda.current_stream(self.device)
        compute.wait_stream(self.stream)
        for t in out.values():  # allocated on the side stream, read on the compute one
            t.record_stream(compute)
        return out


class LossTally:
    """The epoch's loss sum (float64, on the device) and the finiteness check of the training loss.

    On CPU every `check_every`-th loss is checked as it comes (free). On a GPU (`defer`) it is copied to
    pinned memory without waiting and read once the copy has landed, so the check never stalls the queue
    of kernels; a non-finite loss is reported a step or two after it was computed, naming its step. `defer` on
    CPU runs that bookkeeping with copies that land at once (tests)."""

    def __init__(self, device, start: float, check_every: int, defer: bool | None = None) -> None:
        import torch

        self.device = torch.device(device)
        self.sum = torch.tensor(start, dtype=torch.float64, device=self.device)
        self.check_every = check_every
        self.defer = self.device.type == "cuda" if defer is None else defer
        self._pending: list[tuple[int, Any, Any]] = []  # (step, host copy, its event; None: landed)

    def add(self, loss, rows: int, step: int) -> tuple[int, float] | None:
        """Count `loss` (the mean over `rows` rows) of 0-based `step`; (1-based step, value) of a non-finite
        loss once it is known, else None."""
        import torch

        loss = loss.detach()
        self.sum += loss.double() * rows
        checked = (step + 1) % self.check_every == 0
        if not self.defer:
            return (step + 1, float(loss)) if checked and not torch.isfinite(loss).item() else None
        if checked:
            cuda = self.device.type == "cuda"
            copy = torch.empty((), dtype=loss.dtype, pin_memory=cuda)
            copy.copy_(loss, non_blocking=cuda)
            event = torch.cuda.Event() if cuda else None
            if event is not None:
                event.record()
            self._pending.append((step + 1, copy, event))
        return self.landed(wait=False)

    def landed(self, wait: bool) -> tuple[int, float] | None:
        """The first non-finite loss among the copies that have landed (all of them with `wait`)."""
        import math

        while self._pending and (wait or self._pending[0][2] is None or self._pending[0][2].query()):
            step, copy, event = self._pending.pop(0)
            if event is not None:
                event.synchronize()
            if not math.isfinite(float(copy)):
                self._pending.clear()
                return step, float(copy)
        return None
