# Copyright (c) mmsaal contributors. All rights reserved.
"""Cost of a training iteration with SAMOptimWrapper against mmengine's plain
OptimWrapper, in one process.

For each config: the same batches of its train dataloader go through
``model.train_step`` with the config's optimizer, once with the plain
wrapper and once with SAM (or ASAM), from the same initial weights. The
two are interleaved ``--repeats`` times and the fastest pass of each is
kept, so a slow spell of a shared machine does not decide the ratio::

    python tools/benchmark_sam.py configs/demo/saal_tiny_faster_rcnn_shapes.py \\
        configs/demo/saal_tiny_deeplabv3plus_street_domains.py
"""
import argparse
import copy
import time

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmsaal  # noqa: F401
from mmsaal.apis.measure import build_model
from mmsaal.apis.config import pipeline_steps


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--iters', type=int, default=10,
                        help='training iterations per pass')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--rho', type=float, default=0.05)
    parser.add_argument('--adaptive', action='store_true', help='ASAM')
    return parser.parse_args()


def seconds_per_iteration(model, wrapper_cfg, batches) -> float:
    model = copy.deepcopy(model)
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    model.train()
    start = time.perf_counter()
    for batch in batches:
        model.train_step(batch, optim_wrapper=wrapper)
    return (time.perf_counter() - start) / len(batches)


def main():
    args = parse_args()
    torch.manual_seed(0)
    rows = []
    for path in args.configs:
        cfg = Config.fromfile(path)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        loader_cfg = copy.deepcopy(cfg.train_dataloader)
        loader_cfg.update(num_workers=0, persistent_workers=False)
        # A pixel-labeled pool reads the masks a run reveals; with none
        # revealed yet, time it on its full label maps (the same cost).
        for step in pipeline_steps(loader_cfg.dataset):
            if str(step.get('type')).endswith('LoadRevealedAnnotations'):
                step.type = 'LoadAnnotations'
                step.pop('revealed_dir', None)
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        batches = []
        for batch in loader:
            batches.append(batch)
            if len(batches) == args.iters:
                break
        model = build_model(cfg)
        plain = copy.deepcopy(cfg.optim_wrapper)
        plain.type = 'OptimWrapper'
        sam = copy.deepcopy(plain)
        sam.update(type='mmsaal.SAMOptimWrapper', rho=args.rho,
                   adaptive=args.adaptive)
        seconds_per_iteration(model, plain, batches[:1])  # warm-up
        best = dict(plain=float('inf'), sam=float('inf'))
        for _ in range(args.repeats):
            for name, wrapper_cfg in (('plain', plain), ('sam', sam)):
                best[name] = min(
                    best[name],
                    seconds_per_iteration(model, wrapper_cfg, batches))
        rows.append((path.split('/')[-1], len(batches), best['plain'],
                     best['sam']))
    kind = 'ASAM' if args.adaptive else 'SAM'
    print(f'\n{"config":48} {"iters":>5} {"plain s/it":>11} '
          f'{kind + " s/it":>10} {"ratio":>6}')
    for name, iters, plain_s, sam_s in rows:
        print(f'{name:48} {iters:5d} {plain_s:11.3f} {sam_s:10.3f} '
              f'{sam_s / plain_s:6.2f}x')


if __name__ == '__main__':
    main()
