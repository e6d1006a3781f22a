"""Nothing lost, nothing let in: a resume takes only this run's checkpoint
and round files, never rewrites a finished round, survives a moved work
dir and damaged files with one clear line, and one run holds a work dir
at a time. Through the real tools/train_al.py."""
import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys

import pytest
from conftest import (SEG_DEMO_CONFIG, quick_options, run_train_al,
                      seg_quick_options)

from mmsaal.utils import WorkDirLock
from mmsaal.utils.work_dir import LOCK_FILE


@pytest.fixture(scope='module')
def finished(voc_shapes, tmp_path_factory):
    """A finished two-round run and its options."""
    work_dir = str(tmp_path_factory.mktemp('finished') / 'run')
    options = quick_options(voc_shapes, rounds=2)
    run_train_al(work_dir, options)
    return work_dir, options


def copy_of(finished, tmp_path, name='copy') -> str:
    target = str(tmp_path / name)
    shutil.copytree(finished[0], target)
    return target


def snapshot(work_dir: str) -> dict:
    """The bytes of every round file (and what else lies in rounds/)."""
    out = {}
    for path in sorted(glob.glob(osp.join(work_dir, 'rounds', '**'),
                                 recursive=True)):
        if osp.isfile(path):
            with open(path, 'rb') as f:
                out[osp.relpath(path, work_dir)] = hashlib.sha1(
                    f.read()).hexdigest()
    return out


def resume(work_dir, options, extra=(), check=False):
    return run_train_al(work_dir, options, extra=['--resume', *extra],
                        check=check)


def one_line(result) -> str:
    """The refusal: ``error: ...`` and no traceback."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines()
             if line.startswith('error: ')]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def test_a_checkpoint_of_another_run_is_refused_and_nothing_rewritten(
        finished, voc_shapes, tmp_path):
    other = str(tmp_path / 'other')
    run_train_al(other, quick_options(voc_shapes, rounds=2, initial=20))
    work_dir = copy_of(finished, tmp_path)
    before = snapshot(work_dir)
    refused = resume(work_dir, finished[1],
                     [osp.join(other, 'epoch_2.pth')])
    line = one_line(refused)
    assert 'is not a checkpoint of the run' in line
    assert 'another run' in line and 'labeled set' in line
    assert 'epoch_2.pth' in line
    assert snapshot(work_dir) == before


def test_a_resume_never_rewrites_a_finished_round(finished, tmp_path):
    """A resumed run validates the round of its checkpoint again; the
    round's metrics.json stays the one its own training wrote."""
    work_dir = copy_of(finished, tmp_path)
    before = snapshot(work_dir)
    done = resume(work_dir, finished[1], check=True)
    assert 'keeps the metrics.json it has' in done.stdout + done.stderr
    assert snapshot(work_dir) == before


def test_a_copied_work_dir_resumes_from_its_own_checkpoints(
        finished, tmp_path):
    """last_checkpoint holds the original's absolute path: the copy takes
    its own same-named file, never the original's; a path outside that it
    does not hold is refused, naming --resume."""
    work_dir = copy_of(finished, tmp_path)
    named = open(osp.join(work_dir, 'last_checkpoint')).read().strip()
    assert osp.dirname(named) == finished[0]
    before = snapshot(work_dir)
    done = resume(work_dir, finished[1], check=True)
    assert 'outside this work dir (it was moved or copied): resuming ' \
        f'from {osp.join(work_dir, osp.basename(named))}' in \
        done.stdout + done.stderr
    assert snapshot(work_dir) == before
    os.remove(osp.join(work_dir, osp.basename(named)))
    line = one_line(resume(work_dir, finished[1]))
    assert 'outside' in line and f'--resume {named}' in line


def test_code_in_a_checkpoint_never_runs(finished, tmp_path):
    """mmengine executes meta['config'] of a checkpoint it resumes from (it
    writes its own config as meta['cfg']): one carried in is dropped."""
    import torch
    work_dir = copy_of(finished, tmp_path)
    marker = tmp_path / 'executed'
    path = osp.join(work_dir, 'epoch_3.pth')
    checkpoint = torch.load(path, weights_only=True)
    checkpoint['meta']['config'] = (
        f"x = __import__('pathlib').Path({str(marker)!r}).touch()\n")
    torch.save(checkpoint, path)
    done = resume(work_dir, finished[1], check=True)
    assert 'dropped unread' in done.stdout + done.stderr
    assert not marker.exists()


def test_a_damaged_newest_checkpoint_resumes_from_the_one_before(
        finished, tmp_path):
    work_dir = copy_of(finished, tmp_path)
    newest = osp.join(work_dir, 'epoch_3.pth')
    data = open(newest, 'rb').read()
    with open(newest, 'wb') as f:
        f.write(data[:len(data) // 3])
    before = snapshot(work_dir)
    done = resume(work_dir, finished[1], check=True)
    assert f'{newest} is damaged' in done.stdout + done.stderr
    assert 'Resumed checkpoint' not in done.stderr
    after = snapshot(work_dir)
    assert after == before  # epoch 3 trained again; nothing rewritten


@pytest.mark.parametrize('damage, message', [
    ('labeled', 'round_02/labeled.json'),
    ('state', 'round_02/state.json'),
    ('middle', 'round_01 is missing'),
    ('lock', 'is in use'),
])
def test_damaged_round_files_get_one_clear_line(finished, tmp_path, damage,
                                                message):
    work_dir = copy_of(finished, tmp_path)
    rounds = osp.join(work_dir, 'rounds')
    if damage == 'labeled':
        path = osp.join(rounds, 'round_02', 'labeled.json')
        text = open(path).read()
        open(path, 'w').write(text[:len(text) // 2])
    elif damage == 'state':
        open(osp.join(rounds, 'round_02', 'state.json'), 'wb').write(
            b'\x00\x01garbage')
    elif damage == 'middle':
        shutil.rmtree(osp.join(rounds, 'round_01'))
    else:  # a live process holds the work dir
        held = WorkDirLock(work_dir, 'another run')
        held.acquire()
    before = snapshot(work_dir)
    try:
        line = one_line(resume(work_dir, finished[1]))
    finally:
        if damage == 'lock':
            held.release()
    assert message in line, line
    if damage == 'middle':
        assert 'delete the rounds after round 0 (round_02)' in line
    if damage == 'lock':
        assert f'pid {os.getpid()}' in line
    assert snapshot(work_dir) == before


def test_a_stale_lock_and_leftover_temporaries_are_cleaned(finished,
                                                           tmp_path):
    work_dir = copy_of(finished, tmp_path)
    gone = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True)
    json.dump(dict(pid=int(gone.stdout), host=socket.gethostname(),
                   started='then'), open(osp.join(work_dir, LOCK_FILE), 'w'))
    leftovers = [osp.join(work_dir, '.epoch_3.pth.tmp4242'),
                 osp.join(work_dir, 'rounds', '.mmsaal-tmp-state.json.x1')]
    for path in leftovers:
        open(path, 'w').write('half a write')
    done = resume(work_dir, finished[1], check=True)
    assert 'took over the stale lock of a run (pid' in \
        done.stdout + done.stderr
    assert not any(osp.exists(p) for p in leftovers)
    assert not osp.exists(osp.join(work_dir, LOCK_FILE))  # released


def test_a_moved_segmentation_work_dir_resumes(street_domains, tmp_path):
    """revealed_dir is made from the work dir's path; a moved work dir
    resumes and writes its masks where it is now."""
    options = seg_quick_options(street_domains, rounds=1)
    first = str(tmp_path / 'first')
    run_train_al(first, options, config=SEG_DEMO_CONFIG)
    moved = str(tmp_path / 'moved')
    shutil.move(first, moved)
    before = snapshot(moved)
    done = run_train_al(moved, options, config=SEG_DEMO_CONFIG,
                        extra=['--resume'])
    assert '--resume refused' not in done.stderr
    assert snapshot(moved) == before
    assert glob.glob(osp.join(moved, 'rounds', 'revealed', '*.png'))
    # A damaged revealed.npz: one line that names it.
    open(osp.join(moved, 'rounds', 'round_01', 'revealed.npz'), 'wb').write(
        b'PK\x03\x04 not a zip')
    line = one_line(run_train_al(moved, options, config=SEG_DEMO_CONFIG,
                                 extra=['--resume'], check=False))
    assert 'round_01/revealed.npz' in line and 'damaged' in line


@pytest.mark.parametrize('field, value, message', [
    ('active_learning.budjet', '3',
     'active_learning.budjet is not a field of ActiveLearningHook (did you '
     'mean budget?). Its fields: pool_sampler, initial_labeled'),
    ('active_learning.seed', 'abc', 'ActiveLearningHook.seed must be an int'),
    ('active_learning.pool_dataloader.batch_size', '0',
     'pool_dataloader.batch_size must be an int >= 1'),
    ('load_from', '/nonexistent/weights.pth',
     'load_from /nonexistent/weights.pth does not exist'),
])
def test_a_bad_config_is_refused_before_anything_is_written(
        voc_shapes, tmp_path, field, value, message):
    work_dir = str(tmp_path / 'run')
    options = quick_options(voc_shapes, rounds=1)
    line = one_line(run_train_al(work_dir, options + [f'{field}={value}'],
                                 check=False))
    assert message in line, line
    assert not osp.exists(work_dir)


def test_a_start_refused_after_round_0_leaves_nothing(voc_shapes, tmp_path):
    """A checkpoint found bad once the rounds began (a damaged load_from
    only mmengine reads) leaves the work dir as it was: the same command
    runs once the config is fixed."""
    work_dir = str(tmp_path / 'run')
    bad = tmp_path / 'weights.pth'
    bad.write_bytes(b'not a checkpoint at all')
    options = quick_options(voc_shapes, rounds=0)
    refused = run_train_al(work_dir, options + [f'load_from={bad}'],
                           check=False)
    assert refused.returncode != 0
    assert not osp.exists(work_dir) or not os.listdir(work_dir)
    run_train_al(work_dir, options)  # not "already holds the rounds"


def test_region_size_larger_than_the_images_is_refused(street_domains,
                                                       tmp_path):
    options = seg_quick_options(street_domains, rounds=1) + [
        'active_learning.region_size=1000']
    work_dir = str(tmp_path / 'run')
    result = run_train_al(work_dir, options, config=SEG_DEMO_CONFIG,
                          check=False)
    assert result.returncode != 0
    assert 'region_size=1000 is larger than 16 of the 16 pool images' in \
        result.stderr
    assert 'lower region_size to at most 48' in result.stderr
    assert not glob.glob(osp.join(work_dir, 'rounds', 'round_*'))
