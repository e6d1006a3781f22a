"""A run killed with SIGKILL and resumed is the uninterrupted run: the same
labeled sets, scores, revealed pixels and metrics, round by round.

The moments are drawn from a printed seed (``MMSAAL_KILL_SEED``, 0 unless
set), so a failure replays with the same seed; each config is killed three
times in a row (every kill resumed), and between them the two configs meet
every kind of moment. ``tools/misc/kill_soak.py`` runs many more.
"""
import json
import os
import random

import pytest
from conftest import (DEMO_CONFIG, PYTHONPATH, SEG_DEMO_CONFIG, data_options,
                      run_command, seg_quick_options)

from mmsaal.testing.kill_switch import (draw_moments, kill_and_resume,
                                        train_al_command)
from mmsaal.testing.run_outputs import differences

KILL_SEED = int(os.environ.get('MMSAAL_KILL_SEED', 0))
ENV = dict(PYTHONPATH=PYTHONPATH)


def detection_options(root):
    # Two epochs per round, two data-loading workers, SAAL scoring.
    return data_options(root) + [
        'active_learning.num_rounds=2', 'active_learning.epochs_per_round=2',
        'active_learning.initial_labeled=10', 'active_learning.budget=5',
        'active_learning.pool_sampler=SAALSampler', 'train_cfg.val_interval=2',
        'train_dataloader.batch_size=4', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]


CASES = {
    'detection': (DEMO_CONFIG, detection_options,
                  ('train_iter', 'checkpoint_write', 'round_file')),
    'segmentation':
    (SEG_DEMO_CONFIG,
     lambda root: seg_quick_options(root, sampler='SAALSampler'),
     ('scoring_batch', 'val_iter', 'last_checkpoint_write')),
}


@pytest.mark.parametrize('task', sorted(CASES))
def test_killed_and_resumed_run_equals_the_uninterrupted_run(
        task, voc_shapes, street_domains, tmp_path):
    config, make_options, events = CASES[task]
    options = make_options(voc_shapes if task == 'detection' else
                           street_domains)
    reference = str(tmp_path / 'uninterrupted')
    counts_file = str(tmp_path / 'counts.json')
    result = run_command(train_al_command(config, reference, options,
                                          count=counts_file), ENV)
    assert result.returncode == 0, result.stderr[-5000:]
    with open(counts_file) as f:
        counts = json.load(f)

    moments = draw_moments(counts, events, random.Random(KILL_SEED))
    print(f'MMSAAL_KILL_SEED={KILL_SEED}: kills at {moments}')
    assert len(moments) == 3, counts
    work_dir = str(tmp_path / 'killed')
    killed = kill_and_resume(config, work_dir, options, moments, ENV,
                             runner=run_command)
    assert killed[0], f'the first moment {moments[0]} never came'
    assert differences(reference, work_dir) == [], (
        f'replay with MMSAAL_KILL_SEED={KILL_SEED}: kills at {moments}')
