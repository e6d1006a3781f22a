# Copyright (c) mmsaal contributors. All rights reserved.
"""Run a script and SIGKILL it at a chosen moment, to prove that a resumed
run is the uninterrupted run.

A moment is ``EVENT:N``, the N-th time (from 1) this process reaches the
event, so a failing kill can be replayed exactly::

    python -m mmsaal.testing.kill_switch --at train_iter:7 \\
        tools/train_al.py CONFIG --work-dir DIR [--resume]
    python -m mmsaal.testing.kill_switch --count counts.json \\
        tools/train_al.py CONFIG --work-dir DIR   # how often each occurs

Events (where the process dies):

- ``train_iter``: before a training iteration (mid-epoch);
- ``val_iter``: before a validation iteration;
- ``scoring_batch``: before a round scores a batch of the pool;
- ``checkpoint_write``: inside a checkpoint write, its bytes written to
  the temporary file and not yet renamed;
- ``last_checkpoint_write``: in the middle of mmengine's write of
  ``last_checkpoint`` (half of the path written);
- ``round_file``: before a JSON file of the pool state (a round's files
  one by one, then its ``metrics.json``);
- ``label_write``: before a file of labels pulled from Label Studio (a
  label map, the pool's annotation file) is written.

The script runs in this process (``runpy``) with these functions wrapped;
nothing in mmsaal knows about it.
"""
import argparse
import atexit
import json
import os
import os.path as osp
import random
import runpy
import signal
import subprocess
import sys
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EVENTS = ('train_iter', 'val_iter', 'scoring_batch', 'checkpoint_write',
          'last_checkpoint_write', 'round_file', 'label_write')


class KillSwitch:
    """Counts events; kills the process at ``event``'s ``n``-th occurrence
    (never, when ``event`` is None)."""

    def __init__(self, event: Optional[str] = None, n: int = 0) -> None:
        if event is not None and event not in EVENTS:
            raise ValueError(f'unknown event {event!r}; events: {EVENTS}')
        self.event, self.n = event, n
        self.counts: Counter = Counter()

    def reached(self, event: str) -> None:
        self.counts[event] += 1
        if event == self.event and self.counts[event] == self.n:
            self.kill()

    @staticmethod
    def kill() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def before(self, event: str, function: Callable) -> Callable:
        """``function`` that first reaches ``event``."""

        def wrapped(*args, **kwargs):
            self.reached(event)
            return function(*args, **kwargs)

        return wrapped

    def install(self) -> None:
        """Wrap the functions where the events happen."""
        from mmengine.hooks import checkpoint_hook
        from mmengine.runner import EpochBasedTrainLoop, ValLoop

        import mmsaal.pool.store as store
        import mmsaal.rounds.score as score
        EpochBasedTrainLoop.run_iter = self.before(
            'train_iter', EpochBasedTrainLoop.run_iter)
        ValLoop.run_iter = self.before('val_iter', ValLoop.run_iter)
        store.dump_json_atomic = self.before('round_file',
                                             store.dump_json_atomic)
        import mmsaal.datasets.label_files.base as label_files
        label_files.write_label_file = self.before(
            'label_write', label_files.write_label_file)
        original_score = score.score_candidates

        def score_candidates(score_batch, *args, **kwargs):
            return original_score(
                self.before('scoring_batch', score_batch), *args, **kwargs)

        score.score_candidates = score_candidates
        original_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            # Checkpoints are the only .pth files renamed into place.
            if str(dst).endswith('.pth'):
                self.reached('checkpoint_write')
            return original_replace(src, dst, *args, **kwargs)

        os.replace = replace
        checkpoint_hook.open = self._open_cutting_last_checkpoint

    def _open_cutting_last_checkpoint(self, path, *args, **kwargs):
        """``open`` for mmengine's checkpoint hook: a write of
        ``last_checkpoint`` that is the chosen moment stops half-way."""
        handle = open(path, *args, **kwargs)
        if not str(path).endswith('last_checkpoint'):
            return handle
        switch = self

        class Cut:

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                handle.close()

            def write(self, text):
                switch.counts['last_checkpoint_write'] += 1
                if switch.event == 'last_checkpoint_write' and \
                        switch.counts['last_checkpoint_write'] == switch.n:
                    handle.write(text[:len(text) // 2])
                    handle.flush()
                    switch.kill()
                return handle.write(text)

        return Cut()


# ----------------------------------------------------- driving killed runs
def train_al_command(config: str, work_dir: str, options: Sequence[str],
                     at: Optional[str] = None, count: Optional[str] = None,
                     resume: bool = False) -> List[str]:
    """``tools/train_al.py`` under the kill switch."""
    switch = (['--at', at] if at else []) + (['--count', count]
                                              if count else [])
    return [
        sys.executable, '-m', 'mmsaal.testing.kill_switch', *switch,
        osp.join(REPO, 'tools', 'train_al.py'), config, '--work-dir',
        work_dir, *(['--resume'] if resume else []), '--cfg-options',
        *options
    ]


def run(command: List[str], env: Optional[Dict] = None,
        timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=REPO, env=dict(os.environ, **(env or {})),
        capture_output=True, text=True, timeout=timeout)


def draw_moments(counts: Dict[str, int], events: Sequence[str],
                 rng: random.Random) -> List[str]:
    """``EVENT:N`` for each of ``events``, N drawn within how often the
    event occurred in the uninterrupted run (``counts``); events that never
    occurred are left out."""
    return [f'{e}:{rng.randint(1, counts[e])}' for e in events
            if counts.get(e)]


def kill_and_resume(config: str, work_dir: str, options: Sequence[str],
                    moments: Sequence[str], env: Optional[Dict] = None,
                    runner: Callable = run) -> List[bool]:
    """Start the run and kill it at ``moments[0]``, resume it and kill it at
    ``moments[1]``, ..., then resume it to the end. ``runner(command,
    env)`` runs each command as :func:`run` does (the tests pass one that
    starts it from an interpreter that has imported torch already).

    Returns:
        list[bool]: Whether each moment happened (a resumed run has fewer
        events left than the whole run, so a late moment may not come).
    """
    killed = []
    for i, moment in enumerate([*moments, None]):
        result = runner(
            train_al_command(config, work_dir, options, at=moment,
                             resume=i > 0), env)
        if result.returncode == -signal.SIGKILL and moment is not None:
            killed.append(True)
            continue
        if result.returncode != 0:
            raise RuntimeError(
                f'train_al.py failed ({result.returncode}) after the kills '
                f'{list(moments[:i])}:\n{result.stderr[-5000:]}')
        if moment is not None:
            killed.append(False)
            # The run ended before the moment: later ones cannot come.
            killed += [False] * (len(moments) - i - 1)
            break
    return killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--at', help='EVENT:N, the moment to kill at')
    parser.add_argument('--count', help='write the event counts (JSON) here '
                        'when the script ends')
    parser.add_argument('script')
    parser.add_argument('args', nargs=argparse.REMAINDER)
    args = parser.parse_args()
    event, n = (None, 0)
    if args.at:
        event, _, count = args.at.partition(':')
        n = int(count)
    switch = KillSwitch(event, n)
    switch.install()
    if args.count:
        atexit.register(lambda: _dump(switch.counts, args.count))
    sys.argv = [args.script, *args.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(args.script)))
    runpy.run_path(args.script, run_name='__main__')


def _dump(counts: Counter, path: str) -> None:
    with open(path, 'w') as f:
        json.dump(dict(counts), f)


if __name__ == '__main__':
    main()
