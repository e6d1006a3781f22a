"""End-to-end: the real tools/train_al.py on generated VOC-layout data."""
import glob
import json
import os
import os.path as osp

import pytest
from conftest import (DEMO_CONFIG, kill_when_round_written, quick_options,
                      run_train_al)


def labeled_sets(work_dir):
    """{round: sorted labeled pool positions} read back from disk."""
    sets = {}
    for path in sorted(glob.glob(osp.join(work_dir, 'rounds', 'round_*'))):
        with open(osp.join(path, 'labeled.json')) as f:
            data = json.load(f)
        sets[data['round']] = sorted(item['index'] for item in data['items'])
    return sets


def test_two_rounds_write_the_rounds_and_grow_the_labeled_set(
        voc_shapes, tmp_path):
    work_dir = str(tmp_path / 'run')
    result = run_train_al(
        work_dir, quick_options(voc_shapes, sampler='EntropySampler'))
    sets = labeled_sets(work_dir)
    assert [len(sets[r]) for r in (0, 1, 2)] == [10, 15, 20]
    assert set(sets[0]) < set(sets[1]) < set(sets[2])
    for round_idx in (1, 2):
        queried = json.load(
            open(osp.join(work_dir, 'rounds', f'round_{round_idx:02d}',
                          'queried.json')))
        assert len(queried['items']) == 5
        assert 'EntropySampler' in queried['strategy']
        scores = json.load(
            open(osp.join(work_dir, 'rounds', f'round_{round_idx:02d}',
                          'scores.json')))
        # Every unlabeled item was scored; the query is the top of them.
        assert len(scores['items']) == 40 - len(sets[round_idx - 1])
        best = sorted(scores['items'], key=lambda r: -r['score'])[:5]
        assert {r['index'] for r in best} == {
            r['index'] for r in queried['items']}
        metrics = json.load(
            open(osp.join(work_dir, 'rounds', f'round_{round_idx:02d}',
                          'metrics.json')))
        assert metrics['num_labeled'] == len(sets[round_idx])
        assert 'pascal_voc/mAP' in metrics['metrics']
    assert 'Active learning summary' in result.stdout + result.stderr


def test_resume_after_crash_while_scoring_gives_the_same_labeled_set(
        voc_shapes, tmp_path):
    options = quick_options(voc_shapes)
    reference = str(tmp_path / 'reference')
    run_train_al(reference, options)

    work_dir = str(tmp_path / 'crashed')
    marker = str(tmp_path / 'crashed.marker')
    # custom_imports act when the file is parsed: a child config adds ours.
    config = tmp_path / 'crash_once_config.py'
    config.write_text(f'_base_ = [{DEMO_CONFIG!r}]\n'
                      "custom_imports = dict(imports=['mmsaal', "
                      "'crash_once'])\n")
    crash = [o for o in options
             if not o.startswith('active_learning.pool_sampler')] + [
        'active_learning.pool_sampler.type=CrashOnceSampler',
        f'active_learning.pool_sampler.marker={marker}',
    ]
    first = run_train_al(work_dir, crash, config=str(config), check=False)
    assert first.returncode == 3, first.stderr[-3000:]
    assert sorted(labeled_sets(work_dir)) == [0]
    run_train_al(work_dir, crash, config=str(config), extra=['--resume'])
    assert labeled_sets(work_dir) == labeled_sets(reference)


def test_resume_after_sigkill_during_training_loses_and_duplicates_nothing(
        voc_shapes, tmp_path):
    options = quick_options(voc_shapes, rounds=2, epochs=2)
    reference = str(tmp_path / 'reference')
    run_train_al(reference, options)

    work_dir = str(tmp_path / 'killed')
    kill_when_round_written(work_dir, options)
    killed_at = labeled_sets(work_dir)
    assert 1 in killed_at and 2 not in killed_at
    run_train_al(work_dir, options, extra=['--resume'])
    final = labeled_sets(work_dir)
    assert final == labeled_sets(reference)
    assert final[1] == killed_at[1]  # what was labeled stays labeled
    assert len(set(final[2])) == len(final[2])


def work_dir_listing(work_dir):
    """Every file under ``work_dir``, with its modification time."""
    return {
        path: os.stat(path).st_mtime_ns
        for path in glob.glob(osp.join(work_dir, '**'), recursive=True)
    }


def test_a_refused_start_leaves_the_work_dir_as_it_was(voc_shapes, tmp_path):
    work_dir = str(tmp_path / 'run')
    options = quick_options(voc_shapes, rounds=0)
    run_train_al(work_dir, options)
    before = work_dir_listing(work_dir)

    again = run_train_al(work_dir, options, check=False)
    assert again.returncode != 0
    assert 'Continue it with --resume' in again.stderr

    changed = options + ['active_learning.budget=6',
                         'active_learning.pool_sampler=EntropySampler']
    resumed = run_train_al(work_dir, changed, extra=['--resume'],
                           check=False)
    assert resumed.returncode != 0
    assert 'active_learning.budget: 5 -> 6' in resumed.stderr
    assert ("active_learning.pool_sampler: 'RandomSampler' -> "
            "'EntropySampler'") in resumed.stderr
    assert work_dir_listing(work_dir) == before  # no log folder, no dump


@pytest.mark.parametrize('field, value, message', [
    ('active_learning.budget', '500',
     'ActiveLearningHook.budget=500 is larger than the pool'),
    ('active_learning.budget', '0',
     'ActiveLearningHook.budget must be a count > 0'),
    ('active_learning.initial_labeled', '41',
     'ActiveLearningHook.initial_labeled=41 is larger than the pool'),
    ('active_learning.pool_sampler', 'NoSuchSampler',
     "ActiveLearningHook.pool_sampler: unknown type 'NoSuchSampler'"),
    ('train_dataloader.sampler.type', 'InfiniteSampler',
     "train_dataloader.sampler=dict(type='mmsaal.LabeledSetSampler')"),
])
def test_bad_config_gets_a_clear_error(voc_shapes, tmp_path, field, value,
                                       message):
    options = quick_options(voc_shapes) + [f'{field}={value}']
    result = run_train_al(str(tmp_path / 'run'), options, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert not glob.glob(str(tmp_path / 'run' / 'rounds' / 'round_*'))
    assert not glob.glob(str(tmp_path / 'run' / '2*'))  # no log folder


def test_an_exhausted_pool_ends_the_run_cleanly(voc_shapes, tmp_path):
    work_dir = str(tmp_path / 'run')
    options = quick_options(voc_shapes, rounds=4, initial=20, budget=10)
    result = run_train_al(work_dir, options)
    assert sorted(labeled_sets(work_dir)) == [0, 1, 2]
    assert 'The pool is empty' in result.stdout + result.stderr
