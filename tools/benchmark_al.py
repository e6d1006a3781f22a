# Copyright (c) mmsaal contributors. All rights reserved.
"""Compare acquisition strategies: run each over several seeds with
``tools/train_al.py``, then print the area under the learning curve per
strategy (mean ± std over seeds) and write the curves' plot and CSV.

Runs that already finished are read back, unfinished ones are resumed, so
the command can be run again after an interruption.

Example::

    python tools/benchmark_al.py configs/demo/saal_tiny_faster_rcnn_shapes.py \\
        --strategies saal random entropy --seeds 0 1 2
    python tools/benchmark_al.py \
        configs/demo/saal_tiny_deeplabv3plus_street_domains.py \
        --strategies saal random entropy ripu --seeds 0 1 2
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

from mmsaal.analysis import (empty_query_shares, format_empty_query_shares,
                             format_reveal_shares, format_score_spread,
                             load_curve, plot_curves, reveal_shares,
                             score_spread, write_curves_csv)
from mmsaal.analysis.curves import format_summary, summarize_curves

ALIASES = dict(
    saal='SAALSampler',
    random='RandomSampler',
    entropy='EntropySampler',
    least_confidence='LeastConfidenceSampler',
    margin='MarginSampler',
    ripu='RIPUSampler')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--strategies',
        nargs='+',
        default=['saal', 'random', 'entropy'],
        help=f'aliases {sorted(ALIASES)} or pool sampler names, each '
        f'optionally with fields: saal:score=diff,rho=0.01. The config\'s '
        f'own sampler keeps its config fields (the given ones merged in); '
        f'another starts from its defaults')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument(
        '--work-dir',
        help='root of the runs; defaults to work_dirs/benchmark_al_<config>')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='passed to every train_al.py run')
    return parser.parse_args()


def finished(work_dir: str) -> bool:
    """Whether a train_al.py run of this benchmark completed."""
    return osp.exists(osp.join(work_dir, 'benchmark_done'))


def parse_cfg_options(options: list) -> dict:
    """``KEY=VALUE`` strings as ``--cfg-options`` reads them."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--options', nargs='+', action=DictAction)
    return parser.parse_args(['--options', *options]).options \
        if options else {}


def config_sampler(config: str, options: list) -> str:
    """The type of the config's own pool sampler (after ``options``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(parse_cfg_options(options))
    sampler = cfg.get('active_learning', {}).get('pool_sampler')
    name = sampler if isinstance(sampler, str) else (sampler or {}).get(
        'type', 'RandomSampler')
    return name.split('.')[-1]  # 'mmsaal.SAALSampler' -> 'SAALSampler'


def sampler_options(strategy: str, own: str = '') -> list:
    """``--cfg-options`` of a strategy: ``NAME`` or ``NAME:field=value,...``
    (an alias or a pool sampler). The config's own sampler (``own``) keeps
    its config fields, the given ones merged in; any other sampler starts
    from its defaults (the config's fields belong to another class)."""
    name, _, fields = strategy.partition(':')
    sampler = ALIASES.get(name, name)
    key = 'active_learning.pool_sampler'
    options = [f'{key}.type={sampler}']
    if sampler != own:
        options.insert(0, f'{key}._delete_=True')
    return options + [f'{key}.{field}' for field in fields.split(',')
                      if field]


def run(config: str, work_dir: str, strategy: str, seed: int,
        options: list, own: str) -> None:
    """Train one strategy and seed; ``own`` is :func:`config_sampler`'s."""
    command = [
        sys.executable,
        osp.join(osp.dirname(osp.abspath(__file__)), 'train_al.py'), config,
        '--work-dir', work_dir, '--cfg-options',
        *sampler_options(strategy, own), f'active_learning.seed={seed}',
        f'randomness.seed={seed}', *options
    ]
    if osp.isdir(osp.join(work_dir, 'rounds')):
        command.insert(command.index('--cfg-options'), '--resume')
    print(f'[benchmark_al] {strategy} seed {seed} -> {work_dir}', flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    with open(osp.join(work_dir, 'benchmark_done'), 'w') as f:
        json.dump(dict(sampler=strategy, seed=seed), f)


def main():
    args = parse_args()
    root = args.work_dir or osp.join(
        'work_dirs',
        'benchmark_al_' + osp.splitext(osp.basename(args.config))[0])
    os.makedirs(root, exist_ok=True)
    curves = []
    own = None  # the config's sampler, read once a run is to be trained
    for strategy in args.strategies:
        for seed in args.seeds:
            folder = strategy.replace(':', '-').replace(',', '-')
            work_dir = osp.join(root, f'{folder}_seed{seed}')
            if not finished(work_dir):
                if own is None:
                    own = config_sampler(args.config, args.cfg_options)
                run(args.config, work_dir, strategy, seed, args.cfg_options,
                    own)
            curve = load_curve(work_dir)
            fields = strategy.partition(':')[2]
            if fields:  # a variant is its own line
                curve['strategy'] += f':{fields}'
            curves.append(curve)
    plot = osp.join(root, 'curves.png')
    plot_curves(curves, plot)
    write_curves_csv(curves, osp.join(root, 'curves.csv'))
    summary = summarize_curves(curves)
    with open(osp.join(root, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print(format_summary(summary, curves[0]['metric_name']))
    spread = score_spread(curves)
    if spread:  # strategies that score (random does not)
        print(format_score_spread(spread))
    empty = empty_query_shares(curves)
    if empty:  # detection pools
        print(format_empty_query_shares(empty))
    shares = reveal_shares(curves)
    if shares:  # region / pixel queries
        print(format_reveal_shares(shares))
    print(f'plot: {plot}')


if __name__ == '__main__':
    main()
