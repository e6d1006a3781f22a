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
    """Iterate the labeled items only.

    It behaves as mmengine's ``DefaultSampler`` (shuffled with ``seed +
    epoch``, sharded over ranks, rounded up to a multiple of the world size)
    over the labeled items, which ``ActiveLearningHook`` sets with
    :meth:`set_labeled` at the start and after every round. Before that it
    iterates the whole dataset.

    For domain adaptation the train dataset is a ``ConcatDataset`` of
    labeled datasets (the source domain) and the pool (the target domain),
    at ``pool_index``: the other parts are always iterated, the pool's
    labeled items beside them. With ``balance`` every batch holds as many
    of one as of the other (the smaller side is cycled, reshuffled), as the
    paired source/target batches of domain-adaptive training.

    Args:
        dataset (Sized): The train dataset, possibly wrapped in a
            ``RepeatDataset``.
        shuffle (bool): Whether to shuffle. Defaults to True.
        seed (int, optional): Shuffling seed, identical on every rank.
            Defaults to None (synced random seed).
        round_up (bool): Whether to pad to a multiple of the world size.
            Defaults to True.
        pool_index (int, optional): Position of the pool in a
            ``ConcatDataset``. Defaults to None: the whole dataset is the
            pool.
        balance (bool): Alternate always-labeled and pool items, so that
            each domain fills half of every batch (use an even batch size).
            Defaults to False.
    """

    def __init__(self,
                 dataset: Sized,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True,
                 pool_index: Optional[int] = None,
                 balance: bool = False) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed,
                         round_up=round_up)
        whole, self.times = unwrap_repeats(dataset)
        self.whole_size = len(whole)
        self.pool, self.pool_index, self.offset = whole, None, 0
        always = np.zeros(0, dtype=np.int64)
        if pool_index is not None:
            parts = getattr(whole, 'datasets', None)
            if parts is None:
                raise TypeError(
                    f'LabeledSetSampler.pool_index={pool_index} needs a '
                    f'ConcatDataset as train_dataloader.dataset (labeled '
                    f'parts + the pool), got {type(whole).__name__}')
            if not -len(parts) <= pool_index < len(parts):
                raise IndexError(
                    f'LabeledSetSampler.pool_index={pool_index} is outside '
                    f'the {len(parts)} datasets of the ConcatDataset')
            self.pool_index = pool_index % len(parts)
            starts = np.cumsum([0] + [len(d) for d in parts])
            self.pool = parts[self.pool_index]
            self.offset = int(starts[self.pool_index])
            always = np.setdiff1d(
                np.arange(self.whole_size),
                np.arange(self.offset, self.offset + len(self.pool)))
        if balance and pool_index is None:
            raise ValueError('LabeledSetSampler.balance needs pool_index: '
                             'it balances the labeled parts and the pool')
        self.balance = balance
        self.always = self._repeated(always)
        self.pool_size = len(self.pool)
        self.set_labeled(np.arange(self.pool_size))

    def _repeated(self, indices: np.ndarray) -> np.ndarray:
        repeats = np.arange(self.times, dtype=np.int64) * self.whole_size
        return (repeats[:, None] + indices[None, :]).reshape(-1)

    def set_labeled(self, indices: Sequence[int]) -> None:
        """Set the pool positions that training iterates."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0
                             or indices.max() >= self.pool_size):
            raise IndexError('labeled positions fall outside the pool')
        self.labeled = self._repeated(self.offset + indices)
        if self.balance and len(self.always) and len(self.labeled):
            size = 2 * max(len(self.always), len(self.labeled))
        else:
            size = len(self.always) + len(self.labeled)
        self.size = size
        if self.round_up:
            self.num_samples = math.ceil(size / self.world_size)
            self.total_size = self.num_samples * self.world_size
        else:
            self.num_samples = math.ceil(
                max(size - self.rank, 0) / self.world_size)
            self.total_size = size

    def _order(self, indices: np.ndarray, generator) -> np.ndarray:
        if not self.shuffle:
            return indices
        return indices[torch.randperm(len(indices),
                                      generator=generator).numpy()]

    def _interleaved(self, generator) -> np.ndarray:
        """Always-labeled and pool items alternating in blocks of the world
        size, so each rank alternates between them too."""
        length = max(len(self.always), len(self.labeled))
        sides = []
        for part in (self.always, self.labeled):
            copies = -(-length // len(part))
            sides.append(
                np.concatenate([
                    self._order(part, generator) for _ in range(copies)
                ])[:length])
        block = self.world_size
        blocks = -(-length // block)
        stacked = np.stack(
            [np.resize(s, blocks * block).reshape(blocks, block)
             for s in sides], 1)
        return stacked.reshape(-1)[:self.size]

    def __iter__(self) -> Iterator[int]:
        if self.size == 0:
            return iter([])
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        if self.balance and len(self.always) and len(self.labeled):
            indices = self._interleaved(generator).tolist()
        else:
            indices = self._order(
                np.concatenate([self.always, self.labeled]),
                generator).tolist()
        if self.round_up:
            indices = (indices * int(self.total_size / len(indices) +
                                     1))[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.world_size])
