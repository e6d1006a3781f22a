"""ActiveLearningHook pieces that need no full training run."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.optim.scheduler import LinearLR
from torch import nn

from mmsaal.engine.hooks import ActiveLearningHook
from mmsaal.pool import PoolState, RoundStore
from mmsaal.pool_samplers import BasePoolSampler
from mmsaal.registry import POOL_SAMPLERS


def fake_runner(tmp_path, epoch=0):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    scheduler = LinearLR(optim_wrapper.optimizer, start_factor=0.1,
                         by_epoch=False, begin=0, end=10)
    return SimpleNamespace(model=model, optim_wrapper=optim_wrapper,
                           param_schedulers=[scheduler], epoch=epoch,
                           work_dir=str(tmp_path), experiment_name='unit')


def train_a_bit(runner):
    for _ in range(3):
        loss = runner.model(torch.randn(5, 4)).pow(2).sum()
        runner.optim_wrapper.update_params(loss)
        for scheduler in runner.param_schedulers:
            scheduler.step()


def test_reset_each_round_restores_weights_optimizer_and_schedule(tmp_path):
    runner = fake_runner(tmp_path)
    hook = ActiveLearningHook(reset_each_round=True)
    hook.store = RoundStore(str(tmp_path / 'rounds'))
    initial = {k: v.clone() for k, v in runner.model.state_dict().items()}
    initial_lr = runner.optim_wrapper.get_lr()['lr'][0]
    hook._initial_state = hook._load_or_save_initial_state(runner)
    train_a_bit(runner)
    assert runner.optim_wrapper.get_lr()['lr'][0] != initial_lr
    assert runner.optim_wrapper.optimizer.state  # momentum buffers exist

    hook._reset_training(runner)
    for name, value in runner.model.state_dict().items():
        assert torch.equal(value, initial[name]), name
    assert runner.optim_wrapper.get_lr()['lr'][0] == initial_lr
    assert not runner.optim_wrapper.optimizer.state
    assert runner.param_schedulers[0].last_step == 0

    # A resumed run (epoch > 0) reads the snapshot back from disk.
    train_a_bit(runner)
    resumed = fake_runner(tmp_path, epoch=3)
    with torch.no_grad():
        for p in resumed.model.parameters():
            p.add_(1.0)
    hook_after_resume = ActiveLearningHook(reset_each_round=True)
    hook_after_resume.store = hook.store
    hook_after_resume._initial_state = \
        hook_after_resume._load_or_save_initial_state(resumed)
    hook_after_resume._reset_training(resumed)
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, initial[name]), name


@POOL_SAMPLERS.register_module()
class RecordingSampler(BasePoolSampler):
    """Scores each item by its value and records the model's mode."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def score_batch(self, model, data_batch):
        self.modes.append(model.training)
        return [float(x) for x in data_batch]


def test_scoring_runs_in_eval_mode_and_restores_train_mode(tmp_path):
    runner = fake_runner(tmp_path)
    runner.model.train()
    hook = ActiveLearningHook(pool_sampler=dict(type='RecordingSampler'),
                              pool_dataloader=dict(batch_size=3))
    hook._pool_dataset = [10.0 * i for i in range(8)]
    scores = hook._score(runner, np.array([1, 4, 6, 7]))
    assert scores.tolist() == [10.0, 40.0, 60.0, 70.0]
    assert hook.pool_sampler.modes == [False, False]
    assert runner.model.training


def test_query_labels_the_top_scores_and_writes_the_round(tmp_path):
    runner = fake_runner(tmp_path)
    runner.train_loop = SimpleNamespace(max_epochs=2, dataloader=[0, 1])
    hook = ActiveLearningHook(pool_sampler=dict(type='RecordingSampler'),
                              budget=2, pool_subset=4, seed=1)
    hook.state = PoolState([f'{i}.jpg' for i in range(10)], seed=1)
    hook.state.add_round([0, 1])
    hook.store = RoundStore(str(tmp_path / 'rounds'))
    hook.store.save_round(hook.state)  # as before_run does
    hook.sampler = SimpleNamespace(set_labeled=lambda idx: None)
    hook._pool_dataset = [float(i) for i in range(10)]
    selected = hook.query(runner, 1)
    subset = hook.state.round_rng(1).choice(
        np.arange(2, 10), size=4, replace=False)
    assert sorted(selected.tolist()) == sorted(subset.tolist())[-2:]
    assert hook.store.rounds() == [0, 1]
    assert '| 1 | 4 | 0.4 | 2 |' in open(tmp_path / 'report.md').read()


@pytest.mark.parametrize('fields, message', [
    (dict(granularity='region', budget=5),
     "granularity='region' the budget is a fraction"),
    (dict(granularity='superpixel'), 'granularity must be one of'),
    (dict(region_size=0), 'region_size must be an int >= 1'),
    (dict(oracle='crowd'), 'oracle must be one of'),
])
def test_bad_segmentation_fields_get_clear_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        ActiveLearningHook(**fields)
