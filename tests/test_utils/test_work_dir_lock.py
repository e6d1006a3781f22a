"""The work-dir lock excludes: of many processes that take it at the same
moment, exactly one wins, on a free lock and on a stale one alike."""
import json
import multiprocessing
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

from mmsaal.utils import WorkDirError, WorkDirLock
from mmsaal.utils.work_dir import LOCK_FILE

TAKERS = 4


def _taker(work_dir, barrier, wins, trials):
    for _ in range(trials):
        barrier.wait()  # the lock file is ready: everyone takes it now
        lock = WorkDirLock(work_dir, 'a taker')
        try:
            lock.acquire()
            won = 1
        except WorkDirError:
            won = 0
        with wins.get_lock():
            wins.value += won
        barrier.wait()  # every taker has tried
        lock.release()
        barrier.wait()  # released: the next trial can be laid out


def dead_pid() -> int:
    done = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.parametrize('stale', [False, True], ids=['free', 'stale'])
def test_exactly_one_of_simultaneous_takers_wins_every_trial(tmp_path, stale):
    trials = 1000
    work_dir = str(tmp_path / 'run')
    os.makedirs(work_dir)
    context = multiprocessing.get_context('fork')
    barrier = context.Barrier(TAKERS + 1)
    wins = context.Value('i', 0)
    takers = [context.Process(target=_taker,
                              args=(work_dir, barrier, wins, trials))
              for _ in range(TAKERS)]
    for taker in takers:
        taker.start()
    holder = json.dumps(dict(pid=dead_pid(), host=socket.gethostname(),
                             started='then', what='a killed run'))
    failed = []
    try:
        for trial in range(trials):
            if stale:  # a holder killed without releasing left its file
                with open(osp.join(work_dir, LOCK_FILE), 'w') as f:
                    f.write(holder)
            before = wins.value
            barrier.wait(timeout=60)
            barrier.wait(timeout=60)
            if wins.value - before != 1:
                failed.append((trial, wins.value - before))
            barrier.wait(timeout=60)
    finally:
        for taker in takers:
            taker.join(timeout=60)
            if taker.is_alive():
                taker.kill()
    assert not failed, f'{len(failed)} of {trials} trials: {failed[:10]}'
    assert wins.value == trials
    assert not osp.exists(osp.join(work_dir, LOCK_FILE))  # released


def test_a_held_lock_names_its_holder_and_a_dead_holder_frees_it(tmp_path):
    work_dir = str(tmp_path / 'run')
    held = WorkDirLock(work_dir, 'tools/train_al.py')
    assert held.acquire() is None
    with pytest.raises(WorkDirError, match=f'pid {os.getpid()}'):
        WorkDirLock(work_dir).acquire()
    # A holder that dies never releases, and the kernel drops its lock.
    child = subprocess.run(
        [sys.executable, '-c',
         'import os, sys; from mmsaal.utils import WorkDirLock; '
         'WorkDirLock(sys.argv[1], "a killed run").acquire(); os._exit(9)',
         str(tmp_path / 'other')], capture_output=True, text=True)
    assert child.returncode == 9, child.stderr
    note = WorkDirLock(str(tmp_path / 'other')).acquire()
    assert note.startswith('took over the stale lock of a killed run (pid ')
    held.release()
    assert not osp.exists(osp.join(work_dir, LOCK_FILE))


KILLED_WITH_A_WORKER = """
import os, signal, sys, time
from mmsaal.utils import WorkDirLock
lock = WorkDirLock(sys.argv[1], 'a run with a worker')
lock.acquire()
worker = os.fork()  # as a DataLoader worker is
# Each line is one write (print makes two), so the two processes' lines
# cannot interleave in the pipe.
if worker == 0:
    os.write(1, b'held\\n' if lock.held else b'closed\\n')
    os.close(1), os.close(2)  # the test reads to the end of the output
    time.sleep(60)
    os._exit(0)
os.write(1, b'%d\\n' % worker)
time.sleep(0.5)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_lock_ends_with_its_holder_not_with_a_forked_worker(tmp_path):
    """A run killed while its data-loading worker (a fork) lives on: the
    worker has closed its copy of the lock file, so the work dir is free
    at once."""
    killed = subprocess.run(
        [sys.executable, '-c', KILLED_WITH_A_WORKER, str(tmp_path)],
        capture_output=True, text=True)
    lines = killed.stdout.split()
    try:
        assert killed.returncode == -9, killed.stderr
        assert len(lines) == 2 and 'closed' in lines, lines
        os.kill(int(next(x for x in lines if x.isdigit())), 0)  # it lives
        note = WorkDirLock(str(tmp_path)).acquire()
        assert note.startswith('took over the stale lock of a run with a '
                               'worker')
    finally:
        for pid in lines:
            if pid.isdigit():
                os.kill(int(pid), 9)


@pytest.mark.parametrize('kind', ['link', 'device', 'folder'])
def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    path = work_dir / LOCK_FILE
    outside = tmp_path / 'outside.txt'
    outside.write_text('a user file')
    if kind == 'link':
        path.symlink_to(outside)
    elif kind == 'device':
        path.symlink_to('/dev/zero')
    else:
        path.mkdir()
    with pytest.raises(WorkDirError, match='lock file .* delete it'):
        WorkDirLock(str(work_dir)).acquire()
    assert outside.read_text() == 'a user file'


def test_a_work_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / 'run'
    path.write_text('not a folder')
    with pytest.raises(WorkDirError, match='is a file, not a folder'):
        WorkDirLock(str(path)).acquire()
