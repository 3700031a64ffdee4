"""Sharding over processes with accelerate: the same command, one process or many.

Under ``torchrun --nproc_per_node K`` or ``accelerate launch`` (``WORLD_SIZE`` > 1 in the
environment) ``Workers`` starts accelerate's ``PartialState`` (``cpu=True`` without a GPU: gloo
on torchrun's environment; otherwise one GPU per process). Work is split in fixed chunks of
consecutive prompts: process ``r`` takes chunks ``r, r + K, ...``; every chunk is computed the
same way whatever ``K`` is, and results are gathered in chunk order, so any ``K`` gives the
numbers of one process. The main process writes every file and runs the judges; the others wait.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch

__all__ = ["Workers"]


class Workers:
    """This process's rank among the run's processes, and the few collectives the run needs."""

    def __init__(self) -> None:
        self.state = None
        self.rank, self.world = 0, 1
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            self.state = PartialState(cpu=not torch.cuda.is_available())
            self.rank, self.world = self.state.process_index, self.state.num_processes

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> str | None:
        """This process's GPU when several share a machine (None: let the loader pick)."""
        if self.state is None or not torch.cuda.is_available():
            return None
        return str(self.state.device)

    def wait(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def map_chunks(self, chunks: Sequence, work: Callable[[object], list]) -> list:
        """``work`` on this process's chunks; every chunk's results, in chunk order, on every
        process."""
        mine = {i: work(chunks[i]) for i in range(self.rank, len(chunks), self.world)}
        if self.state is None:
            return [r for i in range(len(chunks)) for r in mine[i]]
        gathered: list = [None] * self.world
        torch.distributed.all_gather_object(gathered, mine)
        merged = {i: rows for part in gathered for i, rows in part.items()}
        return [r for i in range(len(chunks)) for r in merged[i]]

    def share(self, value: object) -> object:
        """The main process's ``value`` on every process."""
        if self.state is None:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
