# Copyright (c) mmsaal contributors. All rights reserved.
import math
from typing import Iterator, Optional, Sequence, Sized

import numpy as np
import torch
from mmengine.dataset import DefaultSampler

from mmsaal.registry import DATA_SAMPLERS


def unwrap_repeats(dataset: Sized):
    """The dataset a ``RepeatDataset`` repeats, and how many times.

    The pool is the repeated dataset's items: each labeled item is then seen
    ``times`` times per epoch, as in the plain ``RepeatDataset`` schedule.
    """
    times = 1
    while hasattr(dataset, 'times') and hasattr(dataset, 'dataset'):
        times *= dataset.times
        dataset = dataset.dataset
    return dataset, times


@DATA_SAMPLERS.register_module()
class LabeledSetSampler(DefaultSampler):
    """Iterate the labeled items of the pool only.

    It behaves as mmengine's ``DefaultSampler`` (shuffled with ``seed +
    epoch``, sharded over ranks, rounded up to a multiple of the world size)
    over the labeled items, which ``ActiveLearningHook`` sets with
    :meth:`set_labeled` at the start and after every round. Before that it
    iterates the whole dataset.

    Args:
        dataset (Sized): The train dataset (the pool), possibly wrapped in a
            ``RepeatDataset``.
        shuffle (bool): Whether to shuffle. Defaults to True.
        seed (int, optional): Shuffling seed, identical on every rank.
            Defaults to None (synced random seed).
        round_up (bool): Whether to pad to a multiple of the world size.
            Defaults to True.
    """

    def __init__(self,
                 dataset: Sized,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed,
                         round_up=round_up)
        pool, self.times = unwrap_repeats(dataset)
        self.pool_size = len(pool)
        self.set_labeled(np.arange(self.pool_size))

    def set_labeled(self, indices: Sequence[int]) -> None:
        """Set the pool positions that training iterates."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0
                             or indices.max() >= self.pool_size):
            raise IndexError('labeled positions fall outside the pool')
        repeats = np.arange(self.times, dtype=np.int64) * self.pool_size
        self.labeled = (repeats[:, None] + indices[None, :]).reshape(-1)
        size = len(self.labeled)
        if self.round_up:
            self.num_samples = math.ceil(size / self.world_size)
            self.total_size = self.num_samples * self.world_size
        else:
            self.num_samples = math.ceil(
                max(size - self.rank, 0) / self.world_size)
            self.total_size = size

    def __iter__(self) -> Iterator[int]:
        if len(self.labeled) == 0:
            return iter([])
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(
                len(self.labeled), generator=generator).numpy()
            indices = self.labeled[order].tolist()
        else:
            indices = self.labeled.tolist()
        if self.round_up:
            indices = (indices * int(self.total_size / len(indices) +
                                     1))[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.world_size])
