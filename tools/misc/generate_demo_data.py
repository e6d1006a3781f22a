# Copyright (c) mmsaal contributors. All rights reserved.
"""Write a bundled synthetic demo data set.

``--task det``: coloured shapes in the real PASCAL VOC layout.
``--task seg``: a two-domain street set in the real GTA5 and Cityscapes
layouts (source labeled, target to be queried).
``--task cls``: scikit-learn's real handwritten digits (``--style demo``)
or 16x16 shape crops (``--style shapes``) in the folder layout of
mmpretrain's ``CustomDataset`` (``{train,test}/{class}/*.png``).
"""
import argparse
import os.path as osp

from mmsaal.datasets.synthetic import (generate_street_domains,
                                       generate_voc_shapes, write_digits,
                                       write_shape_crops)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', help='output folder, e.g. data/demo')
    parser.add_argument('--task', choices=['det', 'seg', 'cls'],
                        default='det')
    parser.add_argument(
        '--num-trainval',
        type=int,
        default=None,
        help='det: trainval images (200); seg: images per domain (48)')
    parser.add_argument(
        '--num-test', type=int, default=None,
        help='det: test images (60); seg: target val images (16)')
    parser.add_argument(
        '--image-size',
        type=int,
        default=None,
        help='det: square side (128); seg: height, width = 2 x height (64)')
    parser.add_argument(
        '--width', type=int, default=None,
        help='seg: image width (2 x height)')
    parser.add_argument(
        '--style', default='demo',
        choices=['demo', 'dusk', 'clutter', 'shapes'],
        help="'demo' (make demo / demo-seg / demo-cls: the digits); seg: "
        "'dusk', a second set with other palettes, a rare class and side "
        "void pillars; det: 'clutter', six classes (one rare), "
        "distractors, empty images; cls: 'shapes', 16x16 shape crops")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--force', action='store_true', help='rewrite existing data')
    return parser.parse_args()


def main():
    args = parse_args()
    styles = dict(det=('demo', 'clutter'), seg=('demo', 'dusk'),
                  cls=('demo', 'shapes'))
    if args.style not in styles[args.task]:
        raise SystemExit(f'--style {args.style} is not a {args.task} style: '
                         f'{", ".join(f"{t} takes {s}" for t, s in styles.items())}')
    if args.task == 'cls':
        done = osp.join(args.root, 'test')
        if osp.exists(done) and not args.force:
            print(f'{args.root} already holds the data (--force rewrites)')
            return
        if args.style == 'demo':
            counts = write_digits(args.root, seed=args.seed)
        else:
            counts = write_shape_crops(args.root, args.num_trainval or 1200,
                                       args.num_test or 400,
                                       args.image_size or 16,
                                       seed=args.seed)
        print(f'wrote {args.style} to {args.root}: {counts}')
        return
    if args.task == 'det':
        done = osp.join(args.root, 'VOCdevkit', 'Shapes', 'ImageSets',
                        'Main', 'test.txt')
    else:
        done = osp.join(args.root, 'cityscapes', 'gtFine', 'val')
    if osp.exists(done) and not args.force:
        print(f'{args.root} already holds the demo data (--force rewrites)')
        return
    if args.task == 'det':
        voc = generate_voc_shapes(args.root, args.num_trainval or 200,
                                  args.num_test or 60, args.image_size
                                  or 128, args.seed, style=args.style)
        print(f'wrote the shapes set to {voc}')
        return
    height = args.image_size or 64
    counts = generate_street_domains(
        args.root,
        num_source=args.num_trainval or 48,
        num_target_train=args.num_trainval or 48,
        num_target_val=args.num_test or 16,
        size=(height, args.width or 2 * height),
        seed=args.seed,
        style=args.style)
    print(f'wrote the two-domain street set to {args.root}: {counts}')


if __name__ == '__main__':
    main()
