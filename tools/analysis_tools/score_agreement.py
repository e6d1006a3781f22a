# Copyright (c) mmsaal contributors. All rights reserved.
"""How far a cheaper SAAL score ranks from the one a run queried with, at
every round of the run.

A finished ``tools/train_al.py`` run (e.g. one of ``tools/benchmark_al.py``)
keeps each round's candidates with the score they were queried by
(``rounds/round_NN/scores.json``), the epoch of the model that scored them
(``queried.json``: its ``epoch_N.pth``; keep every one with
``--cfg-options default_hooks.checkpoint.max_keep_ckpts=-1``) and its
sampler's fields (``experiment.json``). This scores the same candidates
with the same model under the run's sampler with ``--variant``'s fields
changed, and prints per round Spearman's rank correlation and the overlap
of the two top-k queries (k: the run's budget, or ``--top-k``), then the
mean over the rounds and runs. ``--check N`` also scores N candidates a
round with the run's own sampler and prints the largest relative
difference to the recorded scores (~1e-7: the checkpoint is the model that
scored the round).

Example (first order against the exact ``'all'`` scores of a benchmark)::

    python tools/benchmark_al.py configs/demo/saal_tiny_resnet_digits.py \\
        --strategies saal:perturb_scope=all --seeds 0 1 2 \\
        --cfg-options default_hooks.checkpoint.max_keep_ckpts=-1
    python tools/analysis_tools/score_agreement.py \\
        configs/demo/saal_tiny_resnet_digits.py \\
        work_dirs/benchmark_al_saal_tiny_resnet_digits/*/ \\
        --variant approximation=first_order
"""
import argparse
import json
import os.path as osp
import time

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import mmsaal  # noqa: F401  (registers modules, allows mmengine checkpoints)
from mmsaal.analysis import rank_correlation, top_k_overlap
from mmsaal.apis.measure import build_model
from mmsaal.engine.hooks.active_learning_hook import build_pool_sampler
from mmsaal.pool import RoundStore
from mmsaal.rounds import build_pool_dataset, count
from mmsaal.utils import WorkDirError, experiment_record
from mmsaal.utils.files import read_json


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the config the runs started from '
                        '(their model and pool)')
    parser.add_argument('work_dirs', nargs='+', help='finished runs')
    parser.add_argument(
        '--variant', nargs='+', action=DictAction, required=True,
        help='the sampler fields of the score to compare, e.g. '
        'approximation=first_order')
    parser.add_argument('--top-k', type=int,
                        help="query size of the overlap (default: the "
                        "run's budget)")
    parser.add_argument('--check', type=int, default=0, metavar='N',
                        help='rescore N candidates a round with the run\'s '
                        'own sampler against scores.json')
    parser.add_argument('--out', help='JSON file with every row')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def score(sampler, model, dataset, indices, batch_size: int) -> np.ndarray:
    """``sampler``'s score of each pool item in ``indices``."""
    scores = []
    for start in range(0, len(indices), batch_size):
        batch = pseudo_collate(
            [dataset[int(i)] for i in indices[start:start + batch_size]])
        scores += sampler.score_batch(model, batch)
    return np.asarray(scores, np.float64)


def run_sampler_fields(flat: dict) -> dict:
    """The pool sampler fields of a run's ``experiment.json`` (flat)."""
    prefix = 'active_learning.pool_sampler.'
    return {key[len(prefix):]: value for key, value in flat.items()
            if key.startswith(prefix) and '.' not in key[len(prefix):]}


def round_rows(work_dir: str, cfg: Config, dataset, variant: dict,
               top_k, check: int):
    """One row per scored round of the run in ``work_dir``."""
    record = experiment_record(work_dir)
    flat = read_json(record, 'the experiment record')
    fields = run_sampler_fields(flat)
    own = build_pool_sampler(fields)
    other = build_pool_sampler(dict(fields, **variant))
    store = RoundStore(osp.dirname(record))
    batch_size = flat.get('active_learning.pool_dataloader.batch_size', 32)
    budget = flat.get('active_learning.budget', 1)
    model = build_model(cfg)
    for round_idx in store.rounds()[1:]:
        queried = store.read_queried(round_idx)
        with open(osp.join(store.round_dir(round_idx), 'scores.json'),
                  encoding='utf-8') as f:
            items = json.load(f)['items']
        if not items:
            continue
        indices = np.asarray([item['index'] for item in items])
        recorded = np.asarray([item['score'] for item in items], np.float64)
        checkpoint = osp.join(work_dir, f'epoch_{queried["epoch"]}.pth')
        if not osp.exists(checkpoint):
            raise FileNotFoundError(
                f'{checkpoint} (the model that scored round {round_idx}) is '
                f'missing: run with --cfg-options '
                f'default_hooks.checkpoint.max_keep_ckpts=-1')
        load_checkpoint(model, checkpoint, map_location='cpu',
                        logger='silent')
        model.eval()
        start = time.perf_counter()
        scores = score(other, model, dataset, indices, batch_size)
        seconds = time.perf_counter() - start
        k = min(top_k or count(budget, len(dataset)), len(indices))
        row = dict(
            work_dir=work_dir,
            round=round_idx,
            sampler=repr(own),
            variant=repr(other),
            candidates=len(indices),
            k=k,
            spearman=rank_correlation(recorded, scores),
            top_k_overlap=top_k_overlap(recorded, scores, k),
            seconds=seconds)
        if check:
            again = score(own, model, dataset, indices[:check], batch_size)
            row['check_max_rel_diff'] = float(
                np.max(np.abs(again - recorded[:check]) /
                       np.maximum(np.abs(recorded[:check]), 1e-12)))
        yield row


def main():
    args = parse_args()
    try:
        run(args)
    except (WorkDirError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}')


def run(args):
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = build_pool_dataset(cfg)
    torch.manual_seed(0)
    print(f'{osp.basename(args.config)}: each run\'s own scores against '
          f'its sampler with {args.variant}')
    print(f'{"run":<28}{"round":>6}{"candidates":>11}{"k":>4}'
          f'{"spearman":>10}{"top-k":>7}{"seconds":>9}'
          + (f'{"check":>10}' if args.check else ''))
    rows = []
    for work_dir in args.work_dirs:
        for row in round_rows(work_dir.rstrip('/'), cfg, dataset,
                              args.variant, args.top_k, args.check):
            rows.append(row)
            print(f'{osp.basename(row["work_dir"])[-28:]:<28}'
                  f'{row["round"]:>6}{row["candidates"]:>11}{row["k"]:>4}'
                  f'{row["spearman"]:>10.4f}{row["top_k_overlap"]:>7.2f}'
                  f'{row["seconds"]:>9.1f}' +
                  (f'{row["check_max_rel_diff"]:>10.1e}'
                   if args.check else ''),
                  flush=True)
    if not rows:
        raise WorkDirError('no scored round in the given work dirs')
    spearman = np.array([r['spearman'] for r in rows])
    overlap = np.array([r['top_k_overlap'] for r in rows])
    print(f'mean over {len(rows)} rounds: spearman {spearman.mean():.4f} '
          f'(min {spearman.min():.4f}), top-k overlap {overlap.mean():.3f} '
          f'(min {overlap.min():.2f})')
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
