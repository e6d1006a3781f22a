"""The units of a round (and the hook's checks) without a Runner."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.optim.scheduler import LinearLR
from torch import nn

from mmsaal.engine import InitialTrainingState
from mmsaal.engine.hooks import ActiveLearningHook
from mmsaal.pool import PoolState, RoundStore, strategy_line
from mmsaal.pool_samplers import BasePoolSampler, RandomSampler
from mmsaal.registry import POOL_SAMPLERS
from mmsaal.oracles import LabelingContext, SimulatedOracle
from mmsaal.rounds import (ImageUnits, RoundPipeline, RoundRecorder,
                           score_in_eval_mode)
from mmsaal.selection import kmeans_pp_seeding


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
    path = str(tmp_path / 'rounds' / 'initial_state.pth')
    initial = {k: v.clone() for k, v in runner.model.state_dict().items()}
    initial_lr = runner.optim_wrapper.get_lr()['lr'][0]
    snapshot = InitialTrainingState(path)
    snapshot.save_or_load(runner.model, runner.optim_wrapper,
                          runner.param_schedulers, starting=True)
    train_a_bit(runner)
    assert runner.optim_wrapper.get_lr()['lr'][0] != initial_lr
    assert runner.optim_wrapper.optimizer.state  # momentum buffers exist

    snapshot.restore(runner.model, runner.optim_wrapper,
                     runner.param_schedulers)
    for name, value in runner.model.state_dict().items():
        assert torch.equal(value, initial[name]), name
    assert runner.optim_wrapper.get_lr()['lr'][0] == initial_lr
    assert not runner.optim_wrapper.optimizer.state
    assert runner.param_schedulers[0].last_step == 0

    # A resumed run (not starting) reads the snapshot back from disk.
    train_a_bit(runner)
    resumed = fake_runner(tmp_path, epoch=3)
    with torch.no_grad():
        for p in resumed.model.parameters():
            p.add_(1.0)
    after_resume = InitialTrainingState(path)
    after_resume.save_or_load(resumed.model, resumed.optim_wrapper,
                              resumed.param_schedulers, starting=False)
    after_resume.restore(resumed.model, resumed.optim_wrapper,
                         resumed.param_schedulers)
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, initial[name]), name
    with pytest.raises(RuntimeError, match='none.pth, saved when the run'):
        InitialTrainingState(str(tmp_path / 'none.pth')).save_or_load(
            resumed.model, resumed.optim_wrapper, resumed.param_schedulers,
            starting=False)


@POOL_SAMPLERS.register_module()
class RecordingSampler(BasePoolSampler):
    """Scores each item by its value and records the model's mode."""

    def __init__(self, diversity=False):
        super().__init__(diversity=diversity)
        self.modes = []

    def score_batch(self, model, data_batch):
        self.modes.append(model.training)
        return [float(x) for x in data_batch]


def test_scoring_runs_in_eval_mode_and_restores_train_mode(tmp_path):
    model = fake_runner(tmp_path).model.train()
    sampler = RecordingSampler()
    scores = score_in_eval_mode(
        lambda batch: sampler.score_batch(model, batch), model,
        [10.0 * i for i in range(8)], [1, 4, 6, 7], batch_size=3)
    assert scores == [10.0, 40.0, 60.0, 70.0]
    assert sampler.modes == [False, False]
    assert model.training


class TenItems:
    """A labeled pool of 10 items named by their index."""
    metainfo = {}

    def __len__(self):
        return 10

    def get_data_info(self, index):
        return dict(img_path=f'{index}.jpg')


def pipeline(folder, sampler, budget=2, pool_subset=4, seed=1,
             cold_start_rounds=0):
    """A round pipeline over a pool of 10 items whose data (and score) is
    their index, with items 0 and 1 labeled in round 0."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'initial.json').write_text('[0, 1]')
    pool = TenItems()
    state = PoolState([f'{i}.jpg' for i in range(10)], seed=seed)
    store = RoundStore(str(folder / 'rounds'))
    units = ImageUnits(budget)
    rounds = RoundPipeline(
        sampler, units, SimulatedOracle(LabelingContext(pool)), state, store,
        RoundRecorder(store, state, units, pool, str(folder), 'unit'),
        pool_dataset=lambda: [float(i) for i in range(10)],
        pool_subset=pool_subset, pool_dataloader=dict(batch_size=3),
        cold_start_rounds=cold_start_rounds)
    rounds.label_initial_set(0, initial_file=str(folder / 'initial.json'))
    return rounds


def test_a_round_labels_the_top_scores_and_writes_the_round(tmp_path):
    rounds = pipeline(tmp_path, RecordingSampler())
    model = fake_runner(tmp_path).model
    query = rounds.run(1, model, epoch=1)
    subset = rounds.state.round_rng(1).choice(
        np.arange(2, 10), size=4, replace=False)
    assert sorted(query.indices.tolist()) == sorted(subset.tolist())[-2:]
    assert rounds.store.rounds() == [0, 1]
    assert set(query.scores) == set(subset.tolist())
    assert '| 1 | 4 | 0.4 | 2 |' in open(tmp_path / 'report.md').read()
    assert not rounds.is_exhausted()


@POOL_SAMPLERS.register_module()
class FlatSampler(BasePoolSampler):
    """Scores every item 0: a model that knows nothing yet."""

    def score_batch(self, model, data_batch):
        return [0.0 for _ in data_batch]


def test_a_round_of_equal_scores_is_a_seeded_draw_and_says_so(tmp_path):
    """Scores that give no order: the round picks a random set (not the
    first items), the same for the same seed, and its queried.json and
    report.md say so."""
    model = fake_runner(tmp_path).model

    def picked(folder, seed):
        rounds = pipeline(folder, FlatSampler(), budget=3, pool_subset=None,
                          seed=seed)
        return rounds.run(1, model, epoch=1), rounds

    query, rounds = picked(tmp_path / 'a', 1)
    again, _ = picked(tmp_path / 'b', 1)
    other = [sorted(picked(tmp_path / f'c{s}', s)[0].indices.tolist())
             for s in (2, 3, 4)]
    chosen = sorted(query.indices.tolist())
    assert chosen == sorted(again.indices.tolist())
    assert any(o != chosen for o in other)
    assert [2, 3, 4] not in [chosen] + other  # not the first items
    queried = json.loads(
        (tmp_path / 'a' / 'rounds' / 'round_01' / 'queried.json')
        .read_text())
    assert queried['ties'].startswith('8 of the 8 scored items share')
    report = (tmp_path / 'a' / 'report.md').read_text()
    assert '- Round 1: 8 of the 8 scored items share the top score 0' \
        in report


def test_image_queries_pick_through_the_samplers_diversity(tmp_path):
    """diversity=True reaches item queries: k-means++ over the scores
    (best first, then far from it), not the top-k."""
    model = fake_runner(tmp_path).model
    top = pipeline(tmp_path / 'top', RecordingSampler(), budget=3,
                   pool_subset=None)
    assert top.run(1, model, 1).indices.tolist() == [9, 8, 7]
    diverse = pipeline(tmp_path / 'diverse',
                       RecordingSampler(diversity=True), budget=3,
                       pool_subset=None)
    picked = diverse.run(1, model, 1).indices.tolist()
    assert picked[0] == 9 and len(set(picked)) == 3
    assert picked != [9, 8, 7]
    expected = kmeans_pp_seeding(
        np.arange(2, 10, dtype=float), 3, diverse.state.round_rng(1))
    assert picked == (expected + 2).tolist()


def test_cold_start_rounds_draw_as_random_does_then_the_sampler_picks(
        tmp_path):
    model = fake_runner(tmp_path).model
    random = pipeline(tmp_path / 'random', RandomSampler(), pool_subset=None)
    sampler = RecordingSampler()
    cold = pipeline(tmp_path / 'cold', sampler, pool_subset=None,
                    cold_start_rounds=1)
    first = cold.run(1, model, 1)
    assert first.indices.tolist() == random.run(1, model, 1).indices.tolist()
    assert first.info['strategy'].startswith('RandomSampler(')
    assert sampler.modes == []  # the pool sampler never scored round 1
    second = cold.run(2, model, 2)
    left = sorted(set(range(2, 10)) - set(first.indices.tolist()))
    assert sorted(second.indices.tolist()) == left[-2:]
    assert second.info['strategy'].startswith('RecordingSampler(')
    assert sampler.modes  # round 2 was scored
    report = (tmp_path / 'cold' / 'report.md').read_text()
    assert ('Strategies: `RandomSampler(diversity=False, seed=0)` (round 1), '
            '`RecordingSampler(diversity=False') in report


def test_the_report_names_each_strategy_with_its_rounds():
    rows = [dict(round=0, strategy='initial'), dict(round=1, strategy='R'),
            dict(round=2, strategy='S'), dict(round=3, strategy='S')]
    assert strategy_line(rows) == 'Strategies: `R` (round 1), `S` (rounds 2-3)'
    assert strategy_line(rows[:1] + rows[2:]) == 'Strategy: `S`'
    assert strategy_line(rows[:1]) == 'Strategy: `initial`'


@pytest.mark.parametrize('fields, message', [
    (dict(cold_start_rounds=-1), 'cold_start_rounds must be an int >= 0'),
    (dict(cold_start_rounds=3, num_rounds=3),
     'cold_start_rounds=3 leaves none of the num_rounds=3 rounds'),
    (dict(granularity='region', budget=5),
     "granularity='region' the budget is a fraction"),
    (dict(granularity='superpixel'), 'granularity must be one of'),
    (dict(region_size=0), 'region_size must be an int >= 1'),
    (dict(oracle='crowd'), 'oracle must be one of'),
    (dict(pool_sampler=dict(type='EntropySampler', diversity='classes')),
     "diversity='classes'.*granularity='image' queries whole images"),
])
def test_bad_fields_get_clear_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        ActiveLearningHook(**fields)
