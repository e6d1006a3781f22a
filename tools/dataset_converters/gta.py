# Copyright (c) mmsaal contributors. All rights reserved.
"""Convert GTA5's label ids to Cityscapes' 19 train ids.

GTA5 (https://download.visinf.tu-darmstadt.de/data/from_games/) ships
``images/00001.png`` and ``labels/00001.png``, whose values are Cityscapes
label ids. This writes ``labels/00001_labelTrainIds.png`` next to each, as
mmseg's ``cityscapes.py`` converter does for Cityscapes, so that
``mmsaal.GTAVDataset`` reads GTA5 with Cityscapes' classes::

    python tools/dataset_converters/gta.py data/gta --nproc 8
"""
import argparse
import os.path as osp

from mmengine.utils import track_parallel_progress, track_progress

from mmsaal.datasets import convert_gta_label, gta_label_files


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('gta_path', help='the GTA5 folder (images/, labels/)')
    parser.add_argument('--nproc', type=int, default=1, help='processes')
    return parser.parse_args()


def main():
    args = parse_args()
    labels = osp.join(args.gta_path, 'labels')
    if not osp.isdir(labels):
        raise SystemExit(f'{labels} does not exist: pass the GTA5 folder '
                         f'that holds images/ and labels/')
    paths = gta_label_files(args.gta_path)
    if not paths:
        raise SystemExit(f'no label-id PNG in {labels}')
    if args.nproc > 1:
        track_parallel_progress(convert_gta_label, paths, args.nproc)
    else:
        track_progress(convert_gta_label, paths)
    print(f'\nconverted {len(paths)} label maps under {labels}')


if __name__ == '__main__':
    main()
