# Copyright (c) mmsaal contributors. All rights reserved.
"""Step 1 of a round, scoring: run a strategy over the pool candidates, in
eval mode, sharded over ranks."""
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import all_gather_object, get_dist_info, is_main_process
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader

#: Batches whose ``finish`` may still run while the next ones are scored.
FINISH_AHEAD = 2

def make_batches(candidates: Sequence[int],
                 batch_size: int) -> List[List[int]]:
    """Split candidates into consecutive batches.

    Batches are made before sharding, so every item is scored in the same
    batch (same padding) whatever the world size: the scores, and hence the
    selection, equal the single-process ones.
    """
    candidates = [int(i) for i in candidates]
    return [
        candidates[start:start + batch_size]
        for start in range(0, len(candidates), batch_size)
    ]


def score_candidates(score_batch: Callable[[dict], Sequence[Any]],
                     dataset,
                     candidates: Sequence[int],
                     batch_size: int = 1,
                     num_workers: int = 0,
                     collate_fn: Callable = pseudo_collate,
                     as_floats: bool = True,
                     trim: Optional[Callable[[List], List]] = None,
                     finish: Optional[Callable[[Any], Sequence[Any]]] = None
                     ) -> Union[np.ndarray, List]:
    """Score every candidate once; all ranks return the same array.

    Args:
        score_batch (Callable[[dict], Sequence]): Scores one collated
            batch, one float (or, with ``as_floats=False``, one picklable
            object such as ranked regions) per item.
        dataset: The pool dataset (test pipeline), indexed by pool position.
        candidates (Sequence[int]): Pool positions to score.
        batch_size (int): Items per batch. Defaults to 1.
        num_workers (int): Data loading workers. Defaults to 0.
        collate_fn (Callable): Defaults to mmengine's ``pseudo_collate``.
        as_floats (bool): Whether the scores are floats. Defaults to True.
        trim (Callable[[list], list], optional): What of this rank's
            results (in candidate order) it sends to the others: e.g. only
            the units the round can pick. Defaults to None (all).
        finish (Callable, optional): A second step per batch, run in a
            thread of its own beside the scoring of the next batches (at
            most :data:`FINISH_AHEAD` behind, one batch after another in
            batch order): ``score_batch`` returns what it takes, and it
            returns the batch's results (e.g. the ranking of score maps on
            the CPU while the next batch runs on the device). Defaults to
            None.

    Returns:
        np.ndarray | list: ``scores[j]`` belongs to ``candidates[j]``.
    """
    rank, world_size = get_dist_info()
    batches = make_batches(candidates, batch_size)
    mine = list(range(rank, len(batches), world_size))
    loader = DataLoader(
        dataset,
        batch_sampler=[batches[b] for b in mine],
        num_workers=num_workers,
        collate_fn=collate_fn)
    progress = ProgressBar(sum(len(batches[b]) for b in mine)) \
        if is_main_process() and len(candidates) else None
    local = {}

    def keep(batch_id: int, scores) -> None:
        scores = list(scores)
        if as_floats:
            scores = [float(s) for s in scores]
        if len(scores) != len(batches[batch_id]):
            raise RuntimeError(
                f'the pool sampler returned {len(scores)} scores for a '
                f'batch of {len(batches[batch_id])} items')
        local[batch_id] = scores
        if progress is not None:
            progress.update(len(scores))

    pending = deque()
    for batch_id, data_batch in zip(mine, loader):
        scored = score_batch(data_batch)
        if finish is None:
            keep(batch_id, scored)
            continue
        while len(pending) >= FINISH_AHEAD:
            keep(*wait_for(pending.popleft()))
        pending.append((batch_id, _finisher().submit(finish, scored)))
    while pending:
        keep(*wait_for(pending.popleft()))
    if progress is not None:
        progress.file.write('\n')
    if trim is not None:
        local = trim_results(local, trim)
    gathered = {}
    for part in (all_gather_object(local) if world_size > 1 else [local]):
        gathered.update(part)
    ordered = [s for b in range(len(batches)) for s in gathered[b]]
    return np.asarray(ordered, dtype=np.float64) if as_floats else ordered


def wait_for(pending):
    """``(batch id, results)`` of a batch whose ``finish`` was submitted,
    once it is done (re-raising what it raised)."""
    batch_id, future = pending
    return batch_id, future.result()


_FINISHERS: Dict[int, ThreadPoolExecutor] = {}


def _finisher() -> ThreadPoolExecutor:
    """This process's one thread for ``finish`` steps: one at a time, so
    batches finish in the order they were scored."""
    pool = _FINISHERS.get(os.getpid())
    if pool is None:
        pool = ThreadPoolExecutor(1, thread_name_prefix='mmsaal-finish')
        _FINISHERS[os.getpid()] = pool
    return pool


def trim_results(local: Dict[int, List],
                 trim: Callable[[List], List]) -> Dict[int, List]:
    """``trim`` over one rank's results (by batch id), back in batches."""
    ids = sorted(local)
    flat = trim([s for b in ids for s in local[b]])
    out, start = {}, 0
    for b in ids:
        out[b] = flat[start:start + len(local[b])]
        start += len(local[b])
    return out


def score_in_eval_mode(score_batch: Callable[[dict], Sequence[Any]],
                       model: torch.nn.Module, dataset,
                       candidates: Sequence[int], **loader) -> List:
    """:func:`score_candidates` (one object per candidate) with the model in
    eval mode (BatchNorm and dropout as at inference, as SAAL specifies),
    and its train/eval mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        return score_candidates(
            score_batch, dataset, candidates, as_floats=False, **loader)
    finally:
        model.train(was_training)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP (or other) wrapper."""
    return model.module if hasattr(model, 'module') else model
