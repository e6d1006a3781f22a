# Copyright (c) mmsaal contributors. All rights reserved.
"""Golden round files: prove that a change leaves active learning as it was.

``run`` trains a fixed set of cases (the detection and segmentation demos and
quick runs that cover every granularity, diversity, pool subsets,
pool-wide budgets and a classifier scored through every weight) with the
``tools/train_al.py`` of a source tree, into ``OUT/<case>``. ``compare``
then checks two such folders round by round: every ``labeled.json``,
``queried.json``, ``scores.json``, ``metrics.json``, ``state.json``,
``regions.json`` and ``revealed.npz`` must mean the same, to the last bit
of every number:

- a JSON file is compared as the data it holds, without the wall-clock
  fields (``scoring_seconds``, ``train_seconds``); its layout (indent,
  line breaks) is not compared;
- ``revealed.npz`` is compared as the mask of every image it reveals
  (format 1, a packed mask per image, and format 2, corners and pixel
  positions, both read);
- ``regions.json`` of pixel queries as each image's pixel count and its
  best and last score (format 2 keeps the pixels in ``revealed.npz``, no
  longer every pixel's score);
- ``queried.json`` with the ``queried_classes`` of the round's
  ``classes.json`` (segmentation rounds count them while the next round
  trains, and keep them there).

Typical use, before and after a refactor::

    git worktree add /tmp/before HEAD
    python tools/misc/golden_rounds.py run /tmp/golden_before --repo /tmp/before
    # ... change the code ...
    python tools/misc/golden_rounds.py run /tmp/golden_after
    python tools/misc/golden_rounds.py compare /tmp/golden_before /tmp/golden_after

Runs are only comparable on the same machine: float results of CPU kernels
may differ between processors.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET_CONFIG = 'configs/demo/saal_tiny_faster_rcnn_shapes.py'
SEG_CONFIG = 'configs/demo/saal_tiny_deeplabv3plus_street_domains.py'
CLS_CONFIG = 'configs/demo/saal_tiny_resnet_digits.py'
ROUND_FILES = ('labeled.json', 'queried.json', 'scores.json', 'metrics.json',
               'state.json', 'regions.json', 'revealed.npz')
WALL_CLOCK = ('scoring_seconds', 'train_seconds')
QUICK = [
    'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'
]


def det_data(root: str) -> list:
    return [
        f'{loader}.dataset.data_root={root}/VOCdevkit/'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ]


def seg_data(root: str, size=None) -> list:
    datasets = 'train_dataloader.dataset.datasets'
    options = [
        f'{datasets}.0.data_root={root}/gta/',
        f'{datasets}.1.data_root={root}/cityscapes/',
        f'val_dataloader.dataset.data_root={root}/cityscapes/',
        f'test_dataloader.dataset.data_root={root}/cityscapes/',
    ]
    if size:
        options.append(f'model.data_preprocessor.size={size}')
    return options


def cls_data(root: str) -> list:
    return [
        f'{loader}.dataset.data_root={root}/'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ]


def quick(rounds: int = 2, epochs: int = 1, **fields) -> list:
    options = [
        f'active_learning.num_rounds={rounds}',
        f'active_learning.epochs_per_round={epochs}',
        f'train_cfg.val_interval={epochs}'
    ]
    options += [f'active_learning.{k}={v}' for k, v in fields.items()]
    return options + QUICK


def cases(data: str) -> dict:
    """``{name: (config, --cfg-options)}``."""
    demo, small = osp.join(data, 'demo'), osp.join(data, 'small')
    seg_demo, seg_small = osp.join(data, 'demo_seg'), osp.join(
        data, 'small_seg')
    digits = osp.join(data, 'digits')

    def small_seg(**fields) -> list:
        # The case's sampler picks every round (the config's cold start
        # off).
        return seg_data(seg_small, '(48,96)') + quick(cold_start_rounds=0,
                                                      **fields)

    return {
        'det_demo': (DET_CONFIG, det_data(demo)),
        'seg_demo': (SEG_CONFIG, seg_data(seg_demo)),
        'det_saal_diversity_subset':
        (DET_CONFIG, det_data(small) + quick(
            initial_labeled=10, budget=5, pool_subset=0.5) +
         ['active_learning.pool_sampler.type=SAALSampler',
          'active_learning.pool_sampler.diversity=True',
          'train_dataloader.batch_size=4']),
        'det_entropy_reset':
        (DET_CONFIG, det_data(small) + quick(
            initial_labeled=10, budget=0.1, reset_each_round=True,
            pool_sampler='EntropySampler') + ['train_dataloader.batch_size=4']),
        'seg_pixel_entropy_poolwide':
        (SEG_CONFIG, small_seg(
            granularity='pixel', budget=0.01, budget_per_image=False,
            pool_sampler='EntropySampler')),
        'seg_region_random':
        (SEG_CONFIG, small_seg(budget=0.05, pool_sampler='RandomSampler')),
        'seg_region_ripu_subset':
        (SEG_CONFIG, small_seg(
            budget=0.05, pool_subset=0.5, budget_per_image=False,
            pool_sampler='RIPUSampler')),
        'seg_image_saal':
        (SEG_CONFIG, small_seg(
            granularity='image', budget=3, pool_sampler='SAALSampler') +
         ['train_dataloader.dataset.datasets.1.pipeline.1.type='
          'LoadAnnotations']),
        'cls_digits_saal_all':
        (CLS_CONFIG, cls_data(digits) + quick(
            epochs=3, pool_subset=400, **{
                'pool_sampler.perturb_scope': 'all',
                'pool_sampler.diversity': True})),
    }


def make_data(data: str) -> None:
    from mmsaal.datasets.synthetic import (generate_street_domains,
                                           generate_voc_shapes)
    if not osp.exists(osp.join(data, 'demo', 'VOCdevkit')):
        generate_voc_shapes(osp.join(data, 'demo'), 200, 60, 128, 0)
    if not osp.exists(osp.join(data, 'small', 'VOCdevkit')):
        generate_voc_shapes(osp.join(data, 'small'), 40, 12, 96, 0)
    if not osp.exists(osp.join(data, 'demo_seg', 'cityscapes')):
        generate_street_domains(osp.join(data, 'demo_seg'), 48, 48, 16,
                                (64, 128), 0)
    if not osp.exists(osp.join(data, 'small_seg', 'cityscapes')):
        generate_street_domains(osp.join(data, 'small_seg'), 16, 16, 6,
                                (48, 96), 0)
    if not osp.exists(osp.join(data, 'digits', 'train')):
        from mmsaal.datasets.synthetic import write_digits
        write_digits(osp.join(data, 'digits'))


def run(args) -> None:
    data = osp.abspath(args.data or osp.join(args.out, 'data'))
    make_data(data)
    repo = osp.abspath(args.repo)
    env = dict(os.environ, PYTHONPATH=repo)
    for name, (config, options) in cases(data).items():
        if args.only and name not in args.only:
            continue
        work_dir = osp.join(osp.abspath(args.out), name)
        if osp.isdir(osp.join(work_dir, 'rounds')):
            print(f'{name}: already run')
            continue
        start = time.time()
        result = subprocess.run(
            [sys.executable, osp.join(repo, 'tools', 'train_al.py'),
             osp.join(repo, config), '--work-dir', work_dir,
             '--cfg-options', *options],
            cwd=repo, env=env, capture_output=True, text=True)
        if result.returncode:
            sys.exit(f'{name} failed:\n{result.stdout[-3000:]}\n'
                     f'{result.stderr[-3000:]}')
        print(f'{name}: {time.time() - start:.0f}s')


def normalized(path: str):
    """What the file means (see the module's docstring)."""
    if path.endswith('revealed.npz'):
        from mmsaal.pool import load_reveals
        try:
            return {index: (reveal.shape, np.flatnonzero(reveal.mask()).tolist())
                    for index, reveal in load_reveals(path)}
        except RuntimeError:
            pass  # not a reveals file: its bytes are compared
    with open(path, 'rb') as f:
        raw = f.read()
    if not path.endswith('.json'):
        return raw
    content = json.loads(raw)
    if isinstance(content, dict):
        for key in WALL_CLOCK:
            content.pop(key, None)
        if path.endswith('regions.json') and content.get(
                'granularity') == 'pixel':
            content['items'] = [pixel_summary(item)
                                for item in content['items']]
        # A segmentation round's queried_classes: in queried.json, or
        # (counted beside the next training) in its classes.json.
        classes = osp.join(osp.dirname(path), 'classes.json')
        if path.endswith('queried.json') and osp.exists(classes):
            with open(classes, encoding='utf-8') as f:
                content.update(json.load(f))
    return content


def pixel_summary(item: dict) -> dict:
    """A pixel query's image as format 2 records it."""
    if 'regions' not in item:
        return item
    return dict(index=item['index'], name=item['name'],
                pixels=len(item['scores']), best=item['scores'][0],
                last=item['scores'][-1])


def round_folders(rounds: str) -> list:
    """The round and query folders of a run (other files of ``rounds/``,
    such as a newer version's ``run.json``, are not rounds)."""
    return sorted(n for n in os.listdir(rounds)
                  if n.startswith(('round_', 'query_')))


def compare(args) -> int:
    """Print every difference; returns how many files differ."""
    differ = checked = 0
    names = sorted(
        n for n in os.listdir(args.before)
        if osp.isdir(osp.join(args.before, n, 'rounds')))
    for name in names:
        rounds = osp.join(args.before, name, 'rounds')
        for folder in sorted(os.listdir(rounds)):
            if not folder.startswith('round_'):
                continue
            for file in ROUND_FILES:
                before = osp.join(rounds, folder, file)
                after = osp.join(args.after, name, 'rounds', folder, file)
                if not osp.exists(before):
                    continue
                checked += 1
                if not osp.exists(after) or normalized(before) != normalized(
                        after):
                    differ += 1
                    print(f'DIFFERS {name}/{folder}/{file}')
        extra = osp.join(args.after, name, 'rounds')
        if osp.isdir(extra) and round_folders(extra) != round_folders(rounds):
            differ += 1
            print(f'DIFFERS {name}: round folders {round_folders(rounds)} vs '
                  f'{round_folders(extra)}')
    print(f'{len(names)} cases, {checked} round files compared, {differ} '
          f'differ')
    return differ


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    run_parser = sub.add_parser('run', help='train every case into OUT')
    run_parser.add_argument('out')
    run_parser.add_argument('--repo', default=REPO,
                            help='source tree whose train_al.py runs')
    run_parser.add_argument('--data', help='data folder (OUT/data)')
    run_parser.add_argument('--only', nargs='+', help='case names')
    compare_parser = sub.add_parser('compare', help='compare two runs')
    compare_parser.add_argument('before')
    compare_parser.add_argument('after')
    args = parser.parse_args()
    if args.command == 'run':
        run(args)
    else:
        sys.exit(1 if compare(args) else 0)


if __name__ == '__main__':
    main()
