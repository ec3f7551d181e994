"""Multi-process training with torch.distributed: one process per GPU (nccl) or CPU workers (gloo).

`launch` starts `world` processes on a loopback rendezvous; each runs the same
loop on its DistributedSampler shard under DDP. Where the platform has one, the
processes fork from a forkserver that imported torch (and the libraries the
model declares in `worker_imports`) once per parent process: each spawned
worker would import them again, seconds each (DDP and the optimizers import
torch._dynamo). The server never touches a GPU, so this is as CUDA-safe as spawn;
each worker takes the parent's environment of the moment. Rank 0 hands the weights and
the summary back through a file read with `torch.load(weights_only=True)`; a
user-facing error in any rank comes back as the same error, not a traceback.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import tempfile
from dataclasses import replace
from pathlib import Path

from kubepipe.components.errors import ComponentError, ModelError
from kubepipe.components.training.loop import LoopSetup, TrainingError, run_loop
from kubepipe.components.training.trainset import TrainSet
from kubepipe.util import atomic_write_text

__all__ = ["launch", "free_port", "start_method"]

# what every worker imports anyway ("__main__" is the forkserver's own default); never a user's model
# module: the server outlives one training, and a module of that name may come from elsewhere next time
_PRELOAD = ("__main__", "torch", "torch._dynamo", "torch.nn.parallel", __name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_method(extra_imports=()) -> str:
    """"forkserver" (preloading `extra_imports` too, if it is not running yet) where available, else "spawn"."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    multiprocessing.get_context("forkserver").set_forkserver_preload([*_PRELOAD, *extra_imports])
    return "forkserver"


def _worker(rank: int, env: dict, data: TrainSet, setup: LoopSetup, world: int, backend: str, port: int,
            out: str) -> None:
    import torch
    import torch.distributed as dist

    os.environ.clear()  # the parent's now, not the forkserver's from when it started
    os.environ.update(env)
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
        atomic_write_text(Path(out) / f"error-{rank}.json",  # the parent reads it: whole or not there
                          json.dumps({"type": type(exc).__name__, "message": str(exc)}))
        raise
    finally:
        dist.destroy_process_group()


def launch(data: TrainSet, setup: LoopSetup, world: int, backend: str) -> tuple[dict, dict]:
    """Run the loop in `world` processes; returns rank 0's (state_dict, result)."""
    import torch
    import torch.multiprocessing as mp

    from kubepipe.components.training.models import resolve_model_class

    method = start_method(getattr(resolve_model_class(setup.model_ref), "worker_imports", ()))
    with tempfile.TemporaryDirectory(prefix="kubepipe-ddp-") as out:
        try:
            mp.start_processes(_worker, args=(dict(os.environ), data, setup, world, backend, free_port(), out),
                               nprocs=world, join=True, start_method=method)
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
