# Copyright (c) mmsaal contributors. All rights reserved.
"""Time a detector's heads run for N images under N different weights (the
perturbed pass's shape): one image at a time, as scoring does now, against
all at once (:func:`mmsaal.adapters.batched.batched_forward`: batched
matrix products for the RoI head's FCs, grouped convolutions for the dense
head). Prints both times, their ratio and the largest difference of the
outputs, per head, in one run.

Example::

    python tools/misc/batched_heads.py configs/demo/saal_tiny_faster_rcnn_shapes.py --images 8
    python tools/misc/batched_heads.py \
        configs/benchmark/saal_faster_rcnn_r50_shapes_voc_resolution.py --images 4
"""
import argparse

import torch
from mmengine.config import DictAction
from mmengine.dataset import pseudo_collate
from torch.func import functional_call

import mmsaal  # noqa: F401
from mmsaal.adapters.batched import batched_forward, stacked_weights
from mmsaal.apis.measure import fastest_seconds, model_and_pool


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--images', type=int, default=4)
    parser.add_argument(
        '--rois', type=int,
        help="RoIs per image (default: the config's rcnn sampler num)")
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def ascent_like_steps(module, count: int, scale: float = 1e-3) -> list:
    """One random step per image, each weight moved by about ``scale`` of
    its magnitude (the shape of ASAM's step; the values do not matter for
    timing or equality)."""
    generator = torch.Generator().manual_seed(0)
    return [{
        name: scale * p.detach().abs() *
        torch.randn(p.shape, generator=generator)
        for name, p in module.named_parameters()
    } for _ in range(count)]


def largest_difference(batched, looped) -> float:
    """Largest absolute difference over every output tensor, relative to
    the looped outputs' largest magnitude."""
    pairs = zip(torch.utils._pytree.tree_leaves(batched),
                torch.utils._pytree.tree_leaves(looped))
    diff, scale = 0.0, 1e-12
    for b, l in pairs:
        diff = max(diff, float((b - l).abs().max()))
        scale = max(scale, float(l.abs().max()))
    return diff / scale


def compare(name: str, module, inputs: tuple, count: int,
            repeats: int) -> dict:
    """Loop vs batched forward of ``module`` over ``count`` images."""
    weights = stacked_weights(module, ascent_like_steps(module, count))

    def looped():
        outputs = []
        for i in range(count):
            image_weights = {k: v[i] for k, v in weights.items()}
            image_inputs = torch.utils._pytree.tree_map(
                lambda t: t[i], inputs)
            outputs.append(
                functional_call(module, image_weights, image_inputs))
        return torch.utils._pytree.tree_map(
            lambda *ts: torch.stack(ts), *outputs)

    with torch.no_grad():
        diff = largest_difference(batched_forward(module, weights, *inputs),
                                  looped())
        loop_s = fastest_seconds(looped, repeats)
        batch_s = fastest_seconds(
            lambda: batched_forward(module, weights, *inputs), repeats)
    return dict(head=name, loop=loop_s, batched=batch_s, diff=diff)


def main():
    args = parse_args()
    cfg, model, items = model_and_pool(args.config, args.cfg_options,
                                       num_images=args.images)
    batch = pseudo_collate(items)
    with torch.no_grad():
        inputs = model.data_preprocessor(batch, False)['inputs']
        feats = model.extract_feat(inputs)
    # Each image's levels, stacked on a new first dimension.
    levels = tuple(level.unsqueeze(1) for level in feats)
    rows = []
    dense = model.rpn_head if getattr(model, 'with_rpn', False) else \
        model.bbox_head
    rows.append(compare(f'dense head ({type(dense).__name__})', dense,
                        (levels, ), args.images, args.repeats))
    roi_head = getattr(model, 'roi_head', None)
    if roi_head is not None:
        bbox_head = roi_head.bbox_head
        rois = args.rois or cfg.model.train_cfg.rcnn.sampler.num
        roi_feats = torch.randn(args.images, rois, bbox_head.in_channels,
                                *bbox_head.roi_feat_size,
                                generator=torch.Generator().manual_seed(1))
        rows.append(compare(f'RoI head ({type(bbox_head).__name__}, '
                            f'{rois} RoIs)', bbox_head, (roi_feats, ),
                            args.images, args.repeats))
    print(f'\n{args.images} images, each under its own weights, '
          f'{torch.get_num_threads()} threads, fastest of {args.repeats}, '
          f'{inputs.shape[-2]}x{inputs.shape[-1]} input')
    width = max(len(r['head']) for r in rows) + 2
    print(f'{"head":<{width}}{"loop s":>10}{"batched s":>11}'
          f'{"loop / batched":>16}{"max rel. diff":>15}')
    for r in rows:
        print(f'{r["head"]:<{width}}{r["loop"]:>10.4f}{r["batched"]:>11.4f}'
              f'{r["loop"] / r["batched"]:>16.2f}{r["diff"]:>15.1e}')


if __name__ == '__main__':
    main()
