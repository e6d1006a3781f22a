"""The parts of a reproducible resume, without a Runner: random states,
atomic checkpoint writes, the checkpoint to resume from, the experiment
record."""
import os
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend

from mmsaal.apis.experiment import (changed_fields, check_work_dir,
                                    experiment_fields, record_experiment)
from mmsaal.utils import WorkDirError, checkpoint_to_resume, write_bytes_atomic
from mmsaal.utils.checkpoint import ATOMIC_BACKEND
from mmsaal.utils.random_states import capture, epoch_seed, restore


def draws():
    return (random.random(), float(np.random.rand()),
            float(np.random.randn()), float(torch.rand(1)))


def test_restored_generators_repeat_their_draws_after_a_weights_only_load(
        tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # numpy caches the second gaussian: keep it too
    path = tmp_path / 'states.pth'
    torch.save(capture(), path)
    expected = [draws() for _ in range(3)]
    restore(torch.load(path, weights_only=True))
    assert [draws() for _ in range(3)] == expected


def test_restore_refuses_states_it_did_not_write():
    with pytest.raises(KeyError, match='numpy'):
        restore(dict(python={}, torch=torch.get_rng_state(), cuda=[]))


def test_worker_seeds_depend_on_seed_epoch_and_rank_only():
    assert epoch_seed(0, 3, 1) == epoch_seed(0, 3, 1)
    seeds = {epoch_seed(s, e, r) for s in (0, 1) for e in (0, 1)
             for r in (0, 1)}
    assert len(seeds) == 8


def test_an_interrupted_atomic_write_leaves_the_old_file(tmp_path,
                                                         monkeypatch):
    path = str(tmp_path / 'epoch_1.pth')
    write_bytes_atomic(b'old', path)

    def killed(src, dst):
        raise KeyboardInterrupt  # the process dies before the rename

    monkeypatch.setattr(os, 'replace', killed)
    with pytest.raises(KeyboardInterrupt):
        get_file_backend(path, backend_args=dict(
            backend=ATOMIC_BACKEND)).put(b'new and longer', path)
    monkeypatch.undo()
    with open(path, 'rb') as f:
        assert f.read() == b'old'
    get_file_backend(path, backend_args=dict(backend=ATOMIC_BACKEND)).put(
        b'new', path)
    with open(path, 'rb') as f:
        assert f.read() == b'new'


@pytest.mark.parametrize('pointer', ['', '{dir}/epoch_', None])
def test_a_cut_last_checkpoint_resumes_from_the_newest_checkpoint(
        tmp_path, pointer):
    for epoch in (1, 2):
        path = tmp_path / f'epoch_{epoch}.pth'
        torch.save(dict(epoch=epoch), path)
        os.utime(path, (epoch, epoch))
    (tmp_path / '.epoch_3.pth.tmp123').write_bytes(b'x')  # never renamed
    if pointer is not None:
        (tmp_path / 'last_checkpoint').write_text(
            pointer.format(dir=tmp_path))
    assert checkpoint_to_resume(str(tmp_path)) == str(tmp_path /
                                                     'epoch_2.pth')


def test_last_checkpoint_is_trusted_when_it_names_a_file(tmp_path):
    for epoch in (1, 2):
        torch.save(dict(epoch=epoch), tmp_path / f'epoch_{epoch}.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    assert checkpoint_to_resume(str(tmp_path)) == str(tmp_path /
                                                     'epoch_1.pth')
    assert checkpoint_to_resume(str(tmp_path / 'none')) is None


def experiment(work_dir, **changes):
    cfg = Config(
        dict(
            work_dir=str(work_dir),
            active_learning=dict(
                budget=20, num_rounds=3,
                pool_sampler=dict(type='SAALSampler', rho=0.05)),
            randomness=dict(seed=0),
            train_dataloader=dict(
                batch_size=2, dataset=dict(data_root='data/a/'),
                pipeline=[dict(type='LoadRevealedAnnotations',
                               revealed_dir='x')]),
            log_level='INFO'))
    cfg.merge_from_dict(changes)
    return cfg


def test_experiment_fields_leave_out_what_may_change(tmp_path):
    fields = experiment_fields(experiment(tmp_path))
    assert fields['active_learning.pool_sampler.rho'] == 0.05
    assert 'active_learning.num_rounds' not in fields
    assert 'log_level' not in fields
    assert not any(key.endswith('revealed_dir') for key in fields)


def test_resume_with_a_changed_experiment_is_refused_naming_the_fields(
        tmp_path):
    record_experiment(experiment(tmp_path), str(tmp_path / 'rounds'))
    (tmp_path / 'rounds' / 'round_00').mkdir()
    resume = dict(resume=True)
    check_work_dir(experiment(tmp_path, **resume))
    check_work_dir(experiment(tmp_path, **resume,
                              **{'active_learning.num_rounds': 5}))
    for field, value in [('active_learning.budget', 30),
                         ('active_learning.pool_sampler.rho', 0.5),
                         ('randomness.seed', 1),
                         ('train_dataloader.dataset.data_root', 'data/b/')]:
        with pytest.raises(WorkDirError, match=f'{field}: .* -> '):
            check_work_dir(experiment(tmp_path, **resume, **{field: value}))
    with pytest.raises(WorkDirError, match='Continue it with --resume'):
        check_work_dir(experiment(tmp_path))


def test_changed_fields_names_added_and_removed_fields():
    assert changed_fields({'a': 1, 'b': 2}, {'a': 1, 'c': 3}) == [
        "b: 2 -> '<unset>'", "c: '<unset>' -> 3"
    ]


def test_the_checkpoint_to_resume_is_found_inside_the_work_dir(tmp_path):
    """A damaged newest checkpoint falls back to the one before by epoch
    (not by modification time); a garbled last_checkpoint too; a
    last_checkpoint naming another folder's file is re-rooted to the
    same-named file here, or refused."""
    from mmsaal.utils import WorkDirError
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    for epoch in (2, 10, 3):
        torch.save(dict(epoch=epoch), work_dir / f'epoch_{epoch}.pth')
    os.utime(work_dir / 'epoch_3.pth', (10**10, 10**10))  # the newest file
    data = (work_dir / 'epoch_10.pth').read_bytes()
    (work_dir / 'epoch_10.pth').write_bytes(data[:len(data) // 2])
    pointer = work_dir / 'last_checkpoint'
    pointer.write_text(str(work_dir / 'epoch_10.pth'))
    assert checkpoint_to_resume(str(work_dir)) == str(work_dir /
                                                     'epoch_3.pth')
    pointer.write_bytes(b'\xff\xfe\x00garbage')
    assert checkpoint_to_resume(str(work_dir)) == str(work_dir /
                                                     'epoch_3.pth')
    elsewhere = tmp_path / 'other' / 'epoch_2.pth'
    elsewhere.parent.mkdir()
    torch.save(dict(epoch=99), elsewhere)
    pointer.write_text(str(elsewhere))
    assert checkpoint_to_resume(str(work_dir)) == str(work_dir /
                                                     'epoch_2.pth')
    pointer.write_text(str(tmp_path / 'other' / 'epoch_7.pth'))
    torch.save({}, tmp_path / 'other' / 'epoch_7.pth')
    with pytest.raises(WorkDirError, match='outside .* --resume'):
        checkpoint_to_resume(str(work_dir))


def test_a_moved_work_dir_keeps_its_experiment(tmp_path):
    """revealed_dir follows the work dir, inside lists too: it is no field
    of the experiment, so a moved or copied work dir resumes."""
    def seg(work_dir):
        cfg = experiment(work_dir, resume=True)
        cfg.train_dataloader.dataset = dict(
            type='ConcatDataset', datasets=[
                dict(data_root='data/a/', pipeline=[]),
                dict(data_root='data/b/', pipeline=[dict(
                    type='LoadRevealedAnnotations',
                    revealed_dir=f'{work_dir}/rounds/revealed')])])
        return cfg
    record_experiment(seg(tmp_path / 'a'), str(tmp_path / 'b' / 'rounds'))
    (tmp_path / 'b' / 'rounds' / 'round_00').mkdir()
    check_work_dir(seg(tmp_path / 'b'))  # accepted
    changed = seg(tmp_path / 'b')
    changed.train_dataloader.dataset.datasets[1].data_root = 'data/c/'
    with pytest.raises(WorkDirError, match='datasets.1.data_root'):
        check_work_dir(changed)
