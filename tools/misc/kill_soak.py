# Copyright (c) mmsaal contributors. All rights reserved.
"""Kill a run at many moments, resume it each time, and check that it ends
with the uninterrupted run's round files.

    python tools/misc/kill_soak.py CONFIG --work-dir work_dirs/soak \\
        --trials 10 --chain 2 [--seed S] [--cfg-options k=v ...]

It runs CONFIG once uninterrupted (counting its events), then ``--trials``
times: a run killed at ``--chain`` moments drawn from ``--seed`` (each
resumed, and then resumed to the end), compared with the uninterrupted run
(``labeled.json``, ``scores.json``, ``revealed.npz`` and ``metrics.json``
of every round). The seed is printed: ``--seed`` replays a failure, and
``python -m mmsaal.testing.kill_switch --at EVENT:N ...`` replays one kill.
Events: see ``mmsaal/testing/kill_switch.py``.
"""
import argparse
import json
import os.path as osp
import random
import shutil
import sys

from mmsaal.testing.kill_switch import (EVENTS, draw_moments,
                                        kill_and_resume, run,
                                        train_al_command)
from mmsaal.testing.run_outputs import differences


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', required=True,
                        help='the runs go in sub-folders of it')
    parser.add_argument('--trials', type=int, default=10)
    parser.add_argument('--chain', type=int, default=2,
                        help='kills per trial (each resumed)')
    parser.add_argument('--seed', type=int,
                        default=random.SystemRandom().randrange(10**6))
    parser.add_argument('--cfg-options', nargs='+', default=[])
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    print(f'kill_soak seed {args.seed} (replay with --seed {args.seed})',
          flush=True)
    rng = random.Random(args.seed)
    reference = osp.join(args.work_dir, 'uninterrupted')
    counts_file = osp.join(args.work_dir, 'event_counts.json')
    if not osp.exists(counts_file):
        shutil.rmtree(reference, ignore_errors=True)
        result = run(train_al_command(args.config, reference,
                                      args.cfg_options, count=counts_file))
        if result.returncode != 0:
            sys.exit(f'the uninterrupted run failed:\n{result.stderr[-5000:]}')
    with open(counts_file) as f:
        counts = json.load(f)
    print('events of the uninterrupted run: ' +
          ', '.join(f'{e} {counts.get(e, 0)}' for e in EVENTS))
    tried = happened = matched = 0
    for trial in range(args.trials):
        events = rng.sample([e for e in EVENTS if counts.get(e)],
                            args.chain)
        moments = draw_moments(counts, events, rng)
        work_dir = osp.join(args.work_dir, f'trial_{trial:03d}')
        shutil.rmtree(work_dir, ignore_errors=True)
        killed = kill_and_resume(args.config, work_dir, args.cfg_options,
                                 moments)
        differ = differences(reference, work_dir)
        tried += len(moments)
        happened += sum(killed)
        matched += not differ
        kills = ', '.join(f'{m}{"" if k else " (not reached)"}'
                          for m, k in zip(moments, killed))
        print(f'trial {trial}: {kills}: '
              f'{"same" if not differ else "DIFFERS in " + str(differ)}',
              flush=True)
        if not differ:
            shutil.rmtree(work_dir)
    print(f'{tried} moments tried, {happened} killed the run; '
          f'{matched} of {args.trials} resumed runs equal the uninterrupted '
          f'run (seed {args.seed}).')
    return 0 if matched == args.trials else 1


if __name__ == '__main__':
    sys.exit(main())
