# Copyright (c) mmsaal contributors. All rights reserved.
"""Write the bundled synthetic demo data set (real VOC layout)."""
import argparse
import os.path as osp

from mmsaal.datasets.synthetic import generate_voc_shapes


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', help='output folder, e.g. data/demo')
    parser.add_argument('--task', choices=['det'], default='det')
    parser.add_argument('--num-trainval', type=int, default=200)
    parser.add_argument('--num-test', type=int, default=60)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--force', action='store_true', help='rewrite existing data')
    return parser.parse_args()


def main():
    args = parse_args()
    done = osp.join(args.root, 'VOCdevkit', 'Shapes', 'ImageSets', 'Main',
                    'test.txt')
    if osp.exists(done) and not args.force:
        print(f'{args.root} already holds the demo data (--force rewrites)')
        return
    voc = generate_voc_shapes(args.root, args.num_trainval, args.num_test,
                              args.image_size, args.seed)
    print(f'wrote {args.num_trainval} trainval and {args.num_test} test '
          f'images to {voc}')


if __name__ == '__main__':
    main()
