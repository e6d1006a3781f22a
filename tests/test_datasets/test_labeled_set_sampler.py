from unittest import mock

import numpy as np
import pytest
from mmengine.dataset import BaseDataset, RepeatDataset

from mmsaal.datasets.samplers import LabeledSetSampler


class Items:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def sampler_on(rank, world_size, dataset, **kwargs):
    with mock.patch('mmengine.dataset.sampler.get_dist_info',
                    return_value=(rank, world_size)):
        return LabeledSetSampler(dataset, seed=0, **kwargs)


@pytest.mark.parametrize('world_size', [1, 2, 3])
def test_shards_cover_the_labeled_items_only(world_size):
    labeled = [1, 4, 5, 8, 9, 12, 17]
    shards = []
    for rank in range(world_size):
        sampler = sampler_on(rank, world_size, Items(20))
        sampler.set_labeled(labeled)
        sampler.set_epoch(3)
        shard = list(sampler)
        assert len(shard) == len(sampler) == -(-len(labeled) // world_size)
        shards.append(shard)
    seen = [i for shard in shards for i in shard]
    assert set(seen) == set(labeled)  # padding repeats, never invents
    if world_size == 1:
        assert sorted(seen) == labeled


def test_shuffle_depends_on_epoch_and_grows_with_the_set():
    sampler = sampler_on(0, 1, Items(50))
    sampler.set_labeled(range(10))
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(list(sampler)) == sorted(first)
    sampler.set_labeled(range(25))
    assert len(sampler) == 25 and set(sampler) == set(range(25))


def test_unshuffled_without_round_up():
    sampler = sampler_on(1, 2, Items(10), shuffle=False, round_up=False)
    sampler.set_labeled([0, 2, 4])
    assert list(sampler) == [2] and len(sampler) == 1


class SixItems(BaseDataset):

    def load_data_list(self):
        return [dict(index=i) for i in range(6)]


def test_repeat_dataset_repeats_each_labeled_item():
    sampler = sampler_on(0, 1, RepeatDataset(SixItems(), times=3))
    assert sampler.pool_size == 6
    sampler.set_labeled([1, 4])
    assert sorted(sampler) == [1, 4, 7, 10, 13, 16]


def test_positions_outside_the_pool_are_refused():
    sampler = sampler_on(0, 1, Items(5))
    with pytest.raises(IndexError):
        sampler.set_labeled(np.array([5]))
