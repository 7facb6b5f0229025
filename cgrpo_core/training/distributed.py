"""Data parallelism for the trainers: one process per device, each step's pairs sharded across them.

The paper trains on 8 GPUs, one (reference, prompt) pair per GPU per step. The released trainer never
all-reduced its gradients, so each GPU trained its own LoRA and only rank 0's was saved
(reference/NOTES.md). Here every rank takes a contiguous share of the step's pairs
(:func:`~cgrpo_core.training.data.shard`; a GRPO group is always scored and trained on one rank), computes
the mean loss of its share, and :meth:`Dist.all_reduce_grads` averages the gradients before they are
clipped and applied, so every rank applies the same update to the same LoRA: with equal shares, the
gradient of the mean loss over the whole step, as one process would compute it. Metrics are gathered to
every rank (:meth:`Dist.gather`), rank 0 reports and writes checkpoints.

Launch with ``torchrun`` or ``accelerate launch`` (:func:`launch_command`; the evaluation's sharded
generation and scoring uses accelerate); a process started without it is rank 0 of 1 and
never touches ``torch.distributed``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["LAUNCHERS", "SINGLE_PROCESS", "Dist", "init_distributed", "launch_command"]


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: ``rank`` of ``world`` processes (1: no data parallelism)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_grads(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Average the parameters' gradients over the ranks (in place; one flat all-reduce)."""
        if self.world == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        flat /= self.world
        offset = 0
        for p, g in zip(params, grads, strict=True):
            n = g.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's ``tensor`` (same shape on each) concatenated along dim 0, in rank order."""
        if self.world == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world)]
        torch.distributed.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def mean(self, value: float) -> float:
        """The mean over the ranks of a per-rank scalar."""
        if self.world == 1:
            return value
        return float(self.gather(torch.tensor([value], dtype=torch.float64)).mean())

    def gather_objects(self, obj: object) -> list[object] | None:
        """Every rank's picklable ``obj`` in rank order on rank 0 (None on the other ranks)."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world if self.is_main else None
        torch.distributed.gather_object(obj, out, dst=0)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


SINGLE_PROCESS = Dist()  # rank 0 of 1: the default of every function that takes a ``dist``


def init_distributed() -> Dist:
    """The process group of a ``torchrun`` launch (gloo on CPU, nccl on GPUs), or rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size())


# The launchers: torchrun (training), accelerate launch (evaluation; one process per GPU, on a CPU-only
# machine gloo processes). Each sets the environment init_distributed reads.
LAUNCHERS = {
    "torchrun": ["torch.distributed.run", "--standalone", "--nproc_per_node={n}"],
    "accelerate": [
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes={n}",
        "--num_machines=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
    ],
}


def launch_command(
    nproc: int, module: str, args: Sequence[str], launcher: Literal["torchrun", "accelerate"] = "torchrun"
) -> list[str]:
    """The command that runs ``python -m module args`` on ``nproc`` processes of this machine through
    ``launcher`` (one process: the module itself)."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if nproc == 1:
        return [sys.executable, "-m", module, *args]
    options = [part.format(n=nproc) for part in LAUNCHERS[launcher]]
    return [sys.executable, "-m", *options, "-m", module, *args]
