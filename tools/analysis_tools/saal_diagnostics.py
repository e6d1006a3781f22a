# Copyright (c) mmsaal contributors. All rights reserved.
"""Diagnose SAAL's segmentation score: what the ascent step does, per round.

For each checkpoint (e.g. the last one of every round), each radius and each
perturbation mode, scores the first N pool images as SAAL does and prints,
averaged over the images: the losses before and after the step (and the
spread of the per-image score), the gradient and step sizes, the fraction of
pixels whose argmax flips, KL(p0 || p1) and the entropy after the step
against ln(C), the rank correlation of L1 with L0 over images and over
pixels (1: the perturbation does not change the ranking), and the
first-order value of the loss change next to the change itself. ``--out`` keeps every number as JSON, ``--plot`` draws them.

    python tools/analysis_tools/saal_diagnostics.py CONFIG \\
        WORK_DIR/epoch_10.pth WORK_DIR/epoch_20.pth --rho 0.05 0.01 \\
        --mode adaptive sam --num-images 16 --plot steps.png
"""
import argparse
import json
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import mmsaal  # noqa: F401  (registers modules, allows mmengine checkpoints)
from mmsaal.adapters.segmentation import SegmentationSAAL
from mmsaal.analysis import rank_correlation
from mmsaal.analysis.step_effects import segmentation_step_effects
from mmsaal.apis.measure import build_model
from mmsaal.rounds import build_pool_dataset

COLUMNS = ('l0', 'l1', 'score_cv', 'l1_over_lnC', 'rank_corr_img',
           'rank_corr_px', 'flipped', 'kl', 'entropy_after', 'grad_norm',
           'scaled_grad_norm', 'step_ratio', 'max_relative_step',
           'first_order', 'change')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoints', nargs='+')
    parser.add_argument('--rho', type=float, nargs='+', default=[0.05])
    parser.add_argument('--mode', nargs='+', default=['adaptive'],
                        choices=['adaptive', 'sam'])
    parser.add_argument('--num-images', type=int, default=16)
    parser.add_argument('--scope', default='head',
                        help="perturb_scope ('head', 'neck+head', 'all')")
    parser.add_argument('--out', help='JSON file for every number')
    parser.add_argument('--plot', help='PNG of the main numbers')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def summarize(records) -> dict:
    l1 = np.array([r['l1'] for r in records])
    row = {k: float(np.mean([r[k] for r in records]))
           for k in COLUMNS if k in records[0]}
    row['score_cv'] = float(l1.std() / max(l1.mean(), 1e-12))
    row['l1_over_lnC'] = float(l1.mean() / records[0]['uniform_entropy'])
    row['change'] = float(np.mean([r['l1'] - r['l0'] for r in records]))
    pixels0 = torch.cat([r['l0_pixels'] for r in records]).numpy()
    pixels1 = torch.cat([r['l1_pixels'] for r in records]).numpy()
    row['l0_pixel_percentiles'] = np.percentile(
        pixels0, [10, 50, 90, 99]).tolist()
    row['l1_pixel_percentiles'] = np.percentile(
        pixels1, [10, 50, 90, 99]).tolist()
    # How much of the ranking the perturbation changes: 1 means SAAL's
    # score ranks like the unperturbed pseudo-label loss, -log p_max.
    row['rank_corr_img'] = rank_correlation(
        np.array([r['l0'] for r in records]), l1)
    row['rank_corr_px'] = rank_correlation(pixels0, pixels1)
    row['image_scores'] = l1.tolist()
    return row


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = build_pool_dataset(cfg)
    batches = [
        pseudo_collate([dataset[i]])
        for i in range(min(args.num_images, len(dataset)))
    ]
    results = []
    print(f'{"checkpoint":<16} {"rho":>6} {"mode":<8} ' +
          ' '.join(f'{c:>11}' for c in COLUMNS))
    for checkpoint in args.checkpoints:
        model = build_model(cfg)
        load_checkpoint(model, checkpoint, map_location='cpu', logger=None)
        model.eval()
        adapter = SegmentationSAAL(model, args.scope)
        for rho in args.rho:
            for mode in args.mode:
                records = [
                    r for batch in batches
                    for r in segmentation_step_effects(adapter, batch, rho,
                                                       mode)
                ]
                row = dict(
                    checkpoint=osp.basename(checkpoint), rho=rho, mode=mode,
                    **summarize(records))
                results.append(row)
                print(f'{row["checkpoint"]:<16} {rho:>6} {mode:<8} ' +
                      ' '.join(f'{row[c]:>11.4g}' for c in COLUMNS))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)
    if args.plot:
        plot(results, args.plot)


def plot(results, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    checkpoints = list(dict.fromkeys(r['checkpoint'] for r in results))
    settings = list(dict.fromkeys((r['rho'], r['mode']) for r in results))
    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    for rho, mode in settings:
        rows = [r for r in results if (r['rho'], r['mode']) == (rho, mode)]
        label = f'{mode} rho={rho}'
        axes[0].plot(checkpoints, [r['l1_over_lnC'] for r in rows], 'o-',
                     label=label)
        axes[1].plot(checkpoints, [r['score_cv'] for r in rows], 'o-',
                     label=label)
        axes[2].plot(checkpoints, [r['rank_corr_px'] for r in rows], 'o-',
                     label=label)
        axes[3].plot(checkpoints, [r['flipped'] for r in rows], 'o-',
                     label=label)
    axes[0].set_title('mean perturbed loss / ln(C)')
    axes[1].set_title('spread of image scores (std / mean)')
    axes[2].set_title('rank correlation of pixel L1 with L0')
    axes[3].set_title('pixels whose argmax flips')
    for ax in axes:
        ax.set_xlabel('checkpoint')
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == '__main__':
    main()
