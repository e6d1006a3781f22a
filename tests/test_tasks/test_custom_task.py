"""A new task is one registered class, outside mmsaal: the toy task of
``tests/parity_task.py`` counts the digits' items as even or odd digits. A
config imports it (``custom_imports``); the rounds read its items through
it (what a round's report counts), with nothing of it in
``mmsaal/rounds``."""
import json
import os.path as osp
import subprocess
import sys

from conftest import PYTHONPATH, REPO, run_train_al


def test_a_task_registered_outside_mmsaal_shapes_the_rounds(tmp_path):
    from mmsaal.datasets.synthetic import write_digits
    from conftest import DIGITS_CONFIG
    root = str(tmp_path / 'digits') + '/'
    write_digits(root)
    chosen = subprocess.run(
        [sys.executable, '-c', 'import parity_task; from mmsaal.tasks '
         'import task_of; print(task_of(dict(gt_label=3)).__name__, '
         'task_of(dict(instances=[])).__name__)'],
        cwd=REPO, env=dict(PYTHONPATH=PYTHONPATH), capture_output=True,
        text=True)
    assert chosen.stdout.split() == ['ParityTask', 'DetectionTask'], \
        chosen.stderr[-2000:]
    config = tmp_path / 'parity.py'
    config.write_text(
        f'_base_ = [{DIGITS_CONFIG!r}]\n'
        "custom_imports = dict(imports=['mmsaal', 'parity_task'])\n")
    options = [f'{loader}.dataset.data_root={root}' for loader in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')] + [
        'active_learning.num_rounds=1', 'active_learning.epochs_per_round=1',
        'active_learning.pool_sampler=RandomSampler',
        'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1']
    work_dir = str(tmp_path / 'run')
    run_train_al(work_dir, options, config=str(config))
    rows = json.load(open(osp.join(work_dir, 'report.json')))
    # The balanced initial set: 2 of each digit, 10 even and 10 odd.
    assert rows[0]['queried_classes'] == dict(even=10, odd=10)
    assert set(rows[1]['queried_classes']) <= {'even', 'odd'}
    assert sum(rows[1]['queried_classes'].values()) == 10
