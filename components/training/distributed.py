"""Multi-process training with torch.distributed: one process per GPU (nccl) or CPU workers (gloo).

`launch` spawns `world` processes on a loopback rendezvous; each runs the same
loop on its DistributedSampler shard under DDP. Rank 0 hands the weights and
the summary back through a file read with `torch.load(weights_only=True)`; a
user-facing error in any rank comes back as the same error, not a traceback.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from dataclasses import replace
from pathlib import Path

from kubepipe.components.errors import ComponentError, ModelError
from kubepipe.components.training.loop import LoopSetup, TrainingError, run_loop
from kubepipe.components.training.trainset import TrainSet

__all__ = ["launch", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, data: TrainSet, setup: LoopSetup, world: int, backend: str, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        device = f"cuda:{rank}" if backend == "nccl" else "cpu"
        model, result = run_loop(data, replace(setup, rank=rank, world=world, device=device, callbacks=[]))
        if rank == 0:
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save({"state": state, "result": result}, Path(out) / "result.pt")
    except ComponentError as exc:
        (Path(out) / f"error-{rank}.json").write_text(json.dumps({"type": type(exc).__name__, "message": str(exc)}))
        raise
    finally:
        dist.destroy_process_group()


def launch(data: TrainSet, setup: LoopSetup, world: int, backend: str) -> tuple[dict, dict]:
    """Run the loop in `world` processes; returns rank 0's (state_dict, result)."""
    import torch
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="kubepipe-ddp-") as out:
        try:
            mp.spawn(_worker, args=(data, setup, world, backend, free_port(), out), nprocs=world, join=True)
        except Exception as exc:
            errors = sorted(Path(out).glob("error-*.json"))
            if errors:
                info = json.loads(errors[0].read_text())
                cls = TrainingError if info["type"] == "TrainingError" else ModelError
                raise cls(info["message"]) from None
            raise ModelError(f"distributed training ({world} x {backend}) failed: "
                             f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}") from None
        payload = torch.load(Path(out) / "result.pt", map_location="cpu", weights_only=True)
    return payload["state"], payload["result"]
